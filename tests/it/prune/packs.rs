//! The packs and loose objects the runs write: merged geometrically (old versions stored as deltas
//! of new ones), loose objects packed once there are many, git's own maintenance in the repository,
//! and runs killed while merging packs; plain git stays clean and every snapshot reads the same.

use super::*;

/// A user runs git's own maintenance inside the repository (`git gc`, which writes a cruft pack
/// with an `.mtimes` file, and a multi-pack-index over the packs), then the cron runs go on and
/// prune the packs those files describe: `git fsck` stays clean (a multi-pack-index naming
/// deleted packs made it fail), nothing is left beside a deleted pack, and the snapshots stay
/// exact.
#[test]
fn pruning_after_git_maintenance_in_the_repository_leaves_plain_git_clean() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "2"]).success().assert_quiet();
    }
    fx.git(&fx.repo, &["gc", "--quiet"]);
    fx.git(&fx.repo, &["multi-pack-index", "write", "--bitmap"]);
    fx.assert_fsck(&fx.repo);
    for _ in 0..5 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    fx.assert_fsck(&fx.repo);
    let pack_dir = fx.repo.join("objects/pack");
    for entry in std::fs::read_dir(&pack_dir).unwrap().flatten() {
        let path = entry.path();
        if let Some(ext) = path.extension().and_then(|e| e.to_str())
            && ["pack", "rev", "bitmap", "mtimes", "keep"].contains(&ext)
        {
            assert!(
                path.with_extension("idx").exists(),
                "{} is left without its pack index",
                path.display()
            );
        }
    }
    let counted = fx.git(&fx.repo, &["count-objects", "-v"]);
    assert!(counted.contains("garbage: 0"), "{counted}");
    let sql = fx.cat(None, &fx.repo).success().assert_quiet();
    fx.assert_restores_to(sql.stdout(), "newest.db", &fx.db);
    let repo = fx.repo_arg();
    fx.sqlgit(&["verify", "--repo", &repo, "--quiet"])
        .success()
        .assert_quiet();
}

/// Each run writes a pack; without pruning they would pile up (thousands within weeks, every
/// lookup searching each). More than 16 are merged geometrically: the count stays small, every
/// snapshot still restores, and plain git is happy.
#[test]
fn packs_are_merged_as_runs_add_them_without_any_pruning() {
    let fx = Fx::new(false);
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..40 {
        let run = fx.snapshot(&[]).success();
        let id = printed_commit(&run);
        dumps.push((id, fx.cat(None, &fx.repo).success().stdout().to_vec()));
        let packs = std::fs::read_dir(fx.repo.join("objects/pack"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pack")
            })
            .count();
        assert!(packs <= 17, "run {i}: {packs} packs");
    }
    fx.assert_fsck(&fx.repo);
    for (id, sql) in &dumps {
        let run = fx.cat(Some(id), &fx.repo).success();
        assert!(
            run.stdout() == &sql[..],
            "snapshot {id} no longer restores the same"
        );
    }
}

/// When packs merge, each old version of a chunk or folder that a newer one replaced is stored
/// as a delta of it, so the repository grows by what changed rather than by the files holding
/// it. A hot row changed every run, a row flipping between two values (an old version comes
/// back: no delta may lead in a circle) and a few other rows, over two merges: every snapshot
/// still reads the same through sqlgit and plain git, the newest snapshot's objects stay whole (restores read
/// them fast), and pruning afterwards keeps all of it so.
#[test]
fn merged_packs_store_old_versions_as_deltas_of_new_ones() {
    let fx = Fx::new(false);
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    let mut merges = 0;
    for i in 0..40 {
        let flip = if i % 2 == 0 { "even" } else { "odd" };
        fx.env
            .sqlite3(
                &fx.db,
                format!(
                    "UPDATE t SET n = n + 1 WHERE id = 1; UPDATE t SET v = '{flip}' WHERE id = 2500;"
                ),
            )
            .success();
        let packs_before = pack_deltas(&fx).1;
        let id = printed_commit(&fx.snapshot(&[]).success());
        dumps.push((id, fx.cat(None, &fx.repo).success().stdout().to_vec()));
        let (deltas, packs) = pack_deltas(&fx);
        if packs < packs_before {
            // Packs were merged by this run: what it wrote stays whole.
            merges += 1;
            assert!(
                deltas.len() >= 30,
                "only {} objects are deltas",
                deltas.len()
            );
            let newest = fx.git(&fx.repo, &["ls-tree", "-r", "-t", "--object-only", "main"]);
            for id in newest.lines() {
                assert!(
                    !deltas.contains(id),
                    "{id} of the newest snapshot is a delta"
                );
            }
        }
    }
    // The second merge takes in the first one's pack: old versions become deltas of versions
    // stored as deltas already, and deltas of objects that become deltas are rewritten.
    assert_eq!(merges, 2, "40 runs merge packs twice");
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps);
    fx.prune(&["--keep", "5"]).success();
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps[dumps.len() - 5..]);
}

/// Each snapshot (commit id, its SQL) still reads the same through `sqlgit cat` and through
/// `git archive | tar -xO`.
#[track_caller]
fn assert_snapshots_read(fx: &Fx, dumps: &[(String, Vec<u8>)]) {
    for (id, sql) in dumps {
        let run = fx.cat(Some(id), &fx.repo).success();
        assert!(
            run.stdout() == &sql[..],
            "snapshot {id} no longer reads the same"
        );
        let mut archive = fx.env.command("sh");
        archive.arg("-c").arg(format!(
            "git -C '{}' archive {id} | tar -xO",
            fx.repo.display()
        ));
        let plain = fx.env.run(archive, b"").success();
        assert!(plain.stdout() == &sql[..], "git archive {id} differs");
    }
}

/// The objects stored as deltas in the repository's packs (`git verify-pack -v`), and how many
/// packs there are.
fn pack_deltas(fx: &Fx) -> (HashSet<String>, usize) {
    let mut found = HashSet::new();
    let mut packs = 0;
    let Ok(dir) = std::fs::read_dir(fx.repo.join("objects/pack")) else {
        return (found, 0); // before the first run
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "idx") {
            packs += 1;
            let out = fx.git(&fx.repo, &["verify-pack", "-v", path.to_str().unwrap()]);
            for line in out.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() == 7 && fields[0].len() == 40 {
                    found.insert(fields[0].to_string());
                }
            }
        }
    }
    (found, packs)
}

/// Each run's commit is a loose object: a repository that is never pruned would gather a file
/// per snapshot forever (and the scrub, which reads packs, would never check them). Past 256
/// loose objects a run packs them and deletes the files; a tag someone made stays loose, every
/// object is still there, and plain git is happy.
#[test]
fn loose_objects_are_packed_once_there_are_many() {
    let fx = Fx::new(false);
    let first = printed_commit(&fx.snapshot(&[]).success());
    let loose = |repo: &Path| -> Vec<String> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if name.len() == 2 {
                for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                    found.push(format!("{name}{}", f.file_name().to_string_lossy()));
                }
            }
        }
        found
    };
    assert_eq!(loose(&fx.repo).len(), 1, "the first run's commit is loose");
    // 300 loose blobs, as another tool (or many runs' commits) would leave them, and a tag.
    let blobs = write_loose_blobs(&fx, 300);
    let blobs: Vec<&str> = blobs.lines().collect();
    fx.env
        .git_in(&fx.repo, &["tag", "-a", "-m", "mine", "mine", &first]);
    let tag = fx.env.git_in(&fx.repo, &["rev-parse", "mine"]);
    assert_eq!(loose(&fx.repo).len(), 302);

    fx.snapshot(&[]).success();
    let left = loose(&fx.repo);
    assert_eq!(
        left,
        vec![tag.trim().to_string()],
        "only the tag stays loose"
    );
    fx.assert_fsck(&fx.repo);
    let mut check = fx.env.command("git");
    check
        .arg("--git-dir")
        .arg(&fx.repo)
        .args(["cat-file", "--batch-check"]);
    let wanted = format!("{first}\n{}\n", blobs.join("\n"));
    let out = fx.env.run(check, wanted.as_bytes()).success().stdout_str();
    assert!(!out.contains("missing"), "{out}");
    assert_eq!(out.lines().count(), 301);
    let log = fx.env.git_in(&fx.repo, &["log", "--format=%H", "main"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains(&first));
}

/// Write `n` small blobs into the repository as loose objects; their ids, a line each.
fn write_loose_blobs(fx: &Fx, n: usize) -> String {
    let mut hash = fx.env.command("git");
    hash.arg("--git-dir")
        .arg(&fx.repo)
        .args(["hash-object", "-w", "--stdin-paths"]);
    let paths: String = (0..n)
        .map(|i| {
            let p = fx
                .env
                .write(format!("blob{i}"), format!("blob number {i}\n"));
            format!("{}\n", p.display())
        })
        .collect();
    fx.env.run(hash, paths.as_bytes()).success().stdout_str()
}

/// A loose object that cannot be read stops the packing (said as a warning; every loose file is
/// kept), not the snapshot.
#[test]
fn an_unreadable_loose_object_is_a_warning_and_nothing_is_deleted() {
    let fx = Fx::new(false);
    fx.snapshot(&[]).success();
    let blobs = write_loose_blobs(&fx, 300);
    let damaged = blobs.lines().nth(7).unwrap().to_string();
    let file = fx
        .repo
        .join("objects")
        .join(&damaged[..2])
        .join(&damaged[2..]);
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&file, perms).unwrap();
    std::fs::write(&file, b"not zlib at all").unwrap();

    let run = fx.snapshot(&[]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("pack loose objects") && err.contains(&damaged),
        "{err}"
    );
    for id in blobs.lines() {
        let path = fx.repo.join("objects").join(&id[..2]).join(&id[2..]);
        assert!(path.exists(), "loose object {id} was deleted");
    }
}

/// A run killed while it merges packs (cron's timeout, the OOM killer: SIGKILL, no cleanup) at
/// each point between two writes: while copying, once the new pack is written, after an old
/// pack is removed, and between an old pack's index and its pack. Each next run commits and
/// merges again; the repository stays fsck-clean, every snapshot reads as it did through
/// sqlgit and plain git, and what the kills left (temporary files, a pack without its index)
/// is gone after the last run.
#[test]
fn runs_killed_while_merging_packs_are_mended_by_the_next() {
    let fx = Fx::new(false);
    let points = [
        "merge-copying",
        "merge-written",
        "merge-removing",
        "pack-unindexed",
    ];
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    let mut point = 0;
    let newest = |fx: &Fx| {
        let id = fx.git(&fx.repo, &["rev-parse", "refs/heads/main"]);
        let sql = fx.cat(Some(&id), &fx.repo).success().stdout().to_vec();
        (id, sql)
    };
    for _ in 0..60 {
        if point == points.len() {
            break;
        }
        fx.change();
        fx.now.set(fx.now.get() + 60);
        let (db, repo) = (fx.db.display().to_string(), fx.repo_arg());
        let mut cmd = fx
            .env
            .sqlgit_cmd(&["snapshot", db.as_str(), "--repo", repo.as_str()]);
        cmd.env("SQLGIT_NOW", fx.now.get().to_string())
            .env("SQLGIT_FAILPOINT", points[point]);
        let run = run_limited(&fx.env, cmd, RUN_LIMIT);
        match run.code() {
            Some(0) => {}
            // Killed: merging comes after the commit.
            None => point += 1,
            Some(_) => run.fail("a snapshot failed"),
        }
        dumps.push(newest(&fx));
    }
    assert_eq!(point, points.len(), "not every kill point was reached");
    let pack_dir = fx.repo.join("objects/pack");
    let unindexed = || -> Vec<PathBuf> {
        std::fs::read_dir(&pack_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "pack") && !p.with_extension("idx").exists()
            })
            .collect()
    };
    let left = unindexed();
    assert_eq!(
        left.len(),
        1,
        "the last kill leaves one pack without its index"
    );
    // Such a pack is removed once it is an hour old (a git command may be writing one).
    let mut touch = fx.env.command("touch");
    touch.args(["-d", "2 hours ago"]).arg(&left[0]);
    fx.env.run(touch, b"").success();
    fx.snapshot(&[]).success();
    dumps.push(newest(&fx));
    assert!(unindexed().is_empty(), "a pack without its index was left");
    let temporary: Vec<_> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_"))
        .collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps);
}
