//! Self-healing after the abuse a cron job meets over weeks, where the evidence is in the
//! content and ancestry of the snapshots rather than their times: a rebuilt machine that kept
//! only the repository's config, a history remote put back from a backup whose main is exactly
//! where local pruning cut, and a clock that ran fast once before the machine was rebuilt.

use super::recovery::snapshot_run;
use super::{Fx, printed_commit};

/// The history remote on the git daemon, with `--keep 2`: (its path, the cron flags).
fn history_kept_2(fx: &Fx) -> (std::path::PathBuf, Vec<String>) {
    let history = fx.daemon.create_bare("history");
    let cron = ["--history-remote", &fx.daemon.url("history"), "--keep", "2"]
        .map(String::from)
        .into();
    (history, cron)
}

/// The machine was rebuilt and only the repository's config came back (configuration
/// management, a backup of the settings): the plain cron run builds the repository again around
/// that config and continues the history remote.
#[test]
fn a_repository_of_only_its_config_is_built_again_and_continues_history() {
    let fx = Fx::new();
    let (history, cron) = history_kept_2(&fx);
    let cron: Vec<&str> = cron.iter().map(String::as_str).collect();
    for i in 0..3 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    let before = fx.head();
    let config = std::fs::read(fx.repo.join("config")).unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    std::fs::create_dir(&fx.repo).unwrap();
    std::fs::write(fx.repo.join("config"), &config).unwrap();
    let repo = fx.repo_arg();
    let status = fx.sqlgit(&["status", "--repo", &repo]);
    assert!(
        status
            .stderr_str()
            .contains(&format!("run: sqlgit snapshot --repo {repo}")),
        "{}",
        status.stderr_str()
    );

    fx.change();
    let run = snapshot_run(&fx, &[]).success().assert_quiet();
    let id = printed_commit(&run);
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), id);
    assert_eq!(fx.git(&history, &["rev-parse", "main^"]), before);
    assert_eq!(std::fs::read(fx.repo.join("config")).unwrap(), config);
    fx.assert_fsck(&history);
}

/// The history remote put back from a backup taken at the snapshot where pruning then cut (the
/// own parent of the oldest kept one): its main is a real ancestor of the kept snapshots, so
/// the next plain run is a fast-forward that gives it back every kept snapshot.
#[test]
fn a_history_remote_put_back_at_the_cut_is_fast_forwarded() {
    let fx = Fx::new();
    let (history, cron) = history_kept_2(&fx);
    let cron: Vec<&str> = cron.iter().map(String::as_str).collect();
    let backup = fx.env.path("history.bak");
    for i in 0..5 {
        if i == 3 {
            crate::env::copy_dir(&history, &backup);
        }
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    let cut = fx.rev(&backup, "refs/heads/main").unwrap();
    let shallow = std::fs::read_to_string(fx.repo.join("shallow")).unwrap();
    let oldest = fx.git(&fx.repo, &["cat-file", "-p", shallow.trim()]);
    assert!(oldest.contains(&format!("parent {cut}")), "{oldest}");
    std::fs::remove_dir_all(&history).unwrap();
    crate::env::copy_dir(&backup, &history);

    fx.change();
    let run = fx.snapshot(&cron).success().assert_quiet();
    let id = printed_commit(&run);
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), id);
    assert_eq!(fx.git(&history, &["rev-parse", "main~3"]), cut);
    fx.assert_fsck(&history);
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    fx.assert_history(&history, 7);
}

/// One run with a clock a month fast, then a rebuilt machine: the latest remote's snapshot is
/// the copy of the one the rebuilt repository continued (an ancestor of its head), so the next
/// run replaces it although it is older by the clock.
#[test]
fn a_fast_clocks_latest_snapshot_is_replaced_after_a_rebuild() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success().assert_quiet();
    fx.change();
    snapshot_at(&fx, &cron, fx.now.get() + 30 * 86400).success();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    fx.assert_latest(&latest);
    fx.assert_history(&history, 3);
}

/// The history remote was down for the last run before the machine died: that run's snapshot
/// reached only the latest remote. The first run on the rebuilt machine keeps it — on top of
/// the history remote's older tip, under the new snapshot — rather than force-pushing the
/// latest remote over its only copy.
#[test]
fn a_rebuild_keeps_the_snapshot_only_the_latest_remote_got() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = [
        "--history-remote",
        &h_url,
        "--latest-remote",
        &l_url,
        "--keep",
        "2",
    ];
    fx.snapshot(&cron).success().assert_quiet();
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    let away = fx.env.path("history.away");
    std::fs::rename(&history, &away).unwrap();
    fx.change();
    fx.snapshot(&cron).code_is(1);
    let only = fx.git(
        &latest,
        &["log", "-1", "--format=%T %ct %s", "refs/heads/main"],
    );
    std::fs::rename(&away, &history).unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();

    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert!(
        run.stdout_str()
            .contains("which the history remote never got"),
        "{}",
        run.stdout_str()
    );
    let id = printed_commit(&run);
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), id);
    let below = fx.git(&history, &["log", "-1", "--format=%T %ct %s", "main^"]);
    assert_eq!(
        below, only,
        "the latest remote's snapshot is kept in the history"
    );
    assert_eq!(fx.git(&history, &["rev-parse", "main~2"]), tip);
    fx.assert_fsck(&history);
    fx.assert_latest(&latest);
    fx.change();
    snapshot_run(&fx, &cron).success().assert_quiet();
    fx.assert_history(&history, 5);
}

/// `sqlgit snapshot app.db --repo app.sqlgit CRON…` with `SQLGIT_NOW` at `now`.
fn snapshot_at(fx: &Fx, cron: &[&str], now: u64) -> crate::env::Run {
    let db = fx.db.display().to_string();
    let repo = fx.repo_arg();
    let mut args = vec!["snapshot", db.as_str(), "--repo", repo.as_str()];
    args.extend_from_slice(cron);
    let now = now.to_string();
    fx.sqlgit_with(&args, &[("SQLGIT_NOW", now.as_str())], super::RUN_LIMIT)
        .0
}

/// Whether the history remote has the latest remote's snapshot decides, not the clocks: one
/// only the latest remote got is kept though a slow clock dated it before the history
/// remote's tip; one a fast clock dated after the tip, which the history remote has, is not
/// put on top again after a rebuild.
#[test]
fn a_rebuild_asks_the_history_remote_not_the_clock() {
    // Only the latest remote got it, dated an hour before the history remote's tip.
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success();
    fx.change();
    fx.snapshot(&cron).success();
    let away = fx.env.path("history.away");
    std::fs::rename(&history, &away).unwrap();
    fx.change();
    snapshot_at(&fx, &cron, fx.now.get() - 3600).code_is(1);
    std::fs::rename(&away, &history).unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    let run = fx.snapshot(&cron).success();
    assert!(
        run.stdout_str()
            .contains("which the history remote never got"),
        "{}",
        run.stdout_str()
    );
    fx.assert_history(&history, 4);
    fx.assert_latest(&latest);

    // A fast clock's snapshot reached both remotes; the next run's reached only the history
    // remote (the latest remote was away): after a rebuild it is not put on top again.
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success();
    fx.change();
    snapshot_at(&fx, &cron, fx.now.get() + 86400).success();
    let away = fx.env.path("latest.away");
    std::fs::rename(&latest, &away).unwrap();
    fx.change();
    fx.snapshot(&cron).code_is(1);
    std::fs::rename(&away, &latest).unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    let run = fx.snapshot(&cron).success();
    assert!(
        !run.stdout_str().contains("never got"),
        "{}",
        run.stdout_str()
    );
    fx.assert_history(&history, 4);
    fx.assert_latest(&latest);
}

/// The rebuilt machine's first run reaches the history remote but not the latest one, which
/// holds the only copy of a snapshot the history remote never got: the adoption waits (the
/// history remote is not pushed, the latest remote not replaced), and the next run that reaches
/// both keeps that snapshot below the ones taken meanwhile.
#[test]
fn a_rebuild_waits_for_an_unreachable_latest_remote_before_adopting() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success().assert_quiet();
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    let (h_away, l_away) = (fx.env.path("history.away"), fx.env.path("latest.away"));
    std::fs::rename(&history, &h_away).unwrap();
    fx.change();
    fx.snapshot(&cron).code_is(1);
    let only = fx.git(&latest, &["log", "-1", "--format=%T %s", "refs/heads/main"]);
    std::fs::rename(&h_away, &history).unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();

    std::fs::rename(&latest, &l_away).unwrap();
    fx.change();
    let run = snapshot_run(&fx, &cron).code_is(1);
    assert!(
        run.stderr_str()
            .contains("the latest remote could not be asked"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), tip);
    std::fs::rename(&l_away, &latest).unwrap();
    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert_eq!(
        fx.rev(&history, "refs/heads/main").unwrap(),
        printed_commit(&run)
    );
    let below = fx.git(&history, &["log", "-1", "--format=%T %s", "main~2"]);
    assert_eq!(below, only, "the latest remote's snapshot is kept");
    assert_eq!(fx.git(&history, &["rev-parse", "main~3"]), tip);
    fx.assert_fsck(&history);
    fx.assert_latest(&latest);
}

/// A latest remote gone for good on a rebuilt machine: the error names the command that stops
/// using it, and once run, the history remote's snapshots are continued.
#[test]
fn a_rebuild_whose_latest_remote_is_gone_names_the_command_that_forgets_it() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success().assert_quiet();
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    std::fs::remove_dir_all(&latest).unwrap();
    fx.change();
    let run = snapshot_run(&fx, &cron).code_is(1);
    let err = run.stderr_str();
    let printed = err
        .split("gone for good, with nothing to rescue: `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("{err}"));
    let args: Vec<String> = printed
        .split_whitespace()
        .skip(1)
        .map(|a| a.trim_matches('\'').to_string())
        .collect();
    fx.env.sqlgit(&args).success();
    snapshot_run(&fx, &[]).success();
    let history_log = fx.git(&history, &["log", "--format=%H", "refs/heads/main"]);
    assert_eq!(history_log.lines().count(), 2, "{history_log}");
    assert_eq!(history_log.lines().last(), Some(tip.as_str()));
    fx.assert_fsck(&history);
}

/// The history remote was recreated empty and the machine rebuilt: the latest remote's
/// snapshot is the only copy of anything before, so the new history starts from it (the new
/// snapshot on top) instead of force-pushing over it.
#[test]
fn a_rebuild_onto_an_empty_history_remote_keeps_the_latest_remotes_snapshot() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    fx.snapshot(&cron).success().assert_quiet();
    let only = fx.git(&latest, &["log", "-1", "--format=%T %s", "refs/heads/main"]);
    std::fs::remove_dir_all(&history).unwrap();
    fx.daemon.create_bare("history");
    std::fs::remove_dir_all(&fx.repo).unwrap();

    fx.change();
    let run = snapshot_run(&fx, &cron).success().assert_quiet();
    assert!(
        run.stdout_str()
            .contains("the history starts from the latest"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(
        fx.rev(&history, "refs/heads/main").unwrap(),
        printed_commit(&run)
    );
    let below = fx.git(&history, &["log", "-1", "--format=%T %s", "main^"]);
    assert_eq!(below, only, "the latest remote's snapshot is kept");
    fx.assert_fsck(&history);
    fx.assert_latest(&latest);
    fx.change();
    snapshot_run(&fx, &cron).success().assert_quiet();
    fx.assert_history(&history, 3);
}
