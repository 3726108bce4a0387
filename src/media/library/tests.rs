use super::*;
use std::io::Write;

fn library() -> (tempfile::TempDir, Library) {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let lib = Library {
        audio: media.clone(),
        video: media,
        trash: dir.path().join("state/media-trash"),
        player: "mpv".into(),
        busy: std::sync::Arc::default(),
    };
    (dir, lib)
}

fn upload(
    lib: &Library,
    name: &str,
    bytes: &[u8],
    replace: bool,
) -> Result<MediaFile, LibraryError> {
    let mut s = lib.stage(name, Some(bytes.len() as u64), 1 << 30)?;
    s.file().unwrap().write_all(bytes).unwrap();
    lib.add(s, replace)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_good_sound_is_probed_and_put_in_place_and_bad_ones_leave_nothing() {
    let (dir, lib) = library();
    let wav = crate::testkit::sine_wav(1.5, 440.0, 0.3);
    let f = upload(&lib, "tone.wav", &wav, false).unwrap();
    assert_eq!(f.kind, MediaKind::Audio);
    assert!((f.duration.unwrap() - 1.5).abs() < 0.01, "{f:?}");
    assert!(f.format.as_deref().unwrap().ends_with("Hz, 1 ch"), "{f:?}");
    let media = dir.path().join("media");
    assert_eq!(files_in(&media), ["tone.wav"]);

    let refused =
        |name: &str, bytes: &[u8]| upload(&lib, name, bytes, false).unwrap_err().to_string();
    assert_eq!(
        refused("empty.wav", b""),
        "`empty.wav` is refused: the file is empty"
    );
    let elf = [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(
        refused("song.mp3", &elf)
            .starts_with("`song.mp3` is refused: it does not decode as a sound")
    );
    let mut cut = wav.clone();
    cut.truncate(wav.len() / 3);
    let e = refused("cut.wav", &cut);
    assert!(e.contains("its header says 1.50 s but only"), "{e}");
    assert_eq!(
        refused("../x.wav", &wav),
        "`../x.wav` cannot name a media file: a plain file name, no folders, no leading dot"
    );
    assert!(refused("a\0b.wav", &wav).contains("cannot name a media file"));
    assert!(refused("notes.txt", &wav).contains("is neither a sound"));
    assert_eq!(files_in(&media), ["tone.wav"], "no half file left");
}

#[test]
fn an_existing_name_is_kept_unless_replaced_and_then_it_goes_to_the_trash() {
    let (dir, lib) = library();
    let one = crate::testkit::sine_wav(1.0, 440.0, 0.3);
    let two = crate::testkit::sine_wav(2.0, 440.0, 0.3);
    upload(&lib, "a.wav", &one, false).unwrap();
    assert_eq!(
        upload(&lib, "a.wav", &two, false).unwrap_err(),
        LibraryError::Exists("a.wav".into())
    );
    assert_eq!(std::fs::read(dir.path().join("media/a.wav")).unwrap(), one);
    upload(&lib, "a.wav", &two, true).unwrap();
    assert_eq!(std::fs::read(dir.path().join("media/a.wav")).unwrap(), two);
    let trash = files_in(&dir.path().join("state/media-trash"));
    assert_eq!(trash.len(), 1);
    assert!(trash[0].ends_with("-a.wav"));

    assert_eq!(
        lib.delete("a.wav", &["intro".into(), "outro".into()])
            .unwrap_err()
            .to_string(),
        "`a.wav` is used by intro, outro: change them first"
    );
    let gone = lib.delete("a.wav", &[]).unwrap();
    assert_eq!(
        (gone.name.as_str(), gone.kind, gone.size),
        ("a.wav", MediaKind::Audio, two.len() as u64)
    );
    assert!(files_in(&dir.path().join("media")).is_empty());
    let trash = files_in(&dir.path().join("state/media-trash"));
    assert_eq!(trash.len(), 2, "two in one millisecond are two: {trash:?}");
    assert_eq!(
        lib.delete("a.wav", &[]).unwrap_err(),
        LibraryError::Missing("a.wav".into())
    );
}

#[test]
fn two_uploads_of_one_name_at_once_are_one_too_many() {
    let (_dir, lib) = library();
    let first = lib.stage("a.wav", Some(10), 1 << 20).unwrap();
    assert_eq!(
        lib.stage("a.wav", Some(10), 1 << 20)
            .unwrap_err()
            .to_string(),
        "`a.wav` is being uploaded already: wait for that upload to end"
    );
    drop(first);
    lib.stage("a.wav", Some(10), 1 << 20).unwrap();
}

#[test]
fn sizes_over_the_limit_and_the_free_space_are_checked_first() {
    let (_dir, lib) = library();
    assert_eq!(
        lib.stage("big.wav", Some(3 << 30), 2 << 30).unwrap_err(),
        LibraryError::TooLarge(2048)
    );
    let free = free_bytes(&lib.audio).unwrap();
    assert!(matches!(
        lib.stage("big.wav", Some(free), u64::MAX).unwrap_err(),
        LibraryError::NoSpace(_)
    ));
}

#[test]
fn the_list_has_kind_length_format_and_size_and_skips_the_rest() {
    let (dir, lib) = library();
    let media = dir.path().join("media");
    std::fs::write(
        media.join("tone.wav"),
        crate::testkit::sine_wav(1.0, 440.0, 0.3),
    )
    .unwrap();
    std::fs::write(media.join(".upload-1.part"), b"half").unwrap();
    std::fs::write(media.join("readme.txt"), b"notes").unwrap();
    std::fs::write(media.join("clip.mp4"), b"x").unwrap();
    let list = lib.list(&|k, _| (k == MediaKind::Audio).then_some(1.0));
    let names: Vec<(&str, MediaKind, Option<f64>)> = list
        .iter()
        .map(|f| (f.name.as_str(), f.kind, f.duration))
        .collect();
    assert_eq!(
        names,
        [
            ("clip.mp4", MediaKind::Video, None),
            ("tone.wav", MediaKind::Audio, Some(1.0))
        ]
    );
    assert_eq!(list[1].format.as_deref(), Some("16000 Hz, 1 ch"));
}
