//! Statistics in Chromium: a show log written by the test (four days of a
//! healthy board and one going bad) drawn by uPlot as the latency chart,
//! with the tables' totals, at a phone's, a tablet's and a desktop's width.

use super::*;
use roomctl::showlog::{Commands, Latency, Record, ShowLog};

fn record(t: f64, kind: &str, text: &str, scene: Option<&str>, device: Option<&str>) -> Record {
    Record {
        t,
        kind: kind.into(),
        text: text.into(),
        scene: scene.map(Into::into),
        device: device.map(Into::into),
        origin: None,
        who: None,
        commands: None,
    }
}

fn commands(t: f64, device: &str, ms: f64, n: u64, timeouts: u64) -> Record {
    let mut ok = Latency::default();
    for i in 0..n {
        // A spread around `ms`: ±20 %.
        ok.add(ms * (0.8 + 0.4 * i as f64 / n as f64));
    }
    let text = format!("{device}: {} command(s), {n} confirmed", n + timeouts);
    let mut r = record(t, "commands", &text, Some("intro"), Some(device));
    r.commands = Some(Commands {
        ok,
        timeouts,
        errors: 0,
    });
    r
}

/// The cells of the table row `css`, one space between.
async fn cells(br: &Browser, css: &str) -> String {
    let js = format!(
        "return [...document.querySelectorAll(\"{css} td\")].map(td => td.textContent).join(' ');"
    );
    br.js(&js).await.as_str().unwrap().to_string()
}

/// Noon of the day `back` days ago, in the zone the room counts in (the
/// machine's: this room has no schedule).
fn noon(back: i64) -> f64 {
    let today = jiff::Zoned::now().date();
    let day = today.checked_sub(jiff::Span::new().days(back)).unwrap();
    let z = day
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::system())
        .unwrap();
    z.timestamp().as_millisecond() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_draw_a_latency_chart_from_the_show_log() {
    if !browser_ok() {
        return;
    }
    init_logs();
    let port = roomctl::broker::free_port().unwrap();
    let site = site(&[port], &[("intro.yaml", SHOW)], "state_dir: state\n");
    site.set_web_token_as("stats-key", "viewer");
    // Four days: esp32_01 steady at 15 ms; esp32_07 slower every day and
    // timing out; the intro played, once stopped.
    let log = ShowLog::new(
        site.dir.path().join("state/show.log"),
        roomctl::showlog::DEFAULT_MAX_BYTES,
    );
    for back in (0..4).rev() {
        let t = noon(back);
        log.append(&record(
            t,
            "scene_start",
            "Scene intro started by dashboard",
            Some("intro"),
            None,
        ));
        let how = if back == 1 { "stopped" } else { "completed" };
        log.append(&commands(t + 60.0, "esp32_01", 15.0, 40, 0));
        let slow = 40.0 * (4 - back) as f64 * (4 - back) as f64;
        log.append(&commands(t + 60.0, "esp32_07", slow, 40, 3 - back as u64));
        log.append(&record(
            t + 61.0,
            "scene_end",
            &format!("Scene intro ended after 61.0 s: {how}"),
            Some("intro"),
            None,
        ));
    }
    log.append(&record(
        noon(2),
        "device",
        "Device esp32_07 offline",
        None,
        Some("esp32_07"),
    ));
    log.append(&record(
        noon(2) + 1800.0,
        "device",
        "Device esp32_07 online",
        None,
        Some("esp32_07"),
    ));
    log.append(&record(
        noon(1),
        "connection",
        "Failover to broker 10.0.0.2:1883 (2/2)",
        None,
        None,
    ));
    drop(log);

    let _broker = Mosquitto::start_on(port).await.unwrap();
    let (config, scenes) = site.load();
    let room = Room::start(config, scenes, Role::Daemon);
    let (stop_web, server) = serve(&room, site.web_port).await;

    let br = dashboard_at(&site, "stats-key", 1280, "log").await;
    for width in [1280, 820, 390] {
        br.resize(width, 1400).await;
        br.wait_for(
            "the latency chart drawn by uPlot with both boards' median and p95, as wide as its card",
            "(() => { const f = document.getElementById('chart-latency'); const u = f.querySelector('.uplot'); return !!u && u.dataset.series === '4' && !!u.querySelector('canvas') && u.offsetWidth <= f.clientWidth && u.offsetWidth >= f.clientWidth - 24; })()",
            T,
        )
        .await;
        let legend = br.text("#chart-latency .u-legend").await;
        for label in [
            "esp32_01 median",
            "esp32_01 p95",
            "esp32_07 median",
            "esp32_07 p95",
        ] {
            assert!(legend.contains(label), "{width} px: {label} in {legend}");
        }
        br.assert_fits(&format!("statistics at {width} px")).await;
        br.snapshot(&format!("stats-{width}")).await;
    }

    // The chart plots the days' figures: esp32_07's medians rise, day by day.
    let medians = br
        .js("const u = stats.charts[0]; const i = u.series.findIndex(s => s.label === 'esp32_07 median'); return u.data[i].slice(-4);")
        .await;
    let m: Vec<f64> = medians
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(m.windows(2).all(|w| w[0] < w[1]), "rising: {m:?}");
    assert!(
        (30.0..=55.0).contains(&m[0]) && (500.0..=800.0).contains(&m[3]),
        "{m:?}"
    );
    let row = cells(&br, "#stats-devices tr[data-device='esp32_07']").await;
    assert!(row.starts_with("esp32_07 166 160 6 0 "), "{row}");
    assert!(row.ends_with(" 30 min"), "{row}");
    let steady = cells(&br, "#stats-devices tr[data-device='esp32_01']").await;
    assert!(steady.starts_with("esp32_01 160 160 0 0 "), "{steady}");
    assert_eq!(
        cells(&br, "#stats-scenes tr[data-scene='intro']").await,
        "intro 4 3 1 0"
    );
    assert!(br.text("#stats-connection").await.contains("1 failover(s)"));

    // A month: 30 days on the chart, the same boards.
    br.js("const s = document.getElementById('stats-days'); s.value = '30'; s.dispatchEvent(new Event('change')); return true;")
        .await;
    br.wait_for(
        "30 days",
        "!!stats.data && stats.data.days.length === 30 && stats.charts[0].data[0].length === 30",
        T,
    )
    .await;
    assert!(
        br.js("return document.getElementById('stats-csv').getAttribute('href');")
            .await
            .as_str()
            .unwrap()
            .ends_with("?days=30")
    );
    br.quit().await;
    stop_web.cancel();
    let _ = server.await;
    room.shutdown(Role::Daemon).await;
}
