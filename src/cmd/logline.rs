//! One log record, one line: every control character a record carries
//! (a newline or NUL inside a topic, a payload, a scene name from the
//! network or a file) is written escaped (`\n`, `\x00`), so nobody can forge
//! a log line or make `grep` call the journal binary. Colours are used only
//! on a terminal, and only there is ESC let through.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Standard error, one line per record.
#[derive(Debug, Clone, Copy)]
pub struct OneLineStderr {
    /// Colours are on: ESC belongs to them.
    pub ansi: bool,
}

impl<'a> MakeWriter<'a> for OneLineStderr {
    type Writer = OneLine<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine {
            inner: io::stderr().lock(),
            ansi: self.ansi,
        }
    }
}

/// Escapes what `inner` is given (one formatted record per write).
pub struct OneLine<W> {
    inner: W,
    ansi: bool,
}

impl<W> OneLine<W> {
    /// `inner`, with colours' ESC let through when `ansi`.
    pub fn new(inner: W, ansi: bool) -> Self {
        OneLine { inner, ansi }
    }
}

fn escaped(b: u8, ansi: bool) -> bool {
    (b < 0x20 && b != b'\t' && !(ansi && b == 0x1b)) || b == 0x7f
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(b) => (b, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|&b| escaped(b, self.ansi)) {
            return self.inner.write_all(buf);
        }
        let mut out = Vec::with_capacity(buf.len() + 16);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b if escaped(b, self.ansi) => {
                    out.extend_from_slice(format!("\\x{b:02x}").as_bytes())
                }
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.inner.write_all(&out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &str, ansi: bool) -> String {
        let mut w = OneLine::new(Vec::new(), ansi);
        w.write_all(input.as_bytes()).unwrap();
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn a_record_stays_one_line() {
        let forged = "WARN no command `nope\n2099-01-01T00:00:00Z  INFO web: FORGED`\n";
        assert_eq!(
            line(forged, false),
            "WARN no command `nope\\n2099-01-01T00:00:00Z  INFO web: FORGED`\n"
        );
        assert_eq!(
            line("send a = \"\0x\r\"\n", false),
            "send a = \"\\x00x\\r\"\n"
        );
        assert_eq!(line("plain, é, \ttab\n", false), "plain, é, \ttab\n");
        assert_eq!(line("\x1b[31mred\x1b[0m\n", true), "\x1b[31mred\x1b[0m\n");
        assert_eq!(line("\x1b[31mred\n", false), "\\x1b[31mred\n");
    }
}
