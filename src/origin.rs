//! Who asked the room to act: the one vocabulary the show log, the logs and
//! the event stream use for it, so a start from the dashboard reads the same
//! in all three. A model: it imports only the access model.

use std::fmt;

use crate::access::{Actor, Role};

use serde::{Serialize, Serializer};

/// Where a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The dashboard or the JSON API, from this peer address.
    Dashboard {
        /// The peer's address (`ip` or `ip:port`).
        address: String,
        /// Who was logged in (or whose token it was).
        actor: Actor,
    },
    /// The opening-hours schedule.
    Schedule {
        /// What was due: `show`, `opening scene`, `closing scene`.
        what: &'static str,
    },
    /// A configured trigger matched a message on this topic.
    Trigger {
        /// The message's topic.
        topic: String,
    },
    /// A message on one of the room's control topics.
    Mqtt {
        /// The control topic.
        topic: String,
        /// Who signed it (with `control.key` set), as the sender named
        /// itself: `desk` for a site page user, say.
        by: Option<String>,
    },
    /// A `roomctl` subcommand (`play`, `demo`) in this process.
    Cli {
        /// The subcommand.
        command: &'static str,
    },
    /// A signal to the daemon (`SIGHUP` reloads).
    Signal {
        /// The signal's name.
        name: &'static str,
    },
}

impl Origin {
    /// The dashboard or API at `address`, used by `actor`.
    pub fn dashboard(address: impl Into<String>, actor: Actor) -> Self {
        Origin::Dashboard {
            address: address.into(),
            actor,
        }
    }

    /// What this origin may do. People and tokens have their role; the
    /// schedule, triggers and control topics act as an operator would
    /// (they start and stop shows); the CLI and signals come from whoever
    /// runs the daemon, and so may do everything.
    pub fn role(&self) -> Role {
        match self {
            Origin::Dashboard { actor, .. } => actor.role(),
            Origin::Schedule { .. } | Origin::Trigger { .. } | Origin::Mqtt { .. } => {
                Role::Operator
            }
            Origin::Cli { .. } | Origin::Signal { .. } => Role::Admin,
        }
    }

    /// The person or token behind it, for the audit trail.
    pub fn who(&self) -> Option<String> {
        match self {
            Origin::Dashboard { actor, .. } => actor.who(),
            Origin::Mqtt { by, .. } => by.clone(),
            _ => None,
        }
    }

    /// A control topic.
    pub fn mqtt(topic: impl Into<String>) -> Self {
        Origin::Mqtt {
            topic: topic.into(),
            by: None,
        }
    }

    /// A trigger on `topic`.
    pub fn trigger(topic: impl Into<String>) -> Self {
        Origin::Trigger {
            topic: topic.into(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Dashboard { address, actor } => match actor.who() {
                Some(who) => write!(f, "{who} (dashboard {address})"),
                None => write!(f, "dashboard ({address})"),
            },
            Origin::Schedule { what } => write!(f, "schedule ({what})"),
            Origin::Trigger { topic } => write!(f, "trigger {topic}"),
            Origin::Mqtt { topic, by: None } => write!(f, "MQTT {topic}"),
            Origin::Mqtt {
                topic,
                by: Some(by),
            } => write!(f, "{by} (MQTT {topic}, signed)"),
            Origin::Cli { command } => write!(f, "CLI (roomctl {command})"),
            Origin::Signal { name } => f.write_str(name),
        }
    }
}

/// Events and records carry the origin as its text.
impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_reads_the_same_way() {
        let anonymous = Actor::Anonymous { role: Role::Admin };
        let alice = Actor::User {
            name: "alice".into(),
            role: Role::Operator,
        };
        let cases = [
            (
                Origin::dashboard("10.0.0.7", anonymous),
                "dashboard (10.0.0.7)",
            ),
            (
                Origin::dashboard("10.0.0.7", alice),
                "alice (dashboard 10.0.0.7)",
            ),
            (Origin::Schedule { what: "show" }, "schedule (show)"),
            (Origin::trigger("room1/button"), "trigger room1/button"),
            (
                Origin::mqtt("roomctl/room1/scene/start"),
                "MQTT roomctl/room1/scene/start",
            ),
            (Origin::Cli { command: "play" }, "CLI (roomctl play)"),
            (Origin::Signal { name: "SIGHUP" }, "SIGHUP"),
        ];
        for (o, text) in cases {
            assert_eq!(o.to_string(), text);
            assert_eq!(serde_json::to_value(&o).unwrap(), text);
        }
    }
}
