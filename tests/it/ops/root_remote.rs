//! Root's run (`sudo sqlgit snapshot`) on the job user's repository whose remotes are local
//! folders of that user: what it pushes there stays the user's, and a remote ref the user cannot
//! read is named with its fix, never taken for a diverged or rewound remote.

use super::*;

/// `sudo sqlgit snapshot` pushes into the job user's local history and latest remotes: every
/// file it writes there is given to that user, with the modes of a push of theirs (their ref is
/// not left root's 0600), so the user's next run pushes on. A ref there the user cannot read
/// fails naming the file and the `chown -R` that gives it back, not a diverged or rewound main
/// and a `push --reroot` that cannot work.
#[test]
fn root_pushing_to_a_users_local_remote_leaves_it_theirs() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: cannot give the repository to another user");
        return;
    }
    let env = TestEnv::new();
    // A folder the other user may enter (the test's own is private).
    let dir = tempfile::Builder::new()
        .prefix("sqlgit-own")
        .tempdir()
        .unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (db, repo) = (d.join("app.db"), d.join("r"));
    let (hist, latest) = (d.join("hist.git"), d.join("latest.git"));
    sql(&env, &db, "create table t(x); insert into t values(1);");
    for remote in [&hist, &latest] {
        git(&env, d, &["init", "-q", "--bare", &s(remote)]);
        std::fs::set_permissions(remote, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (h, l, r, b) = (s(&hist), s(&latest), s(&repo), s(&db));
    let remotes = ["--history-remote", &h, "--latest-remote", &l];
    let args = [&["snapshot", &b, "--repo", &r, "-q"][..], &remotes].concat();
    sg(&env, T0, &args).success();
    std::fs::create_dir(d.join("home")).unwrap();
    chown_r(d, 65534);
    // Root trusts the user's repository and remotes (git's safe.directory), for git and libgit2.
    let global = env.write(".home/.gitconfig", "[safe]\n\tdirectory = *\n");
    let as_root = [("GIT_CONFIG_GLOBAL", s(&global))];
    let as_root: Vec<(&str, &str)> = as_root.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sql(&env, &db, "insert into t values(2);");
    let snap = ["snapshot", "--repo", r.as_str(), "-q"];
    run_limited(&env, sqlgit_cmd(&env, T0 + 10, &snap, &as_root), b"").success();
    for remote in [&hist, &latest] {
        assert!(
            rooted(remote).is_empty(),
            "left to root: {:?}",
            rooted(remote)
        );
        let main = std::fs::metadata(remote.join("refs/heads/main")).unwrap();
        assert_eq!(main.mode() & 0o777, 0o644, "{}", remote.display());
    }
    // The job user's next cron run.
    let as_owner = |now: u64| {
        let sqlgit = sqlgit_cmd(&env, now, &snap, &[]);
        let mut cmd = as_nobody(&sqlgit);
        cmd.env("HOME", d.join("home"))
            .env("TMPDIR", d.join("home"))
            .current_dir("/");
        run_limited(&env, cmd, b"")
    };
    sql(&env, &db, "insert into t values(3);");
    as_owner(T0 + 20).success();
    // What a root run of an older sqlgit left: the history remote's main root's, 0600.
    let main = hist.join("refs/heads/main");
    std::os::unix::fs::chown(&main, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o600)).unwrap();
    sql(&env, &db, "insert into t values(4);");
    let err = as_owner(T0 + 30).code_is(1).stderr_str();
    let fix = format!("chown -R 65534 {h}");
    assert!(
        err.contains(&s(&main)) && err.contains("permission denied") && err.contains(&fix),
        "{err}"
    );
    assert!(
        !err.contains("--reroot") && !err.contains("000000000000") && !err.contains("diverged"),
        "{err}"
    );
    chown_r(&hist, 65534);
    as_owner(T0 + 40).success();
}
