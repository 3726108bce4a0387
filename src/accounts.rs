//! Accounts: who may use the dashboard, the API and the site page. Owns
//! `users.yaml` (read again whenever it changes on disk, so `roomctl user`
//! and the dashboard's Users tab apply without a restart), the sessions of
//! logged-in browsers, the failed-login limiter, and the API tokens (with
//! the config's `web.token`, kept working as a token of `web.token_role`).
//!
//! While no account, API token or `web.token` exists, everything is open,
//! as before accounts existed (and the dashboard says so); after that, a
//! request without credentials may do what `web.anonymous` says (read, by
//! default). Login failures and user changes are published on the event
//! bus as [`ActionEvent`]s, so the show log has them; no password or token
//! ever reaches a log.

mod change;
mod file;
mod sessions;

pub use change::{AccountChange, AccountError, AccountReply, change_file};

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

pub use file::{MAX_NAME, MAX_PASSWORD, UsersFile, check_name, check_password};
use sessions::{Limiter, Sessions};

use crate::access::{Actor, Role};
use crate::config::{Secret, WebConfig};
use crate::diag::Diagnostics;
use crate::events::{ActionEvent, Event, EventBus};
use crate::mqtt::unix_now;
use crate::origin::Origin;

/// Password checks at once at most (each takes 19 MiB for a moment).
const HASHING_AT_ONCE: usize = 2;

/// What the accounts are set up from (the `web:` keys).
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// `users.yaml`.
    pub path: PathBuf,
    /// `web.token`.
    pub web_token: Option<Secret>,
    /// `web.token_role`.
    pub token_role: Role,
    /// `web.anonymous`.
    pub anonymous: Option<Role>,
    /// `web.session_idle`.
    pub session_idle: Duration,
    /// `web.session_max`.
    pub session_max: Duration,
}

impl AccountsConfig {
    /// From the config's `web:` section.
    pub fn from_web(w: &WebConfig) -> AccountsConfig {
        AccountsConfig {
            path: w.users.clone(),
            web_token: w.token.clone(),
            token_role: w.token_role,
            anonymous: w.anonymous,
            session_idle: w.session_idle,
            session_max: w.session_max,
        }
    }
}

/// A user, as the dashboard lists them (no hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    /// The name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// When the password or role last changed.
    pub changed: Option<String>,
}

/// An API token, as the dashboard lists them (no hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenView {
    /// The name.
    pub name: String,
    /// The role.
    pub role: Role,
    /// When it was made.
    pub created: Option<String>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A user name or password that cannot be one (empty, too long).
    #[error("{0}")]
    Invalid(String),
    /// Unknown user or wrong password (which of the two is not said).
    #[error("wrong user name or password")]
    Wrong,
    /// Too many failures for this user or from this address.
    #[error("too many failed logins {what}: try again in {} s", whole_seconds(*.wait))]
    Locked {
        /// `for alice`, `from 10.0.0.7`.
        what: String,
        /// How long to wait.
        wait: Duration,
    },
}

/// `d` in whole seconds, rounded up (a wait of 29.2 s is "30 s"), at least 1.
pub fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs_f64().ceil() as u64).max(1)
}

/// Why presented credentials are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A session cookie that is unknown, expired, logged out or outlived a
    /// change of its account.
    #[error("your session has ended: log in again")]
    SessionEnded,
    /// A bearer token that is no token of this room.
    #[error("wrong token")]
    WrongToken,
}

/// The file as last read, and how it was on disk then.
struct Current {
    file: UsersFile,
    stamp: Option<Stamp>,
    /// Why the file on disk does not load, if it does not: the accounts
    /// last read stay in use (none, if it never loaded: fail closed).
    problem: Option<String>,
}

/// Enough of a file's metadata to notice any change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// The accounts. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    config: AccountsConfig,
    current: RwLock<Current>,
    /// One change of the file at a time.
    writing: Mutex<()>,
    sessions: Mutex<Sessions>,
    by_user: Mutex<Limiter<String>>,
    by_address: Mutex<Limiter<IpAddr>>,
    hashing: tokio::sync::Semaphore,
    events: EventBus,
    log: Mutex<crate::ratelog::RateLog>,
}

impl Accounts {
    /// Reads `users.yaml` (a missing one is empty). One that does not load
    /// leaves no account usable and nothing open (see [`Accounts::problem`])
    /// until it is fixed on disk; its mode is checked and warned about.
    pub fn new(config: AccountsConfig, events: EventBus) -> Accounts {
        let sessions = Sessions::new(config.session_idle, config.session_max);
        let me = Accounts {
            inner: Arc::new(Inner {
                config,
                current: RwLock::new(Current {
                    file: UsersFile::default(),
                    stamp: None,
                    problem: Some("not read yet".into()),
                }),
                writing: Mutex::new(()),
                sessions: Mutex::new(sessions),
                by_user: Mutex::default(),
                by_address: Mutex::default(),
                hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
                events,
                log: Mutex::new(crate::ratelog::RateLog::new(
                    crate::ratelog::LogLimit::default(),
                )),
            }),
        };
        me.refresh();
        if me.is_open() {
            tracing::warn!(target: "accounts",
                "No accounts, API tokens or web.token: anyone who reaches the dashboard may control the room. Add an admin: roomctl user add NAME --role admin");
        }
        me
    }

    /// Why `users.yaml` does not load, if it does not.
    pub fn problem(&self) -> Option<String> {
        self.refresh();
        self.inner.current.read().problem.clone()
    }

    /// The accounts file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// How long a session lasts at most (the cookie's `Max-Age`).
    pub fn session_max(&self) -> Duration {
        self.inner.config.session_max
    }

    /// Reads the file again if it changed on disk. A file that no longer
    /// parses keeps the last good accounts (and is reported in the log).
    fn refresh(&self) {
        let now = stamp(self.path());
        let unchanged =
            |c: &Current| c.stamp == now && c.problem.as_deref() != Some("not read yet");
        if unchanged(&self.inner.current.read()) {
            return;
        }
        let mut cur = self.inner.current.write();
        if unchanged(&cur) {
            return;
        }
        cur.stamp = now;
        match file::load(self.path()) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    crate::ratelog!(
                        self.inner.log,
                        warn,
                        "accounts",
                        "mode",
                        "{}: {w}",
                        self.path().display()
                    );
                }
                cur.file = loaded.file;
                cur.problem = None;
                tracing::debug!(target: "accounts", "Accounts read again from {} ({} users, {} tokens)",
                    self.path().display(), cur.file.users.len(), cur.file.tokens.len());
            }
            Err(e) => {
                crate::ratelog!(
                    self.inner.log,
                    error,
                    "accounts",
                    "broken",
                    "The accounts file does not load; the accounts last read stay in use (none, if it never loaded) until it is fixed:\n{e}"
                );
                cur.problem = Some(e.to_string());
            }
        }
    }

    fn with_file<T>(&self, f: impl FnOnce(&UsersFile) -> T) -> T {
        self.refresh();
        f(&self.inner.current.read().file)
    }

    /// No account, API token or `web.token` exists: everything is open.
    pub fn is_open(&self) -> bool {
        self.inner.config.web_token.is_none()
            && self.with_file(|f| f.users.is_empty() && f.tokens.is_empty())
            && self.inner.current.read().problem.is_none()
    }

    /// What a request without credentials may do.
    pub fn anonymous(&self) -> Option<Role> {
        if self.is_open() {
            Some(Role::Admin)
        } else {
            self.inner.config.anonymous
        }
    }

    /// The actor of a session cookie.
    pub fn session(&self, id: &str) -> Result<Actor, AuthError> {
        let now = Instant::now();
        let found = self.with_file(|f| {
            self.inner.sessions.lock().check(id, now, |user| {
                f.users.get(user).map(|u| (u.password.clone(), u.role))
            })
        });
        let (name, role) = found.ok_or(AuthError::SessionEnded)?;
        Ok(Actor::User { name, role })
    }

    /// The actor of a bearer token: an API token, or `web.token`. Every
    /// comparison takes the same time whatever matches.
    pub fn token(&self, presented: &str) -> Result<Actor, AuthError> {
        let hash = file::token_hash(presented);
        let mut found = None;
        self.with_file(|f| {
            for (name, t) in &f.tokens {
                if bool::from(t.sha256.as_bytes().ct_eq(hash.as_bytes())) {
                    found = Some(Actor::Token {
                        name: name.clone(),
                        role: t.role,
                    });
                }
            }
        });
        if let Some(t) = &self.inner.config.web_token
            && bool::from(presented.as_bytes().ct_eq(t.expose().as_bytes()))
        {
            found = Some(Actor::Token {
                name: "web.token".into(),
                role: self.inner.config.token_role,
            });
        }
        found.ok_or(AuthError::WrongToken)
    }

    /// Checks `user`'s `password` from `address`; on success a new session
    /// (its id and actor). Failures count against the user and the address.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<(String, Actor), LoginError> {
        if user.is_empty() {
            return Err(LoginError::Invalid("enter a user name".into()));
        }
        if user.len() > MAX_NAME {
            return Err(LoginError::Invalid(format!(
                "a user name is at most {MAX_NAME} characters"
            )));
        }
        if password.is_empty() {
            return Err(LoginError::Invalid("enter the password".into()));
        }
        if password.len() > MAX_PASSWORD {
            return Err(LoginError::Invalid(format!(
                "a password is at most {MAX_PASSWORD} bytes"
            )));
        }
        // What was typed, made harmless for the log.
        let typed: String = user.escape_debug().take(MAX_NAME).collect();
        let origin = dashboard_origin(&typed, &address.to_string());
        let now = Instant::now();
        let locked = [
            self.inner
                .by_user
                .lock()
                .locked(&user.to_string(), now)
                .map(|w| (format!("for {user}"), w)),
            self.inner
                .by_address
                .lock()
                .locked(&address, now)
                .map(|w| (format!("from {address}"), w)),
        ];
        // The longer wait; the user's when both are the same.
        if let Some((what, wait)) = locked
            .into_iter()
            .flatten()
            .reduce(|a, b| if b.1 > a.1 { b } else { a })
        {
            let e = LoginError::Locked { what, wait };
            self.audit(&origin, Some(&typed), "log in", Some(e.to_string()));
            return Err(e);
        }
        let stored = self.with_file(|f| f.users.get(user).cloned());
        let ok = {
            let _slot = self.inner.hashing.acquire().await;
            let (phc, pw) = (
                stored.as_ref().map(|u| u.password.clone()),
                password.to_string(),
            );
            tokio::task::spawn_blocking(move || match phc {
                Some(phc) => file::verify_password(&phc, &pw),
                None => {
                    // The same work for an unknown user: no timing tells.
                    file::verify_password(dummy_hash(), &pw);
                    false
                }
            })
            .await
            .unwrap_or(false)
        };
        let now = Instant::now();
        let Some(u) = stored.filter(|_| ok) else {
            self.inner.by_user.lock().failed(&user.to_string(), now);
            self.inner.by_address.lock().failed(&address, now);
            self.audit(
                &origin,
                Some(user),
                "log in",
                Some(LoginError::Wrong.to_string()),
            );
            return Err(LoginError::Wrong);
        };
        self.inner.by_user.lock().succeeded(&user.to_string());
        self.inner.by_address.lock().succeeded(&address);
        let id = file::new_session_id();
        self.inner
            .sessions
            .lock()
            .insert(id.clone(), user, &u.password, u.role, now);
        self.audit(&origin, Some(user), "log in", None);
        Ok((
            id,
            Actor::User {
                name: user.to_string(),
                role: u.role,
            },
        ))
    }

    /// Ends session `id`; the user it was, if it was one.
    pub fn logout(&self, id: &str, address: &str) {
        if let Ok(Actor::User { name, .. }) = self.session(id) {
            self.inner.sessions.lock().remove(id);
            self.audit(
                &dashboard_origin(&name, address),
                Some(&name),
                "log out",
                None,
            );
        }
    }

    /// Records a failed or refused attempt that is not a command (a wrong
    /// token, say) in the audit trail.
    fn audit(&self, origin: &str, who: Option<&str>, what: &str, refused: Option<String>) {
        self.inner.events.publish(Event::Action(ActionEvent {
            t: unix_now(),
            origin: origin.to_string(),
            who: who.map(|w| w.chars().take(MAX_NAME).collect()),
            what: what.to_string(),
            refused,
        }));
    }

    /// The users, by name.
    pub fn users(&self) -> Vec<UserView> {
        self.with_file(|f| {
            f.users
                .iter()
                .map(|(name, u)| UserView {
                    name: name.clone(),
                    role: u.role,
                    changed: u.changed.clone(),
                })
                .collect()
        })
    }

    /// The API tokens, by name.
    pub fn tokens(&self) -> Vec<TokenView> {
        self.with_file(|f| {
            f.tokens
                .iter()
                .map(|(name, t)| TokenView {
                    name: name.clone(),
                    role: t.role,
                    created: t.created.clone(),
                })
                .collect()
        })
    }

    /// Makes `change` to `users.yaml` (read fresh from disk first, so an
    /// edit made meanwhile by `roomctl user` is kept) and uses it at once;
    /// the changed user's sessions end.
    pub async fn change(&self, change: AccountChange) -> Result<AccountReply, AccountError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _one = me.inner.writing.lock();
            let reply = change_file(me.path(), &change)?;
            if let AccountChange::SetPassword { name, .. }
            | AccountChange::SetRole { name, .. }
            | AccountChange::RemoveUser { name } = &change
            {
                me.inner.sessions.lock().remove_user(name);
            }
            me.refresh();
            Ok(reply)
        })
        .await
        .map_err(|e| AccountError::File(format!("the change failed: {e}")))?
    }
}

/// How the audit trail names `name` at the dashboard from `address`: the
/// text of an [`Origin::Dashboard`], whatever the role.
fn dashboard_origin(name: &str, address: &str) -> String {
    let actor = Actor::User {
        name: name.to_string(),
        role: Role::Viewer,
    };
    Origin::dashboard(address, actor).to_string()
}

/// The accounts in the file at `path` (`roomctl user list`).
pub fn read(path: &Path) -> Result<UsersFile, Diagnostics> {
    file::load(path).map(|l| l.file)
}

/// Checks the accounts file at `path` (`roomctl check`): its mistakes with
/// their positions, or its warnings (a mode others can read).
pub fn check_file(path: &Path) -> Result<Diagnostics, Diagnostics> {
    let loaded = file::load(path)?;
    let mut warnings = Diagnostics::default();
    for w in loaded.warnings {
        warnings.push(crate::diag::Diagnostic::file(path, w));
    }
    Ok(warnings)
}

/// A hash to verify against when the user does not exist.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| file::hash_password("no such user, no such password"))
}

#[cfg(test)]
mod tests;
