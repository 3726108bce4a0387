use super::*;
use crate::studio::tree::parse;

fn cue(at: f64, topic: &str, message: &str) -> Val {
    Val::map([
        ("at", Val::Num(at)),
        ("topic", Val::Str(topic.into())),
        ("message", Val::Str(message.into())),
    ])
}

const YAML: &str = "name: intro\nactions:\n  - { at: 0.0,  topic: room1/light, message: \"ON\" }   # lights\n  - { at: 2.5, topic: room1/audio, message: \"PLAY:bg.wav\" }\nduration: 20";

#[test]
fn a_yaml_item_is_written_like_its_neighbours_and_removed_with_its_line() {
    let root = parse(YAML).unwrap();
    let list = root.get("actions").unwrap();
    let add = insert(YAML, list, 1, None, &cue(1.0, "room1/steam", "ON"), false).unwrap();
    let text = add.apply(YAML);
    assert!(
        text.contains(
            "# lights\n  - { at: 1, topic: room1/steam, message: \"ON\" }\n  - { at: 2.5"
        ),
        "{text}"
    );
    let root = parse(&text).unwrap();
    let list = root.get("actions").unwrap();
    let back = remove(&text, list, 1).unwrap().apply(&text);
    assert_eq!(back, YAML);
    let first = remove(YAML, parse(YAML).unwrap().get("actions").unwrap(), 0).unwrap();
    assert!(
        first
            .apply(YAML)
            .starts_with("name: intro\nactions:\n  - { at: 2.5")
    );
}

#[test]
fn a_set_value_keeps_its_quotes_and_its_decimal_point() {
    let root = parse(YAML).unwrap();
    let item = &root.get("actions").unwrap().items()[0];
    let text = set(
        YAML,
        item.get("message").unwrap(),
        &Val::Str("OFF".into()),
        false,
    )
    .unwrap()
    .apply(YAML);
    assert!(text.contains("message: \"OFF\" }"), "{text}");
    let text = set(
        &text,
        parse(&text).unwrap().get("actions").unwrap().items()[0]
            .get("at")
            .unwrap(),
        &Val::Num(3.0),
        false,
    )
    .unwrap()
    .apply(&text);
    assert!(text.contains("{ at: 3.0,  topic"), "{text}");
    let text = set(
        &text,
        parse(&text).unwrap().get("name").unwrap(),
        &Val::Str("on".into()),
        false,
    )
    .unwrap()
    .apply(&text);
    assert!(text.starts_with("name: \"on\"\n"), "{text}");
}

const JSON: &str = "{\n  \"states\": {\n    \"a\": {\n      \"onEnter\": [\n        {\"action\": \"mqtt\", \"topic\": \"r/light\", \"message\": \"ON\"}\n      ],\n      \"transitions\": []\n    }\n  }\n}\n";

#[test]
fn a_json_item_copies_its_neighbours_separator_and_takes_its_comma_away() {
    let root = parse(JSON).unwrap();
    let a = root.get("states").unwrap().get("a").unwrap();
    let list = a.get("onEnter").unwrap();
    let v = Val::map([
        ("action", Val::Str("audio".into())),
        ("message", Val::Str("PLAY:x.wav".into())),
    ]);
    let text = insert(JSON, list, 1, None, &v, true).unwrap().apply(JSON);
    assert!(
        text.contains(
            "\"ON\"},\n        {\"action\": \"audio\", \"message\": \"PLAY:x.wav\"}\n      ],"
        ),
        "{text}"
    );
    let root = parse(&text).unwrap();
    let list = root
        .get("states")
        .unwrap()
        .get("a")
        .unwrap()
        .get("onEnter")
        .unwrap();
    assert_eq!(remove(&text, list, 1).unwrap().apply(&text), JSON);
    let only = remove(
        JSON,
        parse(JSON)
            .unwrap()
            .get("states")
            .unwrap()
            .get("a")
            .unwrap()
            .get("onEnter")
            .unwrap(),
        0,
    )
    .unwrap()
    .apply(JSON);
    assert!(only.contains("\"onEnter\": [],\n"), "{only}");
    serde_json::from_str::<serde_json::Value>(&only).unwrap();
}

#[test]
fn an_empty_json_list_opens_on_lines_of_its_own_and_a_new_state_is_written_out() {
    let root = parse(JSON).unwrap();
    let a = root.get("states").unwrap().get("a").unwrap();
    let t = Val::map([
        ("type", Val::Str("timeout".into())),
        ("delay", Val::Num(5.0)),
        ("goto", Val::Str("END".into())),
    ]);
    let text = insert(JSON, a.get("transitions").unwrap(), 0, None, &t, true)
        .unwrap()
        .apply(JSON);
    assert!(
        text.contains("\"transitions\": [\n        {\"type\": \"timeout\", \"delay\": 5, \"goto\": \"END\"}\n      ]\n"),
        "{text}"
    );
    let states = parse(&text).unwrap();
    let states = states.get("states").unwrap();
    let state = Val::map([
        ("onEnter", Val::Seq(vec![])),
        ("transitions", Val::Seq(vec![t.clone()])),
    ]);
    let text = insert(&text, states, 1, Some("b"), &state, true)
        .unwrap()
        .apply(&text);
    assert!(
        text.contains("    },\n    \"b\": {\n      \"onEnter\": [],\n      \"transitions\": [\n        {\"type\": \"timeout\", \"delay\": 5, \"goto\": \"END\"}\n      ]\n    }\n  }\n}"),
        "{text}"
    );
    serde_json::from_str::<serde_json::Value>(&text).unwrap();
}

#[test]
fn a_block_mapping_item_and_a_new_key_are_written_in_block_style() {
    let text = "actions:\n  - at: 0\n    topic: r/light\n    message: \"ON\"\nduration: 5";
    let root = parse(text).unwrap();
    let out = insert(
        text,
        root.get("actions").unwrap(),
        1,
        None,
        &cue(2.0, "r/light", "OFF"),
        false,
    )
    .unwrap()
    .apply(text);
    assert!(
        out.contains(
            "message: \"ON\"\n  - at: 2\n    topic: r/light\n    message: \"OFF\"\nduration"
        ),
        "{out}"
    );
    let root = parse(&out).unwrap();
    let stop = Val::Seq(vec![Val::map([
        ("topic", Val::Str("r/light".into())),
        ("message", Val::Str("OFF".into())),
    ])]);
    let out = insert(&out, &root, 2, Some("on_stop"), &stop, false)
        .unwrap()
        .apply(&out);
    assert!(
        out.ends_with("duration: 5\non_stop:\n  - { topic: r/light, message: \"OFF\" }\n"),
        "{out}"
    );
    let root = parse(&out).unwrap();
    let one = root.get("on_stop").unwrap();
    let emptied = remove(&out, one, 0).unwrap().apply(&out);
    assert!(emptied.ends_with("on_stop:\n  []\n"), "{emptied}");
    parse(&emptied).unwrap();
}

#[test]
fn a_key_for_a_list_and_a_value_for_a_mapping_are_refused() {
    let root = parse(YAML).unwrap();
    let e = insert(
        YAML,
        root.get("actions").unwrap(),
        0,
        Some("x"),
        &Val::Num(1.0),
        false,
    );
    assert!(e.is_err());
    assert!(set(YAML, root.get("actions").unwrap(), &Val::Num(1.0), false).is_err());
    assert!(remove(YAML, root.get("actions").unwrap(), 9).is_err());
}
