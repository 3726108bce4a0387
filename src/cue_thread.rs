//! The cue thread: a runtime of its own for what puts a cue on the wire —
//! the running scene's timer and the MQTT connections that publish its
//! commands, with the router beside them (a message then reaches it
//! without waking another thread) — so that the rest of the daemon
//! (dashboard requests and event streams, reloads, the show log's disk
//! writes, media) never stands between a cue's deadline and its packet.
//!
//! The thread asks Linux for `SCHED_FIFO` at [`PRIORITY`] for itself only:
//! the web server, the event streams and everything else on the main
//! runtime keep normal scheduling, so nothing a browser does can starve
//! the machine. That needs `CAP_SYS_NICE` or `LimitRTPRIO=` in the systemd
//! unit (the packaged unit sets it, docs/performance.md); without it the
//! thread runs at normal priority and says so once. `ROOMCTL_CUE_THREAD`
//! chooses: `realtime` (the default), `normal` (the thread without the
//! request) or `off` (no cue thread: everything on the main runtime, as
//! before it existed; for comparison in `cargo bench`).

use std::cell::Cell;
use std::fmt;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tracing::{info, warn};

/// The real-time priority asked for: low among real-time priorities, where
/// audio servers sit, far below the kernel's threaded interrupt handlers
/// (50).
pub const PRIORITY: u8 = 10;

thread_local! {
    static ON_CUE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs on the cue thread (where a short blocking
/// sleep to a cue's exact deadline delays nothing but other cues' I/O).
pub fn on_cue_thread() -> bool {
    ON_CUE_THREAD.with(Cell::get)
}

/// How the cue thread is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduling {
    /// `SCHED_FIFO` at this priority.
    Realtime(u8),
    /// Normal scheduling, and why.
    Normal(String),
}

impl fmt::Display for Scheduling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheduling::Realtime(p) => write!(f, "SCHED_FIFO {p}"),
            Scheduling::Normal(why) => write!(f, "normal priority ({why})"),
        }
    }
}

/// The running cue thread; dropping it stops the thread after everything
/// spawned on it finished or was dropped.
pub struct CueThread {
    handle: Handle,
    scheduling: Scheduling,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CueThread {
    /// Starts the thread and its runtime; `realtime` asks for
    /// `SCHED_FIFO` (see the module doc).
    pub fn start(realtime: bool) -> std::io::Result<CueThread> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("roomctl-cues")
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (told, scheduled) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("roomctl-cues".into())
            .spawn(move || {
                ON_CUE_THREAD.with(|c| c.set(true));
                let _ = told.send(schedule(realtime));
                // Until the owner drops the CueThread: the tasks on it
                // (the MQTT connections' last flush) finish first.
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
            })?;
        let scheduling = scheduled
            .recv()
            .unwrap_or_else(|_| Scheduling::Normal("the thread did not start".into()));
        match &scheduling {
            Scheduling::Realtime(_) => {
                info!(target: "daemon", "Cue thread at {scheduling}")
            }
            Scheduling::Normal(_) => {
                warn!(target: "daemon", "Cue thread at {scheduling}: cues may be late while the machine is busy (docs/performance.md)")
            }
        }
        Ok(CueThread {
            handle,
            scheduling,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where to spawn what must run on the cue thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// How the thread is scheduled.
    pub fn scheduling(&self) -> &Scheduling {
        &self.scheduling
    }
}

impl Drop for CueThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks for `SCHED_FIFO` for the calling thread when `realtime`.
fn schedule(realtime: bool) -> Scheduling {
    if !realtime {
        return Scheduling::Normal("ROOMCTL_CUE_THREAD=normal".into());
    }
    realtime_now()
}

#[cfg(target_os = "linux")]
fn realtime_now() -> Scheduling {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let Ok(value) = ThreadPriorityValue::try_from(PRIORITY) else {
        return Scheduling::Normal("no such priority".into());
    };
    match set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    ) {
        Ok(()) => Scheduling::Realtime(PRIORITY),
        Err(e) => Scheduling::Normal(format!(
            "SCHED_FIFO refused: {e:?}; the unit's LimitRTPRIO= allows it"
        )),
    }
}

#[cfg(not(target_os = "linux"))]
fn realtime_now() -> Scheduling {
    Scheduling::Normal("real-time scheduling is set up on Linux only".into())
}

/// What `ROOMCTL_CUE_THREAD` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A cue thread at `SCHED_FIFO` if allowed (the default).
    Realtime,
    /// A cue thread at normal priority.
    Normal,
    /// No cue thread.
    Off,
}

impl Wanted {
    /// `ROOMCTL_CUE_THREAD` read: `realtime`, `normal` or `off`; unset is
    /// `realtime`; anything else is an error that names the three.
    pub fn from_env() -> Result<Wanted, String> {
        match std::env::var("ROOMCTL_CUE_THREAD") {
            Err(_) => Ok(Wanted::Realtime),
            Ok(v) => Self::parse(&v),
        }
    }

    fn parse(v: &str) -> Result<Wanted, String> {
        match v.trim() {
            "" | "realtime" => Ok(Wanted::Realtime),
            "normal" => Ok(Wanted::Normal),
            "off" => Ok(Wanted::Off),
            other => Err(format!(
                "ROOMCTL_CUE_THREAD must be realtime, normal or off, not `{other}`"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_spawned_on_the_thread_runs_there_and_the_caller_is_not_it() {
        let t = CueThread::start(false).unwrap();
        assert_eq!(
            t.scheduling(),
            &Scheduling::Normal("ROOMCTL_CUE_THREAD=normal".into())
        );
        assert!(!on_cue_thread());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (on, name) = rt
            .block_on(t.handle().spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                (
                    on_cue_thread(),
                    std::thread::current().name().map(str::to_string),
                )
            }))
            .unwrap();
        assert!(on);
        assert_eq!(name.as_deref(), Some("roomctl-cues"));
        drop(t);
    }

    #[test]
    fn the_switch_names_its_three_values() {
        assert_eq!(Wanted::parse("realtime"), Ok(Wanted::Realtime));
        assert_eq!(Wanted::parse(""), Ok(Wanted::Realtime));
        assert_eq!(Wanted::parse(" normal "), Ok(Wanted::Normal));
        assert_eq!(Wanted::parse("off"), Ok(Wanted::Off));
        let e = Wanted::parse("fast").unwrap_err();
        assert_eq!(
            e,
            "ROOMCTL_CUE_THREAD must be realtime, normal or off, not `fast`"
        );
    }
}
