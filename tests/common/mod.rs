//! Helpers shared by the integration tests: real Mosquitto brokers, MQTT
//! observers and settings with short timings.

use std::time::Duration;

use roomctl::config::BrokerConfig;
use roomctl::mqtt::{self, Backoff, InMessage, MqttHandle, MqttSettings, PublishOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub fn broker(port: u16, priority: u32) -> BrokerConfig {
    BrokerConfig::new("127.0.0.1", port, priority)
}

/// Settings with test-sized timings.
pub fn settings(client_id: &str, ports: &[u16]) -> MqttSettings {
    MqttSettings {
        client_id: client_id.to_string(),
        brokers: ports
            .iter()
            .enumerate()
            .map(|(i, p)| broker(*p, i as u32 + 1))
            .collect(),
        keep_alive: Duration::from_secs(5),
        ack_timeout: Duration::from_millis(500),
        connection_timeout: Duration::from_secs(2),
        health_check_interval: Duration::from_secs(60),
        failback: false,
        backoff: Backoff {
            max_retries: 10,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: 0.1,
        },
        queue_size: 1000,
        retry_limit: 3,
        will: None,
        birth: None,
        farewell: vec![],
        subscriptions: vec![],
        incoming_capacity: 1024,
        quiet_publishes: false,
        label: 0,
    }
}

/// A client subscribed to `filter` on one broker; returns what it receives.
pub async fn observer(
    port: u16,
    filter: &str,
    cancel: &CancellationToken,
) -> (MqttHandle, mpsc::Receiver<InMessage>) {
    let mut s = settings(&format!("observer-{}", rand_id()), &[port]);
    s.subscriptions = vec![filter.to_string()];
    let (h, rx) = mqtt_start(s, cancel.child_token());
    // Subscribed (SUBACK) before anything is published.
    assert!(
        h.wait_subscribed(Duration::from_secs(5)).await,
        "observer could not subscribe"
    );
    (h, rx)
}

/// Starts a client whose tasks end with `cancel`.
pub fn mqtt_start(
    s: MqttSettings,
    cancel: CancellationToken,
) -> (MqttHandle, mpsc::Receiver<InMessage>) {
    mqtt::start(s, cancel, &tokio_util::task::TaskTracker::new())
}

/// Publishes like an independent client with broker access would: plain
/// MQTT 3.1.1, no size limit of ours, optionally retained. Returns once the
/// broker has acknowledged every message (QoS 1).
pub async fn raw_publish<T: AsRef<str>>(port: u16, messages: &[(T, Vec<u8>, bool)]) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    let mut opts = MqttOptions::new(format!("raw-{}", rand_id()), "127.0.0.1", port);
    opts.set_max_packet_size(64 << 20, 64 << 20);
    opts.set_inflight(1000);
    let (client, mut el) = AsyncClient::new(opts, messages.len() + 10);
    for (t, p, retain) in messages {
        client
            .publish(t.as_ref(), QoS::AtLeastOnce, *retain, p.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked < messages.len() {
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("raw publisher: {e}"),
            Err(_) => panic!(
                "raw publisher: only {acked} of {} acknowledged",
                messages.len()
            ),
        }
    }
    client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(ev) = el.poll().await {
            if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

pub fn rand_id() -> u32 {
    rand::random()
}

/// Collects messages until `pred` holds for the collected list or the time is up.
pub async fn collect_until(
    rx: &mut mpsc::Receiver<InMessage>,
    timeout: Duration,
    mut pred: impl FnMut(&[InMessage]) -> bool,
) -> Vec<InMessage> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !pred(&got) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => break,
        }
    }
    got
}

pub fn text(m: &InMessage) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// Two simulated ESP32s answering within 10-40 ms with plain `OK`.
pub fn fast_fleet() -> roomctl::simulate::SimOptions {
    roomctl::simulate::SimOptions {
        devices: 2,
        latency: (Duration::from_millis(10), Duration::from_millis(40)),
        drop: 0.0,
        heartbeat: Duration::from_secs(20),
        reply: roomctl::simulate::ReplyStyle::Plain,
    }
}

/// Installs a test log subscriber once (RUST_LOG controls it), feeding
/// the live log's ring as the daemon does.
pub fn init_logs() {
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    // As the daemon does: the same records in the dashboard's ring.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .with(roomctl::logring::layer())
        .try_init();
}

/// A room set up in a temporary directory: config, scenes, media.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
    pub web_port: u16,
}

/// The password [`Site::add_user`] gives `name`.
pub fn password_of(name: &str) -> String {
    format!("pw of {name}!")
}

/// A scene file with one cue: `room1/light = ON` at once.
pub const ONE_CUE: (&str, &str) = (
    "a.yaml",
    "name: a\nactions: [{at: 0, topic: room1/light, message: 'ON'}]\n",
);

/// Writes a config for brokers on `ports` plus `scenes` (file name, text).
/// `extra` is appended to the config (e.g. `triggers:`).
pub fn site(ports: &[u16], scenes: &[(&str, &str)], extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let web_port = roomctl::broker::free_port().unwrap();
    let brokers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "    - {{ broker: 127.0.0.1, port: {p}, priority: {} }}\n",
                i + 1
            )
        })
        .collect();
    let text = format!(
        "room: room1\nmqtt:\n  brokers:\n{brokers}  connection_timeout: 2\n  initial_retry_delay: 0.1\n  max_retry_delay: 0.5\nfeedback: {{ timeout: 1s }}\nscenes: {{ dir: scenes }}\nmedia: {{ dir: media, audio: false, video: false }}\nweb: {{ listen: 127.0.0.1:{web_port} }}\n{extra}"
    );
    std::fs::create_dir_all(dir.path().join("scenes")).unwrap();
    std::fs::create_dir_all(dir.path().join("media")).unwrap();
    for (name, body) in scenes {
        std::fs::write(dir.path().join("scenes").join(name), body).unwrap();
    }
    let config = dir.path().join("roomctl.yaml");
    std::fs::write(&config, text).unwrap();
    Site {
        dir,
        config,
        web_port,
    }
}

impl Site {
    /// Sets `web.token` (control routes then need `Authorization: Bearer`).
    pub fn set_web_token(&self, token: &str) {
        self.web_options(&format!("token: \"{token}\""));
    }

    /// Sets `web.token` with a role of its own (`technician` for the
    /// tests that use manual control or reload with it).
    pub fn set_web_token_as(&self, token: &str, role: &str) {
        self.web_options(&format!("token: \"{token}\", token_role: {role}"));
    }

    /// Adds a user to `users.yaml` beside the config; the password is
    /// [`password_of`] the name.
    pub fn add_user(&self, name: &str, role: roomctl::access::Role) {
        roomctl::accounts::change_file(
            &self.dir.path().join("users.yaml"),
            &roomctl::accounts::AccountChange::AddUser {
                name: name.into(),
                role,
                password: roomctl::config::Secret::new(password_of(name)),
            },
        )
        .unwrap();
    }

    /// Writes a command file `scenes/commands/{name}.json` with `json`.
    pub fn add_command(&self, name: &str, json: &str) {
        let dir = self.dir.path().join("scenes").join("commands");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.json")), json).unwrap();
    }

    /// Replaces `from` (which must be there) with `to` in the config, once:
    /// another room name, a player switched on, a default line taken out
    /// for the test's own.
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(
            text.contains(from),
            "`{from}` is not in the config:\n{text}"
        );
        std::fs::write(&self.config, text.replacen(from, to, 1)).unwrap();
    }

    /// Adds keys to `web:` (e.g. `max_connections: 32`).
    pub fn web_options(&self, options: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let open = format!("web: {{ listen: 127.0.0.1:{} }}", self.web_port);
        assert!(text.contains(&open), "web options set twice");
        let with = format!("web: {{ listen: 127.0.0.1:{}, {options} }}", self.web_port);
        std::fs::write(&self.config, text.replace(&open, &with)).unwrap();
    }

    pub fn load(&self) -> (roomctl::config::Config, roomctl::scene::SceneSet) {
        let r = roomctl::check::check(&self.config);
        assert!(r.errors.is_empty(), "{}", r.errors);
        (r.config.unwrap(), r.scenes)
    }
}

/// `roomctl run -c <site's config>` (the real binary) at `RUST_LOG=info`
/// with its output discarded; adjust before [`daemon_online`].
pub fn roomctl_run(site: &Site) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_roomctl"));
    cmd.args(["run", "-c", site.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// Spawns `cmd` (killed when dropped) and waits until `status`, an observer
/// of `roomctl/room1/status` (or wider), shows the room `online`.
pub async fn daemon_online(
    mut cmd: tokio::process::Command,
    status: &mut mpsc::Receiver<InMessage>,
) -> tokio::process::Child {
    let child = cmd.kill_on_drop(true).spawn().unwrap();
    let online = |m: &InMessage| m.topic == "roomctl/room1/status" && text(m) == "online";
    let got = collect_until(status, Duration::from_secs(10), |g| g.iter().any(online)).await;
    assert!(got.iter().any(online), "daemon never came online");
    child
}

/// `roomctl run` for `site`, once `status` shows it online.
pub async fn daemon(site: &Site, status: &mut mpsc::Receiver<InMessage>) -> tokio::process::Child {
    daemon_online(roomctl_run(site), status).await
}

/// Waits (blocking the thread) until `pred` holds, polling every 5 ms.
pub fn wait_until(timeout: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !pred() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Until every simulated device has its subscriptions acknowledged.
pub async fn fleet_ready(fleet: &roomctl::simulate::Fleet) {
    for h in fleet.handles() {
        assert!(
            h.wait_subscribed(Duration::from_secs(5)).await,
            "a simulated device could not subscribe"
        );
    }
}

/// The room of `site` and a simulated fleet that answers its commands,
/// both subscribed; the fleet ends with the token.
pub async fn room_with_fleet(
    site: &Site,
) -> (
    roomctl::room::Room,
    roomctl::simulate::Fleet,
    tokio_util::sync::CancellationToken,
) {
    let (config, scenes) = site.load();
    let cancel = tokio_util::sync::CancellationToken::new();
    let fleet = roomctl::simulate::start(&config, &scenes, &fast_fleet(), cancel.child_token());
    let room = roomctl::room::Room::start(config, scenes, roomctl::room::Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;
    (room, fleet, cancel)
}

/// Waits until `pred` holds, polling every 20 ms.
pub async fn eventually(timeout: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !pred() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
pub mod alsa;
pub mod webdriver;

mod proxy;
pub use proxy::Proxy;

/// How a [`FakeBroker`] misbehaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fake {
    /// Accepts the connection, then drops it right after the CONNACK.
    DropAfterConnack,
    /// A working MQTT 5 broker (acknowledges publishes, answers pings) that
    /// refuses every subscription (SUBACK 0x87, not authorized).
    RefuseSubscriptions,
}

/// A tiny MQTT 5 peer for broker behaviours a real Mosquitto here does not
/// show. Counts the MQTT connections (CONNECT packets) it accepted; a bare
/// TCP connect (roomctl's is-it-still-listening check) is not one.
pub struct FakeBroker {
    pub port: u16,
    pub connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeBroker {
    pub async fn start(mode: Fake) -> FakeBroker {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = connections.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(fake_session(s, mode, c.clone()));
            }
        });
        FakeBroker { port, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn fake_session(
    mut s: tokio::net::TcpStream,
    mode: Fake,
    connects: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        // Fixed header: type and flags, then the remaining length.
        let Ok(first) = s.read_u8().await else { return };
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let Ok(b) = s.read_u8().await else { return };
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply: Vec<u8> = match first >> 4 {
            // CONNECT -> CONNACK (no session, success, no properties).
            1 => {
                connects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = s.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).await;
                if mode == Fake::DropAfterConnack {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return;
                }
                continue;
            }
            // PUBLISH: PUBACK for QoS 1.
            3 => {
                let qos = (first >> 1) & 3;
                let tlen = u16::from_be_bytes([body[0], body[1]]) as usize;
                if qos == 0 {
                    continue;
                }
                vec![0x40, 0x02, body[2 + tlen], body[3 + tlen]]
            }
            // SUBSCRIBE: refuse each filter.
            8 => {
                let (pkid, mut i) = ([body[0], body[1]], 2);
                // Properties: a length (varint) and that many bytes.
                let (mut plen, mut shift) = (0usize, 0);
                loop {
                    let b = body[i];
                    i += 1;
                    plen |= ((b & 0x7f) as usize) << shift;
                    shift += 7;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                i += plen;
                let mut codes = Vec::new();
                while i + 2 <= body.len() {
                    let flen = u16::from_be_bytes([body[i], body[i + 1]]) as usize;
                    i += 2 + flen + 1;
                    codes.push(0x87);
                }
                let mut r = vec![0x90, (3 + codes.len()) as u8, pkid[0], pkid[1], 0x00];
                r.extend(codes);
                r
            }
            // PINGREQ -> PINGRESP.
            12 => vec![0xd0, 0x00],
            // DISCONNECT.
            14 => return,
            _ => continue,
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// A test PKI: a CA, a broker certificate for 127.0.0.1 and localhost, a
/// client certificate, and a second CA that signed none of them. PEM files
/// in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
        };
        let dir = tempfile::tempdir().unwrap();
        // Mosquitto drops to its own user: it must be able to read these.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let good = ca("roomctl test CA");
        let wrong = ca("some other CA");
        write("ca.pem", good.pem());
        write("wrong-ca.pem", wrong.pem());
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        sp.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        sp.distinguished_name.push(DnType::CommonName, "broker");
        let server_key = KeyPair::generate().unwrap();
        let server = sp.signed_by(&server_key, &good).unwrap();
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name.push(DnType::CommonName, "rpi-room1");
        let client_key = KeyPair::generate().unwrap();
        let client = cp.signed_by(&client_key, &good).unwrap();
        write("client.pem", client.pem());
        write("client.key", client_key.serialize_pem());
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// mosquitto.conf lines making the main listener TLS, requiring a
    /// client certificate from this CA.
    pub fn listener(&self) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            self.path("ca.pem"),
            self.path("server.pem"),
            self.path("server.key")
        )
    }

    /// `tls:` for a broker entry, with `ca` as the CA file.
    pub fn broker_tls(&self, ca: &str) -> String {
        format!(
            "{{ ca_file: {}, client_cert: {}, client_key: {} }}",
            self.path(ca),
            self.path("client.pem"),
            self.path("client.key")
        )
    }

    /// The same, loaded (for test clients).
    pub fn settings(&self) -> roomctl::tls::TlsSettings {
        roomctl::tls::TlsSettings::load(
            Some(std::path::Path::new(&self.path("ca.pem"))),
            Some(std::path::Path::new(&self.path("client.pem"))),
            Some(std::path::Path::new(&self.path("client.key"))),
        )
        .unwrap()
    }
}

/// A password file for Mosquitto with one user.
pub fn password_file(dir: &std::path::Path, user: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join("passwd");
    let st = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c", path.to_str().unwrap(), user, password])
        .status()
        .expect("mosquitto_passwd (package mosquitto)");
    assert!(st.success());
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path
}

/// Starts `scene` through the room's front door, as `roomctl play` does.
pub async fn start(room: &roomctl::room::Room, scene: &str) {
    let cli = roomctl::testkit::cli();
    if let Err(e) = room
        .apply(cli, roomctl::room::Command::StartScene(scene.into()))
        .await
    {
        panic!("cannot start scene {scene}: {e}");
    }
}

/// The daemon's `/healthz` at `base` (`http://host:port`); null while it
/// does not answer yet.
pub async fn health(base: &str) -> serde_json::Value {
    match reqwest::get(format!("{base}/healthz")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Waits (20 s at most, failing with `what` and the last answer) until the
/// daemon's health satisfies `pred`; returns that health.
pub async fn wait_health(
    base: &str,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(base).await;
        if pred(&h) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; health: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pretend ESP32 with one broker address (`port`), as this kind of
/// firmware has: announces `devices/<id>/status` online and its channel
/// (both retained) and answers every live command on `channel` with `OK`
/// on `room1/status`. Ends with `cancel`.
pub async fn board_on(
    port: u16,
    id: &str,
    channel: &str,
    cancel: &CancellationToken,
) -> MqttHandle {
    let mut s = settings(&format!("board-{id}-{}", rand_id()), &[port]);
    s.subscriptions = vec![channel.to_string()];
    let (h, mut rx) = mqtt_start(s, cancel.child_token());
    assert!(
        h.wait_subscribed(Duration::from_secs(5)).await,
        "board {id} could not subscribe on port {port}"
    );
    let _ = h.publish(
        format!("devices/{id}/status"),
        "online",
        PublishOptions::retained_state(),
    );
    let _ = h.publish(
        format!("devices/{id}/channels"),
        channel.to_string(),
        PublishOptions::retained_state(),
    );
    let (answer, channel) = (h.clone(), channel.to_string());
    tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if m.topic == channel && !m.retain {
                let _ = answer.publish("room1/status", "OK", PublishOptions::reliable());
            }
        }
    });
    h
}

/// Switches the site's room to `mqtt.connect: every_broker`.
pub fn every_broker(site: &Site) {
    site.edit_config(
        "  connection_timeout: 2\n",
        "  connection_timeout: 2\n  connect: every_broker\n",
    );
}

/// A scene of 40 cues at 10 Hz, `C0`..`C39`, round the light, the steam
/// and the motor.
pub fn long_scene() -> String {
    let mut s = String::from("name: long\nactions:\n");
    for i in 0..40 {
        let ch = ["light", "steam", "motor"][i % 3];
        s.push_str(&format!(
            "  - {{ at: {:.1}, topic: room1/{ch}, message: C{i} }}\n",
            i as f64 * 0.1
        ));
    }
    s
}

/// Starts [`long_scene`] on `room` and calls `freeze` once the primary
/// (observed by `on_primary`) has forwarded C14, then waits until C15 was
/// handed to it: C15 is in flight, unacknowledged. Returns the cues seen
/// so far.
pub async fn until_c15_in_flight(
    room: &roomctl::room::Room,
    on_primary: &mut mpsc::Receiver<InMessage>,
    freeze: impl FnOnce(),
    what: &str,
) -> std::collections::BTreeSet<String> {
    start(room, "long").await;
    let before = collect_until(on_primary, Duration::from_secs(5), |got| {
        got.last().is_some_and(|m| text(m) == "C14")
    })
    .await;
    let seen: std::collections::BTreeSet<String> = before.iter().map(text).collect();
    assert!(
        seen.contains("C14"),
        "{what}: the primary did not forward C14 within 5 s; it sent {seen:?}"
    );
    freeze();
    eventually(
        Duration::from_secs(5),
        "C15 handed to the frozen primary",
        || room.scenes.status().is_some_and(|s| s.actions_done >= 16),
    )
    .await;
    seen
}

/// The room of `site` and a simulated fleet answering in the JSON form
/// (it names the command it confirms), both subscribed; the fleet ends
/// with `cancel`.
pub async fn room_with_json_fleet(
    site: &Site,
    cancel: &CancellationToken,
) -> (roomctl::room::Room, roomctl::simulate::Fleet) {
    let (config, scenes) = site.load();
    let opts = roomctl::simulate::SimOptions {
        reply: roomctl::simulate::ReplyStyle::Json,
        ..fast_fleet()
    };
    let fleet = roomctl::simulate::start(&config, &scenes, &opts, cancel.child_token());
    let room = roomctl::room::Room::start(config, scenes, roomctl::room::Role::Daemon);
    assert!(room.mqtt.wait_subscribed(Duration::from_secs(5)).await);
    fleet_ready(&fleet).await;
    (room, fleet)
}

/// Adds what the observers receive within 1.5 s to `seen`, then asserts
/// that every cue of [`long_scene`] and the scene's end STOP are in it.
pub async fn every_long_cue_arrived(
    mut seen: std::collections::BTreeSet<String>,
    observers: [&mut mpsc::Receiver<InMessage>; 2],
    what: &str,
) {
    for rx in observers {
        for m in collect_until(rx, Duration::from_millis(1500), |_| false).await {
            seen.insert(text(&m));
        }
    }
    let missing: Vec<String> = (0..40)
        .map(|i| format!("C{i}"))
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "{what}: cues lost: {missing:?}");
    assert!(seen.contains("STOP"), "{what}: end of scene STOP lost");
}
