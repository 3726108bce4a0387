//! Where a state machine's state names are written: its `initialState`,
//! every `goto`, every state (its value's start) and the scene's own name,
//! so an editor can rename them in the text itself and keep the author's
//! format.

use super::raw::RawScene;
use crate::diag::Pos;

/// State names in a scene's text, with where each is written.
#[derive(Debug, Default, PartialEq)]
pub struct StateRefs {
    /// The scene's own name (`sceneId`, else `name`), when written.
    pub scene: Option<(String, Pos)>,
    /// `initialState`'s value.
    pub initial: Option<(String, Pos)>,
    /// Every `goto` value (states and global events).
    pub gotos: Vec<(String, Pos)>,
    /// Every state's name and where its value starts (its key is before).
    pub states: Vec<(String, Pos)>,
}

/// The state names of `text`, when it parses as a scene.
pub fn state_refs(text: &str) -> Option<StateRefs> {
    let raw: RawScene = super::parse_yaml(text).ok()?;
    let mut out = StateRefs {
        scene: raw
            .scene_id
            .as_ref()
            .or(raw.name.as_ref())
            .map(|n| (n.value.clone(), Pos::of(n))),
        initial: raw
            .initial_state
            .as_ref()
            .map(|i| (i.value.clone(), Pos::of(i))),
        ..StateRefs::default()
    };
    let states = raw.states.as_ref().map(|s| &s.value);
    for (name, st) in states.into_iter().flatten() {
        out.states.push((name.clone(), Pos::of(st)));
        for t in st.value.transitions.iter().flatten() {
            out.gotos
                .extend(t.value.goto.as_ref().map(|g| (g.value.clone(), Pos::of(g))));
        }
    }
    for t in raw.global_events.iter().flatten() {
        out.gotos
            .extend(t.value.goto.as_ref().map(|g| (g.value.clone(), Pos::of(g))));
    }
    Some(out)
}
