//! Media on the Pi: the command grammar (`command`), the audio player (one
//! rodio thread, `audio`) and the video player (mpv over IPC, `video`).
//! [`MediaHandle`] is what scenes talk to; `probe` asks mpv how long a
//! clip is; `library` keeps the files (list, add, remove).

pub mod alsa_quiet;
pub mod audio;
pub mod command;
pub mod library;
pub mod probe;
pub mod video;

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use audio::{AudioPlayer, AudioStatus};
pub use command::{AudioCommand, CommandError, VideoCommand, resolve_media, same_media};
pub use video::{VideoPlayer, VideoSettings, VideoStatus};

use crate::config::MediaConfig;
use crate::events::EventBus;
pub use crate::events::MediaEvent;

/// A sound or clip reached its end (drives `audioEnd` / `videoEnd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEnd {
    /// A sound ended (file as resolved).
    Audio(String),
    /// A clip ended (file as resolved).
    Video(String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
/// Both players, for the API.
pub struct MediaStatus {
    /// The audio player.
    pub audio: AudioStatus,
    /// The video player.
    pub video: VideoStatus,
}

/// Both players. Cheap to clone.
#[derive(Clone)]
pub struct MediaHandle {
    audio: AudioPlayer,
    video: VideoPlayer,
    fade: Duration,
}

impl MediaHandle {
    /// Starts the audio thread and the video task. End events arrive on the
    /// returned channel.
    pub fn start(
        cfg: &MediaConfig,
        events: EventBus,
        cancel: CancellationToken,
        tasks: &TaskTracker,
    ) -> (MediaHandle, mpsc::UnboundedReceiver<MediaEnd>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let audio = AudioPlayer::start(
            cfg.audio_dir().to_path_buf(),
            cfg.audio_enabled,
            events.clone(),
            tx.clone(),
        );
        let video = VideoPlayer::start(
            VideoSettings {
                dir: cfg.video_dir().to_path_buf(),
                command: cfg.video_player.clone(),
                idle_image: cfg.idle_image.clone(),
                enabled: cfg.video_enabled,
                restart_delay: Duration::from_secs(5),
            },
            events,
            tx,
            cancel.clone(),
            tasks,
        );
        let a = audio.clone();
        tasks.spawn(async move {
            cancel.cancelled().await;
            a.shutdown();
        });
        (
            MediaHandle {
                audio,
                video,
                fade: cfg.audio_fade,
            },
            rx,
        )
    }

    /// Sends a command to the audio player.
    pub fn audio(&self, c: AudioCommand) {
        self.audio.command(c);
    }

    /// Sends a command to the video player.
    pub fn video(&self, c: VideoCommand) {
        self.video.command(c);
    }

    /// End of scene: audio fades out, video returns to the idle image.
    pub fn all_off(&self) {
        self.audio.fade_out_all(self.fade);
        self.video.command(VideoCommand::Stop);
    }

    /// Both players' status.
    pub fn status(&self) -> MediaStatus {
        MediaStatus {
            audio: self.audio.status(),
            video: self.video.status(),
        }
    }
}
