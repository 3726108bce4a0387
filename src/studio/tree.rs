//! A scene's text as a tree of nodes that know the bytes they are written
//! on, read from the events of the YAML parser serde-saphyr uses (JSON is
//! read the same way), so the studio's direct edits can change one cue,
//! state or transition in the text itself and leave every other byte,
//! comment and key order as the author wrote it.

use granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use super::edit::EditError;

/// At most this many parser events: what the scene loader's node budget
/// allows, so a text the loader refuses is refused here too.
const MAX_EVENTS: usize = 200_000;

/// One node and the bytes `start..end` it is written on. A flow
/// collection spans its brackets; a block one, its first child to its
/// last.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
    },
    Map {
        flow: bool,
        entries: Vec<(Node, Node)>,
    },
}

impl Node {
    /// The value of `key`, for a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    /// A mapping's entries (none for other nodes).
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            Kind::Map { entries, .. } => entries,
            _ => &[],
        }
    }

    /// A sequence's items (none for other nodes).
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq { items, .. } => items,
            _ => &[],
        }
    }

    /// A scalar's value.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Whether it is a flow (`[...]`, `{...}`) collection.
    pub fn is_flow(&self) -> bool {
        matches!(
            self.kind,
            Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. }
        )
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, Kind::Map { .. })
    }

    /// The items of sequences, from the outermost in, that lead to the
    /// innermost mapping written over byte `at`: `(sequence, index)`.
    pub fn items_over(&self, at: usize) -> Vec<(&Node, usize)> {
        let mut out = Vec::new();
        let mut node = self;
        loop {
            let next = match &node.kind {
                Kind::Scalar { .. } => None,
                Kind::Seq { items, .. } => items.iter().enumerate().find_map(|(i, n)| {
                    n.covers(at).then(|| {
                        if n.is_map() {
                            out.push((node, i));
                        }
                        n
                    })
                }),
                Kind::Map { entries, .. } => entries.iter().map(|(_, v)| v).find(|v| v.covers(at)),
            };
            match next {
                Some(n) => node = n,
                None => return out,
            }
        }
    }

    fn covers(&self, at: usize) -> bool {
        self.start <= at && at < self.end.max(self.start + 1)
    }
}

/// A node still being read.
enum Open {
    Seq(bool, usize, Vec<Node>),
    Map(bool, usize, Vec<(Node, Node)>, Option<Node>),
}

/// The tree of `text`'s first document.
pub fn parse(text: &str) -> Result<Node, EditError> {
    let mut stack: Vec<Open> = Vec::new();
    for (n, event) in Parser::new_from_str(text).enumerate() {
        if n > MAX_EVENTS {
            return Err(EditError("the text is too large to edit here".into()));
        }
        let (event, span) = event.map_err(|e| {
            EditError(format!(
                "the text does not read as YAML or JSON ({}); fix it first",
                e.info()
            ))
        })?;
        let (start, end) = bytes(&span);
        let done = match event {
            Event::Scalar(value, style, anchor, _) => {
                refuse_anchor(anchor)?;
                Node {
                    start,
                    end,
                    kind: Kind::Scalar {
                        value: value.into_owned(),
                        style,
                    },
                }
            }
            Event::SequenceStart(style, anchor, _) => {
                refuse_anchor(anchor)?;
                stack.push(Open::Seq(style == StructureStyle::Flow, start, Vec::new()));
                continue;
            }
            Event::MappingStart(style, anchor, _) => {
                refuse_anchor(anchor)?;
                let flow = style == StructureStyle::Flow;
                stack.push(Open::Map(flow, start, Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => close(stack.pop(), end)?,
            Event::Alias(_) | Event::Anchor(..) | Event::UnresolvedAlias(_) => {
                return Err(refuse_anchor(1).unwrap_err());
            }
            _ => continue,
        };
        match stack.last_mut() {
            None => return Ok(done),
            Some(Open::Seq(_, _, items)) => items.push(done),
            Some(Open::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(done),
                Some(k) => entries.push((k, done)),
            },
        }
    }
    Err(EditError("the text is empty".into()))
}

fn bytes(span: &Span) -> (usize, usize) {
    let start = span.start.byte_offset().unwrap_or(0);
    (start, span.end.byte_offset().unwrap_or(start).max(start))
}

fn refuse_anchor(anchor: usize) -> Result<(), EditError> {
    if anchor == 0 {
        Ok(())
    } else {
        Err(EditError(
            "the text uses YAML anchors or aliases: edit it in the text".into(),
        ))
    }
}

/// The collection `open` ends at byte `end` (a flow collection's closing
/// bracket; a block collection ends with its last child).
fn close(open: Option<Open>, end: usize) -> Result<Node, EditError> {
    let (start, end, kind) = match open {
        Some(Open::Seq(flow, start, items)) => {
            let end = if flow {
                end
            } else {
                items.last().map_or(start, |n| n.end)
            };
            (start, end, Kind::Seq { flow, items })
        }
        Some(Open::Map(flow, start, entries, None)) => {
            let end = if flow {
                end
            } else {
                entries.last().map_or(start, |(_, v)| v.end)
            };
            (start, end, Kind::Map { flow, entries })
        }
        Some(Open::Map(_, _, _, Some(_))) | None => {
            return Err(EditError("the text ends inside a collection".into()));
        }
    };
    Ok(Node { start, end, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(text: &'a str, n: &Node) -> &'a str {
        &text[n.start..n.end]
    }

    #[test]
    fn nodes_know_the_bytes_they_are_written_on() {
        let text = "name: intro # the first\nactions:\n  - { at: 0.0,  topic: room1/light, message: \"ON\" }\n  - at: 2\n    topic: room1/é\n";
        let root = parse(text).unwrap();
        assert!(!root.is_flow());
        let actions = root.get("actions").unwrap();
        let items = actions.items();
        assert_eq!(
            at(text, &items[0]),
            "{ at: 0.0,  topic: room1/light, message: \"ON\" }"
        );
        assert_eq!(at(text, items[0].get("message").unwrap()), "\"ON\"");
        assert_eq!(at(text, &items[1]), "at: 2\n    topic: room1/é");
        assert_eq!(at(text, root.get("name").unwrap()), "intro");
    }

    #[test]
    fn json_is_flow_and_items_over_a_byte_lead_to_the_innermost_mapping() {
        let text = "{\n  \"t\": [\n    {\"at\": 1, \"actions\": [\n      {\"topic\": \"a\"},\n      {\"topic\": \"b\"}\n    ]}\n  ]\n}\n";
        let root = parse(text).unwrap();
        assert!(root.is_flow());
        let b = text.find("{\"topic\": \"b\"}").unwrap();
        let path = root.items_over(b + 3);
        assert_eq!(path.len(), 2);
        assert_eq!(path[0].1, 0);
        assert_eq!(path[1].1, 1);
        assert_eq!(at(text, &path[1].0.items()[1]), "{\"topic\": \"b\"}");
        assert!(root.items_over(0).is_empty());
    }

    #[test]
    fn anchors_bad_text_and_nothing_are_refused_in_words() {
        for (text, says) in [
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: [1, 2\n", "does not read"),
            ("", "empty"),
        ] {
            let e = parse(text).unwrap_err().0;
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }
}
