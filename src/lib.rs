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
