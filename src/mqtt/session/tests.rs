use super::*;

const ACK: Duration = Duration::from_millis(500);
const LIMIT: Duration = Duration::from_secs(10);

fn session(capacity: usize, retry_limit: u32) -> Session {
    Session::new(Limits {
        capacity,
        retry_limit,
        ack_timeout: ACK,
        answer_limit: LIMIT,
    })
}

fn cue(s: &mut Session, topic: &str, now: Instant) -> MessageId {
    s.push(
        topic.into(),
        Bytes::from_static(b"ON"),
        PublishOptions::cue(Duration::from_secs(5)),
        now,
    )
    .0
}

/// Hands over everything ready, assigning packet ids from `first_pkid`.
fn send_all(s: &mut Session, now: Instant, first_pkid: u16) -> Vec<String> {
    let mut out = Vec::new();
    let mut exp = Vec::new();
    let mut pkid = first_pkid;
    while let Some(q) = s.next_to_send(now, 64, &mut exp) {
        out.push(q.topic.clone());
        s.sent(q, now);
        assert!(s.packet_id(pkid, now).is_none());
        pkid += 1;
    }
    out
}

#[test]
fn fifo_and_drop_oldest_on_overflow() {
    let now = Instant::now();
    let mut s = session(2, 3);
    cue(&mut s, "a", now);
    cue(&mut s, "b", now);
    let (_, dropped) = s.push("c".into(), Bytes::new(), PublishOptions::reliable(), now);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].topic, "a");
    assert_eq!(send_all(&mut s, now, 1), ["b", "c"]);
}

#[test]
fn a_cue_carries_what_is_left_of_its_max_age_as_its_expiry() {
    let t0 = Instant::now();
    let q = |opts| Queued {
        properties: None,
        stays: false,
        id: 1,
        topic: "room1/light".into(),
        payload: Bytes::from_static(b"ON"),
        opts,
        created: t0,
        attempts: 0,
    };
    let cue = q(PublishOptions::cue(Duration::from_secs(5)));
    assert_eq!(cue.expiry_at(t0), Some(5));
    assert_eq!(cue.expiry_at(t0 + Duration::from_millis(1300)), Some(3));
    assert_eq!(
        cue.expiry_at(t0 + Duration::from_millis(4900)),
        Some(1),
        "at least 1 s"
    );
    assert_eq!(q(PublishOptions::reliable()).expiry_at(t0), None);
    let state = q(PublishOptions {
        expiry: Some(Duration::from_secs(90)),
        ..PublishOptions::retained_state()
    });
    assert_eq!(state.expiry_at(t0 + Duration::from_secs(30)), Some(90));
    let both = q(PublishOptions {
        expiry: Some(Duration::from_secs(2)),
        ..PublishOptions::cue(Duration::from_secs(5))
    });
    assert_eq!(both.expiry_at(t0), Some(2));
}

#[test]
fn stale_cues_are_dropped_at_their_max_age_not_sent() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    cue(&mut s, "old", t0);
    s.push("state".into(), Bytes::new(), PublishOptions::reliable(), t0);
    let mut expired = Vec::new();
    let next = s
        .next_to_send(t0 + Duration::from_secs(6), 64, &mut expired)
        .unwrap();
    assert_eq!(next.topic, "state", "messages without max_age never expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].topic, "old");
    // Exactly at max_age it is still sent.
    cue(&mut s, "edge", t0);
    let mut none = Vec::new();
    let q = s
        .next_to_send(t0 + Duration::from_secs(5), 64, &mut none)
        .unwrap();
    assert_eq!(q.topic, "edge");
    assert!(none.is_empty());
}

#[test]
fn the_ack_timeout_verdict_comes_at_the_deadline_of_the_oldest() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    cue(&mut s, "a", t0);
    send_all(&mut s, t0, 1);
    let t1 = t0 + Duration::from_millis(200);
    cue(&mut s, "b", t1);
    send_all(&mut s, t1, 2);
    assert_eq!(s.deadline(), Some(t0 + ACK));
    assert_eq!(s.verdict(t0 + ACK - Duration::from_millis(1)), None);
    assert_eq!(
        s.verdict(t0 + ACK),
        Some(Verdict::NoPuback { topic: "a".into() })
    );
    // Once `a` is acknowledged, `b` sets the deadline.
    let d = s.acknowledged(1, t0 + Duration::from_millis(300)).unwrap();
    assert_eq!(d.msg.topic, "a");
    assert_eq!(d.latency, Duration::from_millis(300));
    assert_eq!(s.deadline(), Some(t1 + ACK));
    assert_eq!(s.verdict(t0 + ACK), None);
    s.acknowledged(2, t1).unwrap();
    assert_eq!(s.deadline(), None);
    assert!(s.is_idle());
}

#[test]
fn out_of_order_and_stray_pubacks() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    for t in ["a", "b", "c"] {
        cue(&mut s, t, t0);
    }
    send_all(&mut s, t0, 7);
    assert_eq!(s.acknowledged(9, t0).unwrap().msg.topic, "c");
    assert_eq!(s.acknowledged(7, t0).unwrap().msg.topic, "a");
    assert!(s.acknowledged(9, t0).is_none(), "a repeated PUBACK");
    assert!(s.acknowledged(42, t0).is_none(), "a stray PUBACK");
    assert_eq!(s.in_flight(), 1);
    assert_eq!(
        s.verdict(t0 + ACK),
        Some(Verdict::NoPuback { topic: "b".into() })
    );
}

#[test]
fn requeue_keeps_order_and_never_resends_what_was_acknowledged() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    for t in ["a", "b", "c", "d"] {
        cue(&mut s, t, t0);
    }
    // a, b, c go out; d is still queued; b is acknowledged.
    let mut exp = Vec::new();
    for pkid in 1..=3 {
        let q = s.next_to_send(t0, 64, &mut exp).unwrap();
        s.sent(q, t0);
        s.packet_id(pkid, t0);
    }
    s.acknowledged(2, t0).unwrap();
    let d = s.connection_lost();
    assert!(d.is_empty());
    assert_eq!(s.in_flight(), 0);
    assert_eq!(send_all(&mut s, t0, 1), ["a", "c", "d"]);
}

#[test]
fn resends_are_bounded_by_the_retry_limit() {
    let t0 = Instant::now();
    let mut s = session(10, 2);
    cue(&mut s, "a", t0);
    let mut sends = 0;
    loop {
        if send_all(&mut s, t0, 1).is_empty() {
            break;
        }
        sends += 1;
        let d = s.connection_lost();
        if !d.failed.is_empty() {
            assert_eq!(d.failed[0].topic, "a");
            assert_eq!(d.failed[0].attempts, 3);
            break;
        }
    }
    assert_eq!(
        sends, 3,
        "the first attempt and message_retry_limit resends"
    );
    assert!(s.is_idle());
}

#[test]
fn messages_not_taken_by_the_client_are_not_attempts() {
    let t0 = Instant::now();
    let mut s = session(10, 0);
    cue(&mut s, "a", t0);
    let mut exp = Vec::new();
    let q = s.next_to_send(t0, 64, &mut exp).unwrap();
    s.not_sent(q);
    let q = s.next_to_send(t0, 64, &mut exp).unwrap();
    assert_eq!(q.attempts, 0);
    s.sent(q, t0);
    // With no retries allowed, the one real attempt is all it gets.
    let d = s.connection_lost();
    assert_eq!(d.failed.len(), 1);
    assert_eq!(d.failed[0].attempts, 1);
}

#[test]
fn in_flight_is_limited() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    for t in ["a", "b", "c"] {
        cue(&mut s, t, t0);
    }
    let mut exp = Vec::new();
    let q = s.next_to_send(t0, 2, &mut exp).unwrap();
    s.sent(q, t0);
    let q = s.next_to_send(t0, 2, &mut exp).unwrap();
    s.sent(q, t0);
    assert!(s.next_to_send(t0, 2, &mut exp).is_none());
    assert_eq!(s.queued(), 1);
}

#[test]
fn qos0_is_done_when_it_has_a_packet_id() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    let opts = PublishOptions {
        qos: Qos::AtMostOnce,
        ..PublishOptions::reliable()
    };
    s.push("fire".into(), Bytes::new(), opts, t0);
    let mut exp = Vec::new();
    let q = s.next_to_send(t0, 64, &mut exp).unwrap();
    s.sent(q, t0);
    assert_eq!(s.packet_id(0, t0).unwrap().msg.topic, "fire");
    assert!(s.is_idle());
}

#[test]
fn requeued_messages_past_the_queue_size_drop_the_oldest() {
    let t0 = Instant::now();
    let mut s = session(2, 3);
    cue(&mut s, "a", t0);
    cue(&mut s, "b", t0);
    send_all(&mut s, t0, 1);
    cue(&mut s, "c", t0);
    cue(&mut s, "d", t0);
    let d = s.connection_lost();
    let topics: Vec<_> = d.overflowed.iter().map(|q| q.topic.as_str()).collect();
    assert_eq!(topics, ["a", "b"]);
    assert_eq!(send_all(&mut s, t0, 1), ["c", "d"]);
}

#[test]
fn coalescing_keeps_only_the_newest_unsent_state() {
    let now = Instant::now();
    let mut s = session(10, 3);
    for p in ["1", "2", "3"] {
        s.push(
            "roomctl/r/state".into(),
            Bytes::from(p),
            PublishOptions::retained_state(),
            now,
        );
    }
    cue(&mut s, "r/light", now);
    assert_eq!(s.queued(), 2);
    let mut exp = Vec::new();
    assert_eq!(
        &s.next_to_send(now, 64, &mut exp).unwrap().payload[..],
        b"3"
    );
}

#[test]
fn stuck_means_waiting_without_any_acknowledgement() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    assert_eq!(s.stuck_for(t0), None, "idle is not stuck");
    cue(&mut s, "a", t0);
    assert_eq!(
        s.stuck_for(t0 + Duration::from_secs(2)),
        Some(Duration::from_secs(2))
    );
    send_all(&mut s, t0, 1);
    cue(&mut s, "b", t0);
    s.acknowledged(1, t0 + Duration::from_secs(1));
    assert_eq!(
        s.stuck_for(t0 + Duration::from_secs(3)),
        Some(Duration::from_secs(2)),
        "counted from the last acknowledgement"
    );
}

#[test]
fn a_broker_that_keeps_talking_is_not_dead_until_the_answer_limit() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    cue(&mut s, "a", t0);
    send_all(&mut s, t0, 1);
    // An incoming flood: packets keep arriving, the PUBACK is queued
    // behind them.
    let mut t = t0;
    while t < t0 + Duration::from_secs(3) {
        t += Duration::from_millis(100);
        s.heard(t);
        assert_eq!(s.verdict(t), None, "alive at {:?}", t - t0);
    }
    // Then silence: dead ack_timeout after the last packet.
    assert_eq!(s.deadline(), Some(t + ACK));
    assert_eq!(s.verdict(t + ACK - Duration::from_millis(1)), None);
    assert!(matches!(s.verdict(t + ACK), Some(Verdict::NoPuback { .. })));
    // A broker that talks forever but never answers is dead at the limit.
    let mut s = session(10, 3);
    cue(&mut s, "a", t0);
    send_all(&mut s, t0, 1);
    s.heard(t0 + LIMIT);
    assert_eq!(s.deadline(), Some(t0 + LIMIT));
    assert!(s.verdict(t0 + LIMIT).is_some());
}

#[test]
fn an_unanswered_ping_on_an_idle_connection_is_a_verdict() {
    let t0 = Instant::now();
    let mut s = session(10, 3);
    s.ping_sent(t0);
    s.ping_sent(t0 + Duration::from_millis(100)); // still the first one
    assert_eq!(s.deadline(), Some(t0 + ACK));
    assert_eq!(s.verdict(t0 + ACK - Duration::from_millis(1)), None);
    assert_eq!(s.verdict(t0 + ACK), Some(Verdict::NoPingResp));
    s.ping_answered();
    assert_eq!(s.verdict(t0 + ACK), None);
    assert_eq!(s.deadline(), None);
    // A new connection starts without an outstanding ping.
    s.ping_sent(t0);
    s.connection_lost();
    assert_eq!(s.deadline(), None);
}

#[test]
fn a_lost_connections_messages_move_to_another_session_in_order_and_staying_ones_stay() {
    let now = Instant::now();
    let mut a = session(100, 3);
    cue(&mut a, "room1/a", now);
    cue(&mut a, "room1/b", now);
    a.push_to_stay(
        "roomctl/room1/state".into(),
        Bytes::from_static(b"{}"),
        PublishOptions::retained_state(),
        now,
    );
    cue(&mut a, "room1/c", now);
    // a and b are on the wire, b acknowledged; c and the state wait.
    let mut exp = Vec::new();
    for pkid in [1, 2] {
        let q = a.next_to_send(now, 64, &mut exp).unwrap();
        a.sent(q, now);
        a.packet_id(pkid, now);
    }
    assert!(a.acknowledged(2, now).is_some());

    let moved = a.take_movable();
    let topics: Vec<&str> = moved.iter().map(|q| q.topic.as_str()).collect();
    assert_eq!(
        topics,
        ["room1/a", "room1/c"],
        "unacknowledged first, then waiting"
    );
    assert_eq!(moved[0].attempts, 1, "attempts travel with the message");
    assert_eq!(a.in_flight(), 0);
    assert_eq!(a.queued(), 1, "the broker's own state stays");

    let mut b = session(100, 3);
    cue(&mut b, "room1/later", now + Duration::from_millis(1));
    assert!(b.adopt(moved).is_empty());
    assert_eq!(
        send_all(&mut b, now, 10),
        ["room1/a", "room1/c", "room1/later"]
    );
    // Older than what waited there: a second loss keeps them first.
    b.connection_lost();
    assert_eq!(
        send_all(&mut b, now, 20),
        ["room1/a", "room1/c", "room1/later"]
    );
}

#[test]
fn adopting_into_a_full_queue_drops_the_oldest() {
    let now = Instant::now();
    let mut a = session(10, 3);
    for t in ["room1/a", "room1/b", "room1/c"] {
        cue(&mut a, t, now);
    }
    let mut b = session(2, 3);
    let dropped = b.adopt(a.take_movable());
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].topic, "room1/a");
    assert_eq!(b.queued(), 2);
}
