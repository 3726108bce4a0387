//! `roomctl user` and `roomctl token`: the accounts file from the command
//! line, as an admin on the Pi uses it.

use std::process::{Command, Stdio};

use super::{BIN, roomctl, stdout};
use crate::common::*;

/// `roomctl user` with the password on standard input (never an argument).
fn with_stdin(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn users_and_tokens_are_managed_from_the_command_line() {
    let site = site(&[1], &[ONE_CUE], "");
    let c = site.config.to_str().unwrap();
    let users = site.dir.path().join("users.yaml");
    let o = with_stdin(
        &["user", "add", "desk", "--role", "operator", "-c", c],
        "front desk pw\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout(&o).contains("Done: add user desk (operator)"),
        "{}",
        stdout(&o)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&users).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.contains("$argon2id$") && !text.contains("front desk pw"),
        "{text}"
    );

    // Refusals read as sentences and change nothing.
    for (args, input, want) in [
        (
            vec!["user", "add", "desk", "--role", "admin"],
            "another pw!\n",
            "user desk exists already",
        ),
        (
            vec!["user", "add", "x", "--role", "admin"],
            "short\n",
            "a password needs at least 8 characters",
        ),
        (
            vec!["user", "add", "x", "--role", "admin"],
            "\n",
            "the password is empty",
        ),
        (
            vec!["user", "add", "a b", "--role", "admin"],
            "long enough\n",
            "`a b` is not a name",
        ),
        (
            vec!["user", "remove", "ghost"],
            "",
            "there is no user ghost",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["-c", c]);
        let o = with_stdin(&a, input);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let o = roomctl(&["user", "add", "x", "--role", "boss", "-c", c]);
    assert_eq!(o.status.code(), Some(2), "a bad role is a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("`boss` is not a role"));
    assert_eq!(
        std::fs::read_to_string(&users).unwrap(),
        text,
        "a refusal changed the file"
    );

    let o = roomctl(&["user", "role", "desk", "technician", "-c", c]);
    assert!(o.status.success());
    let o = roomctl(&["user", "list", "-c", c]);
    assert!(
        stdout(&o).starts_with("desk") && stdout(&o).contains("technician"),
        "{}",
        stdout(&o)
    );
    let o = with_stdin(&["user", "passwd", "desk", "-c", c], "a new password\n");
    assert!(o.status.success());
    let o = with_stdin(&["token", "add", "site", "--role", "viewer", "-c", c], "");
    assert!(o.status.success());
    let token = stdout(&o).lines().nth(1).unwrap().to_string();
    assert!(token.starts_with("rct_") && token.len() == 68, "{token}");
    assert!(!std::fs::read_to_string(&users).unwrap().contains(&token));
    assert!(stdout(&roomctl(&["token", "list", "-c", c])).contains("site"));
    assert!(
        roomctl(&["token", "revoke", "site", "-c", c])
            .status
            .success()
    );
    assert!(stdout(&roomctl(&["token", "list", "-c", c])).contains("No API tokens"));
    // The check reads the accounts file too.
    std::fs::write(&users, "users:\n  bob: {role: boss, password: x}\n").unwrap();
    let o = roomctl(&["check", "-c", c]);
    let out = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("users.yaml:2:"), "{out}");
}
