//! The integration tests: one binary, one module per area, sharing one
//! compiled kit (`common`). Real processes throughout: Mosquitto, rumqttd,
//! the roomctl binary, mpv, ALSA, headless Chromium.

mod common;
mod layers;

mod accounts;
mod audio_alsa;
mod bridges;
mod cli;
mod commands;
mod control_auth;
mod cue_thread;
mod dashboard;
mod disk_faults;
mod every_broker;
mod hostile;
mod mqtt_connection;
mod operations;
mod outputs;
mod predecessor;
mod resilience;
mod room;
mod safety;
mod second_broker;
mod site;
mod tls;
mod video_mpv;
mod web;
mod web_limits;
