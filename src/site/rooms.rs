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
    /// The broker its kept state was heard on.
    pub(super) via: Option<String>,
    /// What each broker last said of its status (one entry a broker).
    pub(super) status_by: Vec<(String, Option<String>)>,
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
    /// Takes what broker `via` said; false when it changes nothing shown
    /// (an older state from another broker).
    pub(super) fn merge(&mut self, via: &str, update: Update, now: f64) -> bool {
        match update {
            Update::Status(st) => {
                match self.status_by.iter_mut().find(|(b, _)| b == via) {
                    Some(s) => s.1 = st,
                    None => self.status_by.push((via.to_string(), st)),
                }
                self.status_at = now;
            }
            Update::State(Some(new)) => {
                let ours = self.via.as_deref().is_none_or(|v| v == via);
                if !ours
                    && self
                        .state
                        .as_ref()
                        .is_some_and(|old| old.updated >= new.updated)
                {
                    return false;
                }
                self.state = Some(*new);
                self.state_at = now;
                self.via = Some(via.to_string());
            }
            Update::State(None) => {
                // Cleared on the broker its state came from only.
                if self.via.as_deref().is_some_and(|v| v != via) {
                    return false;
                }
                self.state = None;
                self.state_at = now;
            }
        }
        self.status = self.merged_status();
        true
    }

    /// The status on the broker its newest state came from; else online
    /// if any broker says so (a room is on one broker at a time); else
    /// what one said.
    fn merged_status(&self) -> Option<String> {
        let on = |b: &str| {
            self.status_by
                .iter()
                .find(|(x, _)| x == b)
                .and_then(|(_, s)| s.clone())
        };
        if let Some(s) = self.via.as_deref().and_then(on) {
            return Some(s);
        }
        let said: Vec<&String> = self
            .status_by
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .collect();
        said.iter()
            .find(|s| s.as_str() == "online")
            .or(said.first())
            .map(|s| (*s).clone())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(updated: f64) -> Box<RoomState> {
        Box::new(
            serde_json::from_value(serde_json::json!({
                "room": "vault", "connection": "CONNECTED",
                "devices": {"total": 0, "online": 0, "offline": 0, "stale": 0, "unknown_ignored": 0},
                "health": "healthy", "updated": updated,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn the_newest_state_wins_and_the_status_is_its_brokers() {
        let mut e = Entry::default();
        // The east still has the room's last will from before it moved.
        assert!(e.merge("east", Update::Status(Some("offline".into())), 1.0));
        assert!(e.merge("west", Update::Status(Some("online".into())), 1.0));
        assert_eq!(e.status.as_deref(), Some("online"), "online somewhere");
        assert!(e.merge("west", Update::State(Some(state(200.0))), 2.0));
        assert_eq!(e.via.as_deref(), Some("west"));
        // An older state from the east, or the same one over a bridge: kept.
        assert!(!e.merge("east", Update::State(Some(state(100.0))), 3.0));
        assert!(!e.merge("east", Update::State(Some(state(200.0))), 3.0));
        assert!(
            !e.merge("east", Update::State(None), 3.0),
            "not the east's to clear"
        );
        assert_eq!(e.via.as_deref(), Some("west"));
        // Its broker says offline: offline, whatever the east said last.
        assert!(e.merge("east", Update::Status(Some("online".into())), 4.0));
        assert!(e.merge("west", Update::Status(Some("offline".into())), 4.0));
        assert_eq!(e.status.as_deref(), Some("offline"));
        // A newer state from the east: the room moved there.
        assert!(e.merge("east", Update::State(Some(state(300.0))), 5.0));
        assert_eq!(e.via.as_deref(), Some("east"));
        assert_eq!(e.status.as_deref(), Some("online"));
    }
}
