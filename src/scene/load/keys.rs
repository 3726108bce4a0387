//! Keys roomctl does not know: editor metadata and other tools' keys are
//! warnings; a key that is clearly a mistake (a misspelt known key, a
//! decimal comma) is an error, because it would silently change the show.

use super::*;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// The key tree of a file (keys and their positions), read once per file:
/// whether it is a command file (a list at the top) and which keys are
/// unknown both come from it. None when the text does not parse (the typed
/// parse then says why).
pub(crate) fn key_tree(text: &str) -> Option<Node> {
    super::parse_yaml::<Node>(text).ok()
}

impl Node {
    /// A list at the top: a command file rather than a scene.
    pub(crate) fn is_list(&self) -> bool {
        matches!(self, Node::Seq(_))
    }
}

/// Unknown keys of a command file's steps: warnings, or errors when they
/// look like a misspelt known key.
pub(crate) fn unknown_step_keys(
    tree: Option<&Node>,
    path: &Path,
    warnings: &mut Diagnostics,
    errors: &mut Diagnostics,
) {
    if let Some(tree @ Node::Seq(_)) = tree {
        unknown_keys(tree, Level::Step, path, warnings, errors);
    }
}

// ---------------------------------------------------------------------------
// Unknown keys (warnings)
// ---------------------------------------------------------------------------

/// A YAML/JSON tree that keeps only key positions.
pub(crate) enum Node {
    Map(Vec<(Spanned<String>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = m.next_key::<Spanned<String>>()? {
                    v.push((k, m.next_value::<Node>()?));
                }
                Ok(Node::Map(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = s.next_element::<Node>()? {
                    v.push(n);
                }
                Ok(Node::Seq(v))
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_string<E>(self, _: String) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Copy)]
pub(super) enum Level {
    Top,
    States,
    State,
    Item,
    Transition,
    /// A step of a command file.
    Step,
}

/// Keys written by scene editors of this format that have no effect here.
pub(super) const EDITOR_KEYS: [&str; 1] = ["globalPrefix"];

/// Keys scene editors add for themselves (ids, canvas positions, colours,
/// notes): unknown to roomctl, reported as warnings, never errors even when
/// they look like a known key.
pub(super) const EDITOR_METADATA: [&str; 27] = [
    "id",
    "uid",
    "uuid",
    "position",
    "pos",
    "x",
    "y",
    "ui",
    "meta",
    "metadata",
    "editor",
    "color",
    "colour",
    "notes",
    "note",
    "comment",
    "label",
    "layout",
    "width",
    "height",
    "created",
    "modified",
    "updated",
    "author",
    "tags",
    "icon",
    "collapsed",
];

/// Editor bookkeeping by its shape: `_private`, `x-vendor`, `stateId`,
/// `node_id`, `canvasPosition`.
pub(super) fn looks_like_metadata(key: &str) -> bool {
    key.starts_with('_')
        || key.starts_with("x-")
        || key.ends_with("Id")
        || key.ends_with("_id")
        || key.ends_with("Position")
        || key.ends_with("_position")
}

/// Edit distance (insertions, deletions, substitutions) between two keys.
pub(super) fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

/// What an unknown key most likely is.
pub(super) enum Unknown {
    /// Editor metadata or anything else: a warning.
    Ignored,
    /// `{ at: 2,5 }` in flow style makes `5` a key: the cue is wrong.
    Number,
    /// Within two edits of a known key (`on_stopp`): that part of the
    /// scene would silently be missing.
    Misspelt(&'static str),
}

pub(super) fn classify(key: &str, level: Level) -> Unknown {
    if key.parse::<f64>().is_ok() {
        return Unknown::Number;
    }
    if EDITOR_METADATA.iter().any(|m| m.eq_ignore_ascii_case(key))
        || looks_like_metadata(key)
        || key.chars().count() < 4
    {
        return Unknown::Ignored;
    }
    known(level)
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map_or(Unknown::Ignored, |(_, k)| Unknown::Misspelt(k))
}

pub(super) fn known(level: Level) -> &'static [&'static str] {
    match level {
        Level::Top => &[
            "name",
            "sceneId",
            "description",
            "version",
            "actions",
            "duration",
            "on_stop",
            "onStop",
            "initialState",
            "states",
            "globalEvents",
            "required",
        ],
        Level::States => &[],
        Level::State => &[
            "description",
            "onEnter",
            "onExit",
            "timeline",
            "transitions",
        ],
        Level::Item => &[
            "at", "action", "topic", "message", "timeout", "retain", "required", "retries",
            "actions",
        ],
        Level::Transition => &["type", "goto", "delay", "target", "topic", "message"],
        Level::Step => &[
            "timestamp",
            "at",
            "action",
            "topic",
            "message",
            "timeout",
            "retain",
        ],
    }
}

/// Reports keys roomctl does not know: a warning (editor metadata, other
/// tools' keys), or an error when the key is clearly a mistake that would
/// silently change the show (a decimal comma, a misspelt known key).
pub(super) fn unknown_keys(
    node: &Node,
    level: Level,
    file: &Path,
    out: &mut Diagnostics,
    errors: &mut Diagnostics,
) {
    let child = |key: &str, level: Level| -> Option<Level> {
        match (level, key) {
            (Level::Top, "actions" | "on_stop" | "onStop") => Some(Level::Item),
            (Level::Top, "states") => Some(Level::States),
            (Level::Top, "globalEvents") => Some(Level::Transition),
            (Level::States, _) => Some(Level::State),
            (Level::State, "onEnter" | "onExit" | "timeline") => Some(Level::Item),
            (Level::State, "transitions") => Some(Level::Transition),
            (Level::Item, "actions") => Some(Level::Item),
            _ => None,
        }
    };
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                let is_known =
                    matches!(level, Level::States) || known(level).contains(&k.value.as_str());
                if !is_known {
                    let key = k.value.as_str();
                    match classify(key, level) {
                        _ if EDITOR_KEYS.contains(&key) => {}
                        Unknown::Ignored => out.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!("warning: unknown key `{key}` (ignored)"),
                        )),
                        Unknown::Number => errors.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!(
                                "`{key}` is a number where a key belongs: a decimal comma? In flow style `{{ at: 2,5 }}` the comma ends the value (at 2) and `5` becomes a key; write 2.5"
                            ),
                        )),
                        Unknown::Misspelt(known) => errors.push(Diagnostic::new(
                            file,
                            Pos::of(k),
                            format!("unknown key `{key}`: did you mean `{known}`? (as written it is ignored)"),
                        )),
                    }
                    continue;
                }
                if let Some(l) = child(&k.value, level) {
                    unknown_keys(v, l, file, out, errors);
                }
            }
        }
        Node::Seq(items) => {
            for i in items {
                unknown_keys(i, level, file, out, errors);
            }
        }
        Node::Scalar => {}
    }
}
