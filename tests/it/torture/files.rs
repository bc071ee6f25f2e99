//! Security: every file and directory sqlgit creates is private, even under umask 022.

use super::*;

// ------------------------------------------------------------------------------------------------
// Security
// ------------------------------------------------------------------------------------------------

#[test]
fn security_created_files_are_private() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("history");
    let http = HttpGit::start_in(env.path("web"), "alice", "Pw-1");
    http.create_bare("latest");
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          INSERT INTO t(v) VALUES ('private'), ('data');\n",
    );
    let history = daemon.url("history");
    let latest = http.url_with_credentials("latest", "alice", "Pw-1");
    let unreachable = format!("git://127.0.0.1:{}/x.git", crate::servers::free_port());
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (
            vec![
                "snapshot",
                "app.db",
                "--repo",
                "app.sqlgit",
                "--metrics-file",
                "metrics.prom",
                "--history-remote",
                &history,
                "--latest-remote",
                &latest,
                "--keep",
                "1",
            ],
            true,
        ),
        (
            vec!["snapshot", "app.db", "--repo", "nested/deeper/app.sqlgit"],
            true,
        ),
        (vec!["dump", "app.db", "-o", "out.sql"], true),
        (vec!["dump", "app.db", "-o", "out.sql.gz"], true),
        (vec!["dump", "app.db", "-o", "out.sql.zst"], true),
        (vec!["cat", "--repo", "app.sqlgit", "-o", "cat.sql"], true),
        (
            vec!["cat", "--repo", "app.sqlgit", "-o", "cat.sql.gz"],
            true,
        ),
        (
            vec!["restore", "--repo", "app.sqlgit", "--to", "restored.db"],
            true,
        ),
        (
            vec![
                "restore",
                "--repo",
                "app.sqlgit",
                "--to",
                "restored.db",
                "--force",
            ],
            true,
        ),
        (
            vec![
                "restore",
                "--from-file",
                "out.sql.gz",
                "--to",
                "restored2.db",
            ],
            true,
        ),
        // The saved-aside copy of the old content.
        (
            vec!["restore", "--repo", "app.sqlgit", "--into", "restored.db"],
            true,
        ),
        (
            vec![
                "init",
                "--repo",
                "init.sqlgit",
                "--db",
                "app.db",
                "--metrics-file",
                "m2.prom",
            ],
            true,
        ),
        (vec!["snapshot", "--repo", "init.sqlgit"], true),
        (vec!["push", "--repo", "app.sqlgit"], true),
        (vec!["prune", "--repo", "app.sqlgit", "--keep", "1"], true),
        (vec!["verify", "--repo", "app.sqlgit"], true),
        (vec!["status", "--repo", "app.sqlgit", "--json"], true),
        // A failed run writes the state and metrics files too.
        (
            vec![
                "snapshot",
                "app.db",
                "--repo",
                "app.sqlgit",
                "--history-remote",
                &unreachable,
            ],
            false,
        ),
    ];
    let mut p = Problems::default();
    let ours = |path: &str| {
        !(path.starts_with("srv") || path.starts_with("web") || path.starts_with("app.db"))
    };
    for (args, ok) in runs {
        let before = tree_state(env.root());
        // URL passwords are never saved: later runs get it from the environment.
        let run = sqlgit_umask022(&env, &args, &[("SQLGIT_HTTPS_TOKEN", "Pw-1")]);
        if (run.code() == Some(0)) != ok {
            run.fail(if ok {
                "expected success"
            } else {
                "expected failure"
            });
        }
        let after = tree_state(env.root());
        for (path, (mode, bytes)) in &after {
            let is_new = before.get(path).map(|(m, b)| (m, b)) != Some((mode, bytes));
            if is_new && ours(path) && mode & 0o077 != 0 {
                p.push(format!(
                    "`sqlgit {}` (umask 022) left {path} with mode {:o}",
                    args.join(" "),
                    mode & 0o7777
                ));
            }
        }
    }
    for name in [
        "metrics.prom",
        "m2.prom",
        "app.sqlgit/sqlgit-state.json",
        "app.sqlgit/config",
    ] {
        p.check(env.path(name).exists(), || {
            format!("{name} was not created")
        });
    }
    p.finish();
}
