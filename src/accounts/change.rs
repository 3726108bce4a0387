//! Changing the accounts: what a change is, what it gives back, why it is
//! refused, and applying it to `users.yaml` (read fresh, changed, written
//! whole), for `roomctl user` and the dashboard alike.

use std::path::Path;

use super::file::{self, Token, User};
use super::{UsersFile, check_name, check_password};
use crate::access::Role;
use crate::config::Secret;

/// A change to the accounts.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountChange {
    /// A new user.
    AddUser {
        /// The name.
        name: String,
        /// The role.
        role: Role,
        /// The password (hashed before it is kept).
        password: Secret,
    },
    /// A user's new password (ends the user's sessions).
    SetPassword {
        /// The user.
        name: String,
        /// The password.
        password: Secret,
    },
    /// A user's new role (ends the user's sessions).
    SetRole {
        /// The user.
        name: String,
        /// The role.
        role: Role,
    },
    /// A user removed (and logged out).
    RemoveUser {
        /// The user.
        name: String,
    },
    /// A new API token; its secret is in the answer, once.
    AddToken {
        /// Its name.
        name: String,
        /// Its role.
        role: Role,
    },
    /// An API token revoked.
    RevokeToken {
        /// Its name.
        name: String,
    },
}

impl std::fmt::Display for AccountChange {
    /// In words, without any secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountChange::AddUser { name, role, .. } => write!(f, "add user {name} ({role})"),
            AccountChange::SetPassword { name, .. } => write!(f, "set the password of {name}"),
            AccountChange::SetRole { name, role } => write!(f, "make {name} {role}"),
            AccountChange::RemoveUser { name } => write!(f, "remove user {name}"),
            AccountChange::AddToken { name, role } => write!(f, "add API token {name} ({role})"),
            AccountChange::RevokeToken { name } => write!(f, "revoke API token {name}"),
        }
    }
}

/// What a change gave back.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountReply {
    /// Done.
    Done,
    /// A new token: shown now, never again.
    TokenCreated {
        /// Its name.
        name: String,
        /// The token itself.
        token: Secret,
    },
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A name, password or role that cannot be.
    #[error("{0}")]
    Invalid(String),
    /// No such user or token.
    #[error("{0}")]
    NotFound(String),
    /// Exists already, or would leave nobody to manage the accounts.
    #[error("{0}")]
    Conflict(String),
    /// `users.yaml` could not be read or written; nothing changed.
    #[error("{0}")]
    File(String),
}

/// Applies `change` to the file at `path` (`roomctl user` and the
/// dashboard both come here).
pub fn change_file(path: &Path, change: &AccountChange) -> Result<AccountReply, AccountError> {
    let mut f = file::load(path)
        .map_err(|e| AccountError::File(format!("{e}")))?
        .file;
    let admins = |f: &UsersFile| f.users.values().filter(|u| u.role == Role::Admin).count();
    let had_admin = admins(&f) > 0;
    let user = |f: &UsersFile, name: &str| -> Result<(), AccountError> {
        if f.users.contains_key(name) {
            Ok(())
        } else {
            Err(AccountError::NotFound(format!(
                "there is no user {}",
                name.escape_debug()
            )))
        }
    };
    let mut reply = AccountReply::Done;
    match change {
        AccountChange::AddUser {
            name,
            role,
            password,
        } => {
            check_name(name).map_err(AccountError::Invalid)?;
            check_password(password.expose()).map_err(AccountError::Invalid)?;
            if f.users.contains_key(name) {
                return Err(AccountError::Conflict(format!(
                    "user {name} exists already"
                )));
            }
            f.users.insert(
                name.clone(),
                User {
                    role: *role,
                    password: file::hash_password(password.expose()),
                    changed: Some(file::now_text()),
                },
            );
        }
        AccountChange::SetPassword { name, password } => {
            user(&f, name)?;
            check_password(password.expose()).map_err(AccountError::Invalid)?;
            let u = f.users.get_mut(name).expect("checked");
            u.password = file::hash_password(password.expose());
            u.changed = Some(file::now_text());
        }
        AccountChange::SetRole { name, role } => {
            user(&f, name)?;
            let u = f.users.get_mut(name).expect("checked");
            u.role = *role;
            u.changed = Some(file::now_text());
        }
        AccountChange::RemoveUser { name } => {
            user(&f, name)?;
            f.users.remove(name);
        }
        AccountChange::AddToken { name, role } => {
            check_name(name).map_err(AccountError::Invalid)?;
            if f.tokens.contains_key(name) {
                return Err(AccountError::Conflict(format!(
                    "token {name} exists already"
                )));
            }
            let token = file::new_token();
            f.tokens.insert(
                name.clone(),
                Token {
                    role: *role,
                    sha256: file::token_hash(&token),
                    created: Some(file::now_text()),
                },
            );
            reply = AccountReply::TokenCreated {
                name: name.clone(),
                token: Secret::new(token),
            };
        }
        AccountChange::RevokeToken { name } => {
            if f.tokens.remove(name).is_none() {
                return Err(AccountError::NotFound(format!(
                    "there is no token {}",
                    name.escape_debug()
                )));
            }
        }
    }
    if had_admin && admins(&f) == 0 {
        return Err(AccountError::Conflict(
            "that would leave no admin: make another user admin first".into(),
        ));
    }
    file::save(path, &f).map_err(|e| {
        AccountError::File(format!(
            "cannot write {}: {e}; nothing changed",
            path.display()
        ))
    })?;
    Ok(reply)
}
