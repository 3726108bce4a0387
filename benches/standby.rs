//! The failover gap with and without standby connections, side by side in
//! one run: `mqtt.connect: one_at_a_time` (connect to the backup after the
//! loss) against `every_broker` (the backup's connection is already up),
//! the real `roomctl run` binary on two real Mosquittos, an independent
//! subscriber on both. Rounds alternate between the two so the machine's
//! drift hits both alike; medians are reported. Also the idle RSS of each.
//!
//! `cargo bench --bench standby`.

#[allow(dead_code, unused_imports)]
#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
mod support;

use std::time::Duration;

use support::{arrivals, e2e_setup_with, percentile, rss_mb};

const CUES: usize = 60;
const FAULT_AT: usize = 20;
const ROUNDS: usize = 3;

/// What one show with a fault measured.
struct Round {
    /// The latest cue after the fault, against its schedule (ms).
    late: f64,
    lost: usize,
}

async fn show_with_fault(every: bool, freeze: bool) -> Round {
    let mut run = e2e_setup_with(CUES, every).await;
    run.start_scene().await;
    run.wait_cue(FAULT_AT, Duration::from_secs(10)).await;
    if freeze {
        run.primary.freeze();
    } else {
        run.primary.kill();
    }
    run.wait_cue(CUES - 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let by = arrivals(&run.seen.lock());
    let lost = (0..CUES).filter(|i| !by.contains_key(i)).count();
    let mut late = 0.0f64;
    if let Some(t0) = by.get(&0).map(|v| v[0]) {
        for (i, v) in by.range(FAULT_AT..) {
            let due = t0 + Duration::from_millis(*i as u64 * 100);
            late = late.max(v[0].saturating_duration_since(due).as_secs_f64() * 1000.0);
        }
    }
    if freeze {
        run.primary.thaw();
    }
    run.cancel.cancel();
    let _ = run.daemon.kill().await;
    Round { late, lost }
}

async fn idle_rss(every: bool) -> f64 {
    let mut run = e2e_setup_with(CUES, every).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = rss_mb(run.daemon.id().expect("running"));
    run.cancel.cancel();
    let _ = run.daemon.kill().await;
    rss
}

fn main() {
    let rt = support::runtime();
    support::banner("standby connections");
    rt.block_on(async {
        let modes = [(false, "one_at_a_time"), (true, "every_broker")];
        for (freeze, fault) in [(false, "SIGKILL"), (true, "SIGSTOP")] {
            let mut late = [Vec::new(), Vec::new()];
            let mut lost = [0, 0];
            for _ in 0..ROUNDS {
                for (m, (every, _)) in modes.iter().enumerate() {
                    let r = show_with_fault(*every, freeze).await;
                    late[m].push(r.late);
                    lost[m] += r.lost;
                }
            }
            for (m, (_, name)) in modes.iter().enumerate() {
                let max = late[m].iter().cloned().fold(0.0, f64::max);
                println!(
                    "{fault:<8} primary, {name:<14} cue late after the fault: median {:>6.1} ms, max {:>6.1} ms; lost {} of {}",
                    percentile(&mut late[m], 0.5),
                    max,
                    lost[m],
                    CUES * ROUNDS
                );
            }
        }
        let mut rss = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (m, (every, _)) in modes.iter().enumerate() {
                rss[m].push(idle_rss(*every).await);
            }
        }
        for (m, (_, name)) in modes.iter().enumerate() {
            println!(
                "idle RSS, {name:<14} median {:.1} MB (two brokers configured)",
                percentile(&mut rss[m], 0.5)
            );
        }
    });
}
