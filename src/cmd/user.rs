//! `roomctl user` and `roomctl token`: the accounts in `users.yaml` (the
//! config's `web.users`), changed in place; a running daemon picks the
//! change up at its next request. Passwords come from a prompt (twice) or,
//! when standard input is not a terminal, from its first line; never from
//! an argument, where `ps` and the shell history would see them.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::access::Role;
use crate::accounts::{AccountChange, AccountReply, UsersFile, change_file};
use crate::config::{Config, EnvPolicy, Secret};

/// What `roomctl user` does.
#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a user (the password is asked for).
    Add {
        /// The user's name (letters, digits, . _ - @).
        name: String,
        /// viewer, operator, technician or admin.
        #[arg(long)]
        role: Role,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        /// The user.
        name: String,
    },
    /// Give a user another role (their sessions end).
    Role {
        /// The user.
        name: String,
        /// viewer, operator, technician or admin.
        role: Role,
    },
    /// Remove a user (their sessions end).
    Remove {
        /// The user.
        name: String,
    },
    /// List the users and their roles.
    List,
}

/// What `roomctl token` does.
#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Make an API token; it is printed once and stored only hashed.
    Add {
        /// The token's name (what the show log calls it).
        name: String,
        /// viewer, operator, technician or admin.
        #[arg(long)]
        role: Role,
    },
    /// Revoke a token.
    Revoke {
        /// The token's name.
        name: String,
    },
    /// List the tokens and their roles.
    List,
}

/// The accounts file of the config at `config` (`web.users`).
pub fn users_file(config: &Path) -> anyhow::Result<PathBuf> {
    let c = Config::load_with(config, EnvPolicy::Optional).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(c.web.users)
}

fn password(prompt: &str) -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(Secret::new(line.trim_end_matches(['\n', '\r'])));
    }
    let first = rpassword::prompt_password(prompt).context("cannot read the password")?;
    let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != again {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(Secret::new(first))
}

fn load(path: &Path) -> anyhow::Result<UsersFile> {
    crate::accounts::read(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs `roomctl user ACTION` on the accounts file at `path`.
pub fn user(path: &Path, action: UserAction, out: &mut impl Write) -> anyhow::Result<()> {
    let change = match action {
        UserAction::List => {
            let f = load(path)?;
            if f.users.is_empty() {
                writeln!(out, "No users in {} yet.", path.display())?;
            }
            for (name, u) in &f.users {
                let changed = u.changed.as_deref().unwrap_or("");
                writeln!(out, "{name:<24} {:<11} {changed}", u.role)?;
            }
            return Ok(());
        }
        UserAction::Add { name, role } => {
            crate::accounts::check_name(&name).map_err(|e| anyhow::anyhow!(e))?;
            let password = password(&format!("Password for {name}: "))?;
            AccountChange::AddUser {
                name,
                role,
                password,
            }
        }
        UserAction::Passwd { name } => {
            let password = password(&format!("New password for {name}: "))?;
            AccountChange::SetPassword { name, password }
        }
        UserAction::Role { name, role } => AccountChange::SetRole { name, role },
        UserAction::Remove { name } => AccountChange::RemoveUser { name },
    };
    apply(path, change, out)
}

/// Runs `roomctl token ACTION` on the accounts file at `path`.
pub fn token(path: &Path, action: TokenAction, out: &mut impl Write) -> anyhow::Result<()> {
    let change = match action {
        TokenAction::List => {
            let f = load(path)?;
            if f.tokens.is_empty() {
                writeln!(out, "No API tokens in {} yet.", path.display())?;
            }
            for (name, t) in &f.tokens {
                let created = t.created.as_deref().unwrap_or("");
                writeln!(out, "{name:<24} {:<11} {created}", t.role)?;
            }
            return Ok(());
        }
        TokenAction::Add { name, role } => AccountChange::AddToken { name, role },
        TokenAction::Revoke { name } => AccountChange::RevokeToken { name },
    };
    apply(path, change, out)
}

fn apply(path: &Path, change: AccountChange, out: &mut impl Write) -> anyhow::Result<()> {
    let what = change.to_string();
    match change_file(path, &change).map_err(|e| anyhow::anyhow!("{e}"))? {
        AccountReply::Done => writeln!(out, "Done: {what}, in {}.", path.display())?,
        AccountReply::TokenCreated { name, token } => {
            writeln!(
                out,
                "Token {name} (shown only now; keep it somewhere safe):"
            )?;
            writeln!(out, "{}", token.expose())?;
        }
    }
    let f = load(path)?;
    if !f.users.is_empty() && !f.users.values().any(|u| u.role == Role::Admin) {
        writeln!(
            out,
            "Note: no user is admin, so users can be managed only here, not in the dashboard."
        )?;
    }
    Ok(())
}
