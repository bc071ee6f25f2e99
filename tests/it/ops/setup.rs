//! Setting a repository up by hand: a relative local remote written into its config, a
//! repository of another user trusted through the global config git reads, and `--repo` given
//! as a symlink to a folder not made yet.

use super::*;

/// A relative local remote written into the config by hand (`git config`) would be pushed to
/// in whatever folder a run starts in (cron's `$HOME`): refused, naming the absolute path it
/// means from here and the command that saves it, as for a relative `sqlgit.db`; the same
/// spelled as a `file://` URL git would read from `/`. A relative path given as a flag is saved
/// absolute.
#[test]
fn a_relative_local_remote_in_the_config_is_refused() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    sql(&env, &db, "create table t(a); insert into t values(1);");
    let r = s(&env.path("R"));
    git(&env, env.root(), &["init", "-q", "--bare", "hist.git"]);
    std::fs::create_dir(env.path("elsewhere")).unwrap();
    git(
        &env,
        &env.path("elsewhere"),
        &["init", "-q", "--bare", "hist.git"],
    );
    sg(&env, T0, &["init", "--repo", &r, "--db", &s(&db), "-q"]).success();
    let config = s(&env.path("R/config"));
    for (key, value) in [
        ("sqlgit.historyRemote", "hist.git"),
        ("sqlgit.latestRemote", "./hist.git"),
        ("sqlgit.historyRemote", "file://./hist.git"),
    ] {
        git(&env, env.root(), &["config", "-f", &config, key, value]);
        let mut run = sqlgit_cmd(&env, T0, &["snapshot", "--repo", &r], &[]);
        run.current_dir(env.path("elsewhere"));
        let err = one_error_line(run_limited(&env, run, b""), 1);
        let meant = s(&env.path("elsewhere/hist.git"));
        assert!(
            err.contains(&format!("{key} {value:?}"))
                && err.contains("relative")
                && err.contains(&meant),
            "{err}"
        );
        let main = ["rev-parse", "-q", "--verify", "refs/heads/main"];
        let taken = git_run(&env, &env.path("R"), &main);
        assert_ne!(taken.code(), Some(0), "{value}: a snapshot was taken");
        git(&env, env.root(), &["config", "-f", &config, "--unset", key]);
    }
    for dir in ["hist.git", "elsewhere/hist.git"] {
        let heads = git_run(
            &env,
            &env.path(dir),
            &["rev-parse", "-q", "--verify", "main"],
        );
        assert_ne!(heads.code(), Some(0), "{dir} was pushed to");
    }
    // Given as flags, relative paths are saved absolute.
    let hist = s(&env.path("hist.git"));
    let args = ["init", "--repo", &r, "--history-remote", "hist.git"];
    sg(
        &env,
        T0,
        &[&args[..], &["--latest-remote", "file://./l.git", "-q"]].concat(),
    )
    .success();
    assert_eq!(
        config_values(&env, &env.path("R"), "sqlgit.historyRemote"),
        [hist]
    );
    let latest = format!("file://{}", s(&env.path("l.git")));
    assert_eq!(
        config_values(&env, &env.path("R"), "sqlgit.latestRemote"),
        [latest]
    );
}

/// A repository of another user, trusted as the printed command trusts it while
/// `GIT_CONFIG_GLOBAL` names the global config (systemd units, containers, CI): git writes
/// `safe.directory` there, and sqlgit reads it there too.
#[test]
fn safe_directory_in_git_config_global_trusts_another_users_repository() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    sql(&env, &db, "create table t(a); insert into t values(1);");
    let repo = env.path("app.sqlgit");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: cannot give the repository to another user");
        return;
    }
    chown_r(&repo, 65534);
    let global = s(&env.path("ci.gitconfig"));
    let vars = [("GIT_CONFIG_GLOBAL", global.as_str())];
    sql(&env, &db, "insert into t values(2);");
    let snap = ["snapshot", "--repo", &s(&repo), "-q"];
    let err = sg_vars(&env, T0 + 60, &snap, &vars).code_is(1).stderr_str();
    let command = err.split('`').nth(1).unwrap_or_else(|| panic!("{err}"));
    assert!(
        command.starts_with("git config --global --add safe.directory"),
        "{err}"
    );
    let mut fix = env.command("sh");
    fix.arg("-c").arg(command).env("GIT_CONFIG_GLOBAL", &global);
    env.run(fix, b"").success();
    assert!(
        !env.home().join(".gitconfig").exists(),
        "not the file git wrote"
    );
    sg_vars(&env, T0 + 60, &snap, &vars).success();
    let mut count = env.command("git");
    count
        .arg("-C")
        .arg(&repo)
        .args(["rev-list", "--count", "main"]);
    count.env("GIT_CONFIG_GLOBAL", &global);
    let count = env.run(count, b"").success();
    assert_eq!(count.stdout_str().trim(), "2");
}

/// `--repo LINK`, a symlink to a folder not made yet (a repository on a backup disk): `init`
/// and `snapshot` make the repository where it points (its parent too, as `mkdir -p` through
/// the link would) and keep the link; a refused `init` removes what it made, not the link.
#[test]
fn a_symlinked_repository_not_made_yet_is_made_where_it_points() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    sql(&env, &db, "create table t(a); insert into t values(1);");
    std::fs::create_dir(env.path("store")).unwrap();
    let link = env.path("link.sqlgit");
    std::os::unix::fs::symlink("store/app.sqlgit", &link).unwrap();
    // Refused (a metrics file in a folder that does not exist): nothing made, the link kept.
    let missing = s(&env.path("nowhere/m.prom"));
    let args = [
        "init",
        "--repo",
        &s(&link),
        "--db",
        &s(&db),
        "--metrics-file",
        &missing,
    ];
    sg(&env, T0, &args).code_is(2);
    assert!(
        link.symlink_metadata().is_ok_and(|m| m.is_symlink()),
        "the link is gone"
    );
    assert!(
        !env.path("store/app.sqlgit").exists(),
        "a refused init left a repository"
    );
    sg(
        &env,
        T0,
        &["init", "--repo", &s(&link), "--db", &s(&db), "-q"],
    )
    .success();
    assert!(
        link.symlink_metadata().unwrap().is_symlink(),
        "the link was replaced"
    );
    assert!(env.path("store/app.sqlgit/config").is_file());
    sg(&env, T0, &["snapshot", "--repo", &s(&link), "-q"]).success();
    assert_eq!(commit_count(&env, &env.path("store/app.sqlgit")), 1);
    // `snapshot DB --repo LINK`, the link's target (and its folder) not made yet.
    let deep = env.path("deep.sqlgit");
    std::os::unix::fs::symlink(env.path("disk/backup/app.sqlgit"), &deep).unwrap();
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&deep), "-q"]).success();
    assert!(deep.symlink_metadata().unwrap().is_symlink());
    assert_eq!(commit_count(&env, &env.path("disk/backup/app.sqlgit")), 1);
}
