//! roomctl: the controller daemon for one museum room. See DESIGN.md for the
//! external contract and README.md for the architecture.

#![warn(missing_docs)]

pub mod access;
pub mod accounts;
pub mod broker;
pub mod check;
mod clock;
pub mod cmd;
pub mod config;
pub mod cue_thread;
mod diag;
pub(crate) mod durable;
pub mod estop;
pub mod events;
pub mod feedback;
pub mod logring;
pub mod media;
pub mod mqtt;
pub mod origin;
pub mod outputs;
mod ratelog;
pub mod registry;
pub mod room;
pub mod scene;
mod schedule;
pub mod showlog;
pub mod signing;
pub mod simulate;
pub mod site;
pub mod studio;
pub mod system;
mod systemd;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tls;
mod topic;
pub mod web;
