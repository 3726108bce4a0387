//! Who asked the room to act: the one vocabulary the show log, the logs and
//! the event stream use for it, so a start from the dashboard reads the same
//! in all three. A model: it imports nothing of the crate.

use std::fmt;

use serde::{Serialize, Serializer};

/// Where a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The dashboard or the JSON API, from this peer address.
    Dashboard {
        /// The peer's address (`ip` or `ip:port`).
        address: String,
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
    /// The dashboard or API at `address`.
    pub fn dashboard(address: impl Into<String>) -> Self {
        Origin::Dashboard {
            address: address.into(),
        }
    }

    /// A control topic.
    pub fn mqtt(topic: impl Into<String>) -> Self {
        Origin::Mqtt {
            topic: topic.into(),
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
            Origin::Dashboard { address } => write!(f, "dashboard ({address})"),
            Origin::Schedule { what } => write!(f, "schedule ({what})"),
            Origin::Trigger { topic } => write!(f, "trigger {topic}"),
            Origin::Mqtt { topic } => write!(f, "MQTT {topic}"),
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
        let cases = [
            (Origin::dashboard("10.0.0.7"), "dashboard (10.0.0.7)"),
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
