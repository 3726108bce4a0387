//! The config as written: what serde reads, with positions, before the
//! validator checks it.

use super::*;

pub(super) type S = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) room: S,
    #[serde(default)]
    pub(super) mqtt: RawMqtt,
    #[serde(default)]
    pub(super) feedback: RawFeedback,
    #[serde(default)]
    pub(super) devices: RawDevices,
    #[serde(default)]
    pub(super) scenes: RawScenes,
    #[serde(default)]
    pub(super) media: RawMedia,
    #[serde(default)]
    pub(super) web: RawWeb,
    #[serde(default)]
    pub(super) triggers: Vec<RawTrigger>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    pub(super) state_dir: Option<S>,
    #[serde(default)]
    pub(super) control: RawControl,
    #[serde(default)]
    pub(super) estop: RawEstop,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEstop {
    pub(super) topic: Option<S>,
    pub(super) payload: Option<String>,
    pub(super) panic_latches: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) key: Option<S>,
    #[serde(default)]
    pub(super) unsigned: Vec<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) timezone: S,
    #[serde(default)]
    pub(super) hours: RawHours,
    #[serde(default)]
    pub(super) closed: Vec<S>,
    pub(super) at_opening: Option<S>,
    pub(super) at_closing: Option<S>,
    #[serde(default)]
    pub(super) shows: Vec<Spanned<RawShow>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHours {
    pub(super) default: Option<S>,
    pub(super) mon: Option<S>,
    pub(super) tue: Option<S>,
    pub(super) wed: Option<S>,
    pub(super) thu: Option<S>,
    pub(super) fri: Option<S>,
    pub(super) sat: Option<S>,
    pub(super) sun: Option<S>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShow {
    pub(super) scene: S,
    pub(super) at: Option<S>,
    pub(super) every: Option<Spanned<Dur>>,
    pub(super) from: Option<S>,
    pub(super) until: Option<S>,
    pub(super) days: Option<Vec<S>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    pub(super) client_id: Option<S>,
    #[serde(default)]
    pub(super) brokers: Vec<Spanned<RawBroker>>,
    pub(super) brokers_file: Option<S>,
    pub(super) keep_alive: Option<Spanned<Dur>>,
    pub(super) ack_timeout: Option<Spanned<Dur>>,
    pub(super) max_retries: Option<Spanned<u32>>,
    pub(super) initial_retry_delay: Option<Spanned<Dur>>,
    pub(super) max_retry_delay: Option<Spanned<Dur>>,
    pub(super) backoff_multiplier: Option<Spanned<f64>>,
    pub(super) jitter_factor: Option<Spanned<f64>>,
    pub(super) connection_timeout: Option<Spanned<Dur>>,
    pub(super) health_check_interval: Option<Spanned<Dur>>,
    pub(super) message_queue_size: Option<Spanned<usize>>,
    pub(super) message_retry_limit: Option<Spanned<u32>>,
    pub(super) message_max_age: Option<Spanned<Dur>>,
    pub(super) connect: Option<S>,
}

/// One broker in seed-000 format.
#[derive(Deserialize)]
pub(super) struct RawBroker {
    pub(super) broker: S,
    #[serde(default)]
    pub(super) port: Option<Spanned<i64>>,
    pub(super) username: Option<S>,
    pub(super) password: Option<S>,
    pub(super) priority: Option<u32>,
    pub(super) tls: Option<Spanned<RawTls>>,
}

/// `tls: true` (the system's CA certificates) or the files (read by hand:
/// an untagged enum would lose the source positions).
pub(super) enum RawTls {
    On(bool),
    Files(Box<RawTlsFiles>),
}

#[derive(Default)]
pub(super) struct RawTlsFiles {
    pub(super) ca_file: Option<S>,
    pub(super) client_cert: Option<S>,
    pub(super) client_key: Option<S>,
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, or { ca_file, client_cert, client_key }")
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawTls, E> {
                Ok(RawTls::On(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<RawTls, A::Error> {
                const FIELDS: &[&str] = &["ca_file", "client_cert", "client_key"];
                let mut f = RawTlsFiles::default();
                while let Some(k) = m.next_key::<String>()? {
                    let slot = match k.as_str() {
                        "ca_file" => &mut f.ca_file,
                        "client_cert" => &mut f.client_cert,
                        "client_key" => &mut f.client_key,
                        other => return Err(serde::de::Error::unknown_field(other, FIELDS)),
                    };
                    *slot = Some(m.next_value::<S>()?);
                }
                Ok(RawTls::Files(Box::new(f)))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A seed-000 broker file: `{"brokers": [...], "game_config": {...}}`.
#[derive(Deserialize)]
pub(super) struct RawBrokerFile {
    pub(super) brokers: Vec<Spanned<RawBroker>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedback {
    pub(super) timeout: Option<Spanned<Dur>>,
    pub(super) topic: Option<S>,
    pub(super) local_channels: Option<Vec<S>>,
    pub(super) history: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevices {
    pub(super) stale_after: Option<Spanned<Dur>>,
    pub(super) known: Option<Spanned<RawKnown>>,
    pub(super) known_only: Option<Spanned<bool>>,
}

/// `known: [esp32_01, esp32_02]` or `known: {esp32_01: [room1/light], ...}`
/// (read by hand: an untagged enum would lose the source positions).
pub(super) enum RawKnown {
    List(Vec<S>),
    Map(Vec<(S, RawKnownDevice)>),
}

/// One known device: its command topics, or `{channels: [...], safe:
/// [{topic, message}]}`.
#[derive(Default)]
pub(super) struct RawKnownDevice {
    pub(super) channels: Vec<S>,
    pub(super) safe: Vec<RawSafe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSafe {
    pub(super) topic: S,
    pub(super) message: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKnownFull {
    #[serde(default)]
    channels: Vec<S>,
    #[serde(default)]
    safe: Vec<RawSafe>,
}

impl<'de> Deserialize<'de> for RawKnownDevice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawKnownDevice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a list of command topics, or {channels: [...], safe: [{topic, message}]}",
                )
            }
            fn visit_unit<E>(self) -> Result<RawKnownDevice, E> {
                Ok(RawKnownDevice::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawKnownDevice, A::Error> {
                let mut channels = Vec::new();
                while let Some(e) = a.next_element()? {
                    channels.push(e);
                }
                Ok(RawKnownDevice {
                    channels,
                    safe: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<RawKnownDevice, A::Error> {
                let full =
                    RawKnownFull::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(RawKnownDevice {
                    channels: full.channels,
                    safe: full.safe,
                })
            }
        }
        d.deserialize_any(Visit)
    }
}

impl<'de> Deserialize<'de> for RawKnown {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = RawKnown;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of device ids, or a mapping of device id to its command topics")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawKnown, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = a.next_element()? {
                    v.push(e);
                }
                Ok(RawKnown::List(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawKnown, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(RawKnown::Map(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenes {
    pub(super) dir: Option<S>,
    pub(super) default: Option<S>,
    pub(super) min_start_interval: Option<Spanned<Dur>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    pub(super) dir: Option<S>,
    pub(super) audio_dir: Option<S>,
    pub(super) video_dir: Option<S>,
    pub(super) video_player: Option<Spanned<Vec<String>>>,
    pub(super) idle_image: Option<S>,
    pub(super) audio_fade: Option<Spanned<Dur>>,
    pub(super) audio: Option<bool>,
    pub(super) video: Option<bool>,
    pub(super) max_upload: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) enabled: Option<bool>,
    pub(super) listen: Option<S>,
    pub(super) token: Option<S>,
    pub(super) max_connections: Option<Spanned<usize>>,
    pub(super) max_sse_clients: Option<Spanned<usize>>,
    pub(super) header_timeout: Option<Spanned<Dur>>,
    pub(super) open_stop: Option<bool>,
    pub(super) users: Option<S>,
    pub(super) anonymous: Option<S>,
    pub(super) token_role: Option<S>,
    pub(super) session_idle: Option<Spanned<Dur>>,
    pub(super) session_max: Option<Spanned<Dur>>,
    pub(super) secure_cookie: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrigger {
    pub(super) topic: S,
    pub(super) payload: Option<String>,
    pub(super) scene: S,
    pub(super) min_interval: Option<Spanned<Dur>>,
}
