//! Media on the Pi: the command grammar, the audio player (one rodio thread)
//! and the video player (mpv driven over its IPC socket).

pub mod command;

use serde::Serialize;

pub use command::{AudioCommand, VideoCommand, resolve_media, same_media};

/// Media lifecycle, for the event bus.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MediaEvent {
    /// `audio` or `video`.
    pub kind: String,
    /// `started`, `ended`, `stopped`, `error`.
    pub event: String,
    pub file: Option<String>,
    pub detail: Option<String>,
}
