//! roomctl: the controller daemon for one museum room. See DESIGN.md for the
//! external contract and README.md for the architecture.

pub mod config;
pub mod diag;
pub mod mqtt;
pub mod broker;
