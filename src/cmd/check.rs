//! `roomctl check`: prints what [`crate::check`] finds (warnings, then
//! errors, as `file:line:col: message`) and a summary; exit 1 on any error.
//! Synchronous: no runtime, no threads (it also runs under user-mode
//! emulation of the Pi, which cannot always create threads).

use std::path::Path;
use std::process::ExitCode;

/// Runs the checks for `path` and prints the report.
pub fn check(path: &Path) -> ExitCode {
    let r = crate::check::check(path);
    for w in r.warnings.iter() {
        println!("{w}");
    }
    for e in r.errors.iter() {
        println!("{e}");
    }
    if r.ok() {
        println!(
            "{}: OK ({} scene(s), {} media file(s))",
            path.display(),
            r.scenes.len(),
            r.media_files
        );
        ExitCode::SUCCESS
    } else {
        println!("{}: {} error(s)", path.display(), r.errors.len());
        ExitCode::FAILURE
    }
}
