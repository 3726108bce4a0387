//! What a board answers on a feedback topic: `OK`, `ERROR`, `ACTIVE`,
//! `INACTIVE` (any case) or the JSON form naming the command it confirms.

use serde::Deserialize;

/// Why a payload on a feedback topic is not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Starts like JSON but is not the JSON form.
    #[error("bad JSON reply: {0}")]
    BadJson(String),
    /// The JSON form with a status we do not know.
    #[error("unknown status {0:?} in JSON reply")]
    UnknownStatus(String),
    /// Neither a known word nor JSON (shortened).
    #[error("unrecognised reply {0:?} (expected OK, ERROR, ACTIVE, INACTIVE or JSON)")]
    Unrecognised(String),
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What it says.
    pub status: ReplyStatus,
    /// The command topic it confirms (JSON form only).
    pub topic: Option<String>,
    /// The command message it confirms (JSON form only).
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The status word of a reply.
pub enum ReplyStatus {
    /// `OK`.
    Ok,
    /// `ERROR`.
    Error,
    /// Confirms an `ON` command.
    Active,
    /// Confirms an `OFF` command.
    Inactive,
}

impl Reply {
    /// `OK`, `ERROR`, `ACTIVE`, `INACTIVE` (any case) or
    /// `{"status":"OK","topic":"room1/light"}`.
    pub fn parse(payload: &str) -> Result<Reply, ReplyError> {
        let p = payload.trim();
        if p.starts_with('{') {
            #[derive(Deserialize)]
            struct J {
                status: String,
                topic: Option<String>,
                message: Option<String>,
            }
            let j: J = serde_json::from_str(p).map_err(|e| ReplyError::BadJson(e.to_string()))?;
            let status = ReplyStatus::parse(&j.status)
                .ok_or_else(|| ReplyError::UnknownStatus(j.status.chars().take(40).collect()))?;
            return Ok(Reply {
                status,
                topic: j.topic,
                message: j.message,
            });
        }
        ReplyStatus::parse(p)
            .map(|status| Reply {
                status,
                topic: None,
                message: None,
            })
            .ok_or_else(|| ReplyError::Unrecognised(p.chars().take(40).collect()))
    }

    /// Whether it can confirm the command `message` sent on `topic`.
    pub(super) fn accepts(&self, topic: &str, message: &str) -> bool {
        if self.topic.as_ref().is_some_and(|t| t != topic) {
            return false;
        }
        if self.message.as_ref().is_some_and(|m| m != message) {
            return false;
        }
        match self.status {
            ReplyStatus::Active => is_command(message, "ON"),
            ReplyStatus::Inactive => is_command(message, "OFF"),
            ReplyStatus::Ok | ReplyStatus::Error => true,
        }
    }
}

impl ReplyStatus {
    fn parse(s: &str) -> Option<ReplyStatus> {
        let s = s.trim();
        [
            ("OK", ReplyStatus::Ok),
            ("ERROR", ReplyStatus::Error),
            ("ACTIVE", ReplyStatus::Active),
            ("INACTIVE", ReplyStatus::Inactive),
        ]
        .into_iter()
        .find(|(k, _)| s.eq_ignore_ascii_case(k))
        .map(|(_, v)| v)
    }
}

/// `ON` or `ON:…` (motor commands carry arguments: `ON:50:L`).
fn is_command(message: &str, word: &str) -> bool {
    let m = message.trim();
    m.eq_ignore_ascii_case(word)
        || m.get(..word.len() + 1)
            .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{word}:")))
}
