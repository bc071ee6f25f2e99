//! The scrub of runs that read everything: a damaged pack entry is written again from the
//! database and its damaged copy removed; one that no database produces any more fails the run
//! loudly, once. And a latest snapshot whose commit cannot be read: set aside by the next run,
//! fetched again from the history remote, or else the history goes on from the newest snapshot
//! still readable (the run fails, once).

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

/// Three snapshots of a small database (REMOTE URL on the first when given).
fn three_snapshots(env: &TestEnv, remote: Option<(&str, &str)>) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let mut first = vec!["snapshot", &d, "--repo", &r];
    if let Some((flag, url)) = remote {
        first.extend([flag, url]);
    }
    sg(env, T0, &first).success();
    for i in 2..=3u64 {
        sql(env, &db, &format!("INSERT INTO t VALUES ({i}, 'v');"));
        sg(env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    (db, repo)
}

/// Every command names the damaged latest snapshot and the command that repairs it.
fn assert_names_the_repair(env: &TestEnv, repo: &Path, damaged: &str) {
    let r = s(repo);
    let new = s(&env.path("new.db"));
    for (args, code) in [
        (vec!["status", "--repo", &r], 1),
        (vec!["log", "--repo", &r], 1),
        (vec!["cat", "--repo", &r], 1),
        (vec!["verify", "--repo", &r], 1),
        (vec!["restore", "--repo", &r, "--to", &new], 1),
        (vec!["diff", "HEAD~1", "--repo", &r], 2),
    ] {
        let err = sg(env, T0 + 400, &args).code_is(code).stderr_str();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "the latest snapshot {} cannot be read",
                &damaged[..12]
            )) && err.contains(&format!("run `sqlgit snapshot --repo {r}`")),
            "{err}"
        );
    }
}

#[test]
fn a_damaged_latest_commit_is_fetched_again_from_the_history_remote() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    let remote = daemon.create_bare("hist");
    let url = daemon.url("hist");
    let (db, repo) = three_snapshots(&env, Some(("--history-remote", &url)));
    let r = s(&repo);
    let damaged = head(&env, &repo);
    // The commit is packed as well as loose (the loose copy is what libgit2 reads first); no
    // object a delta of another (as in the packs sqlgit writes).
    git(&env, &repo, &["repack", "-a", "-f", "-q", "--window=0"]);
    damage_object(&env, &repo, &damaged);
    assert_names_the_repair(&env, &repo, &damaged);

    sql(&env, &db, "INSERT INTO t VALUES (4, 'after');");
    let run = sg(&env, T0 + 500, &["snapshot", "--repo", &r]).success();
    let err = run.stderr_str();
    assert!(
        err.contains(&format!(
            "warning: the latest snapshot {} could not be read",
            &damaged[..12]
        )) && err.contains("fetched again from the history remote"),
        "{err}"
    );
    assert!(
        !run.stdout_str().contains("new repository"),
        "{}",
        run.stdout_str()
    );
    // The history goes on from the very commit, read whole again, on the remote too.
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), damaged);
    git(&env, &repo, &["cat-file", "-p", &damaged]);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "main"]),
        head(&env, &repo)
    );
    sg(&env, T0 + 500, &["verify", "--repo", &r, "HEAD~1"]).success();
    git(&env, &repo, &["fsck", "--no-dangling"]);
    // Nothing is left to repair.
    sql(&env, &db, "INSERT INTO t VALUES (5, 'later');");
    let next = sg(&env, T0 + 560, &["snapshot", "--repo", &r]).success();
    assert!(
        !next.stderr_str().contains("warning"),
        "{}",
        next.stderr_str()
    );
}

#[test]
fn without_a_history_remote_the_history_goes_on_from_the_newest_readable_snapshot() {
    let env = TestEnv::new();
    // A latest remote: each run also makes a parentless copy of its snapshot, as new as it.
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("latest");
    let url = daemon.url("latest");
    let (db, repo) = three_snapshots(&env, Some(("--latest-remote", &url)));
    let r = s(&repo);
    let damaged = head(&env, &repo);
    let before = git(&env, &repo, &["rev-parse", "main~1"]);
    // Every object packed, nothing loose: the commits are found in the packs.
    git(
        &env,
        &repo,
        &["repack", "-a", "-d", "-f", "-q", "--window=0"],
    );
    git(&env, &repo, &["prune-packed"]);
    damage_object(&env, &repo, &damaged);
    assert_names_the_repair(&env, &repo, &damaged);

    sql(&env, &db, "INSERT INTO t VALUES (4, 'after');");
    let err = sg(&env, T0 + 500, &["snapshot", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "the latest snapshot {} could not be read",
            &damaged[..12]
        )) && err.contains(&format!(
            "it is lost; the history continues from snapshot {}",
            &before[..12]
        )),
        "{err}"
    );
    // The new snapshot is on top of the one before the damaged one, and holds every row.
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), before);
    let dump = sg(&env, T0 + 500, &["cat", "--repo", &r])
        .success()
        .stdout_str();
    assert!(dump.contains("(4,'after')"), "{dump}");
    git(&env, &repo, &["fsck", "--no-dangling"]);
    // The failure is not repeated.
    sql(&env, &db, "INSERT INTO t VALUES (5, 'later');");
    sg(&env, T0 + 560, &["snapshot", "--repo", &r]).success();
    assert_eq!(commit_count(&env, &repo), 4);
}

/// An older snapshot that cannot be read: the next run cuts the local history above it (a
/// warning when the history remote has it, a failure once without one), and every command
/// that reads the history works again.
#[test]
fn an_older_damaged_commit_cuts_the_local_history_above_it() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    for remote in [Some(("--history-remote", url.as_str())), None] {
        let (db, repo) = three_snapshots(&env, remote);
        let r = s(&repo);
        let damaged = git(&env, &repo, &["rev-parse", "main~1"]);
        let child = head(&env, &repo);
        damage_object(&env, &repo, &damaged);

        // An incremental run does not walk the history; a push that has to says why it
        // cannot, and names the run that repairs it.
        sql(&env, &db, "INSERT INTO t VALUES (4, 'after');");
        let run = sg(&env, T0 + 400, &["snapshot", "--repo", &r]);
        if remote.is_some() {
            let err = run.code_is(1).stderr_str();
            assert!(
                err.contains("cannot tell whether the snapshots here continue the remote's main")
                    && err.contains(&format!("run: sqlgit snapshot --repo {r} --full"))
                    && !err.contains("diverged"),
                "{err}"
            );
        } else {
            run.success();
        }

        sql(&env, &db, "INSERT INTO t VALUES (5, 'repair');");
        let run = sg(&env, T0 + 500, &["snapshot", "--repo", &r, "--full"]);
        let what = format!(
            "snapshot {} cannot be read (its object is damaged or missing): the local history \
             now starts at the snapshot after it, {}",
            &damaged[..12],
            &child[..12]
        );
        let err = match remote {
            Some(_) => {
                let err = run.success().stderr_str();
                assert!(
                    err.contains(&format!("warning: {what} (the history remote has")),
                    "{err}"
                );
                err
            }
            None => {
                let err = run.code_is(1).stderr_str();
                assert!(
                    err.contains(&format!("{what}; it and the snapshots")),
                    "{err}"
                );
                assert_eq!(err.lines().count(), 1, "{err}");
                err
            }
        };
        assert!(!err.contains("diverged"), "{err}");
        // The damaged file is kept aside, and git reads the repository as whole.
        assert!(repo.join("sqlgit-damaged").join(&damaged).exists());
        git(&env, &repo, &["fsck", "--no-dangling"]);
        assert_eq!(commit_count(&env, &repo), 3);
        sg(&env, T0 + 500, &["log", "--repo", &r]).success();
        // Nothing is left to repair.
        sql(&env, &db, "INSERT INTO t VALUES (6, 'later');");
        let next = sg(&env, T0 + 560, &["snapshot", "--repo", &r]).success();
        assert!(
            !next.stderr_str().contains("cannot be read"),
            "{}",
            next.stderr_str()
        );
        std::fs::remove_dir_all(&repo).unwrap();
        std::fs::remove_file(&db).unwrap();
    }
}

/// `refs/heads/main` cut short (as a crash can leave a file just written): commands say how
/// to repair it, and the next run points it at the newest snapshot again, losing nothing.
#[test]
fn a_main_ref_cut_short_points_at_the_newest_snapshot_again() {
    let env = TestEnv::new();
    let (db, repo) = three_snapshots(&env, None);
    let r = s(&repo);
    let before = head(&env, &repo);
    std::fs::write(repo.join("refs/heads/main"), b"").unwrap();
    let err = sg(&env, T0 + 400, &["status", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("refs/heads/main cannot be read")
            && err.contains(&format!("run `sqlgit snapshot --repo {r}`")),
        "{err}"
    );
    sql(&env, &db, "INSERT INTO t VALUES (4, 'after');");
    let err = sg(&env, T0 + 500, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains(&format!(
            "warning: refs/heads/main could not be read (the file is kept in {}): it names the \
             newest snapshot here again, {before}",
            repo.join("sqlgit-damaged").display()
        )),
        "{err}"
    );
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), before);
    assert_eq!(commit_count(&env, &repo), 4);
    git(&env, &repo, &["fsck", "--no-dangling"]);
}

/// A `shallow` file (where pruning cut the local history) that names no commit: libgit2 cannot
/// open the repository at all. Commands say how to repair it; the next run sets it aside and
/// finds the cut again.
#[test]
fn a_damaged_shallow_file_is_written_again() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r, "--keep", "2"]).success();
    for i in 2..=4u64 {
        sql(&env, &db, &format!("INSERT INTO t VALUES ({i});"));
        sg(&env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    let shallow = std::fs::read_to_string(repo.join("shallow")).unwrap();
    std::fs::write(repo.join("shallow"), "\0\0garbage\n").unwrap();
    let err = sg(&env, T0 + 400, &["log", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("its shallow file (where pruning cut the local history) cannot be read")
            && err.contains(&format!("run `sqlgit snapshot --repo {r}`")),
        "{err}"
    );
    sql(&env, &db, "INSERT INTO t VALUES (5);");
    let err = sg(&env, T0 + 500, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains(&format!(
            "written again, the local history starts at {} as before",
            &shallow[..12]
        )),
        "{err}"
    );
    assert!(repo.join("sqlgit-damaged").read_dir().unwrap().count() == 1);
    git(&env, &repo, &["fsck", "--no-dangling"]);
    sg(&env, T0 + 500, &["log", "--repo", &r]).success();
    // The run pruned again from there: two snapshots kept.
    assert_eq!(commit_count(&env, &repo), 2);
}

/// `refs/heads/main` written by hand with the id of an object that is not a commit (git's own
/// `update-ref` refuses that; an editor does not): the next run fails once, saying the latest
/// snapshot could not be read, and goes on from the newest snapshot; the runs after it succeed.
/// Before, every run failed with "its pack entry is intact: run git fsck", forever.
#[test]
fn a_main_naming_a_blob_goes_back_to_the_newest_snapshot() {
    let env = TestEnv::new();
    let (db, repo) = three_snapshots(&env, None);
    let r = s(&repo);
    let newest = head(&env, &repo);
    let blob = git(&env, &repo, &["rev-parse", "main:app.db/0-header.sql"]);
    std::fs::write(repo.join("refs/heads/main"), format!("{blob}\n")).unwrap();
    let err = sg(&env, T0 + 400, &["snapshot", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(err.contains("could not be read"), "{err}");
    assert_eq!(head(&env, &repo), newest);
    sql(&env, &db, "INSERT INTO t VALUES (9, 'later');");
    sg(&env, T0 + 500, &["snapshot", "--repo", &r]).success();
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), newest);
}
