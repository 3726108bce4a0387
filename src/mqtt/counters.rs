//! The client's counters: each declared once with its field, its
//! `/metrics` name and what it counts (seed 002 names).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Default)]
pub(super) struct Counter(AtomicU64);

impl Counter {
    pub(super) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(super) fn bump(c: &Counter, n: usize) {
    c.0.fetch_add(n as u64, Ordering::Relaxed);
}

#[derive(Default)]
pub(super) struct Gauge(AtomicU32);

impl Gauge {
    pub(super) fn store(&self, v: u32) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub(super) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub(super) struct F64Cell(AtomicU64);

impl F64Cell {
    pub(super) fn store(&self, bits: u64) {
        self.0.store(bits, Ordering::Relaxed);
    }
    pub(super) fn get(&self) -> Option<f64> {
        let b = self.0.load(Ordering::Relaxed);
        (b != 0).then(|| f64::from_bits(b))
    }
}

/// Declares each counter once: its field, its metric and what it counts.
/// Gives [`Counts`] (the numbers, in [`Stats`] and `/metrics`), the
/// atomic `Counters` behind them and the list `/metrics` writes.
macro_rules! counters {
    ($($field:ident: $metric:literal, $help:literal;)*) => {
        /// What the client counted since it started.
        #[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
        pub struct Counts {
            $(#[doc = $help] pub $field: u64,)*
        }

        impl Counts {
            /// Each counter as (metric name, help, value), for `/metrics`.
            pub fn metrics(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$(($metric, $help, self.$field),)*]
            }

            /// Adds `o`'s counts to these (several clients summed up).
            pub fn add(&mut self, o: &Counts) {
                $(self.$field += o.$field;)*
            }
        }

        #[derive(Default)]
        pub(super) struct Counters {
            $(pub(super) $field: Counter,)*
            pub(super) consecutive_failures: Gauge,
            /// f64 bits of a unix time; 0 = never.
            pub(super) last_connection_attempt: F64Cell,
        }

        impl Counters {
            pub(super) fn counts(&self) -> Counts {
                Counts { $($field: self.$field.get(),)* }
            }
        }
    };
}

counters! {
    total_connections: "mqtt_connections_total", "successful connections";
    total_disconnections: "mqtt_disconnections_total", "connections lost or closed";
    total_reconnections: "mqtt_reconnections_total", "connections after the first";
    failed_connections: "mqtt_failed_connections_total", "failed connection attempts";
    failovers: "mqtt_failovers_total", "switches to another broker";
    ack_timeouts: "mqtt_ack_timeouts_total", "PUBACKs or PINGRESPs later than ack_timeout";
    messages_published: "mqtt_messages_published_total", "messages acknowledged by a broker";
    messages_queued: "mqtt_messages_queued_total", "messages queued while not connected";
    messages_failed: "mqtt_messages_failed_total", "messages given up (retry limit, refused, too large, invalid)";
    messages_expired: "mqtt_messages_expired_total", "messages older than message_max_age, dropped";
    messages_dropped: "mqtt_messages_dropped_total", "messages dropped because the queue was full";
    messages_resent: "mqtt_messages_resent_total", "unacknowledged messages resent after a loss";
    messages_received: "mqtt_messages_received_total", "messages received";
    incoming_dropped: "mqtt_incoming_dropped_total", "received messages dropped because the router fell behind";
    duplicates_dropped: "mqtt_duplicates_dropped_total", "extra copies from overlapping subscriptions, dropped";
    oversize_packets: "mqtt_oversize_packets_total", "packets over the size limit (refused, or breaking a connection)";
    takeovers: "mqtt_takeovers_total", "connections closed because another client used our client id";
}
