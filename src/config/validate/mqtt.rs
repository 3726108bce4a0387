//! Validating `mqtt:`: brokers, TLS, limits and the retry schedule.

use super::super::raw::*;
use super::Validator;
use super::*;

impl Validator<'_> {
    /// `mqtt.client_id` (expanded), or `rpi_room_<room>`.
    fn client_id(&mut self, client_id: Option<&S>, room: &str) -> String {
        match client_id {
            Some(c) => {
                let id = self.expand(c);
                let n = id.chars().count();
                if n == 0 || n > MAX_CLIENT_ID || id.contains('\0') {
                    self.err(
                        Pos::of(c),
                        format!("mqtt.client_id must be 1..{MAX_CLIENT_ID} characters without NUL (it has {n})"),
                    );
                } else if n > 23 {
                    self.warn(
                        Pos::of(c),
                        format!("mqtt.client_id is {n} characters long: brokers need only accept 23 (Mosquitto accepts more)"),
                    );
                }
                id
            }
            None => format!("rpi_room_{room}"),
        }
    }

    /// `mqtt.brokers` and those of `mqtt.brokers_file` (whose diagnostics
    /// point at that file), by priority.
    fn brokers(&mut self, m: &RawMqtt) -> Vec<BrokerConfig> {
        let mut brokers = Vec::new();
        for (i, b) in m.brokers.iter().enumerate() {
            brokers.push(self.broker(b, i));
        }
        if let Some(f) = &m.brokers_file {
            let path = self.path(f);
            match std::fs::read_to_string(&path) {
                Err(e) => self.err(
                    Pos::of(f),
                    format!("cannot read brokers_file {}: {e}", path.display()),
                ),
                Ok(text) => match serde_saphyr::from_str::<RawBrokerFile>(&text) {
                    Err(e) => self.diags.push(Diagnostic::from_yaml(&path, &e)),
                    Ok(file) => {
                        // Diagnostics inside the brokers file point at that file.
                        let mut inner = Validator {
                            file: &path,
                            base: self.base,
                            env: self.env,
                            policy: self.policy,
                            diags: Diagnostics::default(),
                            warnings: Diagnostics::default(),
                            mqtt_pos: Pos::UNKNOWN,
                        };
                        let start = brokers.len();
                        for (i, b) in file.brokers.iter().enumerate() {
                            brokers.push(inner.broker(b, start + i));
                        }
                        self.diags.extend(inner.diags);
                        self.warnings.extend(inner.warnings);
                    }
                },
            }
        }
        if brokers.is_empty() {
            // Where the brokers should be: the `mqtt:` section, else the top.
            let pos = m
                .brokers_file
                .as_ref()
                .map(Pos::of)
                .unwrap_or(self.mqtt_pos);
            self.err(
                pos,
                "mqtt: no brokers configured (add mqtt.brokers or mqtt.brokers_file)",
            );
        }
        brokers.sort_by_key(|b| b.priority);
        brokers
    }

    pub(super) fn mqtt(&mut self, m: RawMqtt, room: &str) -> MqttConfig {
        let client_id = self.client_id(m.client_id.as_ref(), room);
        let brokers = self.brokers(&m);

        // Whole seconds (the MQTT field); never off: the PINGREQs it sets
        // are how a silent broker is found.
        let keep_alive = Duration::from_secs(self.dur(&m.keep_alive, ranges::KEEP_ALIVE).as_secs());
        let initial_retry_delay = self.dur(&m.initial_retry_delay, ranges::INITIAL_RETRY_DELAY);
        let max_retry_delay = self.dur(&m.max_retry_delay, ranges::MAX_RETRY_DELAY);
        if max_retry_delay < initial_retry_delay
            && let Some(s) = &m.max_retry_delay
        {
            self.err(
                Pos::of(s),
                "mqtt.max_retry_delay must not be smaller than mqtt.initial_retry_delay",
            );
        }
        let backoff_multiplier = match &m.backoff_multiplier {
            None => 2.0,
            Some(s) if !(1.0..=100.0).contains(&s.value) => {
                self.err(
                    Pos::of(s),
                    "mqtt.backoff_multiplier must be between 1 and 100",
                );
                2.0
            }
            Some(s) => s.value,
        };
        let jitter_factor = match &m.jitter_factor {
            None => 0.1,
            Some(s) if !(0.0..=1.0).contains(&s.value) => {
                self.err(Pos::of(s), "mqtt.jitter_factor must be between 0.0 and 1.0");
                0.1
            }
            Some(s) => s.value,
        };
        let message_queue_size = self.count(
            &m.message_queue_size,
            "mqtt.message_queue_size",
            1000,
            1,
            100_000,
        );
        MqttConfig {
            client_id,
            brokers,
            keep_alive,
            ack_timeout: self.dur(&m.ack_timeout, ranges::ACK_TIMEOUT),
            max_retries: self.count(&m.max_retries, "mqtt.max_retries", 10, 1, 1_000_000),
            initial_retry_delay,
            max_retry_delay,
            backoff_multiplier,
            jitter_factor,
            connection_timeout: self.dur(&m.connection_timeout, ranges::CONNECTION_TIMEOUT),
            health_check_interval: self
                .dur(&m.health_check_interval, ranges::HEALTH_CHECK_INTERVAL),
            message_queue_size,
            message_retry_limit: self.count(
                &m.message_retry_limit,
                "mqtt.message_retry_limit",
                3,
                0,
                100,
            ),
            message_max_age: self.dur(&m.message_max_age, ranges::MESSAGE_MAX_AGE),
            connect: self.connect(m.connect.as_ref()),
        }
    }

    fn connect(&mut self, s: Option<&S>) -> Connect {
        let Some(s) = s else {
            return Connect::default();
        };
        match s.value.as_str() {
            "one_at_a_time" => Connect::OneAtATime,
            "every_broker" => Connect::EveryBroker,
            other => {
                self.err(
                    Pos::of(s),
                    format!(
                        "mqtt.connect must be one_at_a_time or every_broker, not `{}`",
                        other.chars().take(40).collect::<String>()
                    ),
                );
                Connect::default()
            }
        }
    }

    pub(super) fn broker(&mut self, b: &Spanned<RawBroker>, index: usize) -> BrokerConfig {
        let written = self.expand(&b.value.broker);
        let host_pos = Pos::of(&b.value.broker);
        // `mqtts://host` (the URL style): TLS, port 8883 unless given.
        let (host, url_tls) = match written.strip_prefix("mqtts://") {
            Some(h) => (h.trim_end_matches('/').to_string(), true),
            None => match written.strip_prefix("mqtt://") {
                Some(h) => (h.trim_end_matches('/').to_string(), false),
                None => (written, false),
            },
        };
        if host.is_empty() {
            self.err(host_pos, "broker host must not be empty");
        } else if let Some((h, p)) = host.rsplit_once(':')
            && !h.contains(':')
            && p.chars().all(|c| c.is_ascii_digit())
        {
            // One colon and digits after it: host:port, not an IPv6 address.
            self.err(
                host_pos,
                format!("broker `{host}` has the port in it: write `broker: {h}` and `port: {p}`"),
            );
        } else if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
        {
            self.err(
                host_pos,
                format!(
                    "broker `{}` is not a host name or an IP address",
                    host.escape_debug()
                ),
            );
        }
        let tls = self.tls(b.value.tls.as_ref(), url_tls);
        let port = match &b.value.port {
            None if tls.is_some() => 8883,
            None => 1883,
            Some(p) if (1..=65535).contains(&p.value) => p.value as u16,
            Some(p) => {
                self.err(
                    Pos::of(p),
                    format!("broker port {} is outside 1..65535", p.value),
                );
                1883
            }
        };
        let username = b
            .value
            .username
            .as_ref()
            .map(|u| self.expand(u))
            .filter(|u| !u.is_empty());
        let password = b
            .value
            .password
            .as_ref()
            .map(|p| self.expand(p))
            .filter(|p| !p.is_empty())
            .map(Secret);
        BrokerConfig {
            host,
            port,
            username,
            password,
            priority: b.value.priority.unwrap_or(index as u32 + 1),
            tls,
        }
    }

    /// A broker's `tls:` (or `mqtts://`), with its files read and checked.
    pub(super) fn tls(
        &mut self,
        raw: Option<&Spanned<RawTls>>,
        url_tls: bool,
    ) -> Option<crate::tls::TlsSettings> {
        let (pos, files) = match raw {
            None if url_tls => (Pos::UNKNOWN, None),
            None => return None,
            Some(t) => match &t.value {
                RawTls::On(false) if url_tls => {
                    self.err(Pos::of(t), "`tls: false` with a `mqtts://` broker");
                    return None;
                }
                RawTls::On(false) => return None,
                RawTls::On(true) => (Pos::of(t), None),
                RawTls::Files(f) => (Pos::of(t), Some(f)),
            },
        };
        let path = |s: &Option<S>, me: &mut Self| s.as_ref().map(|p| me.path(p));
        let (ca, cert, key) = match files {
            None => (None, None, None),
            Some(f) => (
                path(&f.ca_file, self),
                path(&f.client_cert, self),
                path(&f.client_key, self),
            ),
        };
        match crate::tls::TlsSettings::load(ca.as_deref(), cert.as_deref(), key.as_deref()) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = files
                    .and_then(|f| match &e {
                        crate::tls::TlsError::Read { what, .. }
                        | crate::tls::TlsError::Empty { what, .. }
                        | crate::tls::TlsError::Invalid { what, .. } => match *what {
                            "tls.ca_file" => f.ca_file.as_ref().map(Pos::of),
                            "tls.client_cert" => f.client_cert.as_ref().map(Pos::of),
                            "tls.client_key" => f.client_key.as_ref().map(Pos::of),
                            _ => None,
                        },
                        _ => None,
                    })
                    // (inside `tls: {...}` positions can be lost; then the
                    // `tls:` value's own)
                    .filter(|p| p.line > 0)
                    .unwrap_or(pos);
                self.err(at, e.to_string());
                None
            }
        }
    }
}
