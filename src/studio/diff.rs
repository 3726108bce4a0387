//! The unified diff between two saves of a scene, as the studio's history
//! shows it. The line matching is the `similar` crate's Myers algorithm
//! (on slices of lines, with a deadline so a request is bounded); this
//! module only writes the result in the unified format (`---`, `+++`,
//! `@@ -a,b +c,d @@` and the changed lines with 3 lines of context).
//! Only the one algorithm on one type is compiled in: `TextDiff` brings
//! every algorithm for every kind of text, about 600 KB of the binary.

use similar::algorithms::{Capture, Replace, myers};
use similar::{DiffOp, DiffTag, group_diff_ops};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// The longest a diff may look for the smallest set of changes; after it
/// the result is still a correct diff, only perhaps a longer one.
const DEADLINE: Duration = Duration::from_secs(1);

/// `old` to `new` as a unified diff with `from` and `to` in its header;
/// empty when the two are the same.
pub fn unified(old: &str, new: &str, from: &str, to: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let mut hook = Replace::new(Capture::new());
    let deadline = Some(Instant::now() + DEADLINE);
    // It finishes the hook itself (the last replace is flushed).
    let _ = myers::diff_deadline(&mut hook, &a, 0..a.len(), &b, 0..b.len(), deadline);
    let ops = hook.into_inner().into_ops();
    let hunks = group_diff_ops(ops, CONTEXT);
    if hunks.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {from}\n+++ {to}\n");
    for hunk in hunks {
        write_hunk(&mut out, &hunk, &a, &b);
    }
    out
}

fn write_hunk(out: &mut String, hunk: &[DiffOp], a: &[&str], b: &[&str]) {
    let (Some(first), Some(last)) = (hunk.first(), hunk.last()) else {
        return;
    };
    let old = first.old_range().start..last.old_range().end;
    let new = first.new_range().start..last.new_range().end;
    let _ = writeln!(
        out,
        "@@ -{} +{} @@",
        range(old.start, old.len()),
        range(new.start, new.len())
    );
    for op in hunk {
        let (tag, o, n) = op.as_tag_tuple();
        if tag == DiffTag::Equal {
            o.for_each(|i| line(out, ' ', a[i]));
            continue;
        }
        if matches!(tag, DiffTag::Delete | DiffTag::Replace) {
            o.for_each(|i| line(out, '-', a[i]));
        }
        if matches!(tag, DiffTag::Insert | DiffTag::Replace) {
            n.for_each(|i| line(out, '+', b[i]));
        }
    }
}

/// A hunk's range: 1-based start and length; an empty range names the
/// line before it, a one-line range only its line.
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

fn line(out: &mut String, mark: char, text: &str) {
    out.push(mark);
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn a_change_is_shown_with_three_lines_of_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        assert_eq!(
            unified(old, new, "v1", "now"),
            "--- v1\n+++ now\n@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n+i\n"
        );
    }

    #[test]
    fn distant_changes_are_separate_hunks_and_the_same_text_is_empty() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old.replacen("\n2\n", "\ntwo\n", 1).replacen("19\n", "", 1);
        let d = unified(&old, &new, "a", "b");
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,5 @@\n 1\n-2\n+two\n"), "{d}");
        assert!(
            d.contains("@@ -16,5 +16,4 @@\n 16\n 17\n 18\n-19\n 20\n"),
            "{d}"
        );
        assert_eq!(unified(&old, &old, "a", "b"), "");
    }

    #[test]
    fn a_last_line_without_a_newline_says_so() {
        let d = unified("x\n", "x\ny", "a", "b");
        assert_eq!(
            d,
            "--- a\n+++ b\n@@ -1 +1,2 @@\n x\n+y\n\\ No newline at end of file\n"
        );
        let d = unified("", "new\n", "a", "b");
        assert_eq!(d, "--- a\n+++ b\n@@ -0,0 +1 @@\n+new\n");
    }
}
