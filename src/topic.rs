//! MQTT topic names and filters: matching (`+`, `#`), validation of names
//! and filters, removal of overlapping subscriptions, the room's fixed
//! topics (DESIGN.md §1) and the feedback-topic derivation
//! (`room1/light` → `room1/status`). Every other module asks here instead
//! of splitting on `/` itself.

/// The MQTT limit on a topic's length in bytes (a two-byte length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Why a topic name or filter is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Zero-length topics are not allowed by MQTT.
    #[error("topic must not be empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("topic is {0} bytes long; MQTT allows at most 65535")]
    TooLong(usize),
    /// MQTT forbids U+0000 in topics.
    #[error("topic must not contain a NUL character")]
    Nul,
    /// A wildcard where a plain topic is needed (publishing).
    #[error("`{0}` contains a wildcard ('+' or '#'); a topic to publish on must be plain")]
    Wildcard(String),
    /// `#` not alone in the last level (`a/#/b`, `a#`).
    #[error("filter `{0}`: '#' must be the whole last level (like `room1/#`)")]
    MisplacedHash(String),
    /// `+` not alone in its level (`a+/b`).
    #[error("filter `{0}`: '+' must be a whole level (like `room1/+/status`)")]
    MisplacedPlus(String),
}

fn common_checks(t: &str) -> Result<(), TopicError> {
    if t.is_empty() {
        return Err(TopicError::Empty);
    }
    if t.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(t.len()));
    }
    if t.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Checks a topic to publish on: non-empty, no wildcards, no NUL, short
/// enough.
pub fn validate_name(topic: &str) -> Result<(), TopicError> {
    common_checks(topic)?;
    if is_filter(topic) {
        return Err(TopicError::Wildcard(short(topic)));
    }
    Ok(())
}

/// Checks a subscription filter: `#` only as the whole last level, `+` only
/// as a whole level.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    common_checks(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Err(TopicError::MisplacedHash(short(filter)));
        }
        if l.contains('+') && *l != "+" {
            return Err(TopicError::MisplacedPlus(short(filter)));
        }
    }
    Ok(())
}

/// Whether `s` contains a wildcard character.
pub fn is_filter(s: &str) -> bool {
    s.contains(['+', '#'])
}

/// Whether `s` can be one topic level that names something (a room, a
/// device, a scene): non-empty, no `/`, no wildcard, no control character.
pub fn is_plain_level(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#']) && !s.chars().any(char::is_control)
}

/// A topic for messages, shortened for error text.
fn short(t: &str) -> String {
    if t.len() <= 80 {
        t.to_string()
    } else {
        let cut = (0..=80).rev().find(|i| t.is_char_boundary(*i)).unwrap_or(0);
        format!("{}…", &t[..cut])
    }
}

/// MQTT filter matching: `+` is one level, `#` the rest (including none,
/// so `room1/#` matches `room1`). Wildcards at the first level never match
/// topics starting with `$` (broker-internal topics, MQTT 4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every topic that `specific` matches is also matched by
/// `general` (so subscribing to both would deliver messages twice).
pub fn covers(general: &str, specific: &str) -> bool {
    let mut g = general.split('/');
    let mut s = specific.split('/');
    loop {
        match (g.next(), s.next()) {
            (Some("#"), _) => return true,
            // Only `#` covers `#`.
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Removes duplicates and every filter another one already covers, keeping
/// first-seen order. Overlapping subscriptions make the broker deliver a
/// message once per match, and one `OK` must never confirm two commands.
pub fn without_overlaps<I: IntoIterator<Item = String>>(filters: I) -> Vec<String> {
    let all: Vec<String> = filters.into_iter().collect();
    let dropped = |i: usize| {
        all.iter()
            .enumerate()
            .any(|(j, g)| j != i && covers(g, &all[i]) && (!covers(&all[i], g) || j < i))
    };
    (0..all.len())
        .filter(|i| !dropped(*i))
        .map(|i| all[i].clone())
        .collect()
}

/// The fixed topics of DESIGN.md §1 for one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// The room id (`room1`).
    pub room: String,
}

impl Topics {
    /// The topics of room `room`.
    pub fn new(room: &str) -> Self {
        Topics {
            room: room.to_string(),
        }
    }
    /// `roomctl/ROOM/status`: retained `online`/`offline`, also the last will.
    pub fn daemon_status(&self) -> String {
        format!("roomctl/{}/status", self.room)
    }
    /// `roomctl/ROOM/state`: retained JSON summary.
    pub fn daemon_state(&self) -> String {
        format!("roomctl/{}/state", self.room)
    }
    /// `roomctl/ROOM/scene/start` = scene name.
    pub fn scene_start(&self) -> String {
        format!("roomctl/{}/scene/start", self.room)
    }
    /// `roomctl/ROOM/scene/stop`.
    pub fn scene_stop(&self) -> String {
        format!("roomctl/{}/scene/stop", self.room)
    }
    /// `roomctl/ROOM/estop`: the E-stop (any payload; latches).
    pub fn estop(&self) -> String {
        format!("roomctl/{}/estop", self.room)
    }
    /// `roomctl/ROOM/command/run` = command file name.
    pub fn command_run(&self) -> String {
        format!("roomctl/{}/command/run", self.room)
    }
    /// `roomctl/ROOM/schedule` = `pause` / `resume`.
    pub fn schedule_control(&self) -> String {
        format!("roomctl/{}/schedule", self.room)
    }
    /// Compatibility trigger: `ROOM/scene = START` starts the default scene.
    pub fn compat_scene(&self) -> String {
        format!("{}/scene", self.room)
    }
    /// Compatibility trigger: `ROOM/start_scene = NAME`.
    pub fn compat_start_scene(&self) -> String {
        format!("{}/start_scene", self.room)
    }
    /// `ROOM/STOP = STOP`: everything off.
    pub fn all_stop(&self) -> String {
        format!("{}/STOP", self.room)
    }
    /// Where ESP32s announce themselves (seed 004).
    pub const DEVICE_STATUS_FILTER: &'static str = "devices/+/status";
    /// Scene feedback of every room (seed 004).
    pub const STATUS_FILTER: &'static str = "+/status";
    /// Where devices say which command topics they answer (retained).
    pub const DEVICE_CHANNELS_FILTER: &'static str = "devices/+/channels";
}

/// `devices/<id>/channels` → `<id>`.
pub fn device_channels_id(topic: &str) -> Option<&str> {
    let id = topic.strip_prefix("devices/")?.strip_suffix("/channels")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// `devices/<id>/status` → `<id>`.
pub fn device_id(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("devices/")?;
    let id = rest.strip_suffix("/status")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The last level of a topic (`room1/light` → `light`): the channel.
pub fn channel(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

/// Where replies to a command arrive: a template such as `{prefix}/status`
/// (seed 004: `room1/light` → `room1/status`) or `{topic}/feedback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackTopic(String);

/// Why a feedback-topic template is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackTopicError {
    /// A `{...}` that is not one of the known placeholders.
    #[error(
        "feedback topic `{0}`: unknown placeholder (use {{prefix}}, {{topic}}, {{channel}} or {{room}})"
    )]
    Placeholder(String),
    /// The template itself would give an unusable topic.
    #[error("feedback topic `{template}`: {error}")]
    Topic {
        /// As written.
        template: String,
        /// What is wrong with the topics it gives.
        error: TopicError,
    },
}

impl FeedbackTopic {
    /// The seed 004 convention.
    pub const DEFAULT: &'static str = "{prefix}/status";
    /// What existing firmware of this kind answers on.
    pub const PER_TOPIC: &'static str = "{topic}/feedback";
    const PLACEHOLDERS: [&'static str; 4] = ["{prefix}", "{topic}", "{channel}", "{room}"];

    /// Validates a template.
    pub fn new(template: &str) -> Result<Self, FeedbackTopicError> {
        let mut rest = template.to_string();
        for p in Self::PLACEHOLDERS {
            rest = rest.replace(p, "");
        }
        if rest.contains(['{', '}']) {
            return Err(FeedbackTopicError::Placeholder(template.to_string()));
        }
        let t = FeedbackTopic(template.to_string());
        // What it gives for a typical command must be a plain topic.
        validate_name(&t.for_command("room/channel", "room")).map_err(|error| {
            FeedbackTopicError::Topic {
                template: template.to_string(),
                error,
            }
        })?;
        Ok(t)
    }

    /// As configured.
    pub fn template(&self) -> &str {
        &self.0
    }

    /// The feedback topic for a command topic: `room1/light` with
    /// `{prefix}/status` gives `room1/status`.
    pub fn for_command(&self, command_topic: &str, room: &str) -> String {
        let (prefix, channel) = match command_topic.rsplit_once('/') {
            Some((p, c)) => (p, c),
            None => ("", command_topic),
        };
        self.0
            .replace("{topic}", command_topic)
            .replace("{prefix}", prefix)
            .replace("{channel}", channel)
            .replace("{room}", room)
    }
}

impl Default for FeedbackTopic {
    fn default() -> Self {
        FeedbackTopic(Self::DEFAULT.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_topics() {
        assert!(matches("room1/button", "room1/button"));
        assert!(matches("room1/+", "room1/button"));
        assert!(matches("room1/#", "room1/a/b"));
        assert!(matches("room1/#", "room1"), "# also matches the parent");
        assert!(!matches("room1/+", "room1/a/b"));
        assert!(!matches("room1/button", "room1/buttons"));
        assert!(!matches("+/status", "$SYS/status"));
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    }

    #[test]
    fn filter_validation() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/status",
            "a/+/b",
            "devices/+/status",
            "a//b",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        assert!(matches!(
            validate_filter("a/#/b"),
            Err(TopicError::MisplacedHash(_))
        ));
        assert!(matches!(
            validate_filter("a#"),
            Err(TopicError::MisplacedHash(_))
        ));
        assert!(matches!(
            validate_filter("a+/b"),
            Err(TopicError::MisplacedPlus(_))
        ));
        assert_eq!(validate_filter(""), Err(TopicError::Empty));
        assert_eq!(validate_filter("a\0b"), Err(TopicError::Nul));
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            validate_filter(&long),
            Err(TopicError::TooLong(MAX_TOPIC_LEN + 1))
        );
        assert!(validate_filter(&"a".repeat(MAX_TOPIC_LEN)).is_ok());
    }

    #[test]
    fn name_validation() {
        assert_eq!(validate_name("room1/light"), Ok(()));
        assert!(matches!(
            validate_name("room1/+"),
            Err(TopicError::Wildcard(_))
        ));
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("x\0"), Err(TopicError::Nul));
    }

    #[test]
    fn coverage_between_filters() {
        assert!(covers("room1/#", "room1/light/feedback"));
        assert!(covers("room1/#", "room1/+/feedback"));
        assert!(covers("room1/#", "room1"));
        assert!(covers("+/status", "room1/status"));
        assert!(covers("#", "+/status"));
        assert!(!covers("room1/+", "room1/#"));
        assert!(!covers("room1/light", "room1/+"));
        assert!(!covers("+/status", "devices/+/status"));
        assert!(!covers("room1/#", "+/status"), "overlap is not coverage");
    }

    #[test]
    fn covered_filters_are_dropped_whatever_their_order() {
        let subs = without_overlaps(
            [
                "devices/+/status",
                "+/status",
                "room1/status",
                "room1/light/feedback",
                "room1/scene",
                "room1/#",
                "+/status",
            ]
            .map(String::from),
        );
        assert_eq!(subs, ["devices/+/status", "+/status", "room1/#"]);
        // Mutually covering filters keep the first one.
        assert_eq!(
            without_overlaps(["#".to_string(), "+/#".to_string()]),
            ["#"]
        );
    }

    #[test]
    fn feedback_topic_templates() {
        let t = FeedbackTopic::new("{prefix}/status").unwrap();
        assert_eq!(t.for_command("room1/light", "room1"), "room1/status");
        let t = FeedbackTopic::new("{topic}/feedback").unwrap();
        assert_eq!(
            t.for_command("room1/light", "room1"),
            "room1/light/feedback"
        );
        let t = FeedbackTopic::new("{room}/ack/{channel}").unwrap();
        assert_eq!(t.for_command("room1/motor", "room1"), "room1/ack/motor");
        assert!(matches!(
            FeedbackTopic::new("{nope}/status"),
            Err(FeedbackTopicError::Placeholder(_))
        ));
        assert!(matches!(
            FeedbackTopic::new("+/status"),
            Err(FeedbackTopicError::Topic { .. })
        ));
        assert!(matches!(
            FeedbackTopic::new(""),
            Err(FeedbackTopicError::Topic {
                error: TopicError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn device_ids_and_channels() {
        assert_eq!(device_id("devices/esp32_01/status"), Some("esp32_01"));
        assert_eq!(device_id("devices/a/b/status"), None);
        assert_eq!(device_id("devices//status"), None);
        assert_eq!(device_id("room1/status"), None);
        assert_eq!(channel("room1/light"), "light");
        assert_eq!(channel("light"), "light");
        assert!(is_plain_level("esp32_01"));
        for bad in ["a/b", "", "a\u{7}", "a+", "#"] {
            assert!(!is_plain_level(bad), "{bad:?}");
        }
    }
}
