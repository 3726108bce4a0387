//! The two tables behind logging in, without I/O or a clock of their own
//! (every call is given `now`): the sessions, each with an idle and an
//! absolute expiry, and the failed-login limiter, per user name and per
//! address. Both are bounded: the oldest entry makes room for a new one.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use crate::access::Role;

/// Sessions kept at most (the least recently used goes first).
pub const MAX_SESSIONS: usize = 1024;
/// Keys the limiter remembers at most.
pub const MAX_LIMITED: usize = 4096;
/// Failed logins in a row that are free; each further one locks the key.
pub const FREE_FAILURES: u32 = 5;
/// The first lock; each further failure doubles it, up to [`MAX_LOCK`].
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    user: String,
    /// The account as it was at login: a new password or role ends the
    /// session.
    password: String,
    role: Role,
    created: Instant,
    seen: Instant,
}

/// The sessions, by id.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<String, Session>,
    idle: Duration,
    max: Duration,
}

impl Sessions {
    /// Sessions that end after `idle` without use or `max` after login.
    pub fn new(idle: Duration, max: Duration) -> Sessions {
        Sessions {
            map: HashMap::new(),
            idle,
            max,
        }
    }

    /// Keeps `id` as a session of `user` (whose stored hash and role are
    /// `password` and `role`).
    pub fn insert(&mut self, id: String, user: &str, password: &str, role: Role, now: Instant) {
        self.map
            .retain(|_, s| now < s.seen + self.idle && now < s.created + self.max);
        if self.map.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
        self.map.insert(
            id,
            Session {
                user: user.to_string(),
                password: password.to_string(),
                role,
                created: now,
                seen: now,
            },
        );
    }

    /// The user of session `id`, if it is still valid: not idle too long,
    /// not too old, and its account unchanged (`account` gives the user's
    /// current hash and role). Using it counts as activity.
    pub fn check(
        &mut self,
        id: &str,
        now: Instant,
        account: impl Fn(&str) -> Option<(String, Role)>,
    ) -> Option<(String, Role)> {
        let s = self.map.get_mut(id)?;
        let current = account(&s.user);
        let valid = now < s.seen + self.idle
            && now < s.created + self.max
            && current
                .as_ref()
                .is_some_and(|(pw, role)| *pw == s.password && *role == s.role);
        if !valid {
            self.map.remove(id);
            return None;
        }
        s.seen = now;
        Some((s.user.clone(), s.role))
    }

    /// Ends session `id`.
    pub fn remove(&mut self, id: &str) -> bool {
        self.map.remove(id).is_some()
    }

    /// Ends every session of `user`.
    pub fn remove_user(&mut self, user: &str) {
        self.map.retain(|_, s| s.user != user);
    }

    /// How many sessions are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failed logins per key (a user name, an address).
#[derive(Debug)]
pub struct Limiter<K> {
    map: HashMap<K, Strikes>,
}

impl<K: Hash + Eq + Clone> Default for Limiter<K> {
    fn default() -> Self {
        Limiter {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// How long `key` must still wait, if it is locked.
    pub fn locked(&self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.map.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// One more failure for `key`: after [`FREE_FAILURES`], a lock that
    /// doubles with every failure.
    pub fn failed(&mut self, key: &K, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_LIMITED {
            // Forget the key that failed longest ago.
            if let Some(k) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone())
            {
                self.map.remove(&k);
            }
        }
        let s = self.map.entry(key.clone()).or_insert(Strikes {
            failures: 0,
            locked_until: None,
            last: now,
        });
        // A quiet hour forgives.
        if now.saturating_duration_since(s.last) > Duration::from_secs(3600) {
            s.failures = 0;
        }
        s.failures += 1;
        s.last = now;
        if s.failures >= FREE_FAILURES {
            let doublings = (s.failures - FREE_FAILURES).min(16);
            let lock = FIRST_LOCK.saturating_mul(1 << doublings).min(MAX_LOCK);
            s.locked_until = Some(now + lock);
        }
    }

    /// A successful login clears `key`.
    pub fn succeeded(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Keys remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(3600);

    fn account(pw: &'static str, role: Role) -> impl Fn(&str) -> Option<(String, Role)> {
        move |u: &str| (u == "alice").then(|| (pw.to_string(), role))
    }

    #[test]
    fn sessions_end_when_idle_old_or_changed() {
        let t0 = Instant::now();
        let mut s = Sessions::new(H, 4 * H);
        s.insert("a".into(), "alice", "h1", Role::Operator, t0);
        let same = account("h1", Role::Operator);
        assert_eq!(
            s.check("a", t0 + H / 2, &same),
            Some(("alice".into(), Role::Operator))
        );
        // Used half an hour ago: an idle hour starts from there.
        assert!(s.check("a", t0 + H + H / 4, &same).is_some());
        assert!(s.check("a", t0 + 3 * H, &same).is_none(), "idle for 1.75 h");
        assert!(
            s.check("a", t0, &same).is_none(),
            "an ended session stays ended"
        );

        // Kept busy, it still ends at the absolute limit.
        s.insert("b".into(), "alice", "h1", Role::Operator, t0);
        for i in 1..8 {
            assert!(s.check("b", t0 + i * H / 2, &same).is_some(), "{i}");
        }
        assert!(s.check("b", t0 + 4 * H, &same).is_none());

        s.insert("c".into(), "alice", "h1", Role::Operator, t0);
        assert!(
            s.check("c", t0, account("h2", Role::Operator)).is_none(),
            "new password"
        );
        s.insert("d".into(), "alice", "h1", Role::Operator, t0);
        assert!(
            s.check("d", t0, account("h1", Role::Viewer)).is_none(),
            "new role"
        );
        s.insert("e".into(), "alice", "h1", Role::Operator, t0);
        assert!(s.check("e", t0, |_: &str| None).is_none(), "user removed");
    }

    #[test]
    fn sessions_are_bounded() {
        let t0 = Instant::now();
        let mut s = Sessions::new(H, 4 * H);
        for i in 0..MAX_SESSIONS + 10 {
            s.insert(
                format!("{i}"),
                "alice",
                "h",
                Role::Viewer,
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(
            s.check("0", t0 + H / 2, account("h", Role::Viewer))
                .is_none(),
            "the oldest went"
        );
        assert!(
            s.check(
                &format!("{}", MAX_SESSIONS + 9),
                t0 + H / 2,
                account("h", Role::Viewer)
            )
            .is_some()
        );
    }

    #[test]
    fn failures_lock_with_a_doubling_wait() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        for _ in 0..FREE_FAILURES - 1 {
            l.failed(&"alice", t0);
        }
        assert_eq!(l.locked(&"alice", t0), None);
        l.failed(&"alice", t0);
        assert_eq!(l.locked(&"alice", t0), Some(FIRST_LOCK));
        assert_eq!(l.locked(&"alice", t0 + FIRST_LOCK), None);
        l.failed(&"alice", t0 + FIRST_LOCK);
        assert_eq!(l.locked(&"alice", t0 + FIRST_LOCK), Some(2 * FIRST_LOCK));
        for _ in 0..20 {
            l.failed(&"alice", t0 + FIRST_LOCK);
        }
        assert_eq!(l.locked(&"alice", t0 + FIRST_LOCK), Some(MAX_LOCK));
        assert_eq!(l.locked(&"bob", t0), None, "per key");
        l.succeeded(&"alice");
        assert_eq!(l.locked(&"alice", t0 + FIRST_LOCK), None);
    }

    #[test]
    fn the_limiter_is_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::default();
        for i in 0..MAX_LIMITED + 100 {
            l.failed(&i, t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(l.len(), MAX_LIMITED);
    }
}
