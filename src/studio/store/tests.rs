use super::*;

fn store() -> (tempfile::TempDir, SceneStore) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("scenes")).unwrap();
    let s = SceneStore::new(&d.path().join("scenes"), &d.path().join("state"));
    (d, s)
}

#[test]
fn a_save_needs_the_version_it_started_from() {
    let (_d, s) = store();
    let v1 = s.save("a.yaml", "one\n", None, "ann").unwrap();
    assert_eq!(s.read("a.yaml").unwrap().version, v1);
    // Creating it again is a conflict, not an overwrite.
    assert!(matches!(
        s.save("a.yaml", "two\n", None, "bob"),
        Err(StoreError::Conflict(_))
    ));
    let v2 = s.save("a.yaml", "two\n", Some(&v1), "bob").unwrap();
    // Saved again unchanged: nothing written, nothing kept.
    assert_eq!(s.save("a.yaml", "two\n", Some(&v2), "bob").unwrap(), v2);
    assert_eq!(s.history("a.yaml").unwrap().len(), 2);
    // Ann saves on top of her old version: refused, nothing written.
    let e = s.save("a.yaml", "three\n", Some(&v1), "ann").unwrap_err();
    assert!(
        e.to_string().contains("was changed since you opened it"),
        "{e}"
    );
    assert_eq!(s.read("a.yaml").unwrap().text, "two\n");
    assert_eq!(s.read("a.yaml").unwrap().version, v2);
}

#[test]
fn saves_are_kept_newest_first_with_author_and_can_be_read_back() {
    let (d, s) = store();
    std::fs::write(d.path().join("scenes/b.json"), "{\"before\": 1}\n").unwrap();
    let v0 = s.read("b.json").unwrap().version;
    let v1 = s.save("b.json", "{\"x\": 1}\n", Some(&v0), "ann").unwrap();
    s.save("b.json", "{\"x\": 2}\n", Some(&v1), "bob").unwrap();
    let h = s.history("b.json").unwrap();
    let who: Vec<&str> = h.iter().map(|e| e.author.as_str()).collect();
    assert_eq!(who, ["bob", "ann", "file on disk"]);
    assert_eq!(s.version("b.json", &h[2].id).unwrap(), "{\"before\": 1}\n");
    assert_eq!(h[1].version, v1);
    assert!(h.windows(2).all(|w| w[0].t_ms > w[1].t_ms));
    // No temporary file is left in the scenes folder.
    let names: Vec<String> = std::fs::read_dir(d.path().join("scenes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["b.json"]);
}

#[test]
fn only_the_last_saves_are_kept() {
    let (_d, s) = store();
    let mut v = s.save("c.yaml", "0", None, "ann").unwrap();
    for i in 1..40 {
        v = s.save("c.yaml", &i.to_string(), Some(&v), "ann").unwrap();
    }
    let h = s.history("c.yaml").unwrap();
    assert_eq!(h.len(), KEEP);
    assert_eq!(s.version("c.yaml", &h[0].id).unwrap(), "39");
}

#[test]
fn a_deleted_scene_goes_to_the_trash_and_its_text_stays_in_the_history() {
    let (d, s) = store();
    let v = s.save("d.yaml", "keep me", None, "ann").unwrap();
    assert!(matches!(
        s.delete("d.yaml", "0000", "ann"),
        Err(StoreError::Conflict(_))
    ));
    s.delete("d.yaml", &v, "ann").unwrap();
    assert!(!d.path().join("scenes/d.yaml").exists());
    let trash: Vec<_> = std::fs::read_dir(d.path().join("state/scene-trash"))
        .unwrap()
        .collect();
    assert_eq!(trash.len(), 1);
    let h = s.history("d.yaml").unwrap();
    assert_eq!(h[0].author, "ann (deleted)");
    assert_eq!(s.version("d.yaml", &h[0].id).unwrap(), "keep me");
    // It can be saved again from there (the file does not exist: no base).
    s.save("d.yaml", "keep me", None, "ann").unwrap();
}

#[test]
fn names_are_plain_file_names_and_sizes_are_bounded() {
    let (_d, s) = store();
    for bad in [
        "../x.yaml",
        "a/b.yaml",
        ".hidden.yaml",
        "x.txt",
        "nul\0.yaml",
        "..yaml",
        ".yaml",
        "a..b.json",
    ] {
        assert!(
            matches!(s.save(bad, "x", None, "ann"), Err(StoreError::BadName(_))),
            "{bad:?}"
        );
        assert!(
            matches!(s.read(bad), Err(StoreError::BadName(_))),
            "{bad:?}"
        );
    }
    let big = "x".repeat(MAX_SCENE_BYTES + 1);
    assert!(matches!(
        s.save("big.yaml", &big, None, "ann"),
        Err(StoreError::TooLarge(_))
    ));
    assert!(matches!(
        s.version("a.yaml", "../../etc"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_read_only_folder_refuses_the_save_and_keeps_the_file() {
    use std::os::unix::fs::PermissionsExt;
    if unsafe { libc::geteuid() } == 0 {
        // root writes anyway; the full-disk case is in the web tests.
        return;
    }
    let (d, s) = store();
    let v = s.save("e.yaml", "old", None, "ann").unwrap();
    let dir = d.path().join("scenes");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let e = s.save("e.yaml", "new", Some(&v), "ann").unwrap_err();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(e.to_string().contains("nothing on disk was changed"), "{e}");
    assert_eq!(s.read("e.yaml").unwrap().text, "old");
}
