use super::*;

#[tokio::test(start_paused = true)]
async fn online_offline_and_stale() {
    let bus = EventBus::new(64);
    let mut rx = bus.subscribe();
    let r = Registry::new(Duration::from_secs(60), bus);
    assert_eq!(r.update("esp32_01", "online"), Ok(Presence::Online));
    assert_eq!(r.update("esp32_02", "online"), Ok(Presence::Online));
    assert_eq!(r.update("esp32_02", "offline"), Ok(Presence::Offline));
    let c = r.counts();
    assert_eq!((c.total, c.online, c.offline, c.stale), (2, 1, 1, 0));
    assert_eq!(r.connected().len(), 1);
    // Three changes announced: 01 online, 02 online, 02 offline.
    for _ in 0..3 {
        assert!(matches!(rx.try_recv().unwrap(), Event::Device(_)));
    }
    assert_eq!(r.update("esp32_01", "online"), Ok(Presence::Online));
    assert!(rx.try_recv().is_err(), "a repeated status is not a change");

    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(r.get("esp32_01").unwrap().presence, Presence::Stale);
    r.sweep();
    match rx.try_recv().unwrap() {
        Event::Device(d) => {
            assert_eq!((d.id.as_str(), d.presence), ("esp32_01", Presence::Stale))
        }
        other => panic!("{other:?}"),
    }
    // OK counts as alive and brings it back.
    assert_eq!(r.update("esp32_01", "OK"), Ok(Presence::Online));
    assert_eq!(r.get("esp32_01").unwrap().presence, Presence::Online);
    assert!(matches!(rx.try_recv().unwrap(), Event::Device(d) if d.presence == Presence::Online));
}

#[test]
fn bad_input_is_rejected_without_state_change() {
    let r = Registry::new(Duration::from_secs(60), EventBus::new(16));
    assert!(matches!(
        r.update("esp32_01", "\u{0}garbage"),
        Err(RegistryError::UnknownStatus { .. })
    ));
    assert!(matches!(
        r.update("", "online"),
        Err(RegistryError::BadId(_))
    ));
    assert_eq!(r.all().len(), 0);
}

fn known(ids: &[&str], known_only: bool) -> DevicesConfig {
    DevicesConfig {
        known: ids
            .iter()
            .map(|i| (i.to_string(), vec![format!("room1/{i}_channel")]))
            .collect(),
        known_only,
        ..DevicesConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_unknown_ids_never_hides_a_real_device() {
    let r = Registry::from_config(&known(&["esp32_01"], false), EventBus::new(16));
    assert_eq!(
        r.get("esp32_01").unwrap().presence,
        Presence::Offline,
        "listed before it speaks"
    );
    for i in 0..200_000 {
        r.update(&format!("flood{i}"), "online").unwrap();
    }
    let c = r.counts();
    assert_eq!(
        c.total,
        MAX_UNKNOWN_DEVICES + 1,
        "bounded: the known one plus the cap"
    );
    assert_eq!(c.unknown_ignored, 200_000 - MAX_UNKNOWN_DEVICES as u64);
    assert!(
        r.get("flood0").is_none(),
        "the least recently seen went first"
    );
    assert!(r.get("flood199999").is_some());
    // A real device that was not configured still gets in...
    assert_eq!(r.update("esp32_07", "online"), Ok(Presence::Online));
    assert_eq!(r.get("esp32_07").unwrap().presence, Presence::Online);
    // ...and the configured one was never evicted.
    assert_eq!(r.update("esp32_01", "online"), Ok(Presence::Online));
    assert!(r.get("esp32_01").unwrap().known);
    assert_eq!(r.ignored_recently(), Some(c.unknown_ignored + 1));
    assert_eq!(
        r.owner_of("room1/esp32_01_channel").as_deref(),
        Some("esp32_01")
    );
}

#[tokio::test(start_paused = true)]
async fn recently_seen_unknown_devices_are_kept() {
    let r = Registry::new(Duration::from_secs(60), EventBus::new(16));
    r.update("real", "online").unwrap();
    for i in 0..5_000 {
        r.update(&format!("flood{i}"), "online").unwrap();
        if i % 500 == 0 {
            // Its heartbeat keeps it among the most recent.
            r.update("real", "online").unwrap();
        }
    }
    assert!(r.get("real").is_some());
}

#[test]
fn devices_announce_the_topics_they_answer() {
    let r = Registry::from_config(&known(&["esp32_01"], false), EventBus::new(16));
    assert_eq!(
        r.announce_channels("esp32_02", "room1/motor"),
        Err(RegistryError::NotListed("esp32_02".into()))
    );
    r.update("esp32_02", "online").unwrap();
    assert_eq!(
        r.announce_channels("esp32_02", "room1/motor, room1/fan"),
        Ok(2)
    );
    assert_eq!(r.owner_of("room1/fan").as_deref(), Some("esp32_02"));
    assert_eq!(r.announce_channels("esp32_02", r#"["room1/motor"]"#), Ok(1));
    assert_eq!(
        r.owner_of("room1/fan"),
        None,
        "a new announcement replaces the old"
    );
    // The config wins over an announcement.
    r.update("esp32_01", "online").unwrap();
    r.announce_channels("esp32_02", "room1/esp32_01_channel")
        .unwrap();
    assert_eq!(
        r.owner_of("room1/esp32_01_channel").as_deref(),
        Some("esp32_01")
    );
    assert!(r.announce_channels("esp32_02", "a/#").is_err());
    assert!(r.announce_channels("esp32_02", &"t,".repeat(100)).is_err());
    assert_eq!(
        r.get("esp32_02").unwrap().channels,
        ["room1/esp32_01_channel"]
    );
}

#[test]
fn known_only_ignores_unknown_ids() {
    let r = Registry::from_config(&known(&["esp32_01"], true), EventBus::new(16));
    assert_eq!(
        r.update("intruder", "online"),
        Err(RegistryError::NotKnown("intruder".into()))
    );
    assert_eq!(r.update("esp32_01", "online"), Ok(Presence::Online));
    let c = r.counts();
    assert_eq!((c.total, c.unknown_ignored), (1, 1));
}
