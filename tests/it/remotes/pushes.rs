//! What each remote receives: history every commit, latest one parentless commit; incremental
//! pushes; a refused push or a remote that is down; a new remote URL gets everything.

use super::*;

// ------------------------------------------------------------------------------------------------
// 1. History gets every commit, latest one parentless commit; both remotes stay fsck-clean.

#[test]
fn five_snapshots_reach_history_in_full_and_latest_as_one_parentless_commit() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    for i in 1..=5 {
        if i > 1 {
            fx.change();
        }
        let run = fx
            .snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
            .success()
            .assert_quiet();
        let id = printed_commit(&run);
        assert_eq!(id, fx.head(), "the printed commit is the new head");
        let out = run.stdout_str();
        for (role, url) in [("history", &h_url), ("latest", &l_url)] {
            if !out.contains(&format!("to {role} remote {url}")) {
                run.fail(&format!(
                    "stdout should report the push to the {role} remote"
                ));
            }
        }
        fx.assert_history(&history, i);
        fx.assert_latest(&latest);
    }
    assert_eq!(
        fx.git(&fx.repo, &["rev-list", "--count", "refs/heads/main"]),
        "5"
    );
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);

    // Nothing new: the snapshot commits nothing, the pushes have nothing to do, exit 0.
    let run = fx.snapshot(&[]).success().assert_quiet();
    assert!(
        run.stdout_str().starts_with("unchanged"),
        "{}",
        run.stdout_str()
    );
    let run = fx.push(&[]).success().assert_quiet();
    assert!(
        !run.stdout_str().contains("pushed"),
        "nothing to push, yet: {}",
        run.stdout_str()
    );
    fx.assert_history(&history, 5);
    fx.assert_latest(&latest);
}

// ------------------------------------------------------------------------------------------------
// 3. An incremental push sends what changed, not the database.

/// Bytes of every file under `remote`/objects, and the number of objects (loose + packed).
fn object_store_size(fx: &Fx, remote: &Path) -> (u64, u64) {
    fn walk(dir: &Path, total: &mut u64) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                walk(&entry.path(), total);
            } else {
                *total += meta.len();
            }
        }
    }
    let mut bytes = 0;
    walk(&remote.join("objects"), &mut bytes);
    let counts = fx.git(remote, &["count-objects", "-v"]);
    let field = |name: &str| -> u64 {
        counts
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in git count-objects -v:\n{counts}"))
    };
    (bytes, field("count") + field("in-pack"))
}

#[test]
fn incremental_push_sends_only_new_objects() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let latest = fx.daemon.create_bare("latest");
    // ~30,000 rows of incompressible text: a few MiB of SQL.
    fx.env
        .sqlite3(
            &fx.db,
            "WITH RECURSIVE c(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM c WHERE x < 30000) \
             INSERT INTO t(id, v) SELECT x, hex(randomblob(24)) FROM c;",
        )
        .success()
        .assert_quiet();
    let (h_url, l_url) = (fx.daemon.url("history"), fx.daemon.url("latest"));
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();
    let before = [
        object_store_size(&fx, &history),
        object_store_size(&fx, &latest),
    ];
    for (bytes, _) in before {
        assert!(
            bytes > 512 * 1024,
            "the first push should carry the whole database (> 512 KiB), got {bytes} bytes"
        );
    }

    fx.env
        .sqlite3(&fx.db, "UPDATE t SET v = 'changed' WHERE id = 15000;")
        .success()
        .assert_quiet();
    fx.snapshot(&[]).success().assert_quiet();
    fx.assert_history(&history, 2);
    fx.assert_latest(&latest);
    for (name, remote, (bytes0, count0)) in [
        ("history", &history, before[0]),
        ("latest", &latest, before[1]),
    ] {
        let (bytes1, count1) = object_store_size(&fx, remote);
        let grew = bytes1 - bytes0;
        let new_objects = count1 - count0;
        eprintln!(
            "{name} remote: first push {bytes0} bytes / {count0} objects; one changed row added \
             {grew} bytes / {new_objects} objects"
        );
        assert!(
            grew < 64 * 1024 && new_objects < 20,
            "one changed row made the {name} remote grow by {grew} bytes and {new_objects} \
             objects (whole database: {bytes0} bytes, {count0} objects): pushes must send only \
             what the remote lacks"
        );
    }
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);
}

// ------------------------------------------------------------------------------------------------
// 4. A push the server refuses is a failure; the other remote is still pushed.

#[test]
fn rejected_push_is_a_failure_and_the_other_remote_is_still_pushed() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();
    let confirmed = fx.head();

    let hook = history.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'policy: pushes to this repository are frozen' >&2\nexit 1\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fx.change();
    let run = fx.snapshot(&[]);
    let id = printed_commit(&run);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(
        causes[0].contains("reject") || causes[0].contains("declined"),
        "the cause should say the remote refused: {causes:?}"
    );
    if !run.stdout_str().contains("to latest remote") {
        run.fail("the latest remote should still have been pushed");
    }
    assert_eq!(fx.head(), id, "the local commit is kept");
    fx.assert_logged(&id);
    assert_eq!(
        fx.rev(&fx.repo, "refs/remotes/history/main").as_deref(),
        Some(confirmed.as_str()),
        "refs/remotes/history/main must not move on a rejected push"
    );
    assert_eq!(
        fx.rev(&history, "refs/heads/main").as_deref(),
        Some(confirmed.as_str())
    );
    fx.assert_latest(&latest);

    // Still refused on the next run (the commit is still pending), still exit 1.
    let run = fx.push(&[]);
    assert_push_failures(&run, &[("history", &h_url)]);

    // Once the server accepts again, the next run catches up.
    std::fs::remove_file(&hook).unwrap();
    fx.push(&[]).success().assert_quiet();
    fx.assert_history(&history, 2);
    fx.assert_fsck(&history);
}

// ------------------------------------------------------------------------------------------------
// 5. Remote down: commits are kept and the next run catches up.

#[test]
fn remote_down_keeps_commits_and_next_run_catches_up() {
    let mut fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();
    let confirmed = fx.head();

    fx.daemon.stop();
    let mut kept = Vec::new();
    for _ in 0..3 {
        fx.change();
        let (run, took) = fx.sqlgit_with(
            &[
                "snapshot",
                &fx.db.display().to_string(),
                "--repo",
                &fx.repo_arg(),
            ],
            &[],
            FAIL_LIMIT,
        );
        let id = printed_commit(&run);
        assert_push_failures(&run, &[("history", &h_url), ("latest", &l_url)]);
        assert!(took < FAIL_LIMIT, "a refused connection took {took:?}");
        assert_eq!(fx.head(), id, "the local commit is kept");
        kept.push(id);
    }
    for id in &kept {
        fx.assert_logged(id);
    }
    assert_eq!(
        fx.rev(&fx.repo, "refs/remotes/history/main").as_deref(),
        Some(confirmed.as_str()),
        "refs/remotes/history/main must not move while the remote is down"
    );

    fx.daemon.start();
    let run = fx.push(&[]).success().assert_quiet();
    if !run
        .stdout_str()
        .contains("pushed 3 commits to history remote")
    {
        run.fail("expected the 3 pending commits to be pushed to the history remote");
    }
    fx.assert_history(&history, 4);
    fx.assert_latest(&latest);
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);
}

// ------------------------------------------------------------------------------------------------
// Moving a remote: the tracking ref records what the *old* URL accepted.

/// After `--history-remote NEW` (or `--latest-remote NEW`) the new remote must receive the
/// snapshots even when nothing new was taken; the tracking ref of the old URL must not make the
/// push a silent no-op.
#[test]
fn a_new_remote_url_gets_everything_even_without_a_new_snapshot() {
    let fx = Fx::new();
    fx.daemon.create_bare("history");
    fx.daemon.create_bare("latest");
    let (h_url, l_url) = (fx.daemon.url("history"), fx.daemon.url("latest"));
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();
    fx.change();
    fx.snapshot(&[]).success().assert_quiet();

    let history2 = fx.daemon.create_bare("history2");
    let latest2 = fx.daemon.create_bare("latest2");
    let (h2_url, l2_url) = (fx.daemon.url("history2"), fx.daemon.url("latest2"));
    let run = fx
        .push(&["--history-remote", &h2_url, "--latest-remote", &l2_url])
        .success()
        .assert_quiet();
    if fx.rev(&history2, "refs/heads/main").is_none() {
        run.fail("the new history remote is still empty after a successful push");
    }
    fx.assert_history(&history2, 2);
    fx.assert_latest(&latest2);
}

// ------------------------------------------------------------------------------------------------
// 7. A push the server answers `ok` for without storing it is not confirmed (nothing pruned).

/// A `proc-receive` hook (AGit flow, review queues) that answers `ok` to every update of
/// `refs/heads/main` and stores nothing.
const PROC_RECEIVE_OK: &str = r#"#!/usr/bin/env python3
import sys
i, o = sys.stdin.buffer, sys.stdout.buffer
def rd():
    n = i.read(4)
    if not n: return None
    l = int(n, 16)
    return b'' if l == 0 else i.read(l - 4)
def wr(s):
    o.write(b'0000' if s is None else b'%04x' % (len(s) + 4) + s); o.flush()
while rd() != b'': pass
wr(b'version=1\n'); wr(None)
cmds = []
while True:
    p = rd()
    if not p: break
    cmds.append(p.split())
for c in cmds: wr(b'ok ' + c[2] + b'\n')
wr(None)
"#;

#[test]
fn a_push_answered_ok_but_not_stored_is_not_confirmed_and_nothing_is_pruned() {
    for transport in ["git", "libgit2"] {
        let fx = Fx::new();
        let history = fx.daemon.create_bare("history");
        fx.git(
            &history,
            &["config", "receive.procReceiveRefs", "refs/heads/main"],
        );
        let hook = history.join("hooks/proc-receive");
        std::fs::write(&hook, PROC_RECEIVE_OK).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let h_url = fx.daemon.url("history");
        let args = [
            "--history-remote",
            &h_url,
            "--keep",
            "1",
            "--transport",
            transport,
        ];
        let run = fx.snapshot(&args);
        let causes = assert_push_failures(&run, &[("history", &h_url)]);
        assert!(
            causes[0].contains("answered ok to the push but does not hold it"),
            "{transport}: the cause should say the remote did not store it: {causes:?}"
        );
        let first = fx.head();
        fx.change();
        let run = fx.snapshot(&[]);
        assert_push_failures(&run, &[("history", &h_url)]);
        assert_eq!(
            fx.rev(&fx.repo, "refs/remotes/history/main"),
            None,
            "{transport}: nothing is confirmed on the history remote"
        );
        assert_eq!(fx.rev(&history, "refs/heads/main"), None);
        fx.sqlgit(&["cat", "--repo", &fx.repo_arg(), &first])
            .success();
        assert!(
            !fx.repo.join("shallow").exists(),
            "{transport}: the unconfirmed first snapshot must not be pruned"
        );
    }
}

/// The user's own git defaults do not reach sqlgit's pushes and fetches: push options a plain
/// server refuses (`push.pushOption`, as for a forge's CI), `push.useForceIfIncludes`, pruning
/// fetches. Both remotes are pushed, again and again.
#[test]
fn the_users_push_and_fetch_defaults_do_not_break_the_pushes() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let config = fx.env.write(
        "user.gitconfig",
        "[push]\n\tpushOption = ci.skip\n\tuseForceIfIncludes = true\n\tfollowTags = true\n\
         [fetch]\n\tprune = true\n\tpruneTags = true\n",
    );
    let config = config.display().to_string();
    for i in 0..3 {
        if i > 0 {
            fx.change();
        }
        let (run, _) = snapshot_with(
            &fx,
            &["--history-remote", &h_url, "--latest-remote", &l_url],
            &[("GIT_CONFIG_GLOBAL", &config)],
        );
        run.success().assert_quiet();
    }
    fx.assert_history(&history, 3);
    assert!(fx.rev(&latest, "refs/heads/main").is_some());
}

/// A web server in front of the remote that refuses a request over its size limit (HTTP 413)
/// mid-push: the error names the status and where such a limit is raised, not the disconnect
/// git reports after it.
#[test]
fn an_http_413_mid_push_is_named_with_the_size_advice() {
    use crate::servers::web::Lighttpd;
    let fx = Fx::new();
    let web = Lighttpd::start_limited_in(fx.env.path("web"), HTTP_USER, HTTP_PASS, 16);
    web.create_bare("history");
    // ~200 KiB of incompressible rows: a pack well over the server's 16 KiB.
    fx.env
        .sqlite3(
            &fx.db,
            "WITH RECURSIVE c(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM c WHERE x < 400) \
             INSERT INTO t(id, v) SELECT x, hex(randomblob(256)) FROM c;",
        )
        .success()
        .assert_quiet();
    let token = [
        ("SQLGIT_HTTPS_TOKEN", HTTP_PASS),
        ("SQLGIT_HTTPS_USER", HTTP_USER),
    ];
    let url = web.url("history");
    let args = ["--history-remote", url.as_str(), "--transport", "git"];
    let (run, _) = snapshot_with(&fx, &args, &token);
    let err = run.code_is(1).stderr_str();
    assert!(
        err.contains("HTTP 413")
            && err.contains("refuses a push this large")
            && err.contains("client_max_body_size")
            && !err.contains("unexpected disconnect"),
        "{err}"
    );
}

/// A local remote others may read (made in a 0755 folder, as one git daemon or http-backend
/// serves): what a push writes there keeps those read bits (objects 0444, folders 0755, refs
/// 0644), not sqlgit's private 077; one in a 0750 folder gives the group read only, and
/// sqlgit's own repository stays private.
#[test]
fn a_push_into_a_local_remote_follows_its_folders_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fx::new();
    for (mode, file, folder) in [(0o755, 0o444, 0o755), (0o750, 0o440, 0o750)] {
        let remote = fx.env.path(format!("shared-{mode:o}.git"));
        fx.git(
            fx.env.root(),
            &["init", "-q", "--bare", &remote.display().to_string()],
        );
        std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(mode)).unwrap();
        fx.change();
        let url = remote.display().to_string();
        fx.snapshot(&["--history-remote", &url]).success();
        let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode_of(&remote.join("refs/heads/main")),
            file | 0o200,
            "{mode:o}"
        );
        let mut objects = 0;
        for dir in std::fs::read_dir(remote.join("objects")).unwrap().flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if name.len() != 2 {
                continue;
            }
            assert_eq!(mode_of(&dir.path()), folder, "{name} in {mode:o}");
            for object in std::fs::read_dir(dir.path()).unwrap().flatten() {
                assert_eq!(mode_of(&object.path()), file, "{mode:o}");
                objects += 1;
            }
        }
        assert!(objects > 0, "no loose objects pushed into {mode:o}");
    }
    let own = std::fs::metadata(fx.repo.join("objects")).unwrap();
    assert_eq!(
        own.permissions().mode() & 0o777,
        0o700,
        "sqlgit's own repository"
    );
}
