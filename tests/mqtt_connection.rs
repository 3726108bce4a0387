//! The connection supervisor against real Mosquitto brokers.

mod common;

use std::time::Duration;

use common::*;
use roomctl::broker::Mosquitto;
use roomctl::mqtt::{self, ConnectionState, OwnMessage, PublishOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn publishes_and_receives_through_a_real_broker() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_obs, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    let (h, _rx) = mqtt::start(settings("pub", &[b.port()]), cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    h.publish("room1/light", "ON", PublishOptions::cue(Duration::from_secs(5)));
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, "room1/light");
    assert_eq!(text(&got[0]), "ON");
    // The PUBACK is counted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = h.stats();
    assert_eq!(st.messages_published, 1);
    assert_eq!(st.total_connections, 1);
    assert_eq!(st.connection_state, ConnectionState::Connected);
    cancel.cancel();
}

#[tokio::test]
async fn fails_over_to_backup_and_resends_without_losing_messages() {
    init_logs();
    let mut primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_o1, mut on_primary) = observer(primary.port(), "seq/#", &cancel).await;
    let (_o2, mut on_backup) = observer(backup.port(), "seq/#", &cancel).await;

    let (h, _rx) = mqtt::start(
        settings("failover-pub", &[primary.port(), backup.port()]),
        cancel.child_token(),
    );
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(h.status().broker_priority_index, Some(1));

    // 10 Hz, as in seed 003; kill the primary in the middle.
    for i in 0..60u32 {
        if i == 30 {
            primary.kill();
        }
        h.publish(format!("seq/{i}"), i.to_string(), PublishOptions::cue(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(h.status().broker_priority_index, Some(2));

    let mut all: std::collections::BTreeSet<u32> = Default::default();
    for m in collect_until(&mut on_primary, Duration::from_millis(300), |_| false).await {
        all.insert(text(&m).parse().unwrap());
    }
    let from_backup = collect_until(&mut on_backup, Duration::from_secs(5), |g| {
        g.iter().any(|m| text(m) == "59")
    })
    .await;
    for m in &from_backup {
        all.insert(text(m).parse().unwrap());
    }
    let missing: Vec<u32> = (0..60).filter(|i| !all.contains(i)).collect();
    assert!(missing.is_empty(), "lost messages: {missing:?}");
    let st = h.stats();
    assert_eq!(st.failovers, 1);
    assert_eq!(st.messages_failed + st.messages_expired + st.messages_dropped, 0);
    cancel.cancel();
}

#[tokio::test]
async fn last_will_and_birth_are_retained() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let mut s = settings("lwt-client", &[b.port()]);
    s.will = Some(OwnMessage::retained("roomctl/room1/status", "offline"));
    s.birth = Some(OwnMessage::retained("roomctl/room1/status", "online"));
    let client_cancel = CancellationToken::new();
    let (h, _rx) = mqtt::start(s, client_cancel.clone());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (_o, mut seen) = observer(b.port(), "roomctl/room1/status", &cancel).await;
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| !g.is_empty()).await;
    assert_eq!(text(&got[0]), "online");
    assert!(got[0].retain);

    // Dropping the connection without DISCONNECT makes the broker publish the will.
    client_cancel.cancel();
    let got = collect_until(&mut seen, Duration::from_secs(8), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1, "no last will seen");
    assert_eq!(text(&got[0]), "offline");
    cancel.cancel();
}
