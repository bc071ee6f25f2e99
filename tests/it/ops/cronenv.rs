//! The cron environment and the newcomer's mistakes: a minimal PATH, umask 000, non-UTF-8 bytes
//! in the repository's path, a mistyped `--repo`, a run stopped while its hook runs, and URLs
//! whose password hides its userinfo.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::*;

/// `dir/NAME` where NAME holds the Latin-1 byte `byte` (not UTF-8).
fn latin1(env: &TestEnv, prefix: &str, byte: u8) -> PathBuf {
    let mut name = prefix.as_bytes().to_vec();
    name.push(byte);
    name.extend_from_slice(b".sqlgit");
    env.root().join(OsString::from_vec(name))
}

fn one_row_db(env: &TestEnv) -> PathBuf {
    env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1);")
}

#[test]
fn hooks_run_with_bin_sh_when_path_has_no_sh() {
    let env = TestEnv::new();
    let mark = env.path("alerted");
    let hook = format!("/usr/bin/touch {}", s(&mark));
    let missing = env.path("missing.db");
    let mut cmd = env.sqlgit_cmd(&[
        "snapshot",
        &s(&missing),
        "--repo",
        &s(&env.path("app.sqlgit")),
        "--on-failure",
        &hook,
    ]);
    cmd.env("PATH", env.path("no-sh-here"));
    run_limited(&env, cmd, b"").failure();
    assert!(mark.exists(), "the failure hook ran through /bin/sh");
}

#[test]
fn a_refused_snapshot_without_a_database_creates_no_repository() {
    let env = TestEnv::new();
    let repo = env.path("app.sqlgti");
    let run = sg(&env, T0, &["snapshot", "--repo", &s(&repo), "-q"]).failure();
    assert!(!repo.exists(), "{}", run.stderr_str());
    assert!(
        run.stderr_str().contains("check --repo"),
        "{}",
        run.stderr_str()
    );
    // A rebuilt machine's repository is gone with its remotes: the line names the `init` that
    // gives them back.
    let want = format!(
        "sqlgit init --repo {} --db DB --history-remote URL --latest-remote URL",
        s(&repo)
    );
    assert!(run.stderr_str().contains(&want), "{}", run.stderr_str());
    // An empty folder made beforehand stays empty.
    std::fs::create_dir(&repo).unwrap();
    sg(&env, T0, &["snapshot", "--repo", &s(&repo), "-q"]).failure();
    assert!(list_dir(&repo).is_empty(), "{:?}", list_dir(&repo));
}

#[test]
fn init_names_the_repository_absolute_for_a_crontab() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let run = sg(&env, T0, &["init", "--db", &s(&db), "--repo", "r.sqlgit"]).success();
    let want = format!("run: sqlgit snapshot --repo {}", s(&env.path("r.sqlgit")));
    assert!(run.stdout_str().contains(&want), "{}", run.stdout_str());
}

#[test]
fn a_repository_folder_made_beforehand_becomes_private() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let repo = env.path("app.sqlgit");
    std::fs::create_dir(&repo).unwrap();
    std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o777)).unwrap();
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
    let mode = std::fs::metadata(&repo).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "mode {mode:o}");
}

#[test]
fn diff_live_works_in_a_repository_whose_path_is_not_utf8() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let repo = latin1(&env, "backup-", 0xe9);
    let args = |extra: &[&str]| {
        let mut v: Vec<OsString> = extra.iter().map(OsString::from).collect();
        v.extend([OsString::from("--repo"), repo.clone().into_os_string()]);
        v
    };
    let cmd = env.sqlgit_cmd(&args(&["snapshot", &s(&db), "-q"]));
    run_limited(&env, cmd, b"").success();
    let cmd = env.sqlgit_cmd(&args(&["diff", "HEAD", "--live", &s(&db)]));
    run_limited(&env, cmd, b"").success();
}

#[test]
fn hooks_and_metrics_name_a_non_utf8_repository_exactly() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let prom = env.path("m.prom");
    let out = env.path("hook.out");
    let hook = format!("test -d \"$SQLGIT_REPO\" && echo ok > {}", s(&out));
    for byte in [0xe9, 0xe8] {
        let repo = latin1(&env, "r", byte);
        let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "-q", "--metrics-file", &s(&prom)]);
        cmd.arg("--repo").arg(&repo).args(["--on-success", &hook]);
        run_limited(&env, cmd, b"").success();
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ok\n");
    let text = std::fs::read_to_string(&prom).unwrap();
    let series = text
        .lines()
        .filter(|l| l.starts_with("sqlgit_last_run_success{"))
        .count();
    assert_eq!(series, 2, "{text}");
    assert!(
        text.contains("r%E9.sqlgit") && text.contains("r%E8.sqlgit"),
        "{text}"
    );
}

/// The `repo="…"` labels of the `sqlgit_last_run_success` series in `prom`, with their values.
fn run_success_series(prom: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(prom).unwrap();
    let samples = parse_prometheus(&text);
    let runs = samples
        .iter()
        .filter(|m| m.name == "sqlgit_last_run_success");
    runs.map(|m| (m.labels["repo"].clone(), m.value)).collect()
}

/// A path holding the byte 0xE9 and one holding the text `%E9` are two series: the failing one
/// is not hidden by the other's success. A series an older sqlgit labelled the second one with
/// (`%` as it was) is taken over by its next run, unless it names the first one, which is there.
#[test]
fn a_percent_in_a_repository_path_is_no_byte_in_its_metrics_label() {
    let env = TestEnv::new();
    let (a, b) = (one_row_db(&env), env.path("b.db"));
    env.sqlite3(&b, "CREATE TABLE t(x); INSERT INTO t VALUES(2);")
        .success();
    let prom = env.path("m.prom");
    let (byte, text) = (latin1(&env, "lat", 0xe9), env.path("lat%E9.sqlgit"));
    let run = |repo: &Path, db: Option<&Path>| {
        let mut cmd = env.sqlgit_cmd(&["snapshot", "-q", "--metrics-file", &s(&prom)]);
        cmd.args(db).arg("--repo").arg(repo);
        run_limited(&env, cmd, b"")
    };
    // What an older sqlgit left for the second one, the only one there yet.
    let old_label = s(&text);
    env.write(
        &prom,
        format!("sqlgit_last_run_success{{repo=\"{old_label}\"}} 1\n"),
    );
    run(&text, Some(&b)).success();
    let new_label = old_label.replace("%E9", "%25E9");
    assert_eq!(run_success_series(&prom), [(new_label.clone(), 1.0)]);
    run(&byte, Some(&a)).success();
    std::fs::remove_file(&b).unwrap();
    run(&text, None).code_is(1);
    run(&byte, None).success();
    let mut series = run_success_series(&prom);
    series.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(series, [(new_label, 0.0), (old_label, 1.0)]);
    // The older label names the first repository now: the second one's run leaves it.
    run(&text, None).code_is(1);
    assert_eq!(run_success_series(&prom).len(), 2);
}

#[test]
fn a_run_stopped_during_its_success_hook_stops_the_hook() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let (r, log) = (s(&env.path("r.sqlgit")), env.path("hooks.log"));
    let failure = format!("echo failure >> {}", s(&log));
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &r,
            "-q",
            "--on-failure",
            &failure,
        ],
    )
    .success();
    env.sqlite3(&db, "INSERT INTO t VALUES(2);").success();
    let success = format!("sleep 3; echo success >> {}", s(&log));
    let mut cmd = sqlgit_cmd(
        &env,
        T0 + 60,
        &["snapshot", "--repo", &r, "-q", "--on-success", &success],
        &[],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("err")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "{}",
        std::fs::read_to_string(env.path("err")).unwrap()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let hooks = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(hooks, "failure\n", "one outcome per run");
}

#[test]
fn a_password_hiding_its_userinfo_is_refused_and_never_shown() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let repo = env.path("r.sqlgit");
    let hook = format!("printf %s \"$SQLGIT_ERROR\" > {}", s(&env.path("hookerr")));
    for url in [
        "https://alice:Pa/Secr3tTok@127.0.0.1:9/h.git",
        "http://alice:Pa#Secr3tTok@127.0.0.1:9/h.git",
        "http://alice:Pa?Secr3tTok@127.0.0.1:9/h.git",
        "bob:Pa/Secr3tTok@127.0.0.1:srv/h.git",
    ] {
        let args = [
            "snapshot",
            &s(&db),
            "--repo",
            &s(&repo),
            "--history-remote",
            url,
        ];
        let run = sg(&env, T0, &[&args[..], &["--on-failure", &hook]].concat()).failure();
        let mut seen = run.stdout_str() + &run.stderr_str();
        for file in ["hookerr", "r.sqlgit/config", "r.sqlgit/sqlgit-state.json"] {
            seen += &std::fs::read_to_string(env.path(file)).unwrap_or_default();
        }
        assert!(!seen.contains("Secr3tTok"), "{url}: {seen}");
        assert!(
            run.stderr_str().contains("%2F") || url.starts_with("bob"),
            "{url}: {}",
            run.stderr_str()
        );
    }
}

#[test]
fn a_metrics_file_that_is_a_folder_is_refused_when_given() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    let dir = env.path("textfile");
    std::fs::create_dir(&dir).unwrap();
    let r = s(&env.path("r.sqlgit"));
    let run = sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &r,
            "--metrics-file",
            &s(&dir),
        ],
    );
    let run = run.code_is(2);
    assert!(
        run.stderr_str().contains("a folder"),
        "{}",
        run.stderr_str()
    );
    let config = std::fs::read_to_string(env.path("r.sqlgit/config")).unwrap_or_default();
    assert!(!config.contains("metricsFile"), "{config}");
}

/// The machine was rebuilt (local repository gone, remotes intact; the remotes were set by
/// `init`): the same `init` again, then the cron line, continues the history remote on top of
/// its tip without `--reroot`.
#[test]
fn a_rebuilt_machine_continues_the_history_after_the_same_init() {
    let env = TestEnv::new();
    let db = one_row_db(&env);
    for dir in ["h.git", "l.git"] {
        git_run(
            &env,
            env.root(),
            &["init", "-q", "--bare", "-b", "main", dir],
        )
        .success();
    }
    let (hist, latest) = (env.path("h.git"), env.path("l.git"));
    let repo = env.path("app.sqlgit");
    let (d, r, h, l) = (s(&db), s(&repo), s(&hist), s(&latest));
    let init = [
        "init",
        "-q",
        "--repo",
        &r,
        "--db",
        &d,
        "--history-remote",
        &h,
        "--latest-remote",
        &l,
    ];
    sg(&env, T0, &init).success().assert_quiet();
    sg(&env, T0, &["snapshot", "--repo", &r, "-q"])
        .success()
        .assert_quiet();
    let tip = git(&env, &hist, &["rev-parse", "main"]);
    std::fs::remove_dir_all(&repo).unwrap();
    sql(&env, &db, "INSERT INTO t VALUES(2);");
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r, "-q"]), 1);
    assert!(line.contains("sqlgit init --repo"), "{line}");
    sg(&env, T0 + 60, &init).success().assert_quiet();
    sg(&env, T0 + 60, &["snapshot", "--repo", &r, "-q"])
        .success()
        .assert_quiet();
    assert_eq!(git(&env, &hist, &["rev-parse", "main~1"]), tip);
    assert_eq!(git(&env, &hist, &["rev-list", "--count", "main"]), "2");
}
