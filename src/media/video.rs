//! The video player: one long-running mpv, driven over its JSON IPC socket.
//! Between clips it shows the idle image (or black). The natural end of a
//! clip is reported (`videoEnd`). If mpv dies it is restarted on the next
//! command; if it cannot run at all, clips are reported as ended at once so
//! a scene never waits forever. mpv is killed when the daemon stops.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::command::{VIDEO_EXTENSIONS, VideoCommand, resolve_media};
use super::{MediaEnd, MediaEvent};
use crate::events::{Event, EventBus};

static SOCKET_SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone)]
/// How the video player runs.
pub struct VideoSettings {
    /// The folder of clips.
    pub dir: PathBuf,
    /// Player command; `{file}` becomes the idle image (or is dropped).
    pub command: Vec<String>,
    /// Shown between clips (black when absent).
    pub idle_image: Option<PathBuf>,
    /// Run the player at all.
    pub enabled: bool,
    /// After mpv failed to start, the next try waits at least this long
    /// (a command in between reports its clip as ended at once).
    pub restart_delay: Duration,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
/// What the dashboard shows about video.
pub struct VideoStatus {
    /// mpv is running.
    pub running: bool,
    /// Its process id.
    pub pid: Option<u32>,
    /// The clip on screen (none: the idle image).
    pub playing: Option<String>,
    /// mpv has loaded that clip (it is really playing, not just asked to).
    pub loaded: bool,
    /// PAUSE is in effect.
    pub paused: bool,
    /// Why the player is not running.
    pub error: Option<String>,
}

/// Handle to the video task. Cheap to clone.
#[derive(Clone)]
pub struct VideoPlayer {
    tx: mpsc::UnboundedSender<VideoCommand>,
    status: Arc<Mutex<VideoStatus>>,
}

impl VideoPlayer {
    /// Starts the video task on `tasks`; it ends with `cancel`.
    pub fn start(
        settings: VideoSettings,
        events: EventBus,
        ends: mpsc::UnboundedSender<MediaEnd>,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> VideoPlayer {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(VideoStatus::default()));
        let task = VideoTask {
            s: settings,
            events,
            ends,
            status: status.clone(),
            mpv: None,
            current: None,
            next_request: 1,
            retry_at: None,
        };
        tasks.spawn(task.run(rx, cancel));
        VideoPlayer { tx, status }
    }

    /// Queues a command.
    pub fn command(&self, cmd: VideoCommand) {
        let _ = self.tx.send(cmd);
    }

    /// The player's status.
    pub fn status(&self) -> VideoStatus {
        self.status.lock().clone()
    }
}

struct Mpv {
    child: Child,
    writer: OwnedWriteHalf,
    lines: Lines<BufReader<OwnedReadHalf>>,
    socket: PathBuf,
}

/// The clip on screen.
struct Current {
    name: String,
    /// loadfile request id, until mpv answers with the playlist entry id.
    request: u64,
    entry: Option<i64>,
    /// mpv reported `file-loaded` for it.
    loaded: bool,
    /// A SEEK that arrived before the clip was loaded.
    pending_seek: Option<f64>,
}

struct VideoTask {
    s: VideoSettings,
    events: EventBus,
    ends: mpsc::UnboundedSender<MediaEnd>,
    status: Arc<Mutex<VideoStatus>>,
    mpv: Option<Mpv>,
    current: Option<Current>,
    next_request: u64,
    /// mpv could not be started: no new try before this instant (so a
    /// broken player is not spawned on every command).
    retry_at: Option<tokio::time::Instant>,
}

impl VideoTask {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<VideoCommand>,
        cancel: CancellationToken,
    ) {
        if self.s.enabled {
            self.ensure_running().await;
        } else {
            info!(target: "media", "Video disabled (media.video: false); clips are reported as ended at once");
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(c) => self.command(c).await,
                    None => break,
                },
                line = next_line(&mut self.mpv) => match line {
                    Some(l) => self.on_line(&l).await,
                    None => self.on_exit().await,
                },
            }
        }
        if let Some(mut m) = self.mpv.take() {
            info!(target: "media", "Stopping video player");
            let _ = m.child.kill().await;
            let _ = std::fs::remove_file(&m.socket);
        }
        self.set_status(|s| {
            s.running = false;
            s.pid = None;
            s.playing = None;
            s.loaded = false;
        });
    }

    fn set_status(&self, f: impl FnOnce(&mut VideoStatus)) {
        f(&mut self.status.lock());
    }

    fn publish(&self, event: &str, file: Option<&str>, detail: Option<String>) {
        self.events.publish(Event::Media(MediaEvent {
            kind: "video".into(),
            event: event.into(),
            file: file.map(String::from),
            detail,
        }));
    }

    async fn ensure_running(&mut self) -> bool {
        if let Some(m) = &mut self.mpv {
            if matches!(m.child.try_wait(), Ok(None)) {
                return true;
            }
            self.mpv = None;
        }
        if !self.s.enabled
            || self
                .retry_at
                .is_some_and(|t| tokio::time::Instant::now() < t)
        {
            return false;
        }
        match self.spawn().await {
            Ok(m) => {
                info!(target: "media", "Video player running (IPC {})", m.socket.display());
                self.retry_at = None;
                let pid = m.child.id();
                self.mpv = Some(m);
                self.set_status(|s| {
                    s.running = true;
                    s.pid = pid;
                    s.error = None;
                });
                true
            }
            Err(e) => {
                warn!(target: "media",
                    "No video player ({e}); clips are reported as ended at once, next try in {:.0}s or later",
                    self.s.restart_delay.as_secs_f64());
                self.retry_at = Some(tokio::time::Instant::now() + self.s.restart_delay);
                self.set_status(|s| {
                    s.running = false;
                    s.error = Some(e.clone());
                });
                self.publish("error", None, Some(e));
                false
            }
        }
    }

    async fn spawn(&self) -> Result<Mpv, String> {
        let Some((program, args)) = self.s.command.split_first() else {
            return Err("media.video_player is empty".into());
        };
        let dir = std::env::var_os("RUNTIME_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let socket = dir.join(format!(
            "roomctl-mpv-{}-{}.sock",
            std::process::id(),
            SOCKET_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let idle = self
            .s
            .idle_image
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let mut cmd = Command::new(program);
        for a in args {
            if a.contains("{file}") {
                if let Some(i) = &idle {
                    cmd.arg(a.replace("{file}", i));
                }
            } else {
                cmd.arg(a);
            }
        }
        cmd.arg("--idle=yes")
            .arg("--force-window=yes")
            .arg("--keep-open=no")
            .arg("--image-display-duration=inf")
            .arg(format!("--input-ipc-server={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let stream = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("`{program}` exited at start ({status})"));
            }
            match UnixStream::connect(&socket).await {
                Ok(s) => break s,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => {
                    let _ = child.kill().await;
                    return Err(format!("no IPC socket from `{program}`: {e}"));
                }
            }
        };
        let (r, w) = stream.into_split();
        Ok(Mpv {
            child,
            writer: w,
            lines: BufReader::new(r).lines(),
            socket,
        })
    }

    async fn send(&mut self, command: Value) -> Option<u64> {
        let id = self.next_request;
        self.next_request += 1;
        let m = self.mpv.as_mut()?;
        let mut line = json!({"command": command, "request_id": id}).to_string();
        line.push('\n');
        if let Err(e) = m.writer.write_all(line.as_bytes()).await {
            warn!(target: "media", "Video IPC write failed: {e}");
            return None;
        }
        debug!(target: "media", "mpv <- {}", line.trim());
        Some(id)
    }

    /// Back to the idle image (or an empty black window).
    async fn show_idle(&mut self) {
        match self.s.idle_image.clone() {
            Some(img) => {
                self.send(json!(["loadfile", img.to_string_lossy(), "replace"]))
                    .await;
            }
            None => {
                self.send(json!(["stop"])).await;
            }
        }
    }

    async fn command(&mut self, c: VideoCommand) {
        match c {
            VideoCommand::Play { file } => {
                let Some(path) = resolve_media(&self.s.dir, &file, &VIDEO_EXTENSIONS) else {
                    let msg = format!("video file `{file}` not found in {}", self.s.dir.display());
                    error!(target: "media", "{msg}");
                    self.publish("error", Some(&file), Some(msg));
                    let _ = self.ends.send(MediaEnd::Video(file));
                    return;
                };
                let name = path
                    .strip_prefix(&self.s.dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                if !self.ensure_running().await {
                    self.publish("ended", Some(&name), Some("no video player".into()));
                    let _ = self.ends.send(MediaEnd::Video(name));
                    return;
                }
                let path = path.to_string_lossy().into_owned();
                if let Some(request) = self.send(json!(["loadfile", path, "replace"])).await {
                    self.send(json!(["set_property", "pause", false])).await;
                    info!(target: "media", "Video: playing {name}");
                    self.publish("started", Some(&name), None);
                    self.set_status(|s| {
                        s.playing = Some(name.clone());
                        s.loaded = false;
                        s.paused = false;
                    });
                    self.current = Some(Current {
                        name,
                        request,
                        entry: None,
                        loaded: false,
                        pending_seek: None,
                    });
                }
            }
            VideoCommand::Stop => {
                if let Some(c) = self.current.take() {
                    info!(target: "media", "Video stopped: {}", c.name);
                    self.publish("stopped", Some(&c.name), None);
                }
                self.set_status(|s| {
                    s.playing = None;
                    s.loaded = false;
                });
                if self.mpv.is_some() {
                    self.show_idle().await;
                }
            }
            VideoCommand::Pause | VideoCommand::Resume => {
                let pause = matches!(c, VideoCommand::Pause);
                if self.mpv.is_some() {
                    self.send(json!(["set_property", "pause", pause])).await;
                }
                self.set_status(|s| s.paused = pause);
            }
            VideoCommand::Seek { seconds } => match self.current.as_mut() {
                // mpv refuses to seek in a file it is still opening.
                Some(c) if !c.loaded => c.pending_seek = Some(seconds),
                Some(_) => {
                    self.send(json!(["seek", seconds, "absolute"])).await;
                }
                None => debug!(target: "media", "SEEK with no clip playing"),
            },
        }
    }

    async fn on_line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            debug!(target: "media", "mpv sent non-JSON: {line}");
            return;
        };
        debug!(target: "media", "mpv -> {line}");
        // The reply to our loadfile tells which playlist entry is the clip.
        if let (Some(req), Some(cur)) = (
            v.get("request_id").and_then(Value::as_u64),
            self.current.as_mut(),
        ) && req == cur.request
        {
            cur.entry = v.pointer("/data/playlist_entry_id").and_then(Value::as_i64);
            if v.get("error").and_then(Value::as_str) != Some("success") {
                let err = v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let name = cur.name.clone();
                self.clip_over(&name, "error", Some(format!("mpv refused the clip: {err}")))
                    .await;
            }
            return;
        }
        if let Some(err) = v.get("error").and_then(Value::as_str)
            && err != "success"
        {
            warn!(target: "media", "mpv rejected a command: {err} ({line})");
            return;
        }
        match v.get("event").and_then(Value::as_str) {
            Some("file-loaded") => {
                let seek = self.current.as_mut().and_then(|c| {
                    c.loaded = true;
                    self.status.lock().loaded = true;
                    c.pending_seek.take()
                });
                if let Some(s) = seek {
                    self.send(json!(["seek", s, "absolute"])).await;
                }
                return;
            }
            Some("end-file") => {}
            _ => return,
        }
        let reason = v.get("reason").and_then(Value::as_str).unwrap_or("");
        let entry = v.get("playlist_entry_id").and_then(Value::as_i64);
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        // An entry id that is not the clip's belongs to a replaced file.
        if cur.entry.is_some() && entry.is_some() && cur.entry != entry {
            return;
        }
        let name = cur.name.clone();
        match reason {
            "eof" => self.clip_over(&name, "ended", None).await,
            "error" => {
                let detail = v
                    .get("file_error")
                    .and_then(Value::as_str)
                    .unwrap_or("playback error");
                self.clip_over(&name, "error", Some(detail.to_string()))
                    .await;
            }
            _ => {}
        }
    }

    /// The clip is over (end or error): report `videoEnd`, show idle.
    async fn clip_over(&mut self, name: &str, event: &str, detail: Option<String>) {
        self.current = None;
        match &detail {
            Some(d) => warn!(target: "media", "Video {event}: {name} ({d})"),
            None => info!(target: "media", "Video {event}: {name}"),
        }
        self.publish(event, Some(name), detail);
        self.set_status(|s| {
            s.playing = None;
            s.loaded = false;
        });
        let _ = self.ends.send(MediaEnd::Video(name.to_string()));
        self.show_idle().await;
    }

    async fn on_exit(&mut self) {
        let status = match self.mpv.as_mut() {
            Some(m) => m.child.wait().await.ok(),
            None => None,
        };
        if let Some(m) = self.mpv.take() {
            let _ = std::fs::remove_file(&m.socket);
        }
        warn!(target: "media", "Video player exited ({status:?}); it restarts with the next command");
        self.set_status(|s| {
            s.running = false;
            s.pid = None;
            s.error = Some("video player exited".into());
        });
        if let Some(c) = self.current.take() {
            self.publish("error", Some(&c.name), Some("video player exited".into()));
            let _ = self.ends.send(MediaEnd::Video(c.name));
        }
    }
}

/// The next line from mpv; pending forever when no mpv is running.
async fn next_line(mpv: &mut Option<Mpv>) -> Option<String> {
    match mpv {
        Some(m) => m.lines.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}
