use super::*;

fn rec(topic: &str, message: &str, result: Outcome) -> FeedbackRecord {
    FeedbackRecord {
        id: 1,
        command_topic: topic.into(),
        message: message.into(),
        feedback_topic: "room1/status".into(),
        result,
        latency: (result == Outcome::Ok).then_some(0.05),
        timeout: 1.0,
        reply: (result == Outcome::Error).then(|| "jammed".into()),
        scene: None,
        device: Some("esp32_01".into()),
        at: 20.0,
    }
}

fn state(b: &Book, ch: &str) -> (OutputState, Option<String>, Option<String>) {
    let v = b.get(ch).unwrap();
    (v.state, v.message.clone(), v.why.clone())
}

#[test]
fn a_command_is_pending_then_confirmed_or_failed() {
    let mut b = Book::default();
    b.know("room1/light", 1.0);
    assert_eq!(state(&b, "room1/light").0, OutputState::Unknown);
    b.sent("room1/light", "ON", 10.0);
    assert_eq!(
        state(&b, "room1/light"),
        (OutputState::Pending, Some("ON".into()), None)
    );
    b.settled(&rec("room1/light", "ON", Outcome::Ok)).unwrap();
    let v = b.get("room1/light").unwrap();
    assert_eq!(
        (v.state, v.since, v.device.as_deref()),
        (OutputState::Confirmed, 20.0, Some("esp32_01"))
    );

    b.sent("room1/motor", "ON:50:L", 30.0);
    b.settled(&rec("room1/motor", "ON:50:L", Outcome::Timeout));
    assert_eq!(
        state(&b, "room1/motor"),
        (
            OutputState::Failed,
            Some("ON:50:L".into()),
            Some("TIMEOUT: no reply in 1s".into())
        )
    );
    b.sent("room1/smoke", "ON", 30.0);
    b.settled(&rec("room1/smoke", "ON", Outcome::Error));
    assert_eq!(state(&b, "room1/smoke").2.as_deref(), Some("ERROR: jammed"));
}

#[test]
fn an_older_commands_result_does_not_settle_a_newer_one() {
    let mut b = Book::default();
    b.sent("room1/light", "ON", 1.0);
    b.sent("room1/light", "OFF", 2.0);
    assert!(b.settled(&rec("room1/light", "ON", Outcome::Ok)).is_none());
    assert_eq!(state(&b, "room1/light").0, OutputState::Pending);
    b.settled(&rec("room1/light", "OFF", Outcome::Ok));
    assert_eq!(
        state(&b, "room1/light"),
        (OutputState::Confirmed, Some("OFF".into()), None)
    );
}

#[test]
fn a_board_going_offline_makes_its_outputs_unknown_and_a_stop_misses_them() {
    let mut b = Book::default();
    b.sent("room1/light", "ON", 1.0);
    b.settled(&rec("room1/light", "ON", Outcome::Ok));
    b.sent("room1/steam", "ON", 1.0);
    let chans = vec!["room1/light".to_string()];
    assert!(
        b.board("esp32_01", &chans, true, 3.0).is_empty(),
        "online: nothing changes"
    );
    let changed = b.board("esp32_01", &chans, false, 4.0);
    assert_eq!(changed.len(), 1);
    assert_eq!(
        state(&b, "room1/light"),
        (
            OutputState::Unknown,
            Some("ON".into()),
            Some("board esp32_01 offline".into())
        )
    );
    assert!(
        b.board("esp32_01", &chans, false, 5.0).is_empty(),
        "said once"
    );
    let stopped = b.stopped(6.0);
    assert_eq!(stopped.len(), 1, "the offline board does not hear the STOP");
    assert_eq!(state(&b, "room1/steam").0, OutputState::Stopped);
    assert_eq!(state(&b, "room1/light").0, OutputState::Unknown);
    // Back online: still unknown until commanded.
    b.board("esp32_01", &chans, true, 7.0);
    assert_eq!(state(&b, "room1/light").0, OutputState::Unknown);
    b.stopped(8.0);
    assert_eq!(
        state(&b, "room1/light"),
        (
            OutputState::Stopped,
            Some("STOP".into()),
            Some("ROOM/STOP sent (boards do not confirm it)".into())
        )
    );
}

#[test]
fn ten_thousand_messages_are_one_entry_and_the_book_is_bounded() {
    let mut b = Book::default();
    for i in 0..10_000 {
        b.sent(
            "room1/light",
            &format!("LEVEL:{i}:{}", "x".repeat(500)),
            1.0,
        );
    }
    assert_eq!(b.all().len(), 1);
    assert_eq!(
        b.get("room1/light")
            .unwrap()
            .message
            .as_ref()
            .unwrap()
            .chars()
            .count(),
        120
    );
    for i in 0..MAX_OUTPUTS + 10 {
        b.know(&format!("room1/ch{i}"), 1.0);
    }
    assert_eq!(b.all().len(), MAX_OUTPUTS);
    assert_eq!(b.refused, 11);
}
