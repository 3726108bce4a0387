//! `roomctl check`: the config, every scene and every media file a scene
//! plays, reported as `file:line:col: message`. The daemon runs the same
//! checks at start.

use std::path::Path;

use crate::config::{Config, EnvPolicy};
use crate::diag::{Diagnostic, Diagnostics};
use crate::scene::SceneSet;
use crate::scene::load::{Loaded, load_scenes};

mod flow;
mod media;
mod one;

use media::media;
pub use one::{FileCheck, check_file, check_text};

/// Everything `check` found.
pub struct Report {
    /// The config, unless it failed to load.
    pub config: Option<Config>,
    /// The scenes that loaded.
    pub scenes: SceneSet,
    /// Problems that break something.
    pub errors: Diagnostics,
    /// Problems worth knowing (unknown keys, a missing player).
    pub warnings: Diagnostics,
    /// How many distinct media files the scenes play.
    pub media_files: usize,
}

impl Report {
    /// A config and no errors.
    pub fn ok(&self) -> bool {
        self.config.is_some() && self.errors.is_empty()
    }

    /// Takes the config out for a command that needs one, or says why
    /// there is none. Scene problems stay in the report.
    pub fn take_config(&mut self, path: &Path) -> anyhow::Result<Config> {
        self.config
            .take()
            .ok_or_else(|| invalid_config(path, &self.errors))
    }
}

/// Just the config, for commands that need no scenes.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| invalid_config(path, &e))
}

fn invalid_config(path: &Path, errors: &Diagnostics) -> anyhow::Error {
    anyhow::anyhow!(
        "configuration {} is invalid:
{errors}",
        path.display()
    )
}

/// Runs every check for the config at `path` (unset `${VAR}` are errors).
pub fn check(path: &Path) -> Report {
    check_with(path, EnvPolicy::Required)
}

/// [`check`], with a choice about unset `${VAR}`.
pub fn check_with(path: &Path, env: EnvPolicy) -> Report {
    match Config::load_with(path, env) {
        Ok(c) => check_config(c),
        Err(errors) => Report {
            config: None,
            scenes: SceneSet::default(),
            errors,
            warnings: Diagnostics::default(),
            media_files: 0,
        },
    }
}

/// Runs the scene and media checks for a config already loaded (or built).
pub fn check_config(config: Config) -> Report {
    let Loaded {
        scenes,
        failed,
        mut errors,
        warnings: scene_warnings,
    } = load_scenes(&config);
    let mut warnings = config.warnings.clone();
    warnings.extend(scene_warnings);
    errors.extend(references(&config, &scenes, &failed));
    let (media_errors, media_warnings, media_files) = media(&config, &scenes, None);
    errors.extend(media_errors);
    warnings.extend(media_warnings);
    warnings.extend(flow::topics(&config, &scenes, &[]));
    // The accounts file, when there is one: a broken one locks everyone out.
    match crate::accounts::check_file(&config.web.users) {
        Ok(w) => warnings.extend(w),
        Err(e) => errors.extend(e),
    }
    Report {
        config: Some(config),
        scenes,
        errors,
        warnings,
        media_files,
    }
}

/// Scene names used by the config must exist. A name whose file failed to
/// load is not reported again (that file's own error says why).
pub fn references(config: &Config, scenes: &SceneSet, failed: &[String]) -> Diagnostics {
    let mut out = Diagnostics::default();
    let known = || scenes.names().collect::<Vec<_>>().join(", ");
    let missing = |name: &str| scenes.get(name).is_none() && !failed.iter().any(|f| f == name);
    // The room's own messages: what the scenes send and what it publishes
    // about itself. A trigger on them would start a scene by itself.
    let topics = config.topics();
    let mut own: Vec<String> = scenes
        .every_action()
        .filter(|(_, a)| matches!(a.kind, crate::scene::ActionKind::Mqtt))
        .map(|(_, a)| a.topic.clone())
        .collect();
    own.extend([
        topics.daemon_status(),
        topics.daemon_state(),
        topics.all_stop(),
    ]);
    for t in &config.triggers {
        if let Some(hit) = own.iter().find(|o| crate::topic::matches(&t.topic, o)) {
            out.push(Diagnostic::new(
                &config.file,
                t.topic_pos,
                format!(
                    "trigger `{}` matches {hit}, which the room itself sends: it would start `{}` by itself (use the button's own topic)",
                    t.topic, t.scene
                ),
            ));
        }
        if missing(&t.scene) {
            out.push(Diagnostic::new(
                &config.file,
                t.pos,
                format!(
                    "trigger scene `{}` does not exist (scenes: {})",
                    t.scene,
                    known()
                ),
            ));
        }
    }
    for (scene, pos) in config.schedule.iter().flat_map(|s| s.scene_refs()) {
        if missing(scene) {
            out.push(Diagnostic::new(
                &config.file,
                pos,
                format!(
                    "schedule scene `{scene}` does not exist (scenes: {})",
                    known()
                ),
            ));
        }
    }
    if let Some(d) = &config.scenes.default
        && missing(d)
    {
        out.push(Diagnostic::new(
            &config.file,
            config.scenes.default_pos,
            format!("scenes.default `{d}` does not exist (scenes: {})", known()),
        ));
    }
    out
}

/// Finds a program in PATH (or checks a path).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn reports_missing_media_unknown_scenes_with_positions() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "roomctl.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\ntriggers:\n  - {topic: room1/button, scene: missing}\n",
        );
        write(
            d.path(),
            "scenes/intro.yaml",
            "name: intro\nactions:\n  - {at: 0, topic: room1/audio, message: 'PLAY:bg:0.5'}\n  - {at: 1, topic: room1/audio, message: 'PLAY:nope.mp3'}\n",
        );
        write(d.path(), "media/bg.ogg", "x");
        let r = check(&d.path().join("roomctl.yaml"));
        assert!(!r.ok());
        let text = r.errors.to_string();
        assert_eq!(r.errors.len(), 2, "{text}");
        assert!(
            text.contains(
                "roomctl.yaml:4:34: trigger scene `missing` does not exist (scenes: intro)"
            ),
            "{text}"
        );
        assert!(
            text.contains("intro.yaml:4:5: audio file `nope.mp3` not found"),
            "{text}"
        );
        assert_eq!(r.media_files, 1, "bg resolves to bg.ogg");
    }

    #[test]
    fn sounds_and_clips_may_live_in_their_own_folders() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "roomctl.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\nmedia: {audio_dir: audio, video_dir: videos, video: false}\n",
        );
        write(
            d.path(),
            "scenes/intro.yaml",
            "name: intro\nactions:\n  - {at: 0, topic: room1/audio, message: 'PLAY:bg'}\n  - {at: 0, topic: room1/video, message: 'PLAY_VIDEO:clip'}\n  - {at: 1, topic: room1/audio, message: 'PLAY:clip'}\n",
        );
        write(d.path(), "audio/bg.wav", "x");
        write(d.path(), "videos/clip.mp4", "x");
        let r = check(&d.path().join("roomctl.yaml"));
        let c = r.config.as_ref().unwrap();
        assert_eq!(c.media.audio_dir(), d.path().join("audio"));
        assert_eq!(c.media.video_dir(), d.path().join("videos"));
        assert_eq!(c.media.dir, d.path().join("media"), "media.dir unchanged");
        let e = r.errors.to_string();
        // A clip is not a sound: each kind is looked up in its own folder.
        assert_eq!(r.errors.len(), 1, "{e}");
        assert!(
            e.contains("intro.yaml:5:5: audio file `clip` not found in") && e.contains("audio"),
            "{e}"
        );
        assert_eq!(r.media_files, 2);

        // Without them, both default to media.dir; a missing folder is said.
        write(
            d.path(),
            "roomctl.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\nmedia: {audio_dir: sounds}\n",
        );
        let r = check(&d.path().join("roomctl.yaml"));
        let c = r.config.as_ref().unwrap();
        assert_eq!(c.media.video_dir(), d.path().join("media"));
        assert!(
            r.errors.to_string().contains("media.audio_dir")
                && r.errors.to_string().contains("is not a directory"),
            "{}",
            r.errors
        );
    }

    /// A room with `config` and scene files, checked as a technician would.
    fn check_room(config: &str, scenes: &[(&str, &str)], env: EnvPolicy) -> Report {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "etc/roomctl.yaml", config);
        std::fs::create_dir_all(d.path().join("scenes")).unwrap();
        for (name, text) in scenes {
            write(d.path(), &format!("scenes/{name}"), text);
        }
        let r = check_with(&d.path().join("etc/roomctl.yaml"), env);
        std::mem::forget(d);
        r
    }

    const BROKER: &str = "room: room1\nmqtt: {brokers: [{broker: h}]}\nscenes:\n  dir: ../scenes\n";
    const ONE: (&str, &str) = (
        "a.yaml",
        "name: a\nactions: [{at: 0, topic: room1/light, message: 'ON'}]\n",
    );

    #[test]
    fn broker_mistakes_are_said_in_words() {
        let r = check_room(
            "room: room1\nmqtt:\n  brokers:\n    - {broker: \"10.0.0.5:1883\"}\n    - {broker: h, port: 99999}\n",
            &[],
            EnvPolicy::Required,
        );
        let e = r.errors.to_string();
        assert!(e.contains("roomctl.yaml:4:16: broker `10.0.0.5:1883` has the port in it: write `broker: 10.0.0.5` and `port: 1883`"), "{e}");
        assert!(
            e.contains("roomctl.yaml:5:25: broker port 99999 is outside 1..65535"),
            "{e}"
        );
        assert!(!e.contains("u16"), "{e}");
        // An IPv6 address is not host:port.
        let r = check_room(
            "room: r\nmqtt: {brokers: [{broker: \"fe80::1\"}]}\n",
            &[],
            EnvPolicy::Required,
        );
        assert!(r.config.is_some(), "{}", r.errors);
    }

    /// The first error of `config` (with `scenes`), as printed.
    fn first_error(config: &str, scenes: &[(&str, &str)]) -> String {
        let r = check_room(config, scenes, EnvPolicy::Required);
        r.errors
            .iter()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn strict_about_what_later_breaks_the_room() {
        let ends_with =
            |got: String, want: &str| assert!(got.ends_with(want), "{got}\nwanted …{want}");
        ends_with(
            first_error("room: 5\nmqtt: {brokers: [{broker: h}]}\n", &[]),
            "roomctl.yaml:1:7: room `5` is a number, not a name: it names the room's topics and client id (write e.g. room5)",
        );
        ends_with(
            first_error("room: r\nmqtt: {brokers: [{broker: 'a b c'}]}\n", &[]),
            "roomctl.yaml:2:27: broker `a b c` is not a host name or an IP address",
        );
        ends_with(
            first_error("room: r\nfeedback: {timeout: 1s}\nmqtt: {}\n", &[]),
            "roomctl.yaml:3:1: mqtt: no brokers configured (add mqtt.brokers or mqtt.brokers_file)",
        );
        ends_with(
            first_error(
                &format!("{BROKER}triggers:\n  - {{ topic: 'room1/#', scene: a }}\n"),
                &[ONE],
            ),
            "roomctl.yaml:6:14: trigger `room1/#` matches room1/light, which the room itself sends: it would start `a` by itself (use the button's own topic)",
        );
        let machine = r#"{"sceneId": "m", "initialState": "a", "states": {"a": {"transitions": [{"type": "timeout", "delay": 1, "goto": "end"}]}, "end": {}}}"#;
        ends_with(
            first_error(BROKER, &[("m.json", machine)]),
            "m.json:1:129: state `end` differs from END only in case: name it otherwise, or call it END",
        );
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "c.yaml", "");
        std::fs::write(d.path().join("c.yaml"), b"room: r\n# caf\xe9\n").unwrap();
        let e = check(&d.path().join("c.yaml")).errors.to_string();
        assert!(
            e.ends_with("c.yaml:2:6: is not UTF-8 text (save it as UTF-8)"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_keys_are_said_in_words() {
        let r = check_room(
            "room: r\nroom: s\nmqtt: {brokers: [{broker: h}]}\n",
            &[],
            EnvPolicy::Required,
        );
        let e = r.errors.to_string();
        assert!(
            e.contains("roomctl.yaml:2:1: key `room` appears twice in this mapping; keep one"),
            "{e}"
        );
        assert!(!e.contains("DuplicateKeyPolicy"), "{e}");
    }

    #[test]
    fn a_broken_scene_does_not_cascade_and_paths_are_normalised() {
        let r = check_room(
            &format!(
                "{BROKER}  default: intro\ntriggers:\n  - {{topic: room1/button, scene: intro}}\n"
            ),
            &[(
                "intro.yaml",
                "name: intro\nactions:\n  - {at: x, topic: r/a, message: ON}\n",
            )],
            EnvPolicy::Required,
        );
        let e = r.errors.to_string();
        assert_eq!(r.errors.len(), 1, "only the scene's own error: {e}");
        assert!(
            e.contains("/scenes/intro.yaml:3:10: invalid duration `x`"),
            "{e}"
        );
        assert!(!e.contains(".."), "paths are normalised: {e}");
    }

    #[test]
    fn an_unset_secret_is_a_warning_by_hand_and_an_error_for_the_daemon() {
        let cfg = "room: r\nmqtt: {brokers: [{broker: h, username: u, password: \"${ROOMCTL_TEST_UNSET_PW}\"}]}\nscenes: {dir: ../scenes}\n";
        let r = check_room(cfg, &[], EnvPolicy::Optional);
        assert!(r.ok(), "{}", r.errors);
        assert!(
            r.warnings.to_string().contains("roomctl.yaml:2:53: warning: environment variable `ROOMCTL_TEST_UNSET_PW` is not set here"),
            "{}",
            r.warnings
        );
        let r = check_room(cfg, &[], EnvPolicy::Required);
        assert!(
            r.errors
                .to_string()
                .contains("environment variable `ROOMCTL_TEST_UNSET_PW` is not set"),
            "{}",
            r.errors
        );
    }

    #[test]
    fn clean_setup_passes() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "c.yaml",
            "room: room1\nmqtt: {brokers: [{broker: h}]}\n",
        );
        write(
            d.path(),
            "scenes/a.yaml",
            "actions: [{at: 0, topic: room1/light, message: 'ON'}]\n",
        );
        let r = check(&d.path().join("c.yaml"));
        assert!(r.ok(), "{}", r.errors);
    }
}
