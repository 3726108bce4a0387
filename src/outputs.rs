//! What the room believes each output is doing now (relay 3 ON, motor 1
//! `ON:50:L`, smoke OFF, or unknown because its board went offline after
//! the last command), with since when. `Book` is the state itself, with no
//! I/O: a command sent makes its channel `pending`, its confirmation
//! `confirmed` (or `failed` on ERROR or TIMEOUT), a board going offline
//! makes its channels `unknown`, and `ROOM/STOP` makes every output
//! `stopped`. [`Outputs`] is the shared handle that puts every change on
//! the event bus. One entry per channel, at most [`MAX_OUTPUTS`], each
//! message cut short: a channel sent 10,000 different messages is one
//! entry.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventBus, FeedbackRecord, Outcome, OutputState, OutputView, Presence};

/// Channels kept at most (a room has tens).
pub const MAX_OUTPUTS: usize = 1024;
/// A message is kept to this many characters.
const MAX_MESSAGE_CHARS: usize = 120;

/// The outputs and their states (no I/O).
#[derive(Debug, Default)]
pub struct Book {
    outputs: BTreeMap<String, Entry>,
    /// Channels not kept, the book being full.
    pub refused: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    view: OutputView,
    /// Its board is offline: a STOP does not reach it.
    offline: bool,
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_MESSAGE_CHARS).collect()
}

impl Book {
    /// Every output, by channel.
    pub fn all(&self) -> Vec<OutputView> {
        self.outputs.values().map(|e| e.view.clone()).collect()
    }

    /// One output.
    pub fn get(&self, channel: &str) -> Option<&OutputView> {
        self.outputs.get(channel).map(|e| &e.view)
    }

    /// `channel` is an output: listed as unknown until commanded.
    pub fn know(&mut self, channel: &str, now: f64) -> Option<OutputView> {
        if self.outputs.contains_key(channel) {
            return None;
        }
        let view = OutputView {
            channel: cut(channel),
            state: OutputState::Unknown,
            message: None,
            since: now,
            why: Some("not commanded since the daemon started".into()),
            device: None,
        };
        self.put(view)
    }

    fn put(&mut self, view: OutputView) -> Option<OutputView> {
        if !self.outputs.contains_key(&view.channel) && self.outputs.len() >= MAX_OUTPUTS {
            self.refused += 1;
            return None;
        }
        let offline = false;
        self.outputs.insert(
            view.channel.clone(),
            Entry {
                view: view.clone(),
                offline,
            },
        );
        Some(view)
    }

    /// `message` went out on `channel`: pending.
    pub fn sent(&mut self, channel: &str, message: &str, now: f64) -> Option<OutputView> {
        let device = self.get(channel).and_then(|v| v.device.clone());
        self.put(OutputView {
            channel: cut(channel),
            state: OutputState::Pending,
            message: Some(cut(message)),
            since: now,
            why: None,
            device,
        })
    }

    /// A command's result: its output confirmed or failed, unless a later
    /// command on the channel is what it waits for now.
    pub fn settled(&mut self, rec: &FeedbackRecord) -> Option<OutputView> {
        let e = self.outputs.get_mut(&rec.command_topic)?;
        let v = &mut e.view;
        if v.state != OutputState::Pending || v.message.as_deref() != Some(&cut(&rec.message)) {
            return None;
        }
        (v.state, v.why) = match rec.result {
            Outcome::Ok => (OutputState::Confirmed, None),
            Outcome::Error => (
                OutputState::Failed,
                Some(match &rec.reply {
                    Some(r) => format!("ERROR: {}", cut(r)),
                    None => "ERROR".into(),
                }),
            ),
            Outcome::Timeout => (
                OutputState::Failed,
                Some(format!("TIMEOUT: no reply in {}s", rec.timeout)),
            ),
        };
        v.since = rec.at;
        if rec.device.is_some() {
            v.device.clone_from(&rec.device);
        }
        e.offline = false;
        Some(v.clone())
    }

    /// Board `device` answers `channels`, and is there or not: when it is
    /// gone, what its outputs do is unknown.
    pub fn board(
        &mut self,
        device: &str,
        channels: &[String],
        online: bool,
        now: f64,
    ) -> Vec<OutputView> {
        let mut out = Vec::new();
        for ch in channels {
            if let Some(v) = self.know(ch, now) {
                out.push(v);
            }
            let Some(e) = self.outputs.get_mut(ch) else {
                continue;
            };
            e.view.device = Some(cut(device));
            if online || e.offline {
                e.offline = !online && e.offline;
                continue;
            }
            e.offline = true;
            e.view.state = OutputState::Unknown;
            e.view.why = Some(format!("board {} offline", cut(device)));
            e.view.since = now;
            out.push(e.view.clone());
        }
        out
    }

    /// `ROOM/STOP` went out: every output a board still hears is off.
    pub fn stopped(&mut self, now: f64) -> Vec<OutputView> {
        let mut out = Vec::new();
        for e in self.outputs.values_mut().filter(|e| !e.offline) {
            e.view.state = OutputState::Stopped;
            e.view.message = Some("STOP".into());
            e.view.why = Some("ROOM/STOP sent (boards do not confirm it)".into());
            e.view.since = now;
            out.push(e.view.clone());
        }
        out
    }
}

/// The shared book; every change goes on the event bus.
#[derive(Clone)]
pub struct Outputs {
    book: Arc<Mutex<Book>>,
    events: EventBus,
}

impl Outputs {
    /// An empty book announcing on `events`.
    pub fn new(events: EventBus) -> Outputs {
        Outputs {
            book: Arc::new(Mutex::new(Book::default())),
            events,
        }
    }

    fn announce(&self, changed: impl IntoIterator<Item = OutputView>) {
        for v in changed {
            self.events.publish(Event::Output(v));
        }
    }

    /// Every output, by channel.
    pub fn all(&self) -> Vec<OutputView> {
        self.book.lock().all()
    }

    /// Channels refused, the book being full.
    pub fn refused(&self) -> u64 {
        self.book.lock().refused
    }

    /// `channels` are outputs (from the scenes and command files).
    pub fn know<'a>(&self, channels: impl IntoIterator<Item = &'a str>) {
        let now = crate::clock::unix_now();
        let changed: Vec<OutputView> = {
            let mut b = self.book.lock();
            channels
                .into_iter()
                .filter_map(|c| b.know(c, now))
                .collect()
        };
        self.announce(changed);
    }

    /// A tracked command went out.
    pub fn sent(&self, channel: &str, message: &str) {
        let v = self
            .book
            .lock()
            .sent(channel, message, crate::clock::unix_now());
        self.announce(v);
    }

    /// A tracked command settled.
    pub fn settled(&self, rec: &FeedbackRecord) {
        let v = self.book.lock().settled(rec);
        self.announce(v);
    }

    /// `ROOM/STOP` went out.
    pub fn stopped(&self) {
        let v = self.book.lock().stopped(crate::clock::unix_now());
        self.announce(v);
    }

    /// Follows the boards on the event bus (`rx`, subscribed before any
    /// board is heard): offline, their outputs are unknown. Ends with
    /// `cancel`.
    pub async fn run(self, mut rx: broadcast::Receiver<Event>, cancel: CancellationToken) {
        loop {
            let e = tokio::select! {
                () = cancel.cancelled() => return,
                e = rx.recv() => e,
            };
            match e {
                Ok(Event::Device(d)) => {
                    let online = d.presence == Presence::Online;
                    let changed = self.book.lock().board(
                        &d.id,
                        &d.channels,
                        online,
                        crate::clock::unix_now(),
                    );
                    self.announce(changed);
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
#[path = "outputs/tests.rs"]
mod tests;
