//! Damage that copying packs or reading the latest root tree meets: a pack rewrite (pruning's,
//! the merge of small packs) never copies a damaged entry as good, so the scrub of a run that
//! reads everything still finds and repairs it; a latest snapshot whose root tree cannot be
//! read (a damaged entry, or its pack's trailer damaged) is written anew by the next run.

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

/// The first row chunk of table t in `main` and the first row id of the chunk after it.
fn first_chunk(env: &TestEnv, repo: &Path) -> (String, i64) {
    let listing = git(
        env,
        repo,
        &["ls-tree", "-r", "main", "app.db/1-tables/t/1-rows"],
    );
    let mut chunks: Vec<(String, String)> = listing
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((
                path.to_string(),
                meta.split_whitespace().nth(2)?.to_string(),
            ))
        })
        .collect();
    chunks.sort();
    let stem = Path::new(&chunks[1].0)
        .file_stem()
        .unwrap()
        .to_string_lossy();
    let next = u64::from_str_radix(&stem, 16).unwrap() - (1 << 63);
    (chunks[0].1.clone(), next as i64)
}

/// `cat` of the latest snapshot gives what `dump` of the database gives.
fn assert_restores(env: &TestEnv, db: &Path, repo: &Path, at: u64) {
    let dump = sg(env, at, &["dump", &s(db)]).success();
    let cat = sg(env, at, &["cat", "--repo", &s(repo)]).success();
    assert!(
        cat.stdout() == dump.stdout(),
        "the latest snapshot is whole"
    );
    sg(env, at, &["verify", "--repo", &s(repo)]).success();
}

#[test]
fn pruning_never_copies_a_damaged_entry_into_its_rewritten_pack() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    let (chunk, next) = first_chunk(&env, &repo);
    damage_object(&env, &repo, &chunk);
    // Every other chunk changes: the first pack is mostly dead, and pruning rewrites it.
    sql(
        &env,
        &db,
        &format!("UPDATE t SET v = v || 'x' WHERE id >= {next};"),
    );
    let run = sg(&env, T0 + 60, &["snapshot", "--repo", &r, "--keep", "1"]).success();
    let err = run.stderr_str();
    assert!(
        err.contains(&format!("object {chunk} is damaged"))
            && err.contains("`sqlgit snapshot --full`, repairs it"),
        "{err}"
    );
    let run = sg(&env, T0 + 120, &["snapshot", "--repo", &r, "--full"]).success();
    assert!(
        run.stderr_str()
            .contains("repaired 1 damaged object in pack"),
        "{}",
        run.stderr_str()
    );
    git(&env, &repo, &["cat-file", "-p", &chunk]);
    assert_restores(&env, &db, &repo, T0 + 120);
    // Pruning rewrites the pack now.
    sql(&env, &db, "UPDATE t SET v = 'again' WHERE id = 2000;");
    let run = sg(&env, T0 + 180, &["snapshot", "--repo", &r, "--keep", "1"]).success();
    assert!(
        !run.stderr_str().contains("damaged"),
        "{}",
        run.stderr_str()
    );
    assert_restores(&env, &db, &repo, T0 + 180);
}

#[test]
fn merging_small_packs_never_copies_a_damaged_entry() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id = 1;");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    let (chunk, _) = first_chunk(&env, &repo);
    damage_object(&env, &repo, &chunk);
    // More than 16 packs: the small ones are merged.
    let mut warned = String::new();
    for i in 0..18 {
        sql(
            &env,
            &db,
            &format!("UPDATE t SET v = 'run {i}' WHERE id = 2000;"),
        );
        let run = sg(&env, T0 + 120 + i * 60, &["snapshot", "--repo", &r]).success();
        warned.push_str(&run.stderr_str());
    }
    assert!(
        warned.contains("merge small packs: pack pack-")
            && warned.contains(&format!("object {chunk} is damaged")),
        "{warned}"
    );
    let run = sg(&env, T0 + 3600, &["snapshot", "--repo", &r, "--full"]).success();
    assert!(
        run.stderr_str().contains("repaired 1 damaged object"),
        "{}",
        run.stderr_str()
    );
    assert_restores(&env, &db, &repo, T0 + 3600);
}

#[test]
fn a_damaged_root_tree_of_the_latest_snapshot_is_written_anew() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    let root = git(&env, &repo, &["rev-parse", "main^{tree}"]);
    damage_object(&env, &repo, root.trim());
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id = 1;");
    // The damaged root tree is no database's any more: gone here, once.
    let run = sg(&env, T0 + 60, &["snapshot", "--repo", &r]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("root tree") && err.contains("read every database whole instead"),
        "{err}"
    );
    assert_restores(&env, &db, &repo, T0 + 60);
    sql(&env, &db, "UPDATE t SET v = 'changed again' WHERE id = 2;");
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_restores(&env, &db, &repo, T0 + 120);
}

#[test]
fn a_damaged_trailer_of_the_newest_pack_is_repaired_by_the_next_run() {
    let env = TestEnv::new();
    let (db, repo) = snapshotted(&env);
    let r = s(&repo);
    let pack = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let mut perms = std::fs::metadata(&pack).unwrap().permissions();
    perms.set_mode(0o600);
    std::fs::set_permissions(&pack, perms).unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id = 1;");
    let run = sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("read every database whole instead")
            && err.contains("its header or trailer was damaged"),
        "{err}"
    );
    assert_restores(&env, &db, &repo, T0 + 60);
    sg(&env, T0 + 60, &["verify", "--repo", &r, "HEAD~1"]).success();
}
