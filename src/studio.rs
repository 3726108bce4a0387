//! The scene studio's service: scene files as an author edits them in the
//! browser. `store` keeps the files (atomic saves checked against the
//! version the author started from, the last saves of every scene with
//! time and author, a trash for deleted scenes); `graph` draws a scene's
//! state machine as SVG, laid out by the layout-rs crate; `timeline`
//! says when each cue of a state happens, in lanes by channel; `preview`
//! runs a scene with nothing sent to the boards; `direct` makes the
//! edits an author does without typing (cues, states, transitions) in the
//! text itself, through `tree` (where each node is written) and `splice`
//! (a change written like the text around it).

mod diff;
mod direct;
mod edit;
mod graph;
mod lengths;
mod preview;
mod splice;
mod store;
mod timeline;
mod tree;

pub use diff::unified as unified_diff;
pub use direct::{Cue, CueChange, Edit, Part, Transition, apply as edit};
pub use edit::{EditError, rename_scene, rename_state};
pub use graph::graph_svg;
pub use lengths::Lengths;
pub use preview::{Preview, PreviewLine, PreviewView, Speakers};
pub use store::{
    HistoryEntry, MAX_SCENE_BYTES, SceneSource, SceneStore, StoreError, TEMPLATES, Template,
    check_name,
};
pub use timeline::{Lane, Mark, StateTimeline, Way, global_ways, timelines};
