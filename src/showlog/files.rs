//! The show log on disk: one record per line, `<crc32 hex> <json>\n`,
//! appended to `show.log` and rotated to `show.log.1`; torn or damaged
//! lines are ended before the next record and skipped on read.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::Record;

pub(super) struct Files {
    pub(super) path: PathBuf,
    pub(super) max_bytes: u64,
    pub(super) file: Option<File>,
    /// What this process believes the file's length is; when the file on
    /// disk differs, something else changed it (see [`Files::append`]).
    pub(super) size: u64,
    pub(super) dirty: bool,
    /// The last write that failed, and when (unix time); cleared by the
    /// next write that succeeds.
    pub(super) failing: Option<(f64, String)>,
}

impl Files {
    pub(super) fn old(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".1");
        PathBuf::from(p)
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
            self.end_torn_line()?;
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    /// A record torn by a power loss, a file cut mid-record or zeros a
    /// file system appended leave a last line without a newline: end it,
    /// so the next record starts on a line of its own.
    fn end_torn_line(&mut self) -> std::io::Result<()> {
        let f = self.file.as_ref().expect("open");
        if self.size > 0 && !ends_with_newline(&self.path)? {
            (&*f).write_all(b"\n")?;
            self.size += 1;
        }
        Ok(())
    }

    pub(super) fn append(&mut self, r: &Record) -> std::io::Result<()> {
        let json = serde_json::to_string(r).map_err(std::io::Error::other)?;
        let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
        match &self.file {
            // Cut or grown behind our back (one fstat per record): look at
            // its end again before writing onto it.
            Some(f) => {
                let now = f.metadata()?.len();
                if now != self.size {
                    self.size = now;
                    self.end_torn_line()?;
                }
            }
            // Opened first, so an oversized file is rotated before it grows.
            None => {
                self.open()?;
            }
        }
        if self.size + line.len() as u64 > self.max_bytes / 2 && self.size > 0 {
            self.rotate()?;
        }
        let f = self.open()?;
        f.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// `show.log` becomes `show.log.1`. A file over its half of the cap
    /// (junk, or written by something else) keeps only its newest half of
    /// the cap, from a line start, so both files stay under `max_bytes`.
    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        let half = self.max_bytes / 2;
        let len = std::fs::metadata(&self.path)?.len();
        if len > half {
            let tail = read_tail(&self.path, half)?;
            crate::durable::replace(&self.old(), &self.old().with_extension("1.tmp"), &tail)?;
            std::fs::remove_file(&self.path)?;
            warn!(target: "showlog", "The show log {} was {len} bytes, over its cap: kept its newest {} bytes in {}",
                self.path.display(), tail.len(), self.old().display());
        } else {
            std::fs::rename(&self.path, self.old())?;
        }
        self.size = 0;
        Ok(())
    }

    pub(super) fn sync(&mut self) {
        if self.dirty
            && let Some(f) = &self.file
        {
            let _ = f.sync_data();
            self.dirty = false;
        }
    }
}

/// The last `max` bytes of `path`, starting after a newline.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::with_capacity(max.min(len) as usize);
    f.take(max).read_to_end(&mut buf)?;
    if len > max {
        let start = buf
            .iter()
            .position(|b| *b == b'\n')
            .map_or(buf.len(), |i| i + 1);
        buf.drain(..start);
    }
    Ok(buf)
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    if f.seek(SeekFrom::End(0))? == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

/// Reads the records of one file; torn or corrupt lines are skipped.
pub(super) fn read_file(path: &Path, out: &mut Vec<Record>) {
    let Ok(f) = File::open(path) else {
        return;
    };
    for line in BufReader::new(f).split(b'\n') {
        let Ok(line) = line else { break };
        let Some(rec) = parse_line(&line) else {
            continue;
        };
        out.push(rec);
    }
}

fn parse_line(line: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(line).ok()?;
    let (crc, json) = text.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}
