//! Hostile filesystems and exhausted resources: a pack that cannot be read is a failure, never
//! damage; a run that fails on a full disk leaves no temporary files; resource limits (threads,
//! file size) end a run with one error line, its hook and its state recorded.

use super::*;

/// A database of 2,000 rows and its first snapshot, then three more.
fn four_snapshots(env: &TestEnv) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
          INSERT INTO t SELECT i, printf('%030d value of row %d', i * 7919, i) FROM n;",
    );
    let repo = env.path("app.sqlgit");
    sg(env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    for i in 1..=3u64 {
        sql(
            env,
            &db,
            &format!("UPDATE t SET v = 'v{i}' WHERE id % 9 = {i};"),
        );
        sg(env, T0 + 60 * i, &["snapshot", "--repo", &s(&repo)]).success();
    }
    (db, repo)
}

/// The packs of `repo`, oldest name first.
fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_pack_that_cannot_be_opened_is_a_failure_and_is_not_rewritten() {
    let env = TestEnv::new();
    let (_db, repo) = four_snapshots(&env);
    let r = s(&repo);
    let first = git(&env, &repo, &["rev-list", "--max-parents=0", "main"]);
    let tree = git(&env, &repo, &["rev-parse", &format!("{first}^{{tree}}")]);
    let before = packs(&repo);
    // The first snapshot's pack cannot be opened (as root cannot be refused a read, a symlink
    // to itself stands in for a permission: ELOOP), its bytes intact elsewhere.
    let pack = packs(&repo)
        .into_iter()
        .find(|p| {
            let idx = p.with_extension("idx");
            git(&env, env.root(), &["verify-pack", "-v", &s(&idx)]).contains(&tree)
        })
        .expect("a pack holding the first snapshot's tree");
    let aside = env.path("intact.pack");
    std::fs::rename(&pack, &aside).unwrap();
    std::os::unix::fs::symlink(&pack, &pack).unwrap();

    let run = sg(&env, T0 + 600, &["snapshot", "--repo", &r, "--full"]).failure();
    let err = run.stderr_str();
    assert!(
        err.contains("cannot open") && err.contains(&s(&pack)),
        "{err}"
    );
    assert!(
        !err.contains("damaged") && !err.contains("repaired"),
        "{err}"
    );
    // Nothing was rewritten, removed or set aside.
    assert!(std::fs::symlink_metadata(&pack).unwrap().is_symlink());
    assert!(pack.with_extension("idx").exists());
    assert!(!repo.join("sqlgit-damaged").exists());
    std::fs::remove_file(&pack).unwrap();
    std::fs::rename(&aside, &pack).unwrap();
    for p in &before {
        assert!(p.exists(), "{} was removed", p.display());
    }
    sg(&env, T0 + 660, &["verify", "--repo", &r, &first]).success();
    git(&env, &repo, &["fsck", "--no-dangling"]);
}
