//! Bad revisions and times: an unknown revision, a bad time expression, a time before the first
//! snapshot; and `restore` over an existing file.

use super::*;

// ------------------------------------------------------------------------------------------------
// Bad revisions and times
// ------------------------------------------------------------------------------------------------

/// Reader commands with bad WHEN values: each refused naming the value; nothing changed.
fn bad_when(order: u32, case: &'static str, input: &str, whens: &[(&str, &str)]) {
    let fx = Fx::new();
    let env = &fx.env;
    let mut rows = Rows::new(env, order, case);
    let mut p = Problems::default();
    let before = fx.state();
    for &(when, must_say) in whens {
        for args in [
            vec!["cat", when, "--repo", "app.sqlgit"],
            vec![
                "restore",
                when,
                "--repo",
                "app.sqlgit",
                "--to",
                "restored.db",
            ],
        ] {
            let run = fx.run(&args);
            rows.add(input, &args, &run);
            if let Err(e) = refusal(&run, &[must_say]) {
                p.push(e);
            }
            p.check(!env.path("restored.db").exists(), || {
                format!("{}: created restored.db", run.cmdline)
            });
        }
    }
    for e in state_problems(&before, &fx.state(), true, case) {
        p.push(e);
    }
    p.finish();
}

#[test]
fn unknown_revision() {
    bad_when(
        11,
        "unknown-revision",
        "unknown revision",
        &[
            ("deadbeef", "\"deadbeef\""),
            ("HEAD~5", "\"HEAD~5\""),
            (
                "0123456789abcdef0123456789abcdef01234567",
                "\"0123456789abcdef0123456789abcdef01234567\"",
            ),
        ],
    );
}

#[test]
fn bad_time_expression() {
    bad_when(
        12,
        "bad-time",
        "bad time expression",
        &[
            ("3 fortnights", "\"3 fortnights\""),
            ("2027-13-45T00:00:00Z", "\"2027-13-45T00:00:00Z\""),
            ("yesterday at noon", "\"yesterday at noon\""),
        ],
    );
}

#[test]
fn time_before_the_first_snapshot() {
    // The snapshot is at T; readers run at T + 1h.
    bad_when(
        13,
        "time-before-first",
        "time before the first snapshot",
        &[
            (
                "2027-01-15T07:59:59Z",
                "no snapshot at or before 2027-01-15T07:59:59Z",
            ),
            // A duration names the time it resolved to.
            ("2h", "no snapshot at or before 2027-01-15T07:00:00Z"),
            (
                "2000-01-01T00:00:00Z",
                "no snapshot at or before 2000-01-01T00:00:00Z",
            ),
            // Before 1970: still a time before the first snapshot, not a crash.
            ("100years", "no snapshot at or before"),
        ],
    );
}

#[test]
fn restore_over_an_existing_file() {
    let fx = Fx::new();
    let env = &fx.env;
    let target = env.write("existing.db", "precious\n");
    let file_before = FileState::of(&target);
    let listing = list_dir(env.root());
    let before = fx.state();
    let args = ["restore", "--repo", "app.sqlgit", "--to", "existing.db"];
    let run = fx.run(&args);
    let mut rows = Rows::new(env, 14, "restore-over-existing");
    rows.add("restore over an existing file", &args, &run);
    let mut p = Problems::default();
    if let Err(e) = refusal(&run, &["existing.db", "--force"]) {
        p.push(e);
    }
    file_before.assert_unchanged(&target, "restore over an existing file");
    p.check(list_dir(env.root()) == listing, || {
        format!("files appeared: {:?}", list_dir(env.root()))
    });
    for e in state_problems(&before, &fx.state(), true, "restore over an existing file") {
        p.push(e);
    }
    p.finish();
}
