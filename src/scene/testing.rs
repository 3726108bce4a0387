//! A recording [`ActionSink`] for unit tests of the scene controller and
//! the router.

use std::sync::Mutex;

use super::{Action, ActionSink};

/// Records `topic=message` per action and `ALL_OFF(scene)` per all-off.
#[derive(Default)]
pub struct RecordingSink(pub Mutex<Vec<String>>);

impl RecordingSink {
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl ActionSink for RecordingSink {
    fn execute(&self, _scene: &str, a: &Action) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{}={}", a.topic, a.message));
    }
    fn all_off(&self, scene: Option<&str>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("ALL_OFF({})", scene.unwrap_or("-")));
    }
}
