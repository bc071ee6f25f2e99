//! The metrics file as others left it: written by an older sqlgit, shared with other programs'
//! metrics, reached through a symlink, or not readable by this run.

use super::*;

/// A database and the path of its repository, in `env`.
fn one_db(env: &TestEnv) -> (String, String) {
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    (s(&db), s(&env.path("a.sqlgit")))
}

fn count_lines(text: &str, start: &str) -> usize {
    text.lines().filter(|l| l.starts_with(start)).count()
}

#[test]
fn metrics_file_keeps_one_help_per_metric_and_other_programs_metrics() {
    let env = TestEnv::new();
    let (d, r) = one_db(&env);
    // What an older sqlgit (another HELP text) and a backup job left in a shared file.
    let prom = env.write(
        "textfile/shared.prom",
        "# HELP sqlgit_last_success_timestamp_seconds Unix time of the last fully successful run.\n\
         # TYPE sqlgit_last_success_timestamp_seconds gauge\n\
         sqlgit_last_success_timestamp_seconds{repo=\"/srv/other.sqlgit\"} 1796570000\n\
         # HELP restic_last_backup_timestamp_seconds Last restic backup.\n\
         # TYPE restic_last_backup_timestamp_seconds gauge\n\
         restic_last_backup_timestamp_seconds{host=\"db1\"} 1796570000\n\
         # TYPE restic_seconds histogram\n\
         restic_seconds_bucket{le=\"+Inf\"} 3\nrestic_seconds_sum 4.5\nrestic_seconds_count 3\n",
    );
    for now in [T0, T0 + 60] {
        let args = ["snapshot", &d, "--repo", &r, "--metrics-file", &s(&prom)];
        sg(&env, now, &args).success().assert_quiet();
    }
    let text = std::fs::read_to_string(&prom).unwrap();
    let samples = parse_prometheus(&text);
    for line in text.lines().filter(|l| l.starts_with("# ")) {
        let family: Vec<&str> = line.splitn(4, ' ').take(3).collect();
        assert_eq!(count_lines(&text, &family.join(" ")), 1, "{line}:\n{text}");
    }
    assert!(
        text.contains("# HELP sqlgit_last_success_timestamp_seconds Unix time of the last fully successful run (0"),
        "this version's HELP text wins:\n{text}"
    );
    let of = |name: &str| samples.iter().filter(|m| m.name == name).count();
    assert_eq!(of("sqlgit_last_success_timestamp_seconds"), 2, "{text}");
    assert_eq!(of("restic_last_backup_timestamp_seconds"), 1, "{text}");
    assert_eq!(
        of("restic_seconds_bucket") + of("restic_seconds_count"),
        2,
        "{text}"
    );
    let histogram = text.find("# TYPE restic_seconds histogram\n").unwrap();
    assert!(text[histogram..].starts_with(
        "# TYPE restic_seconds histogram\nrestic_seconds_bucket{le=\"+Inf\"} 3\n\
         restic_seconds_sum 4.5\nrestic_seconds_count 3\n"
    ));
}

#[test]
fn metrics_file_through_a_symlink_writes_its_target() {
    let env = TestEnv::new();
    let (d, r) = one_db(&env);
    let target = env.write("textfile/sqlgit.prom", "");
    std::fs::create_dir_all(env.path("etc")).unwrap();
    let link = env.path("etc/sqlgit.prom");
    std::os::unix::fs::symlink("../textfile/sqlgit.prom", &link).unwrap();
    for now in [T0, T0 + 60] {
        let args = ["snapshot", &d, "--repo", &r, "--metrics-file", &s(&link)];
        sg(&env, now, &args).success().assert_quiet();
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let text = std::fs::read_to_string(&target).unwrap();
    assert_eq!(count_lines(&text, "sqlgit_last_run_success{"), 1, "{text}");
    assert_eq!(last_success(&parse_prometheus(&text)), (T0 + 60) as f64);
}

#[test]
fn metrics_file_that_cannot_be_read_is_left_with_a_warning() {
    let env = TestEnv::new();
    let (d, r) = one_db(&env);
    // Not text (as root, a mode-0600 file of another user is readable: this fails the read too).
    let bytes = b"sqlgit_m{repo=\"/other\"} 1\n\xff\xfe\n";
    let prom = env.write("textfile/sqlgit.prom", bytes);
    let args = ["snapshot", &d, "--repo", &r, "--metrics-file", &s(&prom)];
    let run = sg(&env, T0, &args).success();
    let err = run.stderr_str();
    assert!(
        err.contains("warning: metrics file: read") && err.contains("left as it was"),
        "{err}"
    );
    assert_eq!(std::fs::read(&prom).unwrap(), bytes);
}

#[test]
fn metrics_of_a_repository_that_cannot_be_opened_keep_its_figures() {
    let env = TestEnv::new();
    let (d, r) = one_db(&env);
    let prom = env.path("m.prom");
    let args = ["snapshot", &d, "--repo", &r, "--metrics-file", &s(&prom)];
    sg(&env, T0, &args).success();
    sql(&env, Path::new(&d), "INSERT INTO t VALUES (2);");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    let before = parse_prometheus(&std::fs::read_to_string(&prom).unwrap());
    let bytes = metric(&before, "sqlgit_repository_bytes", None).value;
    assert_eq!(metric(&before, "sqlgit_local_snapshots", None).value, 2.0);
    // A hand edit of DIR/config gone wrong: git cannot open the repository.
    let config = Path::new(&r).join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[broken\n");
    std::fs::write(&config, text).unwrap();
    sg(&env, T0 + 120, &["snapshot", "--repo", &r]).code_is(1);
    let text = std::fs::read_to_string(&prom).unwrap();
    let after = parse_prometheus(&text);
    assert_eq!(metric(&after, "sqlgit_last_run_success", None).value, 0.0);
    assert_eq!(
        metric(&after, "sqlgit_local_snapshots", None).value,
        2.0,
        "{text}"
    );
    assert_eq!(
        metric(&after, "sqlgit_repository_bytes", None).value,
        bytes,
        "{text}"
    );
}
