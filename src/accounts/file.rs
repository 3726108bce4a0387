//! `users.yaml`: the accounts and API tokens as stored. Passwords only as
//! Argon2id hashes (PHC strings), tokens only as SHA-256 hashes. Read with
//! a position for every mistake; written whole, through a temporary file,
//! with mode 600.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::access::Role;
use crate::diag::{Diagnostic, Diagnostics, Pos};

/// Longest accepted password, in bytes (longer ones are refused before any
/// hashing, so a 1 MB password costs nothing).
pub const MAX_PASSWORD: usize = 1024;
/// Longest user or token name.
pub const MAX_NAME: usize = 64;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// What the user may do.
    pub role: Role,
    /// The Argon2id hash of the password (PHC string).
    pub password: String,
    /// When the password or role last changed (RFC 3339), if known.
    pub changed: Option<String>,
}

/// One API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What the token may do.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// When it was made (RFC 3339), if known.
    pub created: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsersFile {
    /// Accounts by name.
    pub users: BTreeMap<String, User>,
    /// API tokens by name.
    pub tokens: BTreeMap<String, Token>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: Option<BTreeMap<String, Spanned<RawUser>>>,
    #[serde(default)]
    tokens: Option<BTreeMap<String, Spanned<RawToken>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    role: Spanned<String>,
    password: Spanned<String>,
    changed: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    role: Spanned<String>,
    sha256: Spanned<String>,
    created: Option<String>,
}

/// Why a name cannot be a user's or a token's, if it cannot.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() {
        Err("a name cannot be empty".into())
    } else if name.len() > MAX_NAME {
        Err(format!("a name is at most {MAX_NAME} characters"))
    } else if !name.chars().all(ok) {
        Err(format!(
            "`{}` is not a name: use letters, digits and . _ - @",
            name.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// Why a password cannot be set, if it cannot.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        Err("the password is empty".into())
    } else if password.len() > MAX_PASSWORD {
        Err(format!("a password is at most {MAX_PASSWORD} bytes"))
    } else if password.chars().count() < 8 {
        Err("a password needs at least 8 characters".into())
    } else {
        Ok(())
    }
}

/// The Argon2id hash of `password` (OWASP's parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes are a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches `phc` (a stored hash; a damaged one matches
/// nothing).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Hex SHA-256 of `token`.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A new API token: `rct_` and 32 random bytes in hex.
pub fn new_token() -> String {
    format!("rct_{}", hex(&rand::random::<[u8; 32]>()))
}

/// A new session id: 32 random bytes in hex.
pub fn new_session_id() -> String {
    hex(&rand::random::<[u8; 32]>())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What reading `users.yaml` gave: the accounts, and warnings (its mode).
pub struct Loaded {
    /// The accounts.
    pub file: UsersFile,
    /// Things to fix that do not stop the load.
    pub warnings: Vec<String>,
}

/// Reads `path`; a missing file is an empty one.
pub fn load(path: &Path) -> Result<Loaded, Diagnostics> {
    if !path.exists() {
        return Ok(Loaded {
            file: UsersFile::default(),
            warnings: Vec::new(),
        });
    }
    let text = crate::diag::read_text(path, "the accounts file")?;
    let file = parse(&text, path)?;
    let mut warnings = Vec::new();
    if let Ok(m) = std::fs::metadata(path) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "can be read by others (mode {mode:o}, owner uid {}): chmod 600 it",
                m.uid()
            ));
        }
    }
    Ok(Loaded { file, warnings })
}

/// Parses the text of `users.yaml` (named `path` in errors).
pub fn parse(text: &str, path: &Path) -> Result<UsersFile, Diagnostics> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(UsersFile::default());
    }
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| Diagnostic::from_yaml(path, &e))?;
    let mut diags = Diagnostics::default();
    let role = |s: &Spanned<String>, diags: &mut Diagnostics| match s.value.parse::<Role>() {
        Ok(r) => Some(r),
        Err(e) => {
            diags.push(Diagnostic::new(path, Pos::of(s), e.to_string()));
            None
        }
    };
    let mut out = UsersFile::default();
    for (name, u) in raw.users.unwrap_or_default() {
        if let Err(e) = check_name(&name) {
            diags.push(Diagnostic::new(path, Pos::of(&u), format!("user: {e}")));
        }
        let r = role(&u.value.role, &mut diags);
        let pw = &u.value.password;
        if !pw.value.starts_with("$argon2id$") || PasswordHash::new(&pw.value).is_err() {
            diags.push(Diagnostic::new(
                path,
                Pos::of(pw),
                format!("the password of `{name}` is not an Argon2id hash: set it with `roomctl user passwd {name}`"),
            ));
        }
        if let Some(role) = r {
            out.users.insert(
                name,
                User {
                    role,
                    password: pw.value.clone(),
                    changed: u.value.changed.clone(),
                },
            );
        }
    }
    for (name, t) in raw.tokens.unwrap_or_default() {
        if let Err(e) = check_name(&name) {
            diags.push(Diagnostic::new(path, Pos::of(&t), format!("token: {e}")));
        }
        let r = role(&t.value.role, &mut diags);
        let h = &t.value.sha256;
        if h.value.len() != 64 || !h.value.bytes().all(|b| b.is_ascii_hexdigit()) {
            diags.push(Diagnostic::new(
                path,
                Pos::of(h),
                format!("the hash of token `{name}` is not 64 hex digits"),
            ));
        }
        if let Some(role) = r {
            out.tokens.insert(
                name,
                Token {
                    role,
                    sha256: h.value.to_ascii_lowercase(),
                    created: t.value.created.clone(),
                },
            );
        }
    }
    diags.into_result(out)
}

/// The file's text: a header, then the users and tokens, names sorted.
pub fn render(f: &UsersFile) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut out = String::from(
        "# roomctl accounts: managed with `roomctl user` and `roomctl token`, or\n\
         # the dashboard's Users tab (admin). Passwords are Argon2id hashes,\n\
         # tokens SHA-256 hashes. Keep this file mode 600.\n",
    );
    out.push_str(if f.users.is_empty() {
        "users: {}\n"
    } else {
        "users:\n"
    });
    for (name, u) in &f.users {
        out.push_str(&format!(
            "  {}:\n    role: {}\n    password: {}\n",
            q(name),
            u.role,
            q(&u.password)
        ));
        if let Some(c) = &u.changed {
            out.push_str(&format!("    changed: {}\n", q(c)));
        }
    }
    out.push_str(if f.tokens.is_empty() {
        "tokens: {}\n"
    } else {
        "tokens:\n"
    });
    for (name, t) in &f.tokens {
        out.push_str(&format!(
            "  {}:\n    role: {}\n    sha256: {}\n",
            q(name),
            t.role,
            q(&t.sha256)
        ));
        if let Some(c) = &t.created {
            out.push_str(&format!("    created: {}\n", q(c)));
        }
    }
    out
}

/// Writes `f` to `path` durably, mode 600.
pub fn save(path: &Path, f: &UsersFile) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    crate::durable::replace_private(path, &tmp, render(f).as_bytes())
}

/// Now, as written in the file.
pub fn now_text() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_passwords_verify() {
        let mut f = UsersFile::default();
        f.users.insert(
            "alice".into(),
            User {
                role: Role::Operator,
                password: hash_password("correct horse"),
                changed: Some(now_text()),
            },
        );
        f.tokens.insert(
            "site".into(),
            Token {
                role: Role::Viewer,
                sha256: token_hash("rct_x"),
                created: None,
            },
        );
        let text = render(&f);
        assert_eq!(parse(&text, Path::new("users.yaml")).unwrap(), f);
        let phc = &f.users["alice"].password;
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(phc, "correct horse"));
        assert!(!verify_password(phc, "correct hors"));
        assert!(!verify_password("garbage", "correct horse"));
        assert_eq!(
            parse(&render(&UsersFile::default()), Path::new("u")).unwrap(),
            UsersFile::default()
        );
        assert_eq!(
            parse("# nothing yet\n", Path::new("u")).unwrap(),
            UsersFile::default()
        );
    }

    #[test]
    fn mistakes_are_refused_with_their_position() {
        let p = Path::new("users.yaml");
        let e = parse("users:\n  bob:\n    role: boss\n    password: x\n", p)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "users.yaml:3:11: `boss` is not a role (viewer, operator, technician or admin)\n\
             users.yaml:4:15: the password of `bob` is not an Argon2id hash: set it with `roomctl user passwd bob`"
        );
        let e = parse("users:\n  bob:\n    role: admin\n    pasword: x\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("users.yaml:4:"), "{e}");
        let e = parse("users: [1, 2\n", p).unwrap_err().to_string();
        assert!(e.starts_with("users.yaml:"), "{e}");
    }

    #[test]
    fn a_file_others_can_read_is_warned_about() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("users.yaml");
        std::fs::write(&path, render(&UsersFile::default())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = load(&path).unwrap().warnings;
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("can be read by others (mode 644"), "{w:?}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&path).unwrap().warnings.is_empty());
    }

    #[test]
    fn names_and_passwords_have_rules() {
        assert!(check_name("front-desk.1@museum").is_ok());
        for bad in ["", "a b", "../x", "a\nb", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_password("").unwrap_err(), "the password is empty");
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        assert!(check_password("eight ch").is_ok());
    }
}
