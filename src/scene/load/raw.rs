//! The raw form of a scene file: what serde reads, with positions, before
//! the builder checks it and turns it into the model.

use super::*;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Whether a document's top is a list (a command file) or anything else.
pub(crate) enum Shape {
    /// A list.
    Seq,
    /// A mapping or a scalar.
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Shape, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Shape::Seq)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Shape, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

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
