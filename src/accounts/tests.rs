use std::net::{IpAddr, Ipv4Addr};

use super::*;

const PW: &str = "correct horse battery";

fn accounts(dir: &Path) -> Accounts {
    Accounts::new(config(dir), EventBus::default())
}

fn config(dir: &Path) -> AccountsConfig {
    AccountsConfig {
        path: dir.join("users.yaml"),
        web_token: None,
        token_role: Role::Operator,
        anonymous: Some(Role::Viewer),
        session_idle: Duration::from_secs(3600),
        session_max: Duration::from_secs(8 * 3600),
    }
}

fn add(path: &Path, name: &str, role: Role) {
    change_file(
        path,
        &AccountChange::AddUser {
            name: name.into(),
            role,
            password: Secret::new(PW),
        },
    )
    .unwrap();
}

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

#[tokio::test]
async fn open_until_the_first_account_then_anonymous_reads() {
    let d = tempfile::tempdir().unwrap();
    let a = accounts(d.path());
    assert!(a.is_open());
    assert_eq!(a.anonymous(), Some(Role::Admin));
    // `roomctl user add` in another process: seen without a restart.
    add(&d.path().join("users.yaml"), "alice", Role::Admin);
    assert!(!a.is_open());
    assert_eq!(a.anonymous(), Some(Role::Viewer));
    assert_eq!(a.users()[0].name, "alice");
}

#[tokio::test]
async fn a_login_gives_a_session_that_a_password_change_ends() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("users.yaml");
    add(&path, "alice", Role::Operator);
    let a = accounts(d.path());
    let (id, actor) = a.login("alice", PW, HOME).await.unwrap();
    assert_eq!(
        actor,
        Actor::User {
            name: "alice".into(),
            role: Role::Operator
        }
    );
    assert_eq!(a.session(&id).unwrap(), actor);
    assert!(matches!(
        a.login("alice", "wrong horse", HOME).await,
        Err(LoginError::Wrong)
    ));
    assert!(matches!(
        a.login("nobody", PW, HOME).await,
        Err(LoginError::Wrong)
    ));
    a.change(AccountChange::SetPassword {
        name: "alice".into(),
        password: Secret::new("another password"),
    })
    .await
    .unwrap();
    assert_eq!(a.session(&id), Err(AuthError::SessionEnded));
    let (id, _) = a.login("alice", "another password", HOME).await.unwrap();
    // A role changed by hand in the file ends it too.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("role: operator", "role: viewer");
    std::fs::write(&path, text).unwrap();
    assert_eq!(a.session(&id), Err(AuthError::SessionEnded));
    a.logout("unknown", "x");
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_idle_and_absolute_in_paused_time() {
    let d = tempfile::tempdir().unwrap();
    add(&d.path().join("users.yaml"), "alice", Role::Operator);
    let a = accounts(d.path());
    let (id, _) = a.login("alice", PW, HOME).await.unwrap();
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert!(a.session(&id).is_ok(), "used within the idle hour");
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert_eq!(
        a.session(&id),
        Err(AuthError::SessionEnded),
        "idle for an hour"
    );

    let (id, _) = a.login("alice", PW, HOME).await.unwrap();
    for _ in 0..15 {
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert!(a.session(&id).is_ok());
    }
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert_eq!(
        a.session(&id),
        Err(AuthError::SessionEnded),
        "8 h after login"
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_failures_lock_the_user_and_the_address() {
    let d = tempfile::tempdir().unwrap();
    add(&d.path().join("users.yaml"), "alice", Role::Operator);
    let a = accounts(d.path());
    let mut bus = a.inner.events.subscribe();
    for _ in 0..5 {
        assert!(matches!(
            a.login("alice", "guess guess", HOME).await,
            Err(LoginError::Wrong)
        ));
    }
    let e = a.login("alice", PW, HOME).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "too many failed logins for alice: try again in 30 s"
    );
    let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8));
    let e = a.login("alice", PW, other).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("too many failed logins for alice"),
        "{e}"
    );
    let e = a.login("bob", PW, HOME).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("too many failed logins from 10.0.0.7"),
        "{e}"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    a.login("alice", PW, HOME).await.unwrap();
    // Every attempt is in the audit trail, without the password.
    let mut seen = Vec::new();
    while let Ok(Event::Action(e)) = bus.try_recv() {
        assert!(!format!("{e:?}").contains("guess"), "{e:?}");
        seen.push((e.who, e.refused.is_some()));
    }
    assert_eq!(seen.len(), 9);
    assert_eq!(seen.last().unwrap(), &(Some("alice".into()), false));
}

#[tokio::test]
async fn bad_input_is_refused_before_any_hashing() {
    let d = tempfile::tempdir().unwrap();
    let a = accounts(d.path());
    let big = "x".repeat(1 << 20);
    for (user, pw, text) in [
        ("", PW, "enter a user name"),
        ("alice", "", "enter the password"),
        ("alice", big.as_str(), "a password is at most 1024 bytes"),
    ] {
        assert_eq!(a.login(user, pw, HOME).await.unwrap_err().to_string(), text);
    }
}

#[tokio::test]
async fn tokens_are_shown_once_stored_hashed_and_revocable() {
    let d = tempfile::tempdir().unwrap();
    let mut c = config(d.path());
    c.web_token = Some(Secret::new("legacy"));
    let a = Accounts::new(c, EventBus::default());
    assert!(!a.is_open());
    assert_eq!(
        a.token("legacy").unwrap(),
        Actor::Token {
            name: "web.token".into(),
            role: Role::Operator
        }
    );
    let AccountReply::TokenCreated { token, .. } = a
        .change(AccountChange::AddToken {
            name: "site".into(),
            role: Role::Viewer,
        })
        .await
        .unwrap()
    else {
        panic!("no token")
    };
    let text = std::fs::read_to_string(a.path()).unwrap();
    assert!(!text.contains(token.expose()), "the token itself is stored");
    assert_eq!(
        a.token(token.expose()).unwrap(),
        Actor::Token {
            name: "site".into(),
            role: Role::Viewer
        }
    );
    let mut changed = token.expose().to_string();
    changed.pop();
    changed.push('z');
    assert_eq!(a.token(&changed), Err(AuthError::WrongToken));
    a.change(AccountChange::RevokeToken {
        name: "site".into(),
    })
    .await
    .unwrap();
    assert_eq!(a.token(token.expose()), Err(AuthError::WrongToken));
}

#[tokio::test]
async fn the_last_admin_stays_and_names_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("users.yaml");
    add(&path, "root", Role::Admin);
    let e = change_file(
        &path,
        &AccountChange::RemoveUser {
            name: "root".into(),
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "that would leave no admin: make another user admin first"
    );
    let e = change_file(
        &path,
        &AccountChange::SetRole {
            name: "root".into(),
            role: Role::Viewer,
        },
    )
    .unwrap_err();
    assert!(matches!(e, AccountError::Conflict(_)));
    add(&path, "second", Role::Admin);
    change_file(
        &path,
        &AccountChange::RemoveUser {
            name: "root".into(),
        },
    )
    .unwrap();
    let e = change_file(
        &path,
        &AccountChange::AddUser {
            name: "../x".into(),
            role: Role::Viewer,
            password: Secret::new(PW),
        },
    )
    .unwrap_err();
    assert!(matches!(e, AccountError::Invalid(_)), "{e}");
    let e = change_file(
        &path,
        &AccountChange::RemoveUser {
            name: "ghost".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "there is no user ghost");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn a_broken_file_is_refused_at_start_and_ignored_while_running() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("users.yaml");
    std::fs::write(&path, "users:\n  bob: {role: boss, password: x}\n").unwrap();
    let a = Accounts::new(config(d.path()), EventBus::default());
    let e = a.problem().unwrap();
    assert!(e.contains("users.yaml:2:"), "{e}");
    assert!(!a.is_open(), "a broken file opens nothing");
    assert_eq!(a.anonymous(), Some(Role::Viewer));
    std::fs::remove_file(&path).unwrap();
    add(&path, "alice", Role::Operator);
    let a = accounts(d.path());
    assert_eq!(a.problem(), None, "fixed on disk");
    std::fs::write(&path, "users: [").unwrap();
    assert_eq!(a.users().len(), 1, "the last good accounts stay");
    assert!(a.problem().is_some());
    assert!(a.login("alice", PW, HOME).await.is_ok());
}
