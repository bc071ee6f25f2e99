//! Moved with plain tools: a configured database moved to another folder (every run and a run
//! given the new path name the `sqlgit init` that points the repository at it, which continues
//! its history), a repository copied with `git clone --mirror` / `--bare` (refused until the
//! `init` it names adopts it; `status` says so), and a foreign bare repository still refused.

use super::*;

/// The command after the last `run: ` of an error line.
#[track_caller]
fn printed_fix(line: &str) -> String {
    line.rsplit_once("run: ")
        .unwrap_or_else(|| panic!("no command printed: {line}"))
        .1
        .to_string()
}

#[test]
fn a_moved_database_is_named_with_the_init_that_points_at_its_new_place() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("old")).unwrap();
    std::fs::create_dir_all(env.path("new place")).unwrap();
    let app = env.db_from_script(
        "old/app.db",
        b"CREATE TABLE t(a); INSERT INTO t VALUES (1);",
    );
    let other = env.db_from_script("other.db", b"CREATE TABLE u(b); INSERT INTO u VALUES (2);");
    let (repo, moved) = (env.path("app.sqlgit"), env.path("new place/app.db"));
    let r = s(&repo);
    let init = ["init", "--repo", &r, "--db", &s(&app), "--db", &s(&other)];
    sg(&env, T0, &init).success();
    sg(&env, T0, &["snapshot", "--repo", &r, "-q"]).success();
    std::fs::rename(&app, &moved).unwrap();
    sql(&env, &moved, "INSERT INTO t VALUES (3);");

    // The configured run names the database that is gone, and only it gets a new path.
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    let fix = printed_fix(&line);
    assert!(
        line.contains(&format!("database {}: no such file", s(&app))),
        "{line}"
    );
    assert_eq!(
        fix,
        format!("sqlgit init --repo {r} --db PATH/app.db --db {}", s(&other))
    );
    // Given the moved file, the run says the same instead of "a repository of its own".
    let given = ["snapshot", &s(&moved), "--repo", &r];
    let line = one_error_line(sg(&env, T0 + 60, &given), 1);
    assert!(!line.contains("repository of its own"), "{line}");
    let fix_given = printed_fix(&line);
    assert_eq!(
        fix_given,
        format!(
            "sqlgit init --repo {r} --db '{}' --db {}",
            s(&moved),
            s(&other)
        )
    );
    assert_eq!(
        fix_given,
        fix.replace("PATH/app.db", &format!("'{}'", s(&moved)))
    );

    // As printed (through sh): the history of both databases goes on.
    env.sqlgit_printed(T0 + 120, &fix_given).success();
    sg(&env, T0 + 180, &["snapshot", "--repo", &r, "-q"]).success();
    assert_eq!(commit_count(&env, &repo), 2);
    assert_eq!(top_folders(&env, &repo, "main"), ["app.db", "other.db"]);
    let changed = git(&env, &repo, &["log", "--format=%H", "main", "--", "app.db"]);
    assert_eq!(changed.lines().count(), 2, "app.db's history continues");
    let q = [
        "query",
        "SELECT group_concat(a) FROM t",
        "--repo",
        &r,
        "--db",
        "app.db",
        "--csv",
    ];
    let out = sg(&env, T0 + 180, &q).success().stdout_str();
    assert!(out.contains("1,3"), "{out}");
    assert_eq!(
        config_values(&env, &repo, "sqlgit.db"),
        [s(&moved), s(&other)]
    );
}

#[test]
fn a_git_copy_of_a_repository_is_adopted_by_the_init_it_names() {
    for how in ["--mirror", "--bare"] {
        let env = TestEnv::new();
        let db = env.db_from_script("my app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
        let (repo, copy) = (env.path("app.sqlgit"), env.path("moved copy.sqlgit"));
        let c = s(&copy);
        sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
        git(&env, env.root(), &["clone", "-q", how, &s(&repo), &c]);
        sql(&env, &db, "INSERT INTO t VALUES (2);");

        let line = one_error_line(sg(&env, T0 + 60, &["snapshot", &s(&db), "--repo", &c]), 1);
        assert!(
            line.contains("a git copy of a sqlgit repository"),
            "{how}: {line}"
        );
        let fix = printed_fix(&line);
        assert_eq!(
            fix,
            format!("sqlgit init --repo '{c}' --db 'PATH/my app.db'")
        );
        // Not healthy, and not waiting for a run that every run refuses.
        let err = sg(&env, T0 + 60, &["status", "--repo", &c])
            .code_is(1)
            .stderr_str();
        assert!(
            err.contains("every snapshot run refuses it"),
            "{how}: {err}"
        );
        assert!(!err.contains("until the next run"), "{how}: {err}");
        // `init` without databases says to name them; as printed, it adopts the copy.
        let err = sg(&env, T0 + 60, &["init", "--repo", &c])
            .code_is(2)
            .stderr_str();
        assert!(err.contains("--db DB"), "{how}: {err}");
        let path = s(env.root());
        env.sqlgit_printed(T0 + 120, &fix.replace("PATH", &path))
            .success();
        assert_eq!(config_values(&env, &copy, "sqlgit.db"), [s(&db)]);
        sg(&env, T0 + 180, &["snapshot", "--repo", &c, "-q"]).success();
        assert_eq!(commit_count(&env, &copy), 2, "{how}: the history continues");
        sg(&env, T0 + 180, &["status", "--repo", &c]).success();
    }
}

#[test]
fn a_foreign_bare_repository_is_still_refused() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a);");
    let (work, bare) = (env.path("work"), env.path("bare.git"));
    git(&env, env.root(), &["init", "-q", "-b", "main", &s(&work)]);
    std::fs::write(work.join("README"), "hello\n").unwrap();
    git(&env, &work, &["add", "README"]);
    git(&env, &work, &["commit", "-q", "-m", "first"]);
    git(
        &env,
        env.root(),
        &["clone", "-q", "--bare", &s(&work), &s(&bare)],
    );
    let snap = ["snapshot", &s(&db), "--repo", &s(&bare)];
    let line = one_error_line(sg(&env, T0, &snap), 1);
    assert!(
        line.contains("a git repository that sqlgit did not create"),
        "{line}"
    );
    let line = one_error_line(
        sg(&env, T0, &["init", "--repo", &s(&bare), "--db", &s(&db)]),
        1,
    );
    assert!(
        line.contains("a git repository that sqlgit did not create"),
        "{line}"
    );
}
