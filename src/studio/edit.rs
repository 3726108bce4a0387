//! Edits the studio makes to a scene's text without the author typing it,
//! in the text itself so the author's format, comments and key order stay:
//! renaming a state (its key, `initialState` and every `goto` follow), and
//! the scene's own name in a copy.

use crate::diag::Pos;
use crate::scene::END;
use crate::scene::load::state_refs;

/// Why an edit cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct EditError(pub String);

/// `text` with state `old` renamed `new` wherever it is named.
pub fn rename_state(text: &str, old: &str, new: &str) -> Result<String, EditError> {
    let refs = state_refs(text).ok_or_else(|| {
        EditError("the text does not load as a scene: fix it first, then rename".into())
    })?;
    check_state_name(new)?;
    if refs.states.iter().any(|(n, _)| n == new) {
        return Err(EditError(format!("there is a state `{new}` already")));
    }
    let Some((_, value)) = refs.states.iter().find(|(n, _)| n == old) else {
        return Err(EditError(format!("there is no state `{old}`")));
    };
    let starts = line_starts(text);
    let mut edits: Vec<(usize, usize)> = Vec::new();
    for (name, pos) in refs.initial.iter().chain(refs.gotos.iter()) {
        if name.trim() == old {
            edits.push(value_at(text, &starts, *pos, old)?);
        }
    }
    // The key is the last `old` written before its value.
    let at = offset(text, &starts, *value).ok_or_else(|| lost(old))?;
    let is_key = |i: &usize| {
        let rest = text[i + old.len()..].trim_start_matches(['"', '\'']);
        rest.trim_start_matches([' ', '\t']).starts_with(':')
    };
    let key = text[..at]
        .rmatch_indices(old)
        .map(|(i, _)| i)
        .find(is_key)
        .ok_or_else(|| lost(old))?;
    edits.push((key, key + old.len()));
    edits.sort_unstable();
    edits.dedup();
    let mut out = text.to_string();
    for (from, to) in edits.into_iter().rev() {
        out.replace_range(from..to, new);
    }
    Ok(out)
}

/// `text` with the scene's own name (`sceneId` or `name`) set to `new`;
/// a scene named by its file name gets nothing to change (`None`).
pub fn rename_scene(text: &str, new: &str) -> Result<Option<String>, EditError> {
    let refs = state_refs(text)
        .ok_or_else(|| EditError("the text does not load as a scene: fix it first".into()))?;
    let Some((old, pos)) = refs.scene else {
        return Ok(None);
    };
    let starts = line_starts(text);
    let (from, to) = value_at(text, &starts, pos, old.trim())?;
    let mut out = text.to_string();
    out.replace_range(from..to, new);
    Ok(Some(out))
}

/// Refuses what cannot name a new state.
pub(super) fn check_state_name(new: &str) -> Result<(), EditError> {
    let plain = !new.is_empty()
        && new.len() <= 64
        && new
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        && new.trim() == new;
    if !plain || new.eq_ignore_ascii_case(END) {
        return Err(EditError(format!(
            "`{}` cannot name a state: letters, digits, `_`, `-` and spaces, not END",
            new.chars().take(64).collect::<String>().escape_debug()
        )));
    }
    Ok(())
}

fn lost(name: &str) -> EditError {
    EditError(format!(
        "cannot find where `{name}` is written; rename it in the text"
    ))
}

/// Byte offsets of the starts of lines.
pub(super) fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The byte offset of a 1-based line and character column.
pub(super) fn offset(text: &str, starts: &[usize], pos: Pos) -> Option<usize> {
    let start = *starts.get(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let col = usize::try_from(pos.col).ok()?.checked_sub(1)?;
    let line = &text[start..];
    Some(start + line.char_indices().nth(col).map_or(line.len(), |(i, _)| i))
}

/// The byte range of the value `name` written at `pos` (after a quote).
fn value_at(
    text: &str,
    starts: &[usize],
    pos: Pos,
    name: &str,
) -> Result<(usize, usize), EditError> {
    let mut at = offset(text, starts, pos).ok_or_else(|| lost(name))?;
    if text[at..].starts_with(['"', '\'']) {
        at += 1;
    }
    // Leading blanks inside the value (`goto: ' b'` is `b` trimmed).
    while text[at..].starts_with(' ') {
        at += 1;
    }
    if text[at..].starts_with(name) {
        Ok((at, at + name.len()))
    } else {
        Err(lost(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_renamed_everywhere_and_nothing_else_changes() {
        let text = include_str!("../../scenes/showcase.json");
        let out = rename_state(text, "waiting", "wait_button").unwrap();
        assert!(!out.contains("\"waiting\""), "{out}");
        assert_eq!(out.matches("\"wait_button\"").count(), 2, "key and goto");
        // Only the name changed: same lines otherwise.
        let changed = text
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, 2);
        assert_eq!(text.lines().count(), out.lines().count());
        // The description that says "waiting" in words is not a reference.
        let yaml = "sceneId: x\ninitialState: a\n# a is first\nstates:\n  a:\n    description: a state\n    transitions:\n      - {type: timeout, delay: 1, goto: b}\n  b:\n    transitions:\n      - {type: always, goto: a}\n      - {type: always, goto: 'b'}\n";
        let out = rename_state(yaml, "b", "finale").unwrap();
        assert_eq!(
            out,
            "sceneId: x\ninitialState: a\n# a is first\nstates:\n  a:\n    description: a state\n    transitions:\n      - {type: timeout, delay: 1, goto: finale}\n  finale:\n    transitions:\n      - {type: always, goto: a}\n      - {type: always, goto: 'finale'}\n"
        );
        let out = rename_state(yaml, "a", "start").unwrap();
        assert!(
            out.starts_with("sceneId: x\ninitialState: start\n# a is first\n"),
            "{out}"
        );
        assert!(
            out.contains("  start:\n    description: a state\n"),
            "{out}"
        );
        assert!(out.contains("goto: start}"), "{out}");
    }

    #[test]
    fn a_copy_gets_its_own_scene_name() {
        let text = include_str!("../../scenes/showcase.json");
        let out = rename_scene(text, "showcase2").unwrap().unwrap();
        assert!(out.contains("\"sceneId\": \"showcase2\","), "{out}");
        assert_eq!(out.len(), text.len() + 1);
        let yaml = "name: intro # the first\nactions: []\n";
        assert_eq!(
            rename_scene(yaml, "intro_copy").unwrap().unwrap(),
            "name: intro_copy # the first\nactions: []\n"
        );
        assert_eq!(rename_scene("actions: []\n", "x").unwrap(), None);
    }

    #[test]
    fn bad_renames_are_said() {
        let yaml = "sceneId: x\ninitialState: a\nstates:\n  a: {}\n  b: {}\n";
        let e = |old, new| rename_state(yaml, old, new).unwrap_err().0;
        assert_eq!(e("a", "b"), "there is a state `b` already");
        assert_eq!(e("c", "d"), "there is no state `c`");
        assert!(e("a", "END").contains("cannot name a state"));
        assert!(e("a", "x\"y").contains("cannot name a state"));
        assert!(
            rename_state("{", "a", "b")
                .unwrap_err()
                .0
                .contains("does not load")
        );
    }
}
