//! The scrub of runs that read everything: a damaged pack entry is written again from the
//! database and its damaged copy removed; one that no database produces any more fails the run
//! loudly, once.

use super::*;

/// A database of 2,000 rows (a few dozen row chunks) and its first snapshot.
fn snapshotted(env: &TestEnv) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
          INSERT INTO t SELECT i, printf('%030d value of row %d', i * 7919, i) FROM n;",
    );
    let repo = env.path("app.sqlgit");
    sg(env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    (db, repo)
}

/// The biggest row chunk of `rev` that its tree holds once.
fn a_row_chunk(env: &TestEnv, repo: &Path, rev: &str) -> String {
    let listing = git(env, repo, &["ls-tree", "-r", rev]);
    let chunks = listing.lines().filter_map(|l| {
        let (meta, path) = l.split_once('\t')?;
        let f: Vec<&str> = meta.split_whitespace().collect();
        (f[1] == "blob" && path.contains("/1-rows/")).then(|| f[2].to_string())
    });
    chunks
        .filter(|oid| listing.matches(oid.as_str()).count() == 1)
        .max_by_key(|oid| {
            git(env, repo, &["cat-file", "-s", oid])
                .parse::<u64>()
                .unwrap()
        })
        .expect("a row chunk")
}

#[test]
fn a_full_run_repairs_a_damaged_object_of_the_current_snapshot() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    let oid = a_row_chunk(&env, &repo, "main");
    // A row of another chunk changes.
    let text = git(&env, &repo, &["cat-file", "-p", &oid]);
    let other = if text.contains("value of row 1'") {
        2000
    } else {
        1
    };
    damage_object(&env, &repo, &oid);
    sg(&env, T0, &["verify", "--repo", &r]).code_is(1);
    // An incremental run does not read the packs: the new snapshot reuses the damaged chunk.
    sql(
        &env,
        &db,
        &format!("UPDATE t SET v = 'changed' WHERE id = {other};"),
    );
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    sg(&env, T0 + 60, &["verify", "--repo", &r]).code_is(1);

    let run = sg(&env, T0 + 120, &["snapshot", "--repo", &r, "--full"]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("warning: repaired 1 damaged object in pack pack-")
            && err.contains("(written again from the database"),
        "{err}"
    );
    sg(&env, T0 + 120, &["verify", "--repo", &r]).success();
    // The snapshot before, which shared the chunk, is whole again too; git reads it.
    sg(&env, T0 + 120, &["verify", "--repo", &r, "HEAD~1"]).success();
    git(&env, &repo, &["cat-file", "-p", &oid]);
    // Nothing is left to repair.
    let again = sg(&env, T0 + 180, &["snapshot", "--repo", &r, "--full"]).success();
    assert!(
        !again.stderr_str().contains("repaired"),
        "{}",
        again.stderr_str()
    );

    // The daily check scrubs too. The same chunk again: alone in the pack the repair wrote, so
    // writing it again makes a pack of that pack's name, which replaces it (and must stay).
    assert_eq!(a_row_chunk(&env, &repo, "main"), oid);
    damage_object(&env, &repo, &oid);
    let run = sg(
        &env,
        T0 + 240,
        &["snapshot", "--repo", &r, "--full-every", "0s"],
    )
    .success();
    assert!(
        run.stderr_str().contains("repaired 1 damaged object"),
        "{}",
        run.stderr_str()
    );
    sg(&env, T0 + 240, &["verify", "--repo", &r]).success();
}

#[test]
fn a_damaged_object_only_older_snapshots_used_fails_the_run_once() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id = 2000;");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    // The chunk the update replaced: only the first snapshot has it.
    let diff = git(
        &env,
        &repo,
        &["diff", "--raw", "--no-abbrev", "HEAD~1", "HEAD"],
    );
    assert_eq!(diff.lines().count(), 1, "{diff}");
    let old = diff.split_whitespace().nth(2).unwrap().to_string();
    damage_object(&env, &repo, &old);

    let line = one_error_line(sg(&env, T0 + 120, &["snapshot", "--repo", &r, "--full"]), 1);
    assert!(
        line.contains("1 damaged object in the packs could not be written again")
            && line.contains("older snapshots that use them can no longer be restored")
            && line.contains("no history remote is set"),
        "{line}"
    );
    let status = sg(&env, T0 + 120, &["status", "--repo", &r]);
    status.code_is(1);
    // The damage is gone: the next run succeeds; the latest snapshot is whole, the older one
    // lacks the chunk.
    let run = sg(&env, T0 + 180, &["snapshot", "--repo", &r, "--full"]).success();
    assert!(run.stderr_str().is_empty(), "{}", run.stderr_str());
    sg(&env, T0 + 180, &["verify", "--repo", &r]).success();
    sg(&env, T0 + 180, &["verify", "--repo", &r, "HEAD~1"]).code_is(1);
}

/// After `git repack -adf` by hand a pack holds deltas. When the damaged entry is the base of
/// older versions' deltas, those intact deltas are rebuilt on the fresh copy of the base, not
/// dropped: every snapshot still restores.
#[test]
fn intact_deltas_of_a_repaired_base_are_rebuilt_not_lost() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
          INSERT INTO t SELECT i, 'row ' || i FROM n;",
    );
    let repo = env.path("app.sqlgit");
    let r = s(&repo);
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &r]).success();
    for i in 1..=5u64 {
        let grow = format!(
            "UPDATE t SET v = v || ' grows {i} {}' WHERE id = 5;",
            "x".repeat(40)
        );
        sql(&env, &db, &grow);
        sg(&env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    git(&env, &repo, &["repack", "-adf", "-q"]);
    // The whole (non-delta) blob of HEAD that most deltas are built on.
    let idx = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .unwrap();
    let listing = git(&env, env.root(), &["verify-pack", "-v", &s(&idx)]);
    let head: Vec<String> = git(&env, &repo, &["ls-tree", "-r", "main"])
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    let mut bases: std::collections::HashMap<String, usize> = Default::default();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 7 && f[1] == "blob" && head.iter().any(|h| h == f[6]) {
            *bases.entry(f[6].to_string()).or_default() += 1;
        }
    }
    let (base, deltas) = bases
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .expect("a delta base");
    assert!(deltas >= 2, "the repack made deltas on {base}");
    damage_object(&env, &repo, &base);
    let run = sg(&env, T0 + 600, &["snapshot", "--repo", &r, "--full"]).success();
    assert!(
        run.stderr_str().contains("repaired"),
        "{}",
        run.stderr_str()
    );
    let commits = git(&env, &repo, &["rev-list", "main"]);
    for c in commits.lines() {
        sg(&env, T0 + 600, &["verify", c, "--repo", &r]).success();
    }
}

/// An incremental run reads the previous snapshot's trees on the way to the changed rows. One of
/// them damaged (bit rot) failed every later run ("invalid distance too far back"); now the run
/// reads everything instead, which scrubs the packs: the new snapshot is whole, the loss of the
/// older snapshot's tree is said once, and the next run succeeds.
#[test]
fn a_damaged_tree_on_the_incremental_path_makes_the_run_read_everything() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    let rows_tree = git(&env, &repo, &["rev-parse", "HEAD:app.db/1-tables/t/1-rows"]);
    damage_object(&env, &repo, rows_tree.trim());
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id = 1;");
    let run = sg(&env, T0 + 60, &["snapshot", "--repo", &r]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("read every database whole instead")
            && err.contains("could not be written again"),
        "{err}"
    );
    let dump = sg(&env, T0 + 60, &["dump", &s(&db)]).success();
    let cat = sg(&env, T0 + 60, &["cat", "--repo", &r]).success();
    assert!(cat.stdout() == dump.stdout(), "the new snapshot is whole");
    sg(&env, T0 + 60, &["verify", "--repo", &r]).success();
    sql(&env, &db, "UPDATE t SET v = 'changed again' WHERE id = 2;");
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
}
