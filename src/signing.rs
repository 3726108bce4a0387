//! Signed control messages: who may run a room over MQTT. With
//! `control.key` set, a command on a room's control topics (scene start and
//! stop, command run, schedule) counts only with MQTT 5 user properties
//! that prove it came from someone holding the site's key: an HMAC-SHA256
//! over the topic, the payload, a time, a nonce and the sender's name. A
//! message without them, with a wrong MAC, older than [`WINDOW`] or seen
//! before (a replay) changes nothing. Pure: no I/O, the clock is passed in.

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The MAC, hex.
pub const SIG: &str = "roomctl-sig";
/// Unix seconds when it was signed.
pub const TS: &str = "roomctl-ts";
/// Random, once per message.
pub const NONCE: &str = "roomctl-nonce";
/// Who sent it (a user or token of the sender), for the audit trail.
pub const BY: &str = "roomctl-by";
/// How far a message's time may be from the receiver's clock, seconds.
pub const WINDOW: u64 = 30;
/// Nonces remembered (a message older than the window is refused anyway).
pub const MAX_NONCES: usize = 8192;

fn mac(key: &[u8], topic: &str, payload: &[u8], ts: &str, nonce: &str, by: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [
        topic.as_bytes(),
        payload,
        ts.as_bytes(),
        nonce.as_bytes(),
        by.as_bytes(),
    ] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The user properties that sign `payload` on `topic`, sent by `by` at
/// `now` (unix seconds).
pub fn sign(key: &[u8], topic: &str, payload: &[u8], by: &str, now: u64) -> Vec<(String, String)> {
    let nonce = hex(&rand::random::<[u8; 16]>());
    let ts = now.to_string();
    let sig = hex(&mac(key, topic, payload, &ts, &nonce, by)
        .finalize()
        .into_bytes());
    vec![
        (SIG.into(), sig),
        (TS.into(), ts),
        (NONCE.into(), nonce),
        (BY.into(), by.into()),
    ]
}

/// Why a control message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No signature at all.
    #[error("it is not signed")]
    Unsigned,
    /// A signature that does not match (a wrong key, a changed payload).
    #[error("its signature is wrong")]
    BadSignature,
    /// Signed too long ago, or in the future.
    #[error("it was signed more than 30 s away from this clock")]
    Stale,
    /// The same message again.
    #[error("it was seen before (a replay)")]
    Replayed,
}

impl Refused {
    /// The label of `roomctl_control_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Unsigned => "unsigned",
            Refused::BadSignature => "bad_signature",
            Refused::Stale => "stale",
            Refused::Replayed => "replayed",
        }
    }
}

/// Checks signatures and remembers nonces.
#[derive(Debug, Default)]
pub struct Verifier {
    seen: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

impl Verifier {
    /// Who sent `payload` on `topic`, if `props` prove it with `key` at
    /// `now` (unix seconds).
    pub fn check(
        &mut self,
        key: &[u8],
        topic: &str,
        payload: &[u8],
        props: &[(String, String)],
        now: u64,
    ) -> Result<String, Refused> {
        let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(sig), Some(ts), Some(nonce)) = (get(SIG), get(TS), get(NONCE)) else {
            return Err(Refused::Unsigned);
        };
        let by = get(BY).unwrap_or("");
        let sig = unhex(sig).ok_or(Refused::BadSignature)?;
        mac(key, topic, payload, ts, nonce, by)
            .verify_slice(&sig)
            .map_err(|_| Refused::BadSignature)?;
        let t: u64 = ts.parse().map_err(|_| Refused::BadSignature)?;
        if t.abs_diff(now) > WINDOW {
            return Err(Refused::Stale);
        }
        // Forget what is out of the window: it would be refused as stale.
        while let Some((at, _)) = self.order.front() {
            if now.saturating_sub(*at) <= 2 * WINDOW && self.order.len() < MAX_NONCES {
                break;
            }
            let (_, n) = self.order.pop_front().expect("not empty");
            self.seen.remove(&n);
        }
        if self.seen.contains_key(nonce) {
            return Err(Refused::Replayed);
        }
        self.seen.insert(nonce.to_string(), t);
        self.order.push_back((now, nonce.to_string()));
        Ok(by.chars().take(64).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a site key of enough length";

    #[test]
    fn a_signed_message_counts_once_and_forgeries_never() {
        let mut v = Verifier::default();
        let t = "roomctl/room1/scene/start";
        let props = sign(KEY, t, b"intro", "desk", 1000);
        assert_eq!(v.check(KEY, t, b"intro", &props, 1005), Ok("desk".into()));
        assert_eq!(
            v.check(KEY, t, b"intro", &props, 1006),
            Err(Refused::Replayed)
        );
        assert_eq!(v.check(KEY, t, b"intro", &[], 1006), Err(Refused::Unsigned));
        let other = sign(b"another key entirely", t, b"intro", "desk", 1000);
        assert_eq!(
            v.check(KEY, t, b"intro", &other, 1006),
            Err(Refused::BadSignature)
        );
        let props = sign(KEY, t, b"intro", "desk", 1000);
        assert_eq!(
            v.check(KEY, t, b"outro", &props, 1006),
            Err(Refused::BadSignature),
            "payload changed"
        );
        assert_eq!(
            v.check(KEY, "roomctl/hall/scene/start", b"intro", &props, 1006),
            Err(Refused::BadSignature),
            "topic changed"
        );
        let mut by = props.clone();
        by[3].1 = "admin".into();
        assert_eq!(
            v.check(KEY, t, b"intro", &by, 1006),
            Err(Refused::BadSignature),
            "sender changed"
        );
        assert_eq!(v.check(KEY, t, b"intro", &props, 1031), Err(Refused::Stale));
        assert_eq!(
            v.check(KEY, t, b"intro", &sign(KEY, t, b"intro", "d", 2000), 1000),
            Err(Refused::Stale)
        );
    }

    #[test]
    fn the_nonce_memory_is_bounded() {
        let mut v = Verifier::default();
        let t = "roomctl/room1/scene/stop";
        for i in 0..MAX_NONCES + 100 {
            let p = sign(KEY, t, b"", "x", 1000);
            assert!(v.check(KEY, t, b"", &p, 1000 + (i as u64 % 10)).is_ok());
        }
        assert!(v.seen.len() <= MAX_NONCES);
        assert_eq!(v.seen.len(), v.order.len());
    }
}
