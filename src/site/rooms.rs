//! The site's room list: what is kept of each room, the evidence that a
//! room is real (which decides who is dropped when the list is full), and
//! a state cut to what the page shows.

use std::collections::BTreeMap;

use super::STATE_FRESH;
use crate::room::RoomState;

#[derive(Default)]
pub(super) struct Entry {
    pub(super) status: Option<String>,
    pub(super) status_at: f64,
    pub(super) state: Option<RoomState>,
    pub(super) state_at: f64,
    /// The version that last changed it.
    pub(super) changed: u64,
}

/// Rooms dropped to make room, remembered for the page's `since`.
pub(super) const GONE_KEPT: usize = 1024;

/// The rooms, with a version that counts every change.
#[derive(Default)]
pub(super) struct Rooms {
    pub(super) map: BTreeMap<String, Entry>,
    pub(super) version: u64,
    /// Rooms dropped, with the version that dropped them (the newest
    /// [`GONE_KEPT`]).
    pub(super) gone: std::collections::VecDeque<(u64, String)>,
}

impl Entry {
    /// When anything was last heard of it.
    pub(super) fn heard(&self) -> f64 {
        self.status_at.max(self.state_at)
    }
}

/// What a message says of a room.
pub(super) enum Update {
    /// `online`/`offline`, or garbage (`None`).
    Status(Option<String>),
    /// A room state, or cleared.
    State(Option<Box<RoomState>>),
}

/// How much a room looks real: 3 with a state its daemon stamped within
/// the last 90 s (it refreshes it every 30 s), 2 with an older state, 1
/// with only an `online`/`offline` status, 0 with garbage. Expected rooms
/// are kept whatever their evidence.
pub(super) fn evidence_of(status: Option<&str>, state: Option<&RoomState>, now: f64) -> u8 {
    match (status, state) {
        (_, Some(s)) if (now - s.updated).abs() < STATE_FRESH => 3,
        (_, Some(_)) => 2,
        (Some(_), None) => 1,
        (None, None) => 0,
    }
}

/// Scene names kept per room at most.
const MAX_SCENES: usize = 64;

/// `s` cut to what the page shows: a few issues, at most [`MAX_SCENES`]
/// scenes, every text at most 128 characters; so memory stays bounded by
/// rooms × a few KiB whatever arrives.
pub(super) fn summarised(mut s: RoomState) -> RoomState {
    let clip = |t: &mut String| {
        if t.len() > 128 {
            *t = t.chars().take(128).collect();
        }
    };
    clip(&mut s.room);
    clip(&mut s.connection);
    if let Some(b) = &mut s.broker {
        clip(b);
    }
    s.issues.truncate(5);
    s.issues.iter_mut().for_each(clip);
    s.scenes.truncate(MAX_SCENES);
    s.scenes.iter_mut().for_each(clip);
    s.scenes.shrink_to_fit();
    s.outputs.truncate(crate::room::MAX_STATE_OUTPUTS);
    for o in &mut s.outputs {
        clip(&mut o.channel);
        clip(&mut o.state);
        if let Some(m) = &mut o.message {
            clip(m);
        }
    }
    s.outputs.shrink_to_fit();
    if let Some(sc) = &mut s.scene {
        clip(&mut sc.name);
        clip(&mut sc.state);
        sc.waiting_for.truncate(8);
    }
    s
}
