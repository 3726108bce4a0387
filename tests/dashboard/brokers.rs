//! `mqtt.connect: every_broker` on the dashboard, in Chromium at a phone's,
//! a tablet's and a desktop's width: each board's broker on the Devices
//! card (left out on a phone unless it is a warning), each broker's
//! connection on the System card, a broker that goes down said there.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_technician_sees_which_broker_each_board_is_on() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let a = Mosquitto::start().await.unwrap();
    let mut b = Mosquitto::start().await.unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    board_on(a.port(), "esp32_01", "room1/light", &cancel).await;
    board_on(b.port(), "esp32_02", "room1/steam", &cancel).await;
    let site = site(&[a.port(), b.port()], &[ONE_CUE], "");
    every_broker(&site);
    site.set_web_token_as("tech-key", "technician");
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    let (stop_web, server) = serve(&room, site.web_port).await;
    let (a_addr, b_addr) = (
        format!("127.0.0.1:{}", a.port()),
        format!("127.0.0.1:{}", b.port()),
    );

    let br = dashboard_at(&site, "tech-key", 1280, "room").await;
    for (id, addr) in [("esp32_01", &a_addr), ("esp32_02", &b_addr)] {
        br.wait_for(
            &format!("{id} shown on {addr}"),
            &format!(
                "document.querySelector('[data-device-broker={id}]')?.textContent === 'on {addr}'"
            ),
            T,
        )
        .await;
    }
    br.wait_for(
        "both brokers on the System card, the first one active",
        &format!("(() => {{ const t = document.getElementById('system').textContent; return t.includes('{a_addr} · connected · active') && t.includes('{b_addr} · connected'); }})()"),
        T,
    )
    .await;
    let visible = "getComputedStyle(document.querySelector('[data-device-broker=esp32_01]')).display !== 'none'";
    for (width, shown) in [(390, false), (820, true), (1280, true)] {
        br.resize(width, 900).await;
        br.wait_for(
            &format!(
                "the broker {} at {width} px",
                if shown { "shown" } else { "left out" }
            ),
            &format!("{visible} === {shown}"),
            T,
        )
        .await;
        br.snapshot(&format!("brokers-{width}")).await;
    }

    // The backup dies: the System card says so on its next refresh.
    b.kill();
    br.js("refreshSystem(); return true;").await;
    br.wait_for(
        "the lost broker said on the System card",
        &format!("(() => {{ const t = document.getElementById('system').textContent; return t.includes('{b_addr} · reconnecting') || t.includes('{b_addr} · connecting') || t.includes('{b_addr} · failed'); }})()"),
        T,
    )
    .await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
    cancel.cancel();
}
