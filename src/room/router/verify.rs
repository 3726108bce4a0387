//! Signed control messages at the router: whether a message on a control
//! topic may act (see `crate::signing` and `control.key`), and the count
//! of those refused, by reason.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Origin, Router};
use crate::signing::Refused;
use crate::topic;

/// Control messages refused for their signature, by reason.
#[derive(Debug, Default)]
pub struct ControlRefusals([AtomicU64; 4]);

impl ControlRefusals {
    const REASONS: [Refused; 4] = [
        Refused::Unsigned,
        Refused::BadSignature,
        Refused::Stale,
        Refused::Replayed,
    ];

    pub(super) fn bump(&self, r: Refused) {
        if let Some(i) = Self::REASONS.iter().position(|x| *x == r) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Each reason's label and count.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        Self::REASONS
            .iter()
            .zip(&self.0)
            .map(|(r, n)| (r.label(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Router {
    /// `origin` if the message may act: a trigger always (it is in the
    /// config), a control topic unsigned only without `control.key` or when
    /// `control.unsigned` lists it, else with a valid signature (then it
    /// names who signed).
    pub(super) fn signed(
        &self,
        origin: Origin,
        topic: &str,
        payload: &str,
        props: &[(String, String)],
    ) -> Result<Origin, Refused> {
        if !matches!(origin, Origin::Mqtt { .. }) {
            return Ok(origin);
        }
        let live = self.live.borrow();
        let c = &live.rules.control;
        let Some(key) = &c.key else {
            return Ok(origin);
        };
        if c.unsigned.iter().any(|u| topic::matches(u, topic)) {
            return Ok(origin);
        }
        let now = crate::mqtt::unix_now().max(0.0) as u64;
        let by = self.verifier.lock().check(
            key.expose().as_bytes(),
            topic,
            payload.as_bytes(),
            props,
            now,
        )?;
        Ok(Origin::Mqtt {
            topic: topic.to_string(),
            by: (!by.is_empty()).then_some(by),
        })
    }
}
