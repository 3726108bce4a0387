//! The connection supervisor against real Mosquitto brokers.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::mqtt::{ConnectionState, OwnMessage, PublishOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn publishes_and_receives_through_a_real_broker() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_obs, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    let (h, _rx) = mqtt_start(settings("pub", &[b.port()]), cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    h.publish(
        "room1/light",
        "ON",
        PublishOptions::cue(Duration::from_secs(5)),
    )
    .unwrap();
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, "room1/light");
    assert_eq!(text(&got[0]), "ON");
    // The PUBACK is counted.
    eventually(Duration::from_secs(2), "the PUBACK", || {
        h.stats().counts.messages_published == 1
    })
    .await;
    let st = h.stats();
    assert_eq!(st.counts.messages_published, 1);
    assert_eq!(st.counts.total_connections, 1);
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

    let (h, _rx) = mqtt_start(
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
        h.publish(
            format!("seq/{i}"),
            i.to_string(),
            PublishOptions::cue(Duration::from_secs(5)),
        )
        .unwrap();
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
    assert_eq!(st.counts.failovers, 1);
    assert_eq!(
        st.counts.messages_failed + st.counts.messages_expired + st.counts.messages_dropped,
        0
    );
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
    let (h, _rx) = mqtt_start(s, client_cancel.clone());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    eventually(
        Duration::from_secs(2),
        "the birth message acknowledged",
        || h.stats().counts.messages_published >= 1,
    )
    .await;

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

#[tokio::test]
async fn a_hung_broker_is_declared_dead_after_the_ack_timeout() {
    init_logs();
    let primary = Mosquitto::start().await.unwrap();
    let backup = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_o, mut on_backup) = observer(backup.port(), "room1/#", &cancel).await;
    let (h, _rx) = mqtt_start(
        settings("ack-timeout", &[primary.port(), backup.port()]),
        cancel.child_token(),
    );
    assert!(h.wait_connected(Duration::from_secs(5)).await);

    primary.freeze();
    let sent = tokio::time::Instant::now();
    h.publish(
        "room1/light",
        "ON",
        PublishOptions::cue(Duration::from_secs(5)),
    )
    .unwrap();
    let got = collect_until(&mut on_backup, Duration::from_secs(5), |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1, "the cue was not resent to the backup");
    assert_eq!(text(&got[0]), "ON");
    assert!(
        sent.elapsed() >= Duration::from_millis(500),
        "failed over before the ack timeout"
    );
    let st = h.stats();
    assert_eq!(st.counts.ack_timeouts, 1);
    assert_eq!(st.counts.failovers, 1);
    assert_eq!(h.status().broker_priority_index, Some(2));
    primary.thaw();
    cancel.cancel();
}

#[tokio::test]
async fn stale_cues_are_dropped_while_state_is_delivered_late() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    // Watching the broker before the client reaches it: a cue sent late
    // would be seen.
    let (_o, mut seen) = observer(b.port(), "#", &cancel).await;
    // The client's first broker accepts TCP and never answers, so the
    // client reaches the real one only after connection_timeout (600 ms),
    // when the cue (max age 300 ms) is stale.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let mut s = settings("stale", &[hole_port, b.port()]);
    s.connection_timeout = Duration::from_millis(600);
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    h.publish(
        "room1/light",
        "ON",
        PublishOptions::cue(Duration::from_millis(300)),
    )
    .unwrap();
    h.publish(
        "roomctl/room1/state",
        "{}",
        PublishOptions::retained_state(),
    )
    .unwrap();
    assert_eq!(h.stats().queue_size, 2);
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(h.status().broker_priority_index, Some(2));
    // Both were queued in this order: had the cue gone out, it would
    // arrive before the state.
    let got = collect_until(&mut seen, Duration::from_secs(3), |g| {
        g.iter().any(|m| m.topic == "roomctl/room1/state")
    })
    .await;
    let topics: Vec<_> = got.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        ["roomctl/room1/state"],
        "the stale cue must not be sent late"
    );
    assert_eq!(h.stats().counts.messages_expired, 1);
    cancel.cancel();
}

#[tokio::test]
async fn gives_up_into_failed_then_recovers_when_a_broker_appears() {
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let cancel = CancellationToken::new();
    let mut s = settings("failed-state", &[port]);
    s.backoff.max_retries = 2;
    s.backoff.initial = Duration::from_millis(50);
    s.backoff.max = Duration::from_millis(200);
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    let mut w = h.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.state == ConnectionState::Failed),
    )
    .await
    .expect("never reached FAILED")
    .unwrap();
    assert!(h.stats().consecutive_failures >= 2);
    assert!(h.stats().counts.failed_connections >= 2);

    let _b = Mosquitto::start_on(port).await.unwrap();
    assert!(
        h.wait_connected(Duration::from_secs(5)).await,
        "did not recover from FAILED"
    );
    assert_eq!(h.stats().consecutive_failures, 0);
    cancel.cancel();
}

#[tokio::test]
async fn fails_back_to_the_primary_when_it_returns() {
    init_logs();
    let mut primary = Mosquitto::start().await.unwrap();
    let port = primary.port();
    let _backup_b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let mut s = settings("failback", &[port, _backup_b.port()]);
    s.failback = true;
    s.health_check_interval = Duration::from_millis(300);
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    primary.kill();
    let mut w = h.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.state == ConnectionState::Connected && s.broker_priority_index == Some(2)),
    )
    .await
    .expect("no failover")
    .unwrap();
    let _primary_again = Mosquitto::start_on(port).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_for(|s| s.state == ConnectionState::Connected && s.broker_priority_index == Some(1)),
    )
    .await
    .expect("no failback")
    .unwrap();
    assert_eq!(h.stats().counts.failovers, 2);
    cancel.cancel();
}

#[tokio::test]
async fn close_flushes_the_outbox_then_disconnects_without_the_will() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let cancel = CancellationToken::new();
    let (_o, mut seen) = observer(b.port(), "room1/#", &cancel).await;
    let mut s = settings("closer", &[b.port()]);
    s.will = Some(OwnMessage::retained("room1/will", "offline"));
    let (h, _rx) = mqtt_start(s, cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    for i in 0..50 {
        h.publish("room1/x", i.to_string(), PublishOptions::reliable())
            .unwrap();
    }
    let left = h.close(Duration::from_secs(2)).await;
    assert_eq!(left, 0);
    assert_eq!(h.status().state, ConnectionState::Disconnected);
    let got = collect_until(&mut seen, Duration::from_secs(2), |g| g.len() >= 51).await;
    assert_eq!(
        got.len(),
        50,
        "all flushed, and a clean DISCONNECT sends no will"
    );
    assert!(got.iter().all(|m| m.topic == "room1/x"));
    cancel.cancel();
}

/// A board with a persistent session that is offline a moment: the broker
/// queues a cue for it. With `message_max_age` 2 s the cue carries an
/// MQTT 5 expiry of what is left of it, so the board, back after 3.5 s,
/// does not get a stale cue; a fresh one it does get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_drops_a_cue_older_than_its_max_age() {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    // A board: persistent session (clean start off, kept 60 s).
    let board = |id: &str| {
        let mut o = MqttOptions::new(id, "127.0.0.1", b.port());
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(60));
        AsyncClient::new(o, 10)
    };
    let id = format!("board-{}", rand_id());
    let (c, mut el) = board(&id);
    c.subscribe("room1/#", QoS::AtLeastOnce).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => break,
            Ok(Ok(_)) => {}
            other => panic!("the board could not subscribe: {other:?}"),
        }
    }
    c.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while el.poll().await.is_ok() {}
    })
    .await;
    drop(el);

    let cancel = CancellationToken::new();
    let (h, _rx) = mqtt_start(settings("room-expiry", &[b.port()]), cancel.child_token());
    assert!(h.wait_connected(Duration::from_secs(5)).await);
    h.publish(
        "room1/light",
        "STALE",
        PublishOptions::cue(Duration::from_secs(2)),
    )
    .unwrap();
    eventually(Duration::from_secs(5), "the stale cue acknowledged", || {
        h.stats().counts.messages_published >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    h.publish(
        "room1/light",
        "FRESH",
        PublishOptions::cue(Duration::from_secs(2)),
    )
    .unwrap();
    eventually(Duration::from_secs(5), "the fresh cue acknowledged", || {
        h.stats().counts.messages_published >= 2
    })
    .await;

    // The board comes back.
    let (_c, mut el) = board(&id);
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(ev)) = tokio::time::timeout_at(until, el.poll()).await {
        if let Event::Incoming(Packet::Publish(p)) = ev {
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    assert_eq!(got, ["FRESH"], "what the board got after coming back");
    cancel.cancel();
}
