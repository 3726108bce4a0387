//! The dashboard's front-end libraries come from npm, pinned by
//! `web/package-lock.json`, and are embedded in the binary (src/web). On a
//! fresh checkout they are installed here, once, with `npm ci`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=web/node_modules/codemirror/package.json");
    println!("cargo:rerun-if-changed=web/node_modules/uplot/package.json");
    // One file of each library: a checkout that had only the older ones
    // installed gets the new one too.
    let markers = [
        "web/node_modules/codemirror/lib/codemirror.js",
        "web/node_modules/uplot/dist/uPlot.iife.min.js",
    ];
    let installed = || markers.iter().all(|m| Path::new(m).is_file());
    if installed() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix", "web"])
        .status();
    match status {
        Ok(s) if s.success() && installed() => {}
        Ok(s) => panic!(
            "`npm ci --prefix web` failed ({s}): the dashboard's editor and charts come from npm; run it by hand to see why"
        ),
        Err(e) => panic!(
            "cannot run npm ({e}): the dashboard's editor and charts come from npm; install Node.js and npm (apt-get install npm), then build again"
        ),
    }
}
