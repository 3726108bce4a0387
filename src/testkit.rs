//! Test fixtures for roomctl's own tests and benches: a sine-tone WAV and
//! an action sink that records what it is told. Compiled for unit tests
//! and with the `testkit` feature (enabled only by the crate's
//! dev-dependency on itself), never into the shipped binary.

use parking_lot::Mutex;

use crate::scene::{Action, ActionSink};

/// Records `topic=message` per action and `ALL_OFF(scene)` per all-off.
#[derive(Default)]
pub struct RecordingSink(pub Mutex<Vec<String>>);

impl RecordingSink {
    /// Everything recorded, in order.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

impl ActionSink for RecordingSink {
    fn execute(&self, _scene: &str, a: &Action) {
        self.0.lock().push(format!("{}={}", a.topic, a.message));
    }
    fn all_off(&self, scene: Option<&str>) {
        self.0
            .lock()
            .push(format!("ALL_OFF({})", scene.unwrap_or("-")));
    }
}

/// A mono 16-bit PCM WAV of a sine tone, `secs` long.
pub fn sine_wav(secs: f32, freq: f32, amp: f32) -> Vec<u8> {
    const RATE: u32 = 16_000;
    let n = (secs * RATE as f32) as u32;
    let mut w = Vec::with_capacity(44 + n as usize * 2);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + n * 2).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&RATE.to_le_bytes());
    w.extend_from_slice(&(RATE * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let t = i as f32 / RATE as f32;
        let v = (amp * (2.0 * std::f32::consts::PI * freq * t).sin() * 32767.0) as i16;
        w.extend_from_slice(&v.to_le_bytes());
    }
    w
}

/// The origin tests act as: `roomctl play`, in this process.
pub fn cli() -> crate::origin::Origin {
    crate::origin::Origin::Cli { command: "play" }
}
