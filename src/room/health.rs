//! The room's health (seed 001 `check_health`): `healthy`, `degraded` or
//! `unhealthy` with the reasons, worst first. Served by `/healthz` and
//! carried in the retained state, for `roomctl site`.

use serde::{Deserialize, Serialize};

use super::Room;
use crate::feedback::Outcome;
use crate::mqtt::{ConnectionState, unix_now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Seed 001 health levels.
pub enum HealthStatus {
    /// All is well.
    Healthy,
    /// Working, with problems a technician should look at.
    Degraded,
    /// Not doing its job (503).
    Unhealthy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
/// What `/healthz` answers.
pub struct Health {
    /// The level.
    pub status: HealthStatus,
    /// The reasons, worst first.
    pub issues: Vec<String>,
}

/// How many recent feedback results are looked at.
const RECENT_FEEDBACK: usize = 20;

impl Room {
    /// Works out the room's health now.
    pub fn health(&self) -> Health {
        health_of(self)
    }
}

/// Every check, unhealthy reasons first, then the degraded ones in the
/// order the checks run.
fn health_of(r: &Room) -> Health {
    let mut unhealthy = Vec::new();
    let mut degraded = Vec::new();
    if let Some(l) = r.estop.get() {
        degraded.push(format!(
            "E-stop latched (by {}): nothing starts until a technician resets it",
            l.by
        ));
    }
    connection(r, &mut unhealthy, &mut degraded);
    for check in [devices, feedback, media, storage, accounts] {
        check(r, &mut degraded);
    }
    degraded.extend(r.problems());
    degraded.extend(r.feedback_hint());

    let status = if !unhealthy.is_empty() {
        HealthStatus::Unhealthy
    } else if !degraded.is_empty() {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    unhealthy.extend(degraded);
    Health {
        status,
        issues: unhealthy,
    }
}

/// The broker connection, its subscriptions and its outbox.
fn connection(r: &Room, unhealthy: &mut Vec<String>, degraded: &mut Vec<String>) {
    let conn = r.mqtt.status();
    match conn.state {
        ConnectionState::Connected => {
            if let Some(i) = conn.broker_priority_index
                && i > 1
            {
                degraded.push(format!(
                    "using backup broker {i}/{} ({})",
                    conn.broker_count,
                    conn.broker.clone().unwrap_or_default()
                ));
            }
        }
        other => unhealthy.push(format!(
            "MQTT {}{}",
            other.as_str(),
            conn.last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )),
    }
    let stats = r.mqtt.stats();
    if conn.state == ConnectionState::Connected {
        // every_broker: a broker that is down is out of reach for its boards.
        for b in stats
            .brokers
            .iter()
            .filter(|b| b.connection_state != ConnectionState::Connected)
        {
            degraded.push(format!(
                "broker {} {}: boards on it are out of reach",
                b.broker,
                b.connection_state.as_str()
            ));
        }
        // Subscribed to nothing: no feedback, no control, no devices. The
        // SUBACKs take a moment after connecting.
        let settled = stats.subscriptions_refused.len() >= stats.subscriptions_wanted
            || unix_now() - conn.since > 2.0 * r.config.mqtt.ack_timeout.as_secs_f64();
        if stats.subscriptions_wanted > 0 && stats.subscriptions_active == 0 && settled {
            unhealthy.push(format!(
                "subscribed to nothing: the broker accepted none of {} subscription(s){}",
                stats.subscriptions_wanted,
                if stats.subscriptions_refused.is_empty() {
                    String::new()
                } else {
                    format!(" (refused: {})", stats.subscriptions_refused.join(", "))
                }
            ));
        } else if !stats.subscriptions_refused.is_empty() {
            degraded.push(format!(
                "the broker refused subscription(s) to {}",
                stats.subscriptions_refused.join(", ")
            ));
        }
        if let Some(d) = r.mqtt.stuck_for() {
            unhealthy.push(format!(
                "delivery stuck: {} message(s) waiting, none acknowledged for {:.1}s",
                stats.queue_size + stats.inflight,
                d.as_secs_f64()
            ));
        }
    }
    if conn.state == ConnectionState::Connected && stats.queue_size > 100 {
        degraded.push(format!(
            "{} messages waiting in the outbox",
            stats.queue_size
        ));
    }
}

/// Boards offline, stale, or a flood of unknown ids.
fn devices(r: &Room, degraded: &mut Vec<String>) {
    let devices = r.registry.counts();
    if devices.offline > 0 {
        degraded.push(format!("{} device(s) offline", devices.offline));
    }
    if devices.stale > 0 {
        degraded.push(format!("{} device(s) stale", devices.stale));
    }
    if let Some(n) = r.registry.ignored_recently() {
        degraded.push(format!(
            "{n} unknown device id(s) ignored (a flood of made-up ids, or devices missing from devices.known)"
        ));
    }
}

/// Commands that were not confirmed lately.
fn feedback(r: &Room, degraded: &mut Vec<String>) {
    let recent = r.feedback.history(RECENT_FEEDBACK);
    let bad = recent.iter().filter(|f| f.result != Outcome::Ok).count();
    if bad > 0 {
        degraded.push(format!(
            "{bad} of the last {} commands unconfirmed",
            recent.len()
        ));
    }
}

/// Audio and video outputs the config asks for.
fn media(r: &Room, degraded: &mut Vec<String>) {
    let media = r.media.status();
    if r.config.media.audio_enabled && !media.audio.device {
        degraded.push(format!(
            "no audio output ({})",
            media.audio.device_error.unwrap_or_else(|| "unknown".into())
        ));
    }
    if r.config.media.video_enabled && !media.video.running {
        degraded.push(format!(
            "video player not running ({})",
            media.video.error.unwrap_or_else(|| "not started".into())
        ));
    }
}

/// Writes that did not reach the card (full, read-only, worn out).
/// The accounts file: when it does not load, nobody can log in.
fn accounts(r: &Room, degraded: &mut Vec<String>) {
    if let Some(e) = r.accounts.problem() {
        degraded.push(format!(
            "the accounts file does not load, so the accounts last read stay in use (none, if it never loaded): {e}"
        ));
    }
}

fn storage(r: &Room, degraded: &mut Vec<String>) {
    // Writes that did not reach the card (full, read-only, worn out).
    if let Some(s) = &r.schedule
        && let Some(e) = s.unsaved()
    {
        degraded.push(format!(
            "the schedule is {} but that is not saved and would be lost on a restart: {e}",
            if s.paused() { "paused" } else { "running" }
        ));
    }
    if let Some((since, why)) = r.show_log.as_ref().and_then(|l| l.failing()) {
        degraded.push(format!(
            "the show log cannot be written (for {:.0}s): {why}",
            (unix_now() - since).max(0.0)
        ));
    }
}
