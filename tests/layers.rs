//! The layer rule, checked on the source: models (config, topic, events,
//! the scene model...) import no service, services import no `room`, and
//! only edges (web, cmd, site) import anything at all of the edges. A
//! reference is a `crate::` or `super::` path outside unit tests; the
//! module a path names is the longest module file that exists.

use std::collections::BTreeSet;
use std::path::Path;

/// Layers, lowest first.
const LAYERS: [&str; 4] = ["model", "service", "room", "edge"];

/// The layer of a module, by the longest matching prefix.
fn layer(module: &str) -> usize {
    const TABLE: &[(&str, usize)] = &[
        ("config", 0),
        ("diag", 0),
        ("topic", 0),
        ("events", 0),
        ("origin", 0),
        ("access", 0),
        ("accounts", 1),
        ("clock", 0),
        ("cue_thread", 0),
        ("ratelog", 0),
        ("logring", 0),
        ("durable", 0),
        ("signing", 0),
        ("tls", 0),
        ("scene", 0),
        ("scene::load", 0),
        ("scene::controller", 1),
        ("scene::runner", 1),
        ("scene::commands", 1),
        ("schedule", 1),
        ("schedule::plan", 0),
        ("media", 1),
        ("media::command", 0),
        ("mqtt", 1),
        ("registry", 1),
        ("feedback", 1),
        ("showlog", 1),
        ("check", 1),
        ("simulate", 1),
        ("broker", 1),
        ("systemd", 1),
        ("studio", 1),
        ("outputs", 1),
        ("system", 1),
        ("estop", 1),
        ("room", 2),
        ("web", 3),
        ("cmd", 3),
        ("site", 3),
        ("testkit", 3),
        ("", 3),
    ];
    TABLE
        .iter()
        .filter(|(p, _)| p.is_empty() || module == *p || module.starts_with(&format!("{p}::")))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module {module} is in no layer: add it to the table"))
}

/// Every module file under `src/` (unit-test files left out), by path.
fn modules(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if p.extension().is_none_or(|x| x != "rs") || parts.last().unwrap() == "tests" {
                continue;
            }
            if matches!(parts.last().unwrap().as_str(), "mod" | "lib" | "main") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((parts.join("::"), text));
        }
    }
    out
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    text.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths after each `crate::` / `super::` (a `{...}` group gives one
/// path per member).
fn references(code: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect::<String>()
            .trim_end_matches(':')
            .to_string()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|m| ident(m.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|p| !p.is_empty() && p != "self");
    out
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let all = modules(&src);
    let names: BTreeSet<&str> = all.iter().map(|(m, _)| m.as_str()).collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| names.contains(m.as_str()))
    };
    let mut wrong = Vec::new();
    for (module, text) in &all {
        let code = code(text);
        let parent: Vec<&str> = module.split("::").collect();
        let parent = parent[..parent.len().saturating_sub(1)].join("::");
        let targets = references(&code, "crate::").into_iter().chain(
            references(&code, "super::").into_iter().map(|p| {
                if parent.is_empty() {
                    p
                } else {
                    format!("{parent}::{p}")
                }
            }),
        );
        for target in targets.filter_map(|p| resolve(&p)) {
            let inside = target.starts_with(&format!("{module}::"))
                || module.starts_with(&format!("{target}::"));
            if !inside && target != *module && layer(&target) > layer(module) {
                wrong.push(format!(
                    "{module} ({}) uses {target} ({})",
                    LAYERS[layer(module)],
                    LAYERS[layer(&target)]
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_a_violation() {
    let code = "use crate::{room::Room, topic};\nfn f() { crate::web::app(); }\n";
    assert_eq!(
        references(code, "crate::"),
        ["room::Room", "topic", "web::app"]
    );
    assert!(layer("config::validate") < layer("mqtt::session"));
    assert!(layer("scene::load::build") < layer("scene::runner"));
    assert!(layer("room::router") < layer("web::api"));
}
