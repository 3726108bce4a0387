//! What the tracker answers: a result's log line, what one reply did,
//! a tracked command, and the counters.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use super::ReplyError;
use crate::config::secs3;
use crate::events::{FeedbackRecord, Outcome};

impl FeedbackRecord {
    /// The seed 004 log line.
    pub fn log_line(&self) -> String {
        match (self.result, self.latency) {
            (Outcome::Timeout, _) => format!(
                "Feedback TIMEOUT: {} (>{})",
                self.command_topic,
                secs3(Duration::from_secs_f64(self.timeout))
            ),
            (o, l) => format!(
                "Feedback {}: {} ({})",
                if o == Outcome::Ok { "OK" } else { "ERROR" },
                self.command_topic,
                secs3(Duration::from_secs_f64(l.unwrap_or(0.0)))
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
/// Counters of the tracker.
pub struct FeedbackStats {
    /// Confirmed commands.
    pub ok: u64,
    /// Commands answered ERROR.
    pub error: u64,
    /// Commands not answered in time.
    pub timeout: u64,
    /// Replies with no pending command to confirm.
    pub unmatched: u64,
    /// Payloads on a feedback topic that are not a reply at all.
    pub invalid: u64,
    /// Replies on the other feedback topic form (`room1/light/feedback`
    /// while `feedback.topic` says `room1/status`, or the reverse): a
    /// likely misconfiguration.
    pub elsewhere: u64,
    /// Replies heard on another broker than their command went to (a
    /// bridge's copy, `every_broker`): they confirm nothing.
    pub other_broker: u64,
    /// Commands waiting now.
    pub pending: usize,
    /// Mean confirmation latency, seconds.
    pub avg_latency: Option<f64>,
    /// Largest confirmation latency, seconds.
    pub max_latency: Option<f64>,
}

/// What a reply on a feedback topic did.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// The topic is not a feedback topic.
    NotFeedback,
    /// A pending command was confirmed (or failed).
    Confirmed(FeedbackRecord),
    /// A valid reply but nothing waiting for it.
    Unmatched,
    /// Not `OK`/`ERROR`/`ACTIVE`/`INACTIVE` or the JSON form.
    Invalid(ReplyError),
    /// A reply on the feedback topic form `feedback.topic` does not use
    /// (counted; it confirms nothing).
    Elsewhere {
        /// The command topic it answers.
        command_topic: String,
        /// Where `feedback.topic` expects the reply.
        expected: String,
    },
}

/// A tracked command: its id and where its result will arrive.
pub struct Tracked {
    /// Unique per tracker.
    pub id: u64,
    /// Where the reply is expected.
    pub feedback_topic: String,
    /// Resolves with the result.
    pub result: oneshot::Receiver<FeedbackRecord>,
}
