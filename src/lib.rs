//! roomctl: the controller daemon for one museum room. See DESIGN.md for the
//! external contract and README.md for the architecture.

pub mod broker;
pub mod config;
pub mod diag;
pub mod events;
pub mod feedback;
pub mod media;
pub mod mqtt;
pub mod registry;
pub mod scene;
pub mod app;
pub mod router;
pub mod check;
pub mod simulate;
pub mod web;
pub mod systemd;
pub mod cli;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod play;
