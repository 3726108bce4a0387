//! `roomctl doctor`: tries every configured broker and says which answer
//! and how fast.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::mqtt::probe::probe;

/// Probes each broker; returns how many answered.
pub async fn doctor(path: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<usize> {
    let config = crate::check::load_config(path)?;
    let m = &config.mqtt;
    let n = m.brokers.len();
    writeln!(
        out,
        "room {}: {n} broker(s), client id {}",
        config.room, m.client_id
    )?;
    let timeout = m.connection_timeout.min(Duration::from_secs(5));
    let id = format!("{}-doctor-{}", m.client_id, std::process::id());
    let mut first_ok = None;
    let mut ok = 0;
    for (i, b) in m.brokers.iter().enumerate() {
        let auth = if b.username.is_some() {
            " (with credentials)"
        } else {
            ""
        };
        match probe(b, &id, timeout).await {
            Ok(d) => {
                ok += 1;
                first_ok.get_or_insert(b.addr());
                writeln!(
                    out,
                    "  {}/{n}  {:<24} OK      {:.1} ms{auth}",
                    i + 1,
                    b.addr(),
                    d.as_secs_f64() * 1000.0
                )?;
            }
            Err(e) => writeln!(out, "  {}/{n}  {:<24} FAILED  {e}{auth}", i + 1, b.addr())?,
        }
    }
    match first_ok {
        Some(addr) => writeln!(
            out,
            "{ok} of {n} broker(s) answer; the daemon would use {addr}"
        )?,
        None => writeln!(out, "no broker answers")?,
    }
    Ok(ok)
}
