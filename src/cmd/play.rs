//! `roomctl play SCENE`: connect, run one scene with feedback tracking,
//! print one line per action and result, and succeed only if every expected
//! confirmation arrived. Runs under its own client id and never touches the
//! room's status topic, so it can be used beside a running daemon.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::check;
use crate::config::secs3;
use crate::events::Event;
use crate::feedback::{FeedbackRecord, Outcome};
use crate::origin::Origin;
use crate::room::{Command, Role, Room};
use crate::scene::{EndReason, SceneEvent};

/// The tally of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Commands that expect a confirmation.
    pub expected: usize,
    /// Confirmed.
    pub ok: usize,
    /// Answered ERROR.
    pub error: usize,
    /// Not answered in time.
    pub timeout: usize,
    /// The scene reached its end.
    pub completed: bool,
}

impl Tally {
    /// Completed, and every expected confirmation arrived.
    pub fn success(&self) -> bool {
        self.completed && self.ok == self.expected && self.error == 0 && self.timeout == 0
    }
}

/// Plays `scene`; writes the report to `out`.
pub async fn play(
    path: &Path,
    scene: &str,
    json_lines: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Tally> {
    let mut report = check::check(path);
    let config = report.take_config(path)?;
    // A file name (`SceneV01.json`) names its scene too.
    let Some(scene) = report.scenes.resolve(scene).map(String::from) else {
        let names: Vec<_> = report.scenes.names().collect();
        let mut msg = format!("no scene named `{scene}` (scenes: {})", names.join(", "));
        if !report.errors.is_empty() {
            msg.push_str(&format!("\nproblems found:\n{}", report.errors));
        }
        bail!(msg);
    };
    for e in report.errors.iter().chain(report.warnings.iter()) {
        eprintln!("{e}");
    }
    let wait = config.mqtt.connection_timeout.min(Duration::from_secs(10));
    let stop_topic = config.topics().all_stop();
    let room = Room::start(config, report.scenes, Role::Player);
    if !room.mqtt.wait_connected(wait).await {
        let st = room.mqtt.status();
        room.shutdown(Role::Player).await;
        bail!(
            "no MQTT broker reachable within {:.0}s ({})",
            wait.as_secs_f64(),
            st.last_error.unwrap_or_else(|| "no answer".into())
        );
    }
    let result = report_run(&room, &scene, &stop_topic, json_lines, out).await;
    room.shutdown(Role::Player).await;
    result
}

async fn report_run(
    room: &Room,
    scene: &str,
    stop_topic: &str,
    json_lines: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Tally> {
    let mut events = room.events.subscribe();
    let t0 = Instant::now();
    let since = crate::mqtt::unix_now();
    room.apply(
        Origin::Cli { command: "play" },
        Command::StartScene(scene.to_string()),
    )
    .await
    .context("cannot start scene")?;
    let mut tally = Tally::default();
    let mut ended = false;
    let mut line = |t: Duration, text: String, j: serde_json::Value| -> std::io::Result<()> {
        if json_lines {
            let mut j = j;
            j["t"] = json!((t.as_secs_f64() * 1000.0).round() / 1000.0);
            writeln!(out, "{j}")
        } else {
            writeln!(out, "[{:>8}] {text}", secs3(t))
        }
    };
    loop {
        // Done when the scene has ended and every expected result has been
        // reported (results are counted from the bus, not the tracker, so
        // none is left unread).
        let reported = tally.ok + tally.error + tally.timeout;
        if ended && reported >= tally.expected {
            break;
        }
        let ev = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Err(_) if ended && room.feedback.pending_count() == 0 => {
                bail!("{} result(s) never arrived", tally.expected - reported)
            }
            Err(_) => continue,
            Ok(Err(RecvError::Lagged(n))) => bail!("report fell {n} events behind"),
            Ok(Err(RecvError::Closed)) => break,
            Ok(Ok(e)) => e,
        };
        let t = t0.elapsed();
        match ev {
            Event::Scene(SceneEvent::Action {
                scene: s,
                kind,
                topic,
                message,
                feedback,
                ..
            }) if s == scene => {
                let what = if kind == "mqtt" { "sent" } else { "local" };
                if feedback {
                    tally.expected += 1;
                }
                line(
                    t,
                    format!("{what:<8} {topic} = {message}"),
                    json!({"event": what, "kind": kind, "topic": topic, "message": message, "feedback": feedback}),
                )?;
            }
            Event::Feedback(f) if f.scene.as_deref() == Some(scene) => {
                match f.result {
                    Outcome::Ok => tally.ok += 1,
                    Outcome::Error => tally.error += 1,
                    Outcome::Timeout => tally.timeout += 1,
                }
                line(
                    t,
                    feedback_text(&f),
                    json!({
                        "event": format!("{:?}", f.result).to_lowercase(),
                        "topic": f.command_topic, "message": f.message,
                        "latency": f.latency, "timeout": f.timeout, "reply": f.reply,
                    }),
                )?;
            }
            Event::Scene(SceneEvent::Ended {
                scene: s, reason, ..
            }) if s == scene => {
                ended = true;
                tally.completed = reason == EndReason::Completed;
                line(
                    t,
                    format!("{:<8} {stop_topic} = STOP", "sent"),
                    json!({"event": "sent", "kind": "mqtt", "topic": stop_topic, "message": "STOP", "feedback": false}),
                )?;
                line(
                    t,
                    format!("{:<8} {reason}", "end"),
                    json!({"event": "end", "reason": reason}),
                )?;
            }
            _ => {}
        }
    }
    let t = t0.elapsed();
    if tally.expected > 0
        && tally.timeout == tally.expected
        && let Some(hint) = room.feedback.diagnose(scene, since)
    {
        line(
            t,
            format!("{:<8} {hint}", "hint"),
            json!({"event": "hint", "text": hint}),
        )?;
    }
    line(
        t,
        format!(
            "{scene}: {} expected, {} OK, {} TIMEOUT, {} ERROR -> {}",
            tally.expected,
            tally.ok,
            tally.timeout,
            tally.error,
            if tally.success() { "PASS" } else { "FAIL" }
        ),
        json!({"event": "summary", "scene": scene, "expected": tally.expected, "ok": tally.ok,
               "timeout": tally.timeout, "error": tally.error, "completed": tally.completed,
               "success": tally.success()}),
    )?;
    Ok(tally)
}

fn feedback_text(f: &FeedbackRecord) -> String {
    let lat = |l: Option<f64>| secs3(Duration::from_secs_f64(l.unwrap_or(0.0)));
    match f.result {
        Outcome::Ok => format!("{:<8} {} ({})", "OK", f.command_topic, lat(f.latency)),
        Outcome::Error => format!(
            "{:<8} {} ({}, reply {})",
            "ERROR",
            f.command_topic,
            lat(f.latency),
            f.reply.as_deref().unwrap_or("")
        ),
        Outcome::Timeout => format!(
            "{:<8} {} (>{})",
            "TIMEOUT",
            f.command_topic,
            secs3(Duration::from_secs_f64(f.timeout))
        ),
    }
}
