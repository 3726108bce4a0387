//! Changes to one node of a text, written the way the text around it is
//! written: a value set keeps its quotes, an item or entry added copies
//! the separators, indentation and layout of its neighbours (JSON stays
//! JSON, a block list stays a block list), one removed takes its comma or
//! its lines with it. Everything else is left byte for byte.

use granit_parser::ScalarStyle;

use super::edit::EditError;
use super::tree::{Kind, Node};

/// A value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Entries in the order they are written.
    Map(Vec<(String, Val)>),
    Seq(Vec<Val>),
}

impl Val {
    /// A mapping from `(key, value)` pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Val)>) -> Val {
        Val::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Whether it is written on one line wherever it goes (a scalar, or
    /// a collection of scalars: a cue, a transition).
    fn is_leaf(&self) -> bool {
        match self {
            Val::Map(e) => e.iter().all(|(_, v)| v.is_scalar()),
            Val::Seq(s) => s.is_empty() || s.iter().all(Val::is_scalar),
            _ => true,
        }
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Val::Map(_) | Val::Seq(_))
    }
}

/// Bytes `from..to` of a text become `with`.
#[derive(Debug, Clone, PartialEq)]
pub struct Splice {
    pub from: usize,
    pub to: usize,
    pub with: String,
}

impl Splice {
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + self.with.len());
        out.push_str(&text[..self.from]);
        out.push_str(&self.with);
        out.push_str(&text[self.to..]);
        out
    }
}

/// Scalar `node` set to `v`, in its own quoting.
pub fn set(text: &str, node: &Node, v: &Val, json: bool) -> Result<Splice, EditError> {
    let Kind::Scalar { style, .. } = &node.kind else {
        return Err(EditError("that value is a list or a mapping".into()));
    };
    let with = match v {
        Val::Num(n) if text[node.start..node.end].contains('.') && n.fract() == 0.0 => {
            format!("{n:.1}")
        }
        Val::Str(s) if !json && *style == ScalarStyle::SingleQuoted => {
            format!("'{}'", s.replace('\'', "''"))
        }
        Val::Str(s) if !json && *style != ScalarStyle::Plain => quoted(s),
        _ => inline(v, json, &Like::default()),
    };
    Ok(Splice {
        from: node.start,
        to: node.end,
        with,
    })
}

/// Element `index` (an item, or a mapping's entry) of `list` removed.
pub fn remove(text: &str, list: &Node, index: usize) -> Result<Splice, EditError> {
    let spans = spans(list);
    let Some(&(start, end)) = spans.get(index) else {
        return Err(EditError("there is no such item".into()));
    };
    if list.is_flow() {
        let (from, to) = if spans.len() == 1 {
            (list.start + 1, list.end - 1)
        } else if index == 0 {
            (start, spans[1].0)
        } else {
            (spans[index - 1].1, end)
        };
        return Ok(Splice {
            from,
            to,
            with: String::new(),
        });
    }
    let first = indicator(text, list, start);
    if spans.len() == 1 {
        // A block collection cannot be empty: it becomes `[]` or `{}`.
        let empty = if list.is_map() { "{}" } else { "[]" };
        return Ok(Splice {
            from: first,
            to: end,
            with: empty.into(),
        });
    }
    let from = line_start(text, first);
    if !text[from..first].trim().is_empty() && index + 1 < spans.len() {
        // The first key of an item shares its line with the item's `- `:
        // the next key moves up to it.
        return Ok(Splice {
            from: first,
            to: spans[index + 1].0,
            with: String::new(),
        });
    }
    Ok(Splice {
        from,
        to: after_line(text, end),
        with: String::new(),
    })
}

/// `v` (with `key` in a mapping) put at `index` of `list`, written like
/// its neighbours. `lines` says how an empty flow `list` is opened: on
/// lines of its own (JSON written one key a line) or inline.
pub fn insert(
    text: &str,
    list: &Node,
    index: usize,
    key: Option<&str>,
    v: &Val,
    json: bool,
) -> Result<Splice, EditError> {
    if list.is_map() != key.is_some() {
        return Err(EditError("a mapping takes a key, a list does not".into()));
    }
    if matches!(list.kind, Kind::Scalar { .. }) {
        return Err(EditError("that is not a list or a mapping".into()));
    }
    let spans = spans(list);
    let index = index.min(spans.len());
    if spans.is_empty() {
        if !list.is_flow() {
            return Err(EditError(
                "an empty block collection cannot be written to".into(),
            ));
        }
        return Ok(into_empty(text, list, key, v, json));
    }
    let near = index.saturating_sub(1).min(spans.len() - 1);
    let like = Like::of(text, list, near);
    if list.is_flow() {
        let sep = separator(text, list, &spans);
        // A mapping written one entry a line gets a list or mapping
        // value on lines of its own, whatever its neighbour's value is.
        let spread = like.lines || (list.is_map() && sep.contains('\n'));
        let new = element(key, v, json, &like, spread);
        let (at, with) = if index == 0 {
            (spans[0].0, format!("{new}{sep}"))
        } else {
            (spans[index - 1].1, format!("{sep}{new}"))
        };
        return Ok(Splice {
            from: at,
            to: at,
            with,
        });
    }
    let indent = like.indent.clone();
    let body = match key {
        Some(k) => format!("{}:{}", plain_or_quoted(k), block_value(v, &indent)),
        None => format!("- {}", block_item(v, &indent, &like)),
    };
    let at = if index == 0 {
        line_start(text, indicator(text, list, spans[0].0))
    } else {
        after_line(text, spans[index - 1].1)
    };
    let newline = if at == text.len() && !text.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    Ok(Splice {
        from: at,
        to: at,
        with: format!("{newline}{indent}{body}\n"),
    })
}

/// How the neighbour of a new element is written.
#[derive(Debug, Default, Clone)]
struct Like {
    /// The whitespace its line starts with (up to its `-` or key).
    indent: String,
    /// Between its key and its value, for an entry (`: `).
    colon: Option<String>,
    /// Between a key and its value inside a mapping like it.
    inner_colon: Option<String>,
    /// What a flow mapping like it writes after `{` and before `}`.
    pad: Option<String>,
    /// Between the entries of a flow mapping like it.
    comma: Option<String>,
    /// Whether the neighbour spans lines.
    lines: bool,
    /// Whether it is a block mapping (a YAML `- at: 1` item).
    block_map: bool,
    /// The column of a block mapping item's keys, past its `- `.
    key_indent: Option<String>,
}

impl Like {
    fn of(text: &str, list: &Node, i: usize) -> Like {
        let (start, end) = spans(list)[i];
        let first = if list.is_flow() {
            start
        } else {
            indicator(text, list, start)
        };
        let indent = text[line_start(text, first)..first]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let value = match &list.kind {
            Kind::Map { entries, .. } => &entries[i].1,
            _ => &list.items()[i],
        };
        let mut like = Like {
            indent,
            lines: text[start..end].contains('\n'),
            ..Like::default()
        };
        if let Kind::Map { entries, .. } = &list.kind {
            like.colon = Some(text[entries[i].0.end..entries[i].1.start].to_string());
        }
        if let Kind::Map { flow, entries } = &value.kind {
            if let Some((k, v)) = entries.first() {
                like.inner_colon = Some(text[k.end..v.start].into());
                if *flow {
                    like.pad = Some(text[value.start + 1..k.start].into());
                    like.comma = entries
                        .windows(2)
                        .last()
                        .map(|w| text[w[0].1.end..w[1].0.start].to_string());
                } else {
                    like.block_map = true;
                    like.key_indent = Some(" ".repeat(char_col(text, k.start)));
                }
            }
        }
        like
    }
}

/// The bytes of each element: an item, or a key to the end of its value.
fn spans(list: &Node) -> Vec<(usize, usize)> {
    match &list.kind {
        Kind::Seq { items, .. } => items.iter().map(|n| (n.start, n.end)).collect(),
        Kind::Map { entries, .. } => entries.iter().map(|(k, v)| (k.start, v.end)).collect(),
        Kind::Scalar { .. } => Vec::new(),
    }
}

/// Where a block element is introduced: its `- ` for an item, its key.
fn indicator(text: &str, list: &Node, start: usize) -> usize {
    if list.is_map() {
        return start;
    }
    let before = text[..start].trim_end_matches([' ', '\t']);
    if before.ends_with('-') {
        before.len() - 1
    } else {
        start
    }
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The start of the line after the one `at` is on.
fn after_line(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

fn char_col(text: &str, at: usize) -> usize {
    text[line_start(text, at)..at].chars().count()
}

/// What goes between two elements of a flow list: its last separator, or
/// for one element a comma and the whitespace its first element has.
fn separator(text: &str, list: &Node, spans: &[(usize, usize)]) -> String {
    if spans.len() >= 2 {
        let n = spans.len();
        return text[spans[n - 2].1..spans[n - 1].0].to_string();
    }
    let open = &text[list.start + 1..spans[0].0];
    if open.contains('\n') {
        format!(",{open}")
    } else {
        ", ".into()
    }
}

/// One new element of a flow list.
fn element(key: Option<&str>, v: &Val, json: bool, like: &Like, spread: bool) -> String {
    let value = if spread && !v.is_leaf() {
        lines(v, json, &like.indent)
    } else {
        inline(v, json, like)
    };
    match key {
        Some(k) => {
            let colon = like.colon.as_deref().unwrap_or(": ");
            format!("{}{colon}{value}", key_text(k, json))
        }
        None => value,
    }
}

/// The first element of an empty flow list: inline, or on lines of its
/// own when the text around it is written one entry a line.
fn into_empty(text: &str, list: &Node, key: Option<&str>, v: &Val, json: bool) -> Splice {
    let line = &text[line_start(text, list.start)..list.start];
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    let own_lines = json && text[..list.start].contains('\n') && !line.trim().is_empty();
    let value = if own_lines && !v.is_leaf() {
        lines(v, json, &format!("{indent}  "))
    } else {
        inline(v, json, &Like::default())
    };
    let new = match key {
        Some(k) => format!("{}: {value}", key_text(k, json)),
        None => value,
    };
    let with = if own_lines {
        format!("\n{indent}  {new}\n{indent}")
    } else {
        new
    };
    Splice {
        from: list.start + 1,
        to: list.end - 1,
        with,
    }
}

/// `v` on one line.
fn inline(v: &Val, json: bool, like: &Like) -> String {
    match v {
        Val::Str(s) if json => quoted(s),
        Val::Str(s) => plain_or_quoted(s),
        Val::Num(n) => n.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Seq(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|i| inline(i, json, &Like::default()))
                .collect();
            format!("[{}]", inner.join(", "))
        }
        Val::Map(entries) => {
            if entries.is_empty() {
                return "{}".into();
            }
            let pad = like.pad.as_deref().unwrap_or(if json { "" } else { " " });
            let colon = like.inner_colon.as_deref().unwrap_or(": ");
            let comma = like.comma.as_deref().unwrap_or(", ");
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let v = inline(v, json, &Like::default());
                    format!("{}{colon}{v}", key_text(k, json))
                })
                .collect();
            let close: String = pad.chars().rev().collect();
            format!("{{{pad}{}{close}}}", inner.join(comma))
        }
    }
}

/// `v` as a flow collection written one element a line, its closing
/// bracket at `indent` and its elements two spaces in.
fn lines(v: &Val, json: bool, indent: &str) -> String {
    let inner = format!("{indent}  ");
    let (open, close, parts): (char, char, Vec<String>) = match v {
        Val::Map(entries) if !entries.is_empty() => (
            '{',
            '}',
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", key_text(k, json), nested(v, json, &inner)))
                .collect(),
        ),
        Val::Seq(items) if !items.is_empty() => (
            '[',
            ']',
            items.iter().map(|v| nested(v, json, &inner)).collect(),
        ),
        _ => return inline(v, json, &Like::default()),
    };
    format!(
        "{open}\n{inner}{}\n{indent}{close}",
        parts.join(&format!(",\n{inner}"))
    )
}

fn nested(v: &Val, json: bool, indent: &str) -> String {
    if v.is_leaf() && !matches!(v, Val::Seq(s) if !s.is_empty()) {
        inline(v, json, &Like::default())
    } else {
        lines(v, json, indent)
    }
}

/// A block mapping's value after `key:` at `indent`.
fn block_value(v: &Val, indent: &str) -> String {
    match v {
        Val::Seq(items) if !items.is_empty() => {
            let mut out = String::new();
            for i in items {
                let item = block_item(i, indent, &Like::default());
                out.push_str(&format!("\n{indent}  - {item}"));
            }
            out
        }
        Val::Map(entries) if !entries.is_empty() => {
            let inner = format!("{indent}  ");
            let mut out = String::new();
            for (k, v) in entries {
                let v = block_value(v, &inner);
                out.push_str(&format!("\n{inner}{}:{v}", plain_or_quoted(k)));
            }
            out
        }
        _ => format!(" {}", inline(v, false, &Like::default())),
    }
}

/// A block list's item after its `- ` at `indent`: a block mapping when
/// its neighbour is one, else on one line.
fn block_item(v: &Val, indent: &str, like: &Like) -> String {
    match v {
        Val::Map(entries) if like.block_map && !entries.is_empty() => {
            let keys = like
                .key_indent
                .clone()
                .unwrap_or_else(|| format!("{indent}  "));
            let colon = like.inner_colon.as_deref().unwrap_or(": ");
            entries
                .iter()
                .map(|(k, v)| {
                    let v = inline(v, false, &Like::default());
                    format!("{}{colon}{v}", plain_or_quoted(k))
                })
                .collect::<Vec<_>>()
                .join(&format!("\n{keys}"))
        }
        _ => inline(v, false, like),
    }
}

fn key_text(k: &str, json: bool) -> String {
    if json { quoted(k) } else { plain_or_quoted(k) }
}

/// A string in double quotes, escaped as JSON (which YAML reads too).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// A YAML string plain when nothing in it could be read another way
/// (a number, a boolean, null, an indicator), else quoted.
fn plain_or_quoted(s: &str) -> String {
    let safe = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if safe { s.to_string() } else { quoted(s) }
}

#[cfg(test)]
#[path = "splice/tests.rs"]
mod tests;
