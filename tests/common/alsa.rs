//! A real ALSA device with no sound card, for tests: a HOME whose
//! `.asoundrc` makes the default device an ALSA `file` plugin writing raw
//! samples into a FIFO, read back at the device's real byte rate (the
//! `null` slave alone would run ~90x faster than real time).
//!
//! ALSA reads `~/.asoundrc` once per process, so HOME must be set before
//! anything touches audio: a test re-executes the test binary with its own
//! HOME ([`in_a_fresh_process`]) and runs its playback there, alone.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Set in the re-executed process.
const CHILD: &str = "ROOMCTL_ALSA_CHILD";

/// Runs the `#[ignore]`d test `name` (its full path) in a fresh test
/// process whose HOME is a new directory, and fails with its output when
/// it fails or did not run.
pub fn in_a_fresh_process(name: &str) {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOME", home.path())
        .env(CHILD, "1")
        .output()
        .expect("re-executing the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
}

/// Whether this process is one [`in_a_fresh_process`] started (the
/// ignored test does nothing when run by hand).
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// The HOME the parent gave this process.
pub fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
}

/// Makes the default ALSA device a file sink into a FIFO under HOME, and
/// reads it.
pub fn file_sink() -> Capture {
    let home = home();
    let fifo = home.join("out.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        home.join(".asoundrc"),
        format!(
            "pcm.!default {{ type file; slave.pcm \"null\"; file \"{}\"; format \"raw\" }}\n",
            fifo.display()
        ),
    )
    .unwrap();
    Capture::start(fifo)
}

/// Everything the device wrote, read at the device's own pace.
pub struct Capture {
    data: Arc<Mutex<Vec<u8>>>,
    /// The device's bytes per second, once known: reading is paced to it.
    pub rate: Arc<AtomicU64>,
}

impl Capture {
    fn start(fifo: PathBuf) -> Capture {
        let data = Arc::new(Mutex::new(Vec::new()));
        let rate = Arc::new(AtomicU64::new(0));
        let (d, r) = (data.clone(), rate.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(&fifo).unwrap();
            let mut buf = vec![0u8; 4096];
            let mut paced: Option<(Instant, u64)> = None;
            loop {
                let n = match f.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                d.lock().unwrap().extend_from_slice(&buf[..n]);
                let bps = r.load(Ordering::Relaxed);
                if bps > 0 {
                    let (t0, total) = paced.get_or_insert((Instant::now(), 0));
                    *total += n as u64;
                    let due = *t0 + Duration::from_secs_f64(*total as f64 / bps as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        });
        Capture { data, rate }
    }

    pub fn len(&self) -> usize {
        self.data.lock().unwrap().len()
    }

    /// Peak absolute sample value (f32 output) in `from..`.
    pub fn peak_since(&self, from: usize) -> f32 {
        self.peak_between(from, usize::MAX)
    }

    /// Peak absolute sample value in `from..to`.
    pub fn peak_between(&self, from: usize, to: usize) -> f32 {
        let d = self.data.lock().unwrap();
        let start = (from - from % 4).min(d.len());
        let end = to.min(d.len()).max(start);
        d[start..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).abs())
            .fold(0.0, f32::max)
    }
}

impl Capture {
    /// What was written so far.
    pub fn data(&self) -> MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap()
    }
}
