//! WHEN arguments through the real binary, beyond `snapshot::when_resolution`: local times that
//! daylight saving time skips or repeats, malformed timestamps, the natural forms (`2 hours ago`,
//! lowercase RFC 3339), errors in a pruned repository that name the syntax rather than pruning,
//! and commit-id prefixes that several snapshots (or other objects) share.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::env::{Run, TestEnv, one_error_line};

/// Snapshot times: 2026-01-01, 2026-06-01 and 2026-09-01, 00:00 UTC.
const TIMES: [u64; 3] = [1_767_225_600, 1_780_272_000, 1_788_220_800];
/// Central European time with its 2026 rules, as a POSIX TZ (no tzdata needed).
const BERLIN: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// Three snapshots of a small database, at [`TIMES`].
struct Fx {
    env: TestEnv,
    db: PathBuf,
    repo: PathBuf,
    sql: Vec<Vec<u8>>,
}

impl Fx {
    fn new(history_remote: bool) -> Fx {
        let env = TestEnv::new();
        let db = env.db_from_script("app.db", b"CREATE TABLE t(x INTEGER);");
        let repo = env.path("app.sqlgit");
        let mut fx = Fx {
            env,
            db,
            repo,
            sql: Vec::new(),
        };
        let hist = fx.env.path("hist.git").display().to_string();
        if history_remote {
            fx.env
                .git_in(fx.env.root(), &["init", "-q", "--bare", &hist]);
        }
        for (i, at) in TIMES.iter().enumerate() {
            fx.env
                .sqlite3(&fx.db, format!("INSERT INTO t VALUES({i});"))
                .success();
            let mut args = vec!["snapshot", "app.db", "--repo", "app.sqlgit", "-q"];
            if history_remote {
                args.extend(["--history-remote", &hist]);
            }
            fx.env.sqlgit_at(*at, &args).success();
            let cat = fx.env.sqlgit(&["cat", "--repo", "app.sqlgit"]).success();
            fx.sql.push(cat.stdout().to_vec());
        }
        fx
    }

    /// `sqlgit cat WHEN` with `TZ` and `SQLGIT_NOW` (default: a day after the last snapshot).
    fn cat(&self, when: &str, tz: &str, now: Option<u64>) -> Run {
        let mut cmd = self.env.sqlgit_cmd(&["cat", when, "--repo", "app.sqlgit"]);
        let now = now.unwrap_or(TIMES[2] + 86400);
        cmd.env("TZ", tz).env("SQLGIT_NOW", now.to_string());
        self.env.run(cmd, b"")
    }

    /// `cat WHEN` must select snapshot `n` (1-based).
    #[track_caller]
    fn selects(&self, when: &str, tz: &str, now: Option<u64>, n: usize) {
        let run = self.cat(when, tz, now).success();
        if run.stdout() != self.sql[n - 1].as_slice() {
            let got = self
                .sql
                .iter()
                .position(|s| s == run.stdout())
                .map(|i| i + 1);
            run.fail(&format!(
                "WHEN {when:?} should select snapshot {n}, got {got:?}"
            ));
        }
    }

    /// `cat WHEN` must fail with one line saying each of `says`.
    #[track_caller]
    fn refuses(&self, when: &str, tz: &str, says: &[&str]) -> String {
        let line = one_error_line(self.cat(when, tz, None), 1);
        for s in says {
            assert!(
                line.contains(s),
                "WHEN {when:?}: {line:?} does not say {s:?}"
            );
        }
        line
    }
}

#[test]
fn local_times_that_daylight_saving_skips_or_repeats_are_refused() {
    let fx = Fx::new(false);
    // 02:00 → 03:00 on 2026-03-29: 02:30 never happens.
    fx.refuses(
        "2026-03-29 02:30",
        BERLIN,
        &["\"2026-03-29 02:30\"", "does not exist", "+01:00", "+02:00"],
    );
    // 03:00 → 02:00 on 2026-10-25: 02:30 happens twice, an hour apart.
    fx.refuses(
        "2026-10-25 02:30",
        BERLIN,
        &[
            "happens twice",
            "2026-10-25T02:30:00+02:00 (2026-10-25T00:30:00Z)",
            "2026-10-25T02:30:00+01:00 (2026-10-25T01:30:00Z)",
            "offset",
        ],
    );
    // With an offset, or at other local times, they resolve.
    fx.selects("2026-10-25T02:30:00+02:00", BERLIN, None, 3);
    fx.selects("2026-10-25 03:30", BERLIN, None, 3);
    fx.selects("2026-06-01 01:59", BERLIN, None, 1);
    fx.selects("2026-06-01 02:00", BERLIN, None, 2);
    fx.selects("2026-01-01 01:00", BERLIN, None, 1);
}

#[test]
fn malformed_timestamps_are_refused_naming_what_is_wrong() {
    let fx = Fx::new(false);
    for (when, says) in [
        ("2026-02-30T10:00:00Z", "February 2026 has 28 days"),
        ("2026-06-31 10:00", "June 2026 has 30 days"),
        ("2026-06-01T24:00:00Z", "hour 24"),
        ("2026-06-01T10:61:00Z", "10:61"),
        ("2026-06-30T23:59:60Z", "leap second"),
        ("2026-06-01T10:00:00+25:00", "offset +25:00 is out of range"),
        ("2026-06-01T10:00:00-05:60", "offset -05:60 is out of range"),
        ("2026-06-01T10:00:00Zjunk", "\"junk\" after the time"),
        ("2026-06-01 10:00 tomorrow", "\" tomorrow\" after the time"),
        ("2026-6-01", "the month needs 2 digits"),
    ] {
        fx.refuses(
            when,
            "UTC",
            &["not a valid time", &format!("{when:?}"), says],
        );
    }
    // The edges of what is valid still resolve.
    fx.selects("2026-06-01T23:58:59+23:59", "UTC", None, 1);
    fx.selects("2026-05-31T00:01:00-23:59", "UTC", None, 2);
    fx.selects("2026-06-01T00:00:00.999Z", "UTC", None, 2);
    fx.selects("2028-02-29", "UTC", None, 3);
}

#[test]
fn natural_forms_resolve_like_their_usual_spelling() {
    let fx = Fx::new(false);
    for (when, n) in [
        ("2026-05-31t23:59:59z", 1),
        ("2026-06-01t00:00:00z", 2),
        ("2026-06-01t02:00:00+02:00", 2),
    ] {
        fx.selects(when, "UTC", None, n);
    }
    // "ago" after a duration, as git says it: the same as the duration alone.
    for when in ["2 hours ago", "2h AGO", "2 hours"] {
        fx.selects(when, "UTC", Some(TIMES[1] + 3 * 3600), 2);
        fx.selects(when, "UTC", Some(TIMES[1] + 3600), 1);
    }
}

#[test]
fn in_a_pruned_repository_a_malformed_when_names_the_forms_not_pruning() {
    let fx = Fx::new(true);
    fx.env
        .sqlgit(&["prune", "--repo", "app.sqlgit", "--keep", "1", "-q"])
        .success();
    for when in ["yesterday", "2 hours agoo", "2026-06-01T10:00:00+25:00"] {
        let line = fx.refuses(when, "UTC", &["not a valid", &format!("{when:?}")]);
        assert!(!line.contains("pruned"), "WHEN {when:?}: {line}");
    }
    let line = fx.refuses("", "UTC", &["empty WHEN", "RFC 3339", "2 hours ago"]);
    assert!(!line.contains("pruned"), "{line}");
    // The natural forms reach back past local history like any time.
    fx.selects("2026-06-01t00:00:00z", "UTC", None, 2);
    fx.selects("100 days ago", "UTC", Some(TIMES[2] + 60 * 86400), 2);
    // `diff --live` reads local snapshots only: pruning explains a valid time, not a typo.
    let live = |when: &str| {
        let args = ["diff", when, "--live", "app.db", "--repo", "app.sqlgit"];
        one_error_line(fx.env.sqlgit(&args), 2)
    };
    let line = live("2026-06-01T00:00:00Z");
    assert!(line.contains("reads local ones only"), "{line}");
    let line = live("yesterday");
    assert!(
        line.contains("not a valid WHEN") && !line.contains("pruned"),
        "{line}"
    );
}

/// A git revision of another form than a commit id or `HEAD~N` (`main~2`, `ID^{tree}`) that
/// names no snapshot: refused as not a snapshot, with the forms, not explained by pruning.
#[test]
fn in_a_pruned_repository_another_revision_is_not_a_snapshot_not_pruned() {
    let fx = Fx::new(true);
    let oldest = fx.env.git_in(&fx.repo, &["rev-parse", "main~2"]);
    fx.env
        .sqlgit(&["prune", "--repo", "app.sqlgit", "--keep", "1", "-q"])
        .success();
    let tree = format!("{}^{{tree}}", &oldest.trim()[..12]);
    let head = fx.env.git_in(&fx.repo, &["rev-parse", "main"]);
    let head_tree = format!("{}^{{tree}}", &head.trim()[..12]);
    for when in ["main~2", tree.as_str(), head_tree.as_str(), "HEAD^{tree}"] {
        let line = fx.refuses(
            when,
            "UTC",
            &["not a snapshot", &format!("{when:?}"), "HEAD~N"],
        );
        assert!(!line.contains("pruned"), "WHEN {when:?}: {line}");
    }
    // The forms pruning explains still reach back, and a revision naming a snapshot works.
    fx.selects("HEAD~2", "UTC", None, 1);
    fx.selects(&oldest.trim()[..12], "UTC", None, 1);
    fx.selects("main", "UTC", None, 3);
}

#[test]
fn commit_id_prefixes_several_snapshots_share_are_ambiguous() {
    let fx = Fx::new(false);
    let env = &fx.env;
    // 1500 more snapshots (the last one's tree, new times) and 5000 unrelated blobs: some
    // 4-digit prefixes are then shared by two snapshots, others by a snapshot and a blob.
    let mut stream = String::new();
    for i in 0..5000 {
        stream.push_str(&format!(
            "blob\ndata {}\nblob {i}\n",
            6 + i.to_string().len()
        ));
    }
    for i in 1..=1500u64 {
        let at = TIMES[2] + i;
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter t <t@t> {at} +0000\ndata 2\n{}\n",
            i % 10
        ));
        if i == 1 {
            stream.push_str("from refs/heads/main^0\n");
        }
    }
    let mut cmd = env.command("git");
    cmd.arg("-C").arg(&fx.repo).args(["fast-import", "--quiet"]);
    env.run(cmd, stream.as_bytes()).success();
    let objects = env.git_in(
        &fx.repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    );
    let mut by_prefix: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    for line in objects.lines() {
        let (id, kind) = line.split_once(' ').unwrap();
        let entry = by_prefix.entry(&id[..4]).or_default();
        match kind {
            "commit" => entry.0.push(id),
            _ => entry.1 += 1,
        }
    }
    let (prefix, (ids, _)) = by_prefix
        .iter()
        .find(|(_, (ids, _))| ids.len() >= 2)
        .expect("no two snapshots share 4 digits");
    let mut says = vec!["ambiguous", "snapshots start with it", "more digits"];
    says.extend(ids.iter().map(|id| &id[..12]));
    says.push(*prefix);
    let line = fx.refuses(prefix, "UTC", &says);
    assert!(line.contains(&format!("{} snapshots", ids.len())), "{line}");
    // One snapshot and other objects: the snapshot.
    let (prefix, (ids, _)) = by_prefix
        .iter()
        .find(|(_, (ids, others))| ids.len() == 1 && *others > 0)
        .expect("no snapshot shares 4 digits with a blob only");
    let full = fx.cat(ids[0], "UTC", None).success();
    let short = fx.cat(prefix, "UTC", None).success();
    assert!(
        short.stdout() == full.stdout(),
        "cat {prefix} is not cat {}",
        ids[0]
    );
}

/// A TZ the system has no zone for would read a local time as UTC without a word: refused,
/// saying what to write; a compact date (`20261124`, eight digits a commit id could start with)
/// is told how to write a date; units in any case are durations.
#[test]
fn an_unknown_tz_and_a_compact_date_are_refused_saying_what_to_write() {
    let fx = Fx::new(false);
    fx.refuses(
        "2026-11-24 10:00",
        "Nonexistent/Zone",
        &["TZ=\"Nonexistent/Zone\"", "read as UTC", "with an offset"],
    );
    // With an offset or in UTC, TZ does not matter.
    fx.cat("2026-11-24T10:00:00Z", "Nonexistent/Zone", None)
        .success();
    fx.refuses("20261124", "UTC", &["for a date, write it as 2026-11-24"]);
    for when in ["2H", "2 Hours Ago", "1Day"] {
        fx.cat(when, "UTC", None).success();
    }
}

/// Whatever reads as a time is a time: a duration that is also the start of a snapshot's id
/// (`674d`), or a date that is also a tag, was taken as the revision, silently selecting
/// another snapshot. Now such a WHEN is refused naming both readings, and each written
/// unambiguously resolves; a revision naming the time's own snapshot is no ambiguity.
#[test]
fn a_when_that_is_a_time_and_a_revision_of_another_snapshot_is_ambiguous() {
    let fx = Fx::new(false);
    let env = &fx.env;
    // 600 more snapshots (the last one's tree, new times): one id likely starts NNNd.
    let mut stream = String::new();
    for i in 1..=600u64 {
        let at = TIMES[2] + i;
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter t <t@t> {at} +0000\ndata 2\n{}\n",
            i % 10
        ));
        if i == 1 {
            stream.push_str("from refs/heads/main^0\n");
        }
    }
    let mut cmd = env.command("git");
    cmd.arg("-C").arg(&fx.repo).args(["fast-import", "--quiet"]);
    env.run(cmd, stream.as_bytes()).success();
    let log = env.git_in(&fx.repo, &["log", "--format=%H", "main~1"]);
    let looks = |id: &str| {
        let b = id.as_bytes();
        (b'1'..=b'9').contains(&b[0]) && b[1..3].iter().all(u8::is_ascii_digit) && b[3] == b'd'
    };
    let id = log
        .lines()
        .find(|id| looks(id))
        .expect("no snapshot id starts NNNd");
    let duration = &id[..4];
    fx.refuses(
        duration,
        "UTC",
        &[
            "reads two ways",
            &id[..12],
            &format!("\"{duration} ago\""),
            "more digits",
        ],
    );
    let as_time = fx.cat(&format!("{duration} ago"), "UTC", None);
    let said = as_time.stderr_str();
    assert!(
        as_time.code() == Some(0) || said.contains("no snapshot at or before"),
        "{duration} ago: {said}"
    );
    let by_id = fx.cat(&id[..12], "UTC", None).success();
    assert!(by_id.stdout() == fx.sql[2].as_slice(), "cat {}", &id[..12]);

    // A tag named like a date, on another snapshot than the date's.
    let first = env.git_in(&fx.repo, &["rev-list", "--max-parents=0", "main"]);
    env.git_in(&fx.repo, &["tag", "2026-06-01", first.trim()]);
    fx.refuses(
        "2026-06-01",
        "UTC",
        &[
            "reads two ways",
            "refs/tags/2026-06-01",
            "\"2026-06-01 00:00\"",
        ],
    );
    fx.selects("refs/tags/2026-06-01", "UTC", None, 1);
    fx.selects("2026-06-01 00:00", "UTC", None, 2);
    // A tag `now` on the latest snapshot: both readings agree.
    env.git_in(&fx.repo, &["tag", "now", "main"]);
    fx.cat("now", "UTC", None).success();
}

/// `now` is the latest snapshot, also when a fast clock dated it after now; so is `0s`.
#[test]
fn now_is_the_latest_snapshot_even_one_dated_ahead_of_the_clock() {
    let fx = Fx::new(false);
    for when in ["now", "0s"] {
        fx.selects(when, "UTC", Some(TIMES[2] - 600), 3);
    }
    fx.selects("2h", "UTC", Some(TIMES[2] - 600), 2);
}

/// Only `now` (or a time after it) is the latest snapshot: one second ago is a time like any
/// other, before a snapshot taken at this second. A snapshot a fast clock dated after now
/// counts as taken now: a time between now and its date finds it.
#[test]
fn one_second_ago_is_not_now() {
    let fx = Fx::new(false);
    let now = Some(TIMES[2]);
    let rfc = |t: u64| crate::env::rfc3339(t);
    for when in ["1s", "1 second ago", &rfc(TIMES[2] - 1)] {
        fx.selects(when, "UTC", now, 2);
    }
    for when in ["now", "0s", &rfc(TIMES[2]), &rfc(TIMES[2] + 3600)] {
        fx.selects(when, "UTC", now, 3);
    }
    // A time after now keeps the snapshots' own dates, as every time but `now` does (they
    // may all be ahead of a slow clock).
    let slow = Some(TIMES[2] - 600);
    fx.selects(&rfc(TIMES[2] - 601), "UTC", slow, 2);
    fx.selects(&rfc(TIMES[2] - 300), "UTC", slow, 2);
    fx.selects("now", "UTC", slow, 3);
}

/// A TZ with a digit in it is not therefore a POSIX rule: one naming no zone file
/// (`Etc/GMT+14`, `Europe/Berlin2`) was read as UTC; refused like any unknown zone. A real
/// POSIX rule still works.
#[test]
fn a_tz_with_digits_that_names_no_zone_is_refused() {
    let fx = Fx::new(false);
    for tz in ["Etc/GMT+14", "Europe/Berlin2"] {
        fx.refuses(
            "2026-06-01 01:00",
            tz,
            &[&format!("TZ=\"{tz}\""), "read as UTC"],
        );
    }
    fx.selects("2026-06-01 02:30", BERLIN, None, 2);
}
