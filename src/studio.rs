//! The scene studio's service: scene files as an author edits them in the
//! browser. `store` keeps the files (atomic saves checked against the
//! version the author started from, the last saves of every scene with
//! time and author, a trash for deleted scenes); `graph` draws a scene's
//! state machine as SVG, laid out by the layout-rs crate; `timeline`
//! says when each cue of a state happens, in lanes by channel; `preview`
//! runs a scene with nothing sent to the boards.

mod edit;
mod graph;
mod lengths;
mod preview;
mod store;
mod timeline;

pub use edit::{EditError, rename_scene, rename_state};
pub use graph::graph_svg;
pub use lengths::Lengths;
pub use preview::{Preview, PreviewLine, PreviewView};
pub use store::{
    HistoryEntry, MAX_SCENE_BYTES, SceneSource, SceneStore, StoreError, TEMPLATES, Template,
    check_name,
};
pub use timeline::{Lane, Mark, StateTimeline, timelines};
