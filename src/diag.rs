//! Diagnostics with source positions: the `file:line:col: message` lines that
//! `roomctl check` prints and that every loader returns instead of panicking.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

/// One problem found in a file the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub col: u32,
    /// What is wrong, in words.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `pos` in `file`.
    pub fn new(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            file: normalize(file),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }

    /// A problem with the whole file (unreadable, missing).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, Pos::UNKNOWN, message)
    }

    /// Where `bytes` stop being UTF-8 (`valid_up_to`), as a diagnostic.
    pub fn not_utf8(file: &Path, bytes: &[u8], valid_up_to: usize) -> Self {
        let before = &bytes[..valid_up_to.min(bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        let pos = Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        };
        Self::new(file, pos, "is not UTF-8 text (save it as UTF-8)")
    }

    /// Turns a parser error into a diagnostic, keeping its position.
    pub fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let pos = err.location().map(Pos::from).unwrap_or(Pos::UNKNOWN);
        let text = err.without_snippet().to_string();
        Self::new(file, pos, in_words(&strip_position_suffix(&text)))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// The text of `file`, or why it cannot be had: `cannot read {what}: …`,
/// or the position where it stops being UTF-8.
pub fn read_text(file: &Path, what: &str) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(file)
        .map_err(|e| Diagnostic::file(file, format!("cannot read {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let up_to = e.utf8_error().valid_up_to();
        Diagnostic::not_utf8(file, e.as_bytes(), up_to)
    })
}

/// A list of diagnostics, shown one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Each one, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
    /// `Ok(value)` when nothing was reported.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Pos {
    /// No position known.
    pub const UNKNOWN: Pos = Pos { line: 0, col: 0 };

    /// Where a spanned value was written.
    pub fn of<T>(s: &Spanned<T>) -> Pos {
        Pos::from(s.referenced)
    }
}

impl From<Location> for Pos {
    fn from(l: Location) -> Self {
        Pos {
            line: u32::try_from(l.line()).unwrap_or(u32::MAX),
            col: u32::try_from(l.column()).unwrap_or(u32::MAX),
        }
    }
}

/// A path without `.` and with `..` applied (`/etc/roomctl/../scenes` is
/// `/etc/scenes`), as a person would write it. Purely textual.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// `p` absolute (from the working directory) and [`normalize`]d: a folder
/// as a person finds it, and one spelling of a path to compare.
pub fn absolute(p: &Path) -> PathBuf {
    normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// The YAML library's messages, said for a person editing the file.
fn in_words(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest)
            .trim();
        return format!("key `{key}` appears twice in this mapping; keep one");
    }
    if let Some(rest) = text.strip_prefix("budget breached: Nodes { nodes: ") {
        let n = rest
            .split(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .map_or("too many".into(), |n| format!("more than {}", n - 1));
        return format!(
            "the file expands to {n} YAML nodes (aliases repeated inside aliases?): far more than any scene; it is not read"
        );
    }
    if let Some(rest) = text.strip_prefix("budget breached: ") {
        let what = rest.split(" at line").next().unwrap_or(rest);
        return format!("the file is beyond what is read ({what}): it is not read");
    }
    if text == "recursion limit exceeded" {
        return "nested too deep (lists or maps inside each other): a scene needs a few levels; it is not read".into();
    }
    if text == "invalid u16" || text == "invalid u32" || text == "invalid i64" {
        return "a whole number is needed here".into();
    }
    text.to_string()
}

/// serde-saphyr appends " at line N, column M" to its plain message; the
/// position is printed in front instead.
fn strip_position_suffix(text: &str) -> String {
    if let Some(idx) = text.rfind(" at line ") {
        let tail = &text[idx + " at line ".len()..];
        let looks_like_pos = tail
            .split_once(", column ")
            .is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.trim().parse::<u64>().is_ok());
        if looks_like_pos {
            return text[..idx].to_string();
        }
    }
    text.to_string()
}

/// The candidate `word` most likely meant (within two edits, or differing
/// only in case), for "did you mean" hints; none when nothing is close.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = if c.to_lowercase() == lower {
                0
            } else {
                strsim::levenshtein(&lower, &c.to_lowercase())
            };
            (d, c)
        })
        .filter(|(d, _)| {
            // Short words are close to too much: `b` is one edit from `a`.
            let allowed = match lower.chars().count() {
                0..=2 => 0,
                3..=5 => 1,
                _ => 2,
            };
            *d <= allowed
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `: did you mean `x`?` when something is close, else nothing.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    suggest(word, candidates)
        .map(|s| format!(": did you mean `{s}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_and_without_position() {
        let d = Diagnostic::new(Path::new("a.yaml"), Pos { line: 3, col: 5 }, "bad");
        assert_eq!(d.to_string(), "a.yaml:3:5: bad");
        let d = Diagnostic::file(Path::new("a.yaml"), "missing");
        assert_eq!(d.to_string(), "a.yaml: missing");
    }

    #[test]
    fn parser_errors_keep_their_position_once() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let err = serde_saphyr::from_str::<T>("a: 1\nb: 2\n").unwrap_err();
        let d = Diagnostic::from_yaml(Path::new("x.yaml"), &err);
        assert_eq!(d.line, 2);
        assert_eq!(d.col, 1);
        assert!(d.message.starts_with("unknown field `b`"), "{}", d.message);
        assert!(!d.message.contains("at line"), "{}", d.message);
    }
}
