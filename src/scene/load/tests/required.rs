//! `required` and `retries` on cues.

use super::parse;

#[test]
fn required_cues_and_retries() {
    let s = parse("name: s\nrequired: true\nactions:\n  - {at: 0, topic: r/a, message: X}\n  - {at: 1, topic: r/b, message: Y, required: false, retries: 3}\n  - {at: 2, action: audio, message: 'PLAY:x.wav'}\n").unwrap();
    let acts: Vec<_> = s
        .all_actions()
        .map(|a| (a.topic.as_str(), a.required, a.retries))
        .collect();
    assert_eq!(acts[0], ("r/a", true, 0), "the scene's default");
    assert_eq!(acts[1], ("r/b", false, 3));
    assert!(
        !acts[2].1,
        "a sound on the Pi has no confirmation to require"
    );
    let e = parse("name: s\nactions:\n  - {at: 0, topic: r/a, message: X, retries: 1000}\n")
        .unwrap_err();
    assert!(
        e.contains("t.yaml:3:46: retries 1000 is more than 10"),
        "{e}"
    );
}
