//! A history remote emptied (recreated) after local pruning lost the pruned snapshots just as
//! a rewound one does: the history cache that had fetched them keeps them (marked lost, never
//! deleted as idle while it does), `log --all` lists them as `cache`, and `push --reroot` puts
//! them back first. And a re-root never continues another database's history.

use super::recovery::{run_printed_command, snapshot_run};
use std::path::Path;

use super::{FAIL_LIMIT, Fx};
use crate::env::Run;

/// Five snapshots (`--keep 2`) and `log --all` (the history cache holds them all), then the
/// history remote recreated empty: (history, cron flags, the five trees newest first).
fn emptied_after_pruning(fx: &Fx) -> (std::path::PathBuf, Vec<String>, Vec<String>) {
    let history = fx.daemon.create_bare("history");
    let cron: Vec<String> = ["--history-remote", &fx.daemon.url("history"), "--keep", "2"]
        .map(String::from)
        .into();
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    for i in 0..5 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&flags).success().assert_quiet();
    }
    fx.sqlgit(&["log", "--all", "--repo", &fx.repo_arg()])
        .success();
    let trees = fx.git(&history, &["log", "--format=%T", "refs/heads/main"]);
    std::fs::remove_dir_all(&history).unwrap();
    fx.daemon.create_bare("history");
    (history, cron, trees.lines().map(String::from).collect())
}

/// `sqlgit prune` with the history cache looking unused for three hours.
fn prune_idle(fx: &Fx) {
    let mut cmd = fx.env.command("touch");
    cmd.arg("-d")
        .arg("3 hours ago")
        .arg(fx.repo.join("sqlgit-cache").join("sqlgit-used"));
    fx.env.run(cmd, b"").success();
    fx.sqlgit(&["prune", "--repo", &fx.repo_arg()]).success();
}

/// Run the fix `run` printed (the `push --reroot`): it puts back the three snapshots pruned
/// here, and the history remote's main then holds every one of `trees`. Returns its trees.
fn reroot_puts_back(fx: &Fx, run: &Run, history: &Path, trees: &[String]) -> String {
    let fix = run_printed_command(fx, &run.stderr_str()).success();
    assert!(
        fix.stdout_str()
            .contains("put back 3 snapshots pruned here"),
        "{}",
        fix.stdout_str()
    );
    let remote = fx.git(history, &["log", "--format=%T", "refs/heads/main"]);
    for tree in trees {
        assert!(remote.contains(tree.as_str()), "{tree} lost:\n{remote}");
    }
    remote
}

/// `log --all` after the remote was emptied marks the three pruned snapshots `cache`; the
/// printed `--reroot` puts all of them back, below the kept ones.
#[test]
fn an_emptied_history_remote_gets_back_what_the_cache_kept() {
    let fx = Fx::new();
    let (history, cron, trees) = emptied_after_pruning(&fx);
    let log = fx
        .sqlgit(&["log", "--all", "--repo", &fx.repo_arg()])
        .success();
    let cached = log
        .stdout_str()
        .lines()
        .filter(|l| l.contains(" cache "))
        .count();
    assert_eq!(cached, 3, "{}", log.stdout_str());
    assert!(
        !log.stdout_str().contains(" remote ") && log.stderr_str().contains("--reroot"),
        "{}\n{}",
        log.stdout_str(),
        log.stderr_str()
    );
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    fx.change();
    let run = snapshot_run(&fx, &flags).code_is(1);
    let remote = reroot_puts_back(&fx, &run, &history, &trees);
    assert_eq!(remote.lines().count(), 6);
    fx.assert_fsck(&history);
}

/// Nobody listed anything since the remote was emptied: the cron run that finds it empty marks
/// what the cache holds as lost, so an idle prune keeps the cache, and the re-root puts them
/// back.
#[test]
fn an_idle_prune_keeps_the_cache_an_emptied_history_remote_needs() {
    let fx = Fx::new();
    let (history, cron, trees) = emptied_after_pruning(&fx);
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    fx.change();
    let run = snapshot_run(&fx, &flags).code_is(1);
    prune_idle(&fx);
    assert!(
        fx.repo.join("sqlgit-cache").exists(),
        "the cache was deleted"
    );
    reroot_puts_back(&fx, &run, &history, &trees);
}

/// The history remote now holds another database's snapshots: `push --reroot` refuses to put
/// this repository's snapshots on top of them, saying whose history it is, and leaves it as it
/// was.
#[test]
fn a_reroot_refuses_another_databases_history() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let url = fx.daemon.url("history");
    let cron = ["--history-remote", url.as_str(), "--keep", "2"];
    for i in 0..4 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    std::fs::remove_dir_all(&history).unwrap();
    fx.daemon.create_bare("history");
    let other = fx.env.db_from_script(
        "other.db",
        b"CREATE TABLE o(b); INSERT INTO o VALUES ('x');",
    );
    let other_repo = fx.env.path("other.sqlgit").display().to_string();
    let other_db = other.display().to_string();
    let args = [
        "snapshot",
        &other_db,
        "--repo",
        &other_repo,
        "--history-remote",
        &url,
    ];
    fx.sqlgit_with(&args, &[], FAIL_LIMIT).0.success();
    let theirs = fx.rev(&history, "refs/heads/main").unwrap();
    let repo = fx.repo_arg();
    let run = fx
        .sqlgit_with(&["push", "--repo", &repo, "--reroot"], &[], FAIL_LIMIT)
        .0
        .code_is(1);
    assert!(
        run.stderr_str().contains("are of other.db, not of app.db")
            && run.stderr_str().contains("another database's history"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), theirs);
    fx.sqlgit_with(&args, &[], FAIL_LIMIT).0.success();
}
