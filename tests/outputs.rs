//! The state of every output, against a real Mosquitto and the simulated
//! boards: unknown at start, pending while a command waits, confirmed on
//! its reply, off after ROOM/STOP, unknown when its board is gone; in
//! `/api/outputs`, on the event stream and in the retained room state.

use std::time::Duration;

use crate::common::*;
use roomctl::broker::Mosquitto;
use roomctl::events::{Event, OutputState};
use roomctl::origin::Origin;
use roomctl::room::{Command, Role};

const SHOW: (&str, &str) = (
    "show.yaml",
    "name: show\nactions:\n  - { at: 0, topic: room1/light, message: 'ON' }\n  - { at: 0.1, topic: room1/motor, message: 'ON:50:L' }\nduration: 30\n",
);

fn state_of(room: &roomctl::room::Room, ch: &str) -> Option<(OutputState, Option<String>)> {
    room.outputs
        .all()
        .into_iter()
        .find(|o| o.channel == ch)
        .map(|o| (o.state, o.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_goes_pending_confirmed_off_and_unknown_with_its_board() {
    init_logs();
    let b = Mosquitto::start().await.unwrap();
    let site = site(&[b.port()], &[SHOW], "");
    let (room, fleet, cancel) = room_with_fleet(&site).await;
    assert_eq!(
        state_of(&room, "room1/light"),
        Some((OutputState::Unknown, None)),
        "known from the scenes, not commanded yet"
    );

    // Sent by hand: pending, then confirmed by its board.
    let mut events = room.events.subscribe();
    let who = Origin::Signal { name: "test" };
    room.apply(
        who.clone(),
        Command::Send {
            topic: "room1/light".into(),
            message: "ON".into(),
        },
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(3), "the light confirmed ON", || {
        state_of(&room, "room1/light") == Some((OutputState::Confirmed, Some("ON".into())))
    })
    .await;
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Output(o) = e
            && o.channel == "room1/light"
        {
            seen.push(o.state);
        }
    }
    assert_eq!(
        seen,
        [OutputState::Pending, OutputState::Confirmed],
        "on the stream"
    );
    let light = room
        .outputs
        .all()
        .into_iter()
        .find(|o| o.channel == "room1/light")
        .unwrap();
    assert!(
        light
            .device
            .as_deref()
            .is_some_and(|d| d.starts_with("esp32_")),
        "{light:?}"
    );

    // A show, then the panic: every output off.
    room.apply(who.clone(), Command::StartScene("show".into()))
        .await
        .unwrap();
    eventually(Duration::from_secs(3), "the motor confirmed", || {
        state_of(&room, "room1/motor") == Some((OutputState::Confirmed, Some("ON:50:L".into())))
    })
    .await;
    room.apply(who.clone(), Command::Stop).await.unwrap();
    eventually(Duration::from_secs(3), "every output off", || {
        room.outputs
            .all()
            .iter()
            .all(|o| o.state == OutputState::Stopped)
    })
    .await;

    // The retained state carries it, for the site page.
    let st = room.state();
    assert!(
        st.outputs
            .iter()
            .any(|o| o.channel == "room1/motor" && o.state == "stopped"),
        "{:?}",
        st.outputs
    );

    // On again, then the boards lose power: unknown, with why.
    room.apply(
        who,
        Command::Send {
            topic: "room1/light".into(),
            message: "ON".into(),
        },
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(3), "confirmed again", || {
        state_of(&room, "room1/light") == Some((OutputState::Confirmed, Some("ON".into())))
    })
    .await;
    fleet.kill();
    eventually(
        Duration::from_secs(10),
        "the light unknown, its board gone",
        || {
            room.outputs.all().iter().any(|o| {
                o.channel == "room1/light"
                    && o.state == OutputState::Unknown
                    && o.why.as_deref().is_some_and(|w| w.ends_with("offline"))
                    && o.message.as_deref() == Some("ON")
            })
        },
    )
    .await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
