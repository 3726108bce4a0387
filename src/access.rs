//! Who may do what: the four roles, each with fixed rights that include the
//! rights of the roles below it, and the [`Actor`] a request was made by.
//! What each command needs is the room's `Command::needs`; what each
//! HTTP route needs is the web edge's rule table. A model: it imports
//! nothing of the crate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role. Ordered: every role may do what the roles before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything: status, devices, scenes, schedule, show log.
    Viewer,
    /// Also starts and stops shows, the panic stop, pauses and resumes
    /// the schedule, runs command files. The front desk.
    Operator,
    /// Also manual control, device tests, volume, media, reload (and the
    /// scene studio and media library). The technician.
    Technician,
    /// Also users and API tokens.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Technician, Role::Admin];

    /// The role's name as written in `users.yaml` and the config.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Technician => "technician",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (viewer, operator, technician or admin)")]
pub struct NotARole(pub String);

impl std::str::FromStr for Role {
    type Err = NotARole;

    /// Exactly one of the four names, lower case.
    fn from_str(s: &str) -> Result<Role, NotARole> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| NotARole(s.chars().take(32).collect()))
    }
}

/// Who made a request to the dashboard or the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, logged in with an account of `users.yaml`.
    User {
        /// The account's name.
        name: String,
        /// Its role.
        role: Role,
    },
    /// An API token (the site page, a script, Home Assistant), or the
    /// config's `web.token`, which is named `web.token`.
    Token {
        /// The token's name.
        name: String,
        /// Its role.
        role: Role,
    },
    /// No credentials: what `web.anonymous` allows (everything, while no
    /// account, API token or `web.token` exists).
    Anonymous {
        /// What a request without credentials may do.
        role: Role,
    },
}

impl Actor {
    /// What the actor may do.
    pub fn role(&self) -> Role {
        match self {
            Actor::User { role, .. } | Actor::Token { role, .. } | Actor::Anonymous { role } => {
                *role
            }
        }
    }

    /// The person or token, for the audit trail (`None` for anonymous).
    pub fn who(&self) -> Option<String> {
        match self {
            Actor::User { name, .. } => Some(name.clone()),
            Actor::Token { name, .. } => Some(format!("token {name}")),
            Actor::Anonymous { .. } => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.who() {
            Some(w) => f.write_str(&w),
            None => f.write_str("anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_read_back_exactly() {
        assert!(Role::Viewer < Role::Operator);
        assert!(Role::Operator < Role::Technician);
        assert!(Role::Technician < Role::Admin);
        for r in Role::ALL {
            assert_eq!(r.name().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
        assert_eq!(
            "Admin".parse::<Role>().unwrap_err().to_string(),
            "`Admin` is not a role (viewer, operator, technician or admin)"
        );
        assert!(" operator".parse::<Role>().is_err());
    }

    #[test]
    fn actors_name_who_they_are() {
        let u = Actor::User {
            name: "alice".into(),
            role: Role::Operator,
        };
        let t = Actor::Token {
            name: "site".into(),
            role: Role::Viewer,
        };
        let a = Actor::Anonymous { role: Role::Viewer };
        assert_eq!((u.to_string(), u.role()), ("alice".into(), Role::Operator));
        assert_eq!(t.to_string(), "token site");
        assert_eq!((a.to_string(), a.who()), ("anonymous".into(), None));
    }
}
