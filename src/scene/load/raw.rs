//! The raw form of a scene file: what serde reads, with positions, before
//! the builder checks it and turns it into the model.

use super::*;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

// ---------------------------------------------------------------------------
// Raw form
// ---------------------------------------------------------------------------

pub(super) type S = Spanned<String>;

#[derive(Deserialize)]
pub(crate) struct RawScene {
    pub(super) name: Option<S>,
    #[serde(rename = "sceneId")]
    pub(super) scene_id: Option<S>,
    pub(super) description: Option<String>,
    pub(super) actions: Option<Spanned<Vec<Spanned<RawItem>>>>,
    pub(super) duration: Option<Spanned<Dur>>,
    #[serde(alias = "onStop")]
    pub(super) on_stop: Option<Vec<Spanned<RawItem>>>,
    #[serde(rename = "initialState")]
    pub(super) initial_state: Option<S>,
    pub(super) states: Option<Spanned<BTreeMap<String, Spanned<RawState>>>>,
    #[serde(rename = "globalEvents")]
    pub(super) global_events: Option<Vec<Spanned<RawTransition>>>,
    /// Every cue of the scene is `required` unless it says otherwise.
    pub(super) required: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
pub(super) struct RawState {
    pub(super) description: Option<String>,
    #[serde(rename = "onEnter")]
    pub(super) on_enter: Option<Vec<Spanned<RawItem>>>,
    #[serde(rename = "onExit")]
    pub(super) on_exit: Option<Vec<Spanned<RawItem>>>,
    pub(super) timeline: Option<Vec<Spanned<RawItem>>>,
    pub(super) transitions: Option<Vec<Spanned<RawTransition>>>,
}

/// An action, a timed action, or a timed group (`actions: [...]`).
#[derive(Deserialize, Default)]
pub(crate) struct RawItem {
    pub(super) at: Option<Spanned<Dur>>,
    pub(super) action: Option<S>,
    pub(super) topic: Option<S>,
    pub(super) message: Option<S>,
    pub(super) timeout: Option<Spanned<Dur>>,
    pub(super) retain: Option<Spanned<bool>>,
    pub(super) required: Option<Spanned<bool>>,
    pub(super) retries: Option<Spanned<u32>>,
    pub(super) actions: Option<Vec<Spanned<RawItem>>>,
}

#[derive(Deserialize)]
pub(super) struct RawTransition {
    #[serde(rename = "type")]
    pub(super) kind: Option<S>,
    pub(super) goto: Option<S>,
    pub(super) delay: Option<Spanned<Dur>>,
    pub(super) target: Option<S>,
    pub(super) topic: Option<S>,
    pub(super) message: Option<S>,
}
