use super::*;

fn tracker() -> (FeedbackTracker, tokio::sync::broadcast::Receiver<Event>) {
    let bus = EventBus::new(64);
    let rx = bus.subscribe();
    let t = FeedbackTracker::new(
        FeedbackTopic::new("{prefix}/status").unwrap(),
        "room1",
        100,
        bus,
    );
    (t, rx)
}

fn spawn(t: &FeedbackTracker) -> CancellationToken {
    let c = CancellationToken::new();
    tokio::spawn(t.clone().run(c.clone()));
    c
}

#[tokio::test(start_paused = true)]
async fn ok_reply_confirms_with_latency() {
    let (t, mut bus) = tracker();
    let _c = spawn(&t);
    let tr = t.track("room1/light", "ON", Duration::from_secs(1), Some("intro"));
    assert_eq!(tr.feedback_topic, "room1/status");
    tokio::time::advance(Duration::from_millis(234)).await;
    let Handled::Confirmed(rec) = t.handle("room1/status", "OK") else {
        panic!()
    };
    assert_eq!(rec.result, Outcome::Ok);
    assert_eq!(rec.latency, Some(0.234));
    assert_eq!(rec.log_line(), "Feedback OK: room1/light (0.234s)");
    assert_eq!(tr.result.await.unwrap().id, rec.id);
    assert!(matches!(bus.recv().await.unwrap(), Event::Feedback(r) if r.result == Outcome::Ok));
    assert_eq!(t.stats().ok, 1);
}

#[tokio::test(start_paused = true)]
async fn replies_on_the_other_form_are_counted_and_explained() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    assert_eq!(t.register("room1/light"), "room1/status");
    assert_eq!(
        t.register_elsewhere("room1/light"),
        ["room1/light/feedback"]
    );
    let since = crate::mqtt::unix_now() - 0.001;
    let tr = t.track("room1/light", "ON", Duration::from_secs(1), Some("intro"));
    // The firmware answers on `{topic}/feedback`: nothing is confirmed.
    assert_eq!(
        t.handle("room1/light/feedback", "OK"),
        Handled::Elsewhere {
            command_topic: "room1/light".into(),
            expected: "room1/status".into()
        }
    );
    assert_eq!(
        t.handle("room1/light/feedback", "hello"),
        Handled::NotFeedback,
        "not a reply at all"
    );
    assert_eq!(tr.result.await.unwrap().result, Outcome::Timeout);
    assert_eq!(t.stats().elsewhere, 1);
    let hint = t.diagnose("intro", since).expect("a hint");
    assert!(
            hint.contains("every command of scene intro timed out (1), but 1 reply arrived on room1/light/feedback")
                && hint.contains("set feedback.topic: \"{topic}/feedback\" (it is \"{prefix}/status\")"),
            "{hint}"
        );
    assert_eq!(t.diagnose("other", since), None);

    // One confirmed command: no hint.
    let since = crate::mqtt::unix_now();
    t.track("room1/light", "OFF", Duration::from_secs(1), Some("intro"));
    t.handle("room1/light/feedback", "OK");
    t.handle("room1/status", "OK");
    assert_eq!(t.diagnose("intro", since), None);
}

#[tokio::test(start_paused = true)]
async fn timeout_fires_exactly_at_the_deadline() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let start = Instant::now();
    let tr = t.track("room1/light", "ON", Duration::from_secs(1), None);
    let rec = tr.result.await.unwrap();
    assert_eq!(Instant::now() - start, Duration::from_secs(1));
    assert_eq!(rec.result, Outcome::Timeout);
    assert_eq!(rec.log_line(), "Feedback TIMEOUT: room1/light (>1.000s)");
    // A late reply confirms nothing.
    assert_eq!(t.handle("room1/status", "OK"), Handled::Unmatched);
    let s = t.stats();
    assert_eq!((s.timeout, s.unmatched, s.pending), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn replies_confirm_oldest_first_and_never_replace() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let a = t.track("room1/light", "ON", Duration::from_secs(1), None);
    tokio::time::advance(Duration::from_millis(100)).await;
    let b = t.track("room1/steam", "ON", Duration::from_secs(1), None);
    assert_eq!(
        t.pending_count(),
        2,
        "the newer command did not replace the older"
    );
    t.handle("room1/status", "OK");
    assert_eq!(a.result.await.unwrap().command_topic, "room1/light");
    t.handle("room1/status", "ERROR");
    let rb = b.result.await.unwrap();
    assert_eq!(rb.command_topic, "room1/steam");
    assert_eq!(rb.result, Outcome::Error);
    assert_eq!(rb.log_line(), "Feedback ERROR: room1/steam (0.000s)");
}

#[tokio::test(start_paused = true)]
async fn json_reply_names_the_exact_command() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let a = t.track("room1/light", "ON", Duration::from_secs(1), None);
    let b = t.track("room1/motor", "START", Duration::from_secs(2), None);
    let Handled::Confirmed(r) =
        t.handle("room1/status", r#"{"status":"OK","topic":"room1/motor"}"#)
    else {
        panic!()
    };
    assert_eq!(r.command_topic, "room1/motor");
    assert_eq!(b.result.await.unwrap().result, Outcome::Ok);
    assert_eq!(a.result.await.unwrap().result, Outcome::Timeout);
}

#[tokio::test(start_paused = true)]
async fn active_and_inactive_confirm_on_and_off() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let start = t.track("room1/motor", "START", Duration::from_secs(1), None);
    let on = t.track("room1/light", "ON:50:L", Duration::from_secs(1), None);
    let off = t.track("room1/steam", "OFF", Duration::from_secs(1), None);
    assert!(
        matches!(t.handle("room1/status", "INACTIVE"), Handled::Confirmed(r) if r.command_topic == "room1/steam")
    );
    assert!(
        matches!(t.handle("room1/status", "active"), Handled::Confirmed(r) if r.command_topic == "room1/light")
    );
    assert_eq!(on.result.await.unwrap().result, Outcome::Ok);
    assert_eq!(off.result.await.unwrap().result, Outcome::Ok);
    assert_eq!(start.result.await.unwrap().result, Outcome::Timeout);
}

#[tokio::test(start_paused = true)]
async fn garbage_and_foreign_topics_are_not_feedback() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let _a = t.track("room1/light", "ON", Duration::from_secs(1), None);
    assert_eq!(t.handle("room2/status", "OK"), Handled::NotFeedback);
    assert!(matches!(
        t.handle("room1/status", "\u{fffd}\u{0}{{{"),
        Handled::Invalid(_)
    ));
    assert!(matches!(
        t.handle("room1/status", r#"{"status": 5}"#),
        Handled::Invalid(_)
    ));
    assert!(matches!(
        t.handle("room1/status", r#"{"status": "MAYBE"}"#),
        Handled::Invalid(_)
    ));
    assert_eq!(t.pending_count(), 1);
    assert_eq!(t.stats().invalid, 3);
}

#[tokio::test(start_paused = true)]
async fn per_action_timeouts_expire_in_deadline_order() {
    let (t, _bus) = tracker();
    let _c = spawn(&t);
    let t0 = Instant::now();
    let long = t.track("room1/motor", "START", Duration::from_secs(2), None);
    let short = t.track("room1/light", "ON", Duration::from_millis(500), None);
    short.result.await.unwrap();
    assert_eq!(Instant::now() - t0, Duration::from_millis(500));
    long.result.await.unwrap();
    assert_eq!(Instant::now() - t0, Duration::from_secs(2));
}

/// A reader that sees nothing pending must find every command in the
/// history: `expire` moves it from one to the other in one critical
/// section. (Run against the old two-lock `expire`, this failed within
/// a few hundred rounds.)
#[test]
fn an_expired_command_is_always_pending_or_in_the_history() {
    let t = FeedbackTracker::new(
        FeedbackTopic::new("{prefix}/status").unwrap(),
        "r",
        100_000,
        EventBus::new(16),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let expirer = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                t.expire(Instant::now());
            }
        })
    };
    for round in 0..3000 {
        let tr = t.track("attic/ghost", "ON", Duration::ZERO, None);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while t.pending_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: command never expired"
            );
            std::hint::spin_loop();
        }
        assert!(
            t.history(1).first().is_some_and(|r| r.id == tr.id),
            "round {round}: command {} neither pending nor in the history",
            tr.id
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    expirer.join().unwrap();
}

#[test]
fn history_is_bounded_newest_first() {
    let bus = EventBus::new(16);
    let t = FeedbackTracker::new(FeedbackTopic::new("{topic}/feedback").unwrap(), "r", 3, bus);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..5 {
            let topic = format!("r/dev{i}");
            t.track(&topic, "ON", Duration::from_secs(1), None);
            t.handle(&format!("{topic}/feedback"), "OK");
        }
    });
    let h = t.history(10);
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].command_topic, "r/dev4");
}
