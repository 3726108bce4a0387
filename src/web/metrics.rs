//! `GET /metrics`: Prometheus text format (version 0.0.4).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::mqtt::{ConnectionState, unix_now};

struct Out {
    text: String,
    room: String,
}

impl Out {
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
        let _ = writeln!(self.text, "# HELP roomctl_{name} {help}");
        let _ = writeln!(self.text, "# TYPE roomctl_{name} {kind}");
        for (labels, v) in samples {
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(
                self.text,
                "roomctl_{name}{{room=\"{}\"{sep}{labels}}} {v}",
                self.room
            );
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.metric(name, kind, help, &[("", v)]);
    }
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let r = &s.room;
    let mut o = Out {
        text: String::new(),
        room: r.config.room.replace(['"', '\\', '\n'], "_"),
    };
    mqtt_families(&mut o, &r.mqtt.stats(), &r.mqtt.status());
    room_families(&mut o, r, s.sse.len());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o.text,
    )
}

/// `roomctl_mqtt_*`: the connection, the outbox and the counters.
fn mqtt_families(o: &mut Out, st: &crate::mqtt::Stats, conn: &crate::mqtt::ConnectionStatus) {
    let states = [
        ConnectionState::Disconnected,
        ConnectionState::Connecting,
        ConnectionState::Connected,
        ConnectionState::Reconnecting,
        ConnectionState::Failed,
    ];
    let labels: Vec<String> = states
        .iter()
        .map(|x| format!("state=\"{}\"", x.as_str()))
        .collect();
    let samples: Vec<(&str, f64)> = states
        .iter()
        .zip(&labels)
        .map(|(x, l)| (l.as_str(), f64::from(u8::from(*x == conn.state))))
        .collect();
    o.metric(
        "mqtt_connection_state",
        "gauge",
        "1 for the current connection state",
        &samples,
    );
    o.one(
        "mqtt_broker_priority_index",
        "gauge",
        "1-based priority of the broker in use, 0 when none",
        conn.broker_priority_index.unwrap_or(0) as f64,
    );
    for (name, help, v) in st.counts.metrics() {
        o.one(name, "counter", help, v as f64);
    }
    o.one(
        "mqtt_queue_size",
        "gauge",
        "messages waiting in the outbox",
        st.queue_size as f64,
    );
    o.one(
        "mqtt_inflight",
        "gauge",
        "messages sent and not yet acknowledged",
        st.inflight as f64,
    );
    o.one(
        "mqtt_subscriptions_active",
        "gauge",
        "filters the broker has accepted",
        st.subscriptions_active as f64,
    );
    o.one(
        "mqtt_subscriptions_refused",
        "gauge",
        "filters the broker refused",
        st.subscriptions_refused.len() as f64,
    );
    o.one(
        "mqtt_consecutive_failures",
        "gauge",
        "failed connection rounds in a row",
        f64::from(st.consecutive_failures),
    );
}

/// Feedback, devices, scenes and what else the room reports.
fn room_families(o: &mut Out, r: &crate::room::Room, sse_clients: usize) {
    let c = |n: u64| n as f64;
    let f = r.feedback.stats();
    o.metric(
        "feedback_total",
        "counter",
        "feedback results",
        &[
            ("result=\"ok\"", c(f.ok)),
            ("result=\"error\"", c(f.error)),
            ("result=\"timeout\"", c(f.timeout)),
        ],
    );
    o.one(
        "feedback_unmatched_total",
        "counter",
        "replies with no pending command",
        c(f.unmatched),
    );
    o.one(
        "feedback_invalid_total",
        "counter",
        "payloads on feedback topics that are not replies",
        c(f.invalid),
    );
    o.one(
        "feedback_elsewhere_total",
        "counter",
        "replies on the feedback topic form feedback.topic does not use",
        c(f.elsewhere),
    );
    o.one(
        "feedback_pending",
        "gauge",
        "commands waiting for confirmation",
        f.pending as f64,
    );
    o.one(
        "feedback_latency_seconds_avg",
        "gauge",
        "average confirmation latency",
        f.avg_latency.unwrap_or(0.0),
    );
    o.one(
        "feedback_latency_seconds_max",
        "gauge",
        "largest confirmation latency",
        f.max_latency.unwrap_or(0.0),
    );

    let d = r.registry.counts();
    o.metric(
        "devices",
        "gauge",
        "known devices by presence",
        &[
            ("presence=\"online\"", d.online as f64),
            ("presence=\"offline\"", d.offline as f64),
            ("presence=\"stale\"", d.stale as f64),
        ],
    );
    o.one(
        "devices_unknown_ignored_total",
        "counter",
        "unknown device ids ignored (devices.known_only) or forgotten to make room",
        d.unknown_ignored as f64,
    );
    o.one(
        "web_sse_clients",
        "gauge",
        "open event streams (dashboards)",
        sse_clients as f64,
    );
    o.one(
        "scene_running",
        "gauge",
        "1 while a scene plays",
        f64::from(u8::from(r.scenes.is_running())),
    );
    o.one(
        "stops_coalesced_total",
        "counter",
        "repeated ROOM/STOP requests dropped (nothing was sent since the last STOP)",
        c(r.stops_coalesced()),
    );
    let refused = r.control_refused.counts();
    let labels: Vec<String> = refused
        .iter()
        .map(|(l, _)| format!("reason=\"{l}\""))
        .collect();
    let samples: Vec<(&str, f64)> = labels
        .iter()
        .zip(&refused)
        .map(|(l, (_, n))| (l.as_str(), *n as f64))
        .collect();
    o.metric(
        "control_refused_total",
        "counter",
        "control messages from the broker refused for their signature (control.key)",
        &samples,
    );
    o.one(
        "reloads_total",
        "counter",
        "reloads run (requests arriving during one share the next)",
        c(r.reloads_run()),
    );
    o.one(
        "uptime_seconds",
        "gauge",
        "seconds since start",
        unix_now() - r.started,
    );
}
