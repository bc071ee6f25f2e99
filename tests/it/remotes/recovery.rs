//! Recovery when either side is lost: a rebuilt machine (the local repository gone, the remotes
//! intact), a history remote recreated empty after local pruning, a history remote that another
//! writer pushed to, and a rebuilt machine whose first runs cannot reach the history remote.
//! Every case ends with the same cron command succeeding again, the history remote's existing
//! commits still ancestors of its tip, and — where a person must act — one stderr line holding
//! the exact command, which the test runs as printed. Also: a remote set up so that a plain
//! clone checks nothing out is noted once, with the fix.

use std::path::Path;

use super::{FAIL_LIMIT, Fx, assert_push_failures, printed_commit};
use crate::env::Run;

/// `sqlgit snapshot DB --repo REPO EXTRA…` run by `fx` (returns the run, whatever its exit).
pub(super) fn snapshot_run(fx: &Fx, extra: &[&str]) -> Run {
    let db = fx.db.display().to_string();
    let repo = fx.repo_arg();
    let mut args = vec!["snapshot", db.as_str(), "--repo", repo.as_str()];
    args.extend_from_slice(extra);
    fx.sqlgit_with(&args, &[], FAIL_LIMIT).0
}

/// Whether `ancestor` is an ancestor of (or equal to) `tip` in the bare repository `dir`.
fn is_ancestor(fx: &Fx, dir: &Path, ancestor: &str, tip: &str) -> bool {
    let mut cmd = fx.env.command("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["merge-base", "--is-ancestor", ancestor, tip]);
    fx.env.run(cmd, b"").code() == Some(0)
}

/// The trees of `main`'s commits in `dir`, newest first.
fn trees(fx: &Fx, dir: &Path) -> Vec<String> {
    fx.git(dir, &["log", "--format=%T", "refs/heads/main"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The command a failed push printed after "run: ", run exactly as printed (split on blanks:
/// the test's paths have none). Returns that run.
#[track_caller]
pub(super) fn run_printed_command(fx: &Fx, cause: &str) -> Run {
    let start = cause
        .find("run: ")
        .unwrap_or_else(|| panic!("no command in: {cause}"))
        + 5;
    let rest = &cause[start..];
    let command = rest.split(" (").next().unwrap().trim();
    let words: Vec<&str> = command.split_whitespace().collect();
    assert!(
        words.len() >= 4 && words[1..].contains(&"--reroot"),
        "expected `sqlgit push --repo DIR --reroot`, got {command:?}"
    );
    let mut cmd = fx.env.command(words[0]);
    cmd.args(&words[1..]);
    fx.env.run_limited(cmd, b"", FAIL_LIMIT).0
}

/// Three cron runs (a change before each but the first) pushing to a history and a latest
/// remote on the git daemon, with `--keep KEEP`: (history, latest, the cron flags).
fn three_cron_runs(fx: &Fx, keep: &str) -> (std::path::PathBuf, std::path::PathBuf, Vec<String>) {
    let history = fx.daemon.create_bare("history");
    let latest = fx.daemon.create_bare("latest");
    let cron: Vec<String> = [
        "--history-remote",
        &fx.daemon.url("history"),
        "--latest-remote",
        &fx.daemon.url("latest"),
        "--keep",
        keep,
    ]
    .map(String::from)
    .into();
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    for i in 0..3 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&flags).success().assert_quiet();
    }
    (history, latest, cron)
}

/// The machine is rebuilt: the local repository is gone, both remotes are intact. The same cron
/// command continues the history remote's history (its commits stay ancestors), and pruning
/// works at once.
#[test]
fn rebuilt_machine_continues_the_history_remote() {
    let fx = Fx::new();
    let (history, latest, cron) = three_cron_runs(&fx, "2");
    let cron: Vec<&str> = cron.iter().map(String::as_str).collect();
    let before = fx.head();
    std::fs::remove_dir_all(&fx.repo).unwrap();

    // Unchanged database: the adopted tip already is this snapshot.
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert!(
        run.stdout_str()
            .contains("continuing the history remote's snapshots"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(
        fx.head(),
        before,
        "the local main is the history remote's tip"
    );
    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    let id = printed_commit(&run);
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), id);
    assert!(is_ancestor(&fx, &history, &before, &id), "old history kept");
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "4");
    fx.assert_fsck(&history);
    fx.assert_latest(&latest);
    for _ in 0..3 {
        fx.change();
        snapshot_run(&fx, &cron).success().assert_quiet();
    }
    let repo = fx.repo_arg();
    let log = fx.sqlgit(&["log", "--repo", &repo]).success();
    assert_eq!(
        log.stdout_str().lines().count(),
        2,
        "--keep 2 prunes locally at once:\n{}",
        log.stdout_str()
    );
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "7");
    fx.assert_fsck(&history);
}

/// A rebuilt machine whose history remote is down: the snapshots are taken (the push fails
/// loudly), and the first run that reaches the remote puts them on top of its main by itself.
#[test]
fn rebuilt_machine_with_the_history_remote_down_catches_up_by_itself() {
    let mut fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let cron = ["--history-remote", h_url.as_str()];
    fx.snapshot(&cron).success().assert_quiet();
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    let before = fx.head();
    std::fs::remove_dir_all(&fx.repo).unwrap();

    fx.daemon.stop();
    for _ in 0..2 {
        fx.change();
        let run = snapshot_run(&fx, &cron);
        printed_commit(&run);
        assert_push_failures(&run, &[("history", &h_url)]);
    }
    fx.daemon.start();
    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert!(
        run.stdout_str().contains("on top of its main"),
        "{}",
        run.stdout_str()
    );
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    assert_eq!(tip, fx.head());
    assert!(
        is_ancestor(&fx, &history, &before, &tip),
        "old history kept"
    );
    assert_eq!(
        fx.git(&history, &["rev-list", "--count", "main"]),
        "5",
        "2 old + 3 taken on the rebuilt machine"
    );
    fx.assert_fsck(&history);
}

/// The history remote is recreated empty after local pruning: the push fails with one line that
/// holds the exact command; run as printed, it re-seeds the remote with every kept snapshot, and
/// the cron command works again.
#[test]
fn recreated_empty_history_remote_is_reseeded_by_the_printed_command() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let cron = ["--history-remote", h_url.as_str(), "--keep", "3"];
    for i in 0..6 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    let kept = trees(&fx, &fx.repo);
    assert_eq!(kept.len(), 3, "pruned to 3 locally");

    std::fs::remove_dir_all(&history).unwrap();
    fx.daemon.create_bare("history");
    fx.change();
    let run = snapshot_run(&fx, &cron);
    printed_commit(&run);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(causes[0].contains("empty"), "{causes:?}");
    let fix = run_printed_command(&fx, &causes[0]).success();
    assert!(
        fix.stdout_str().contains("re-rooted 4 snapshots"),
        "{}",
        fix.stdout_str()
    );
    assert_eq!(
        trees(&fx, &history),
        trees(&fx, &fx.repo),
        "the remote holds every kept snapshot's data"
    );
    assert_eq!(trees(&fx, &history).len(), 4);
    fx.assert_fsck(&history);
    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert_eq!(
        fx.rev(&history, "refs/heads/main").unwrap(),
        printed_commit(&run)
    );
}

/// A snapshot a tag keeps past pruning is cut off at its own commit (`DIR/shallow`): the
/// re-root after the history remote was recreated keeps that graft, so plain `git log TAG` and
/// `git fsck` still work, and the re-root is not refused for it.
#[test]
fn a_reroot_keeps_the_graft_a_tagged_snapshot_needs() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let cron = ["--history-remote", h_url.as_str(), "--keep", "2"];
    for i in 0..3 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    fx.git(&fx.repo, &["tag", "before-migration", "refs/heads/main~1"]);
    for _ in 0..4 {
        fx.change();
        fx.snapshot(&cron).success().assert_quiet();
    }
    fx.assert_fsck(&fx.repo);
    std::fs::remove_dir_all(&history).unwrap();
    fx.daemon.create_bare("history");
    let run = fx
        .sqlgit(&["push", "--repo", &fx.repo_arg(), "--reroot"])
        .success();
    assert!(
        run.stdout_str().contains("re-rooted 2 snapshots"),
        "{}",
        run.stdout_str()
    );
    fx.assert_fsck(&fx.repo);
    assert_eq!(
        fx.git(&fx.repo, &["log", "--format=%H", "before-migration"])
            .lines()
            .count(),
        1,
        "the tagged snapshot, cut off at itself"
    );
    assert_eq!(trees(&fx, &history), trees(&fx, &fx.repo));
    fx.change();
    snapshot_run(&fx, &cron).success().assert_quiet();
    fx.assert_fsck(&fx.repo);
}

/// Two machines write to one history remote: the second is refused with the command, the
/// remote untouched; the command puts its snapshots on top, keeping the first machine's.
#[test]
fn diverged_history_remote_is_refused_and_the_printed_command_resolves_it() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let other = fx.env.path("other.sqlgit");
    let other_arg = other.display().to_string();
    let db = fx.db.display().to_string();
    // The other machine's snapshots reach the remote first.
    fx.sqlgit(&[
        "snapshot",
        &db,
        "--repo",
        &other_arg,
        "--history-remote",
        &h_url,
    ])
    .success();
    let theirs = fx.rev(&history, "refs/heads/main").unwrap();
    // This machine started its own repository before it was told the remote.
    fx.change();
    fx.snapshot(&[]).success();
    fx.change();
    let hook_out = fx.env.path("success.env");
    let on_success = format!("env > '{}'", hook_out.display());
    let run = snapshot_run(
        &fx,
        &["--history-remote", &h_url, "--on-success", &on_success],
    );
    printed_commit(&run);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(causes[0].contains("diverged"), "{causes:?}");
    assert!(causes[0].contains("own remote"), "{causes:?}");
    assert_eq!(
        fx.rev(&history, "refs/heads/main").unwrap(),
        theirs,
        "untouched"
    );

    let fix = run_printed_command(&fx, &causes[0]).success();
    assert!(
        fix.stdout_str().contains("re-rooted 2 snapshots"),
        "{}",
        fix.stdout_str()
    );
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    assert_eq!(tip, fx.head());
    assert!(
        is_ancestor(&fx, &history, &theirs, &tip),
        "their snapshot kept"
    );
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "3");
    // The push completed the failed run: its hook and status name the re-rooted commit, the
    // one the remote has, not the id it had before.
    let hook = std::fs::read_to_string(&hook_out).expect("the success hook ran");
    assert!(
        hook.lines().any(|l| l == format!("SQLGIT_COMMIT={tip}")),
        "{hook}"
    );
    let status = fx.sqlgit(&["status", "--repo", &fx.repo_arg(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(status.stdout()).unwrap();
    assert_eq!(v["last_run"]["commit"], tip.as_str(), "{v:#}");
    fx.assert_fsck(&history);
    fx.change();
    snapshot_run(&fx, &[]).success().assert_quiet();
}

/// A password given in a remote URL is used for the run but never saved: the config keeps the
/// URL without it, the user is told where credentials belong, and no file of the repository
/// holds the password.
#[test]
fn a_password_in_a_remote_url_is_never_saved() {
    let fx = Fx::new();
    let url = format!(
        "http://backup:{}@127.0.0.1:{}/x.git",
        "n0t-s4ved-pw",
        crate::servers::free_port()
    );
    let run = snapshot_run(&fx, &["--history-remote", &url]);
    let out = run.stdout_str();
    assert!(
        out.contains("note: the password") && out.contains("SQLGIT_HTTPS_TOKEN"),
        "{out}"
    );
    assert!(
        !run.stderr_str().contains("n0t-s4ved-pw"),
        "{}",
        run.stderr_str()
    );
    let saved = fx.git(&fx.repo, &["config", "sqlgit.historyRemote"]);
    assert!(saved.starts_with("http://backup@127.0.0.1:"), "{saved}");
    let mut stack = vec![fx.repo.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(12).any(|w| w == b"n0t-s4ved-pw"),
                    "{} holds the password",
                    path.display()
                );
            }
        }
    }
    // Given again, the same URL is the same remote: nothing new is said.
    let run = snapshot_run(&fx, &["--history-remote", &url]);
    assert!(
        !run.stdout_str().contains("was not saved"),
        "{}",
        run.stdout_str()
    );
}

/// A remote created with `git init --bare` on a system whose default branch is `master`: its
/// HEAD names a branch sqlgit never pushes, so a plain `git clone` checks nothing out. The first
/// push says so, with the command that fixes it; later pushes do not repeat it.
#[test]
fn a_remote_whose_head_names_master_is_noted_once_with_the_fix() {
    let fx = Fx::new();
    let srv = fx.daemon.base().to_path_buf();
    fx.git(&srv, &["init", "-q", "--bare", "-b", "master", "odd.git"]);
    let url = fx.daemon.url("odd");
    let run = snapshot_run(&fx, &["--history-remote", &url])
        .success()
        .assert_quiet();
    let out = run.stdout_str();
    assert!(
        out.contains("note: the history remote's HEAD names a branch that does not exist")
            && out.contains("git symbolic-ref HEAD refs/heads/main"),
        "{out}"
    );
    // Fixed on the server as the note says: a clone now checks the snapshot out.
    fx.git(
        &srv.join("odd.git"),
        &["symbolic-ref", "HEAD", "refs/heads/main"],
    );
    let clone = fx.env.path("clone");
    fx.git(
        fx.env.root(),
        &["clone", "-q", &url, &clone.display().to_string()],
    );
    assert!(
        clone.join("app.db/0-header.sql").is_file(),
        "nothing checked out"
    );
    fx.change();
    let run = snapshot_run(&fx, &[]).success().assert_quiet();
    assert!(!run.stdout_str().contains("note:"), "{}", run.stdout_str());
}

/// The libgit2 transport (no `git` wanted, or none installed) adopts the history remote too: its
/// shallow fetch of the tip, then a fast-forward push.
#[test]
fn rebuilt_machine_continues_the_history_remote_with_libgit2() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let cron = ["--history-remote", h_url.as_str(), "--transport", "libgit2"];
    fx.snapshot(&cron).success().assert_quiet();
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    let before = fx.head();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    let id = printed_commit(&run);
    assert!(
        run.stdout_str()
            .contains("continuing the history remote's snapshots"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), id);
    assert!(is_ancestor(&fx, &history, &before, &id), "old history kept");
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "3");
    fx.assert_fsck(&history);
}

/// A rebuilt machine reaches the snapshots before the adopted tip at once, before any pruning:
/// the first run's check of the latest remote (a depth-1 fetch of its parentless commit) must not
/// leave that commit in the `shallow` file, where it was taken for the oldest kept snapshot and
/// looked for on the history remote (`log --all`, `cat`, `diff` of older points all failed).
#[test]
fn rebuilt_machine_reaches_older_snapshots_before_any_pruning() {
    let fx = Fx::new();
    let (history, latest, cron) = three_cron_runs(&fx, "10");
    let cron: Vec<&str> = cron.iter().map(String::as_str).collect();
    let oldest = fx.git(&history, &["rev-list", "--max-parents=0", "main"]);
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    snapshot_run(&fx, &cron).success().assert_quiet();
    fx.assert_latest(&latest);
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "4");

    let repo = fx.repo_arg();
    let log = fx
        .sqlgit(&["log", "--all", "--json", "--repo", &repo])
        .success();
    let listed: serde_json::Value = serde_json::from_slice(log.stdout()).unwrap();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(4),
        "log --all lists every snapshot:\n{}",
        log.stdout_str()
    );
    let sql = fx.sqlgit(&["cat", &oldest, "--repo", &repo]).success();
    assert!(sql.stdout_str().contains("'row 1'"), "{}", sql.stdout_str());
    assert!(
        !sql.stdout_str().contains("'row 2'"),
        "{}",
        sql.stdout_str()
    );
    let diff = fx.sqlgit(&["diff", &oldest, "HEAD", "--repo", &repo, "--summary"]);
    assert_eq!(diff.code(), Some(1), "{}", diff.stderr_str());
    fx.sqlgit(&["verify", &oldest, "--repo", &repo, "--quiet"])
        .success()
        .assert_quiet();
}

/// A new repository given another database's history remote (a copied cron line) does not
/// continue it: the run takes its snapshot, fails saying whose history it is, and keeps
/// failing so; the remote and its own machine's runs are untouched.
#[test]
fn another_databases_history_remote_is_not_continued() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let url = fx.daemon.url("history");
    snapshot_run(&fx, &["--history-remote", &url]).success();
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    let other = fx.env.db_from_script(
        "other.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('x');",
    );
    let other_repo = fx.env.path("other.sqlgit").display().to_string();
    let other_db = other.display().to_string();
    for _ in 0..2 {
        let args = [
            "snapshot",
            other_db.as_str(),
            "--repo",
            &other_repo,
            "--history-remote",
            &url,
        ];
        let run = fx.sqlgit_with(&args, &[], FAIL_LIMIT).0.code_is(1);
        assert!(
            run.stderr_str().contains("are of app.db, not of other.db")
                && run.stderr_str().contains("another database's history"),
            "{}",
            run.stderr_str()
        );
    }
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), tip);
    fx.change();
    snapshot_run(&fx, &[]).success().assert_quiet();
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "2");
}
