//! A prune killed at random moments (SIGKILL, no cleanup) leaves a valid repository that the next
//! run goes on from.

use super::*;

#[test]
fn a_killed_prune_leaves_a_valid_repository() {
    let fx = Fx::new(false);
    for _ in 0..30 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    // Every snapshot's SQL before any pruning; the newest, a middle and the oldest restore.
    let all = fx.logged();
    assert_eq!(all.len(), 30);
    let expected: HashMap<String, Vec<u8>> = all
        .iter()
        .map(|id| {
            let out = fx.cat(Some(id), &fx.repo).success().assert_quiet();
            (id.clone(), out.output.stdout)
        })
        .collect();
    fx.assert_restores_to(&expected[&all[0]], "newest.db", &fx.db);
    for (i, id) in [(15, &all[15]), (29, &all[29])] {
        fx.env.restore(&expected[id], &format!("before-{i}.db"));
    }
    let pristine = fx.env.path("pristine.sqlgit");
    copy_dir(&fx.repo, &pristine);
    let size_before = dir_size(&fx.repo);

    let check = |what: &str| {
        fx.assert_fsck(&fx.repo);
        let logged = fx.logged();
        assert!(
            logged.len() >= 3 && logged[..] == all[..logged.len()],
            "{what}: sqlgit log must list a newest-first prefix of the snapshots, got {} of them",
            logged.len()
        );
        assert_eq!(
            fx.ids(&fx.repo),
            logged,
            "{what}: git rev-list vs sqlgit log"
        );
        for id in &logged {
            let out = fx.cat(Some(id), &fx.repo);
            if out.code() != Some(0) || out.stdout() != &expected[id][..] {
                out.fail(&format!(
                    "{what}: sqlgit cat {id} must give the snapshot's SQL"
                ));
            }
        }
        // The oldest listed one restores with sqlite3 too.
        let oldest = &expected[logged.last().unwrap()];
        let db = fx.env.path("check.db");
        let _ = std::fs::remove_file(&db);
        fx.env.restore(oldest, "check.db");
    };

    // Kills land within the time a whole prune takes here (timed on a copy first).
    std::fs::remove_dir_all(&fx.repo).unwrap();
    copy_dir(&pristine, &fx.repo);
    let started = std::time::Instant::now();
    fx.prune(&["--keep", "3"]).success();
    let mut span = (started.elapsed().as_millis() as u64).max(2);

    let mut rng = StdRng::seed_from_u64(0x9_2026_0005);
    let (mut killed, mut finished) = (0, 0);
    // Four rounds, and more (up to 12) until a kill lands: a prune that finished before its
    // kill also shortens the span (the first one was timed on a busier machine).
    for round in 0..12 {
        if round >= 4 && killed > 0 {
            break;
        }
        // Start from the unpruned repository, then kill twice in a row (the second kill hits
        // whatever state the first left).
        std::fs::remove_dir_all(&fx.repo).unwrap();
        copy_dir(&pristine, &fx.repo);
        for attempt in 0..2 {
            let delay = Duration::from_millis(rng.random_range(0..span));
            let mut cmd = fx
                .env
                .sqlgit_cmd(&["prune", "--repo", &fx.repo_arg(), "--keep", "3"]);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("start sqlgit prune");
            let (out_t, err_t) = drain(&mut child);
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            let status = child.wait().unwrap();
            let (out, err) = (out_t.join().unwrap(), err_t.join().unwrap());
            match status.code() {
                None => killed += 1,
                Some(0) => {
                    finished += 1;
                    span = span.min(delay.as_millis() as u64).max(2);
                }
                Some(c) => panic!(
                    "round {round}, attempt {attempt}: sqlgit prune exited {c} before the kill:\n{}{}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                ),
            }
            check(&format!(
                "round {round}, kill {attempt} after {delay:?} ({status})"
            ));
        }
    }
    eprintln!("{killed} prunes killed mid-run, {finished} finished before the kill");
    assert!(killed > 0, "no kill landed while sqlgit prune was running");

    let run = fx.prune(&["--keep", "3"]).success().assert_quiet();
    // It prunes, finishes the collection a killed one left pending, or has nothing to do.
    let said = run.stdout_str();
    assert!(
        said.contains("3 kept locally")
            || said.contains("deleted what an earlier prune cut off")
            || said.is_empty(),
        "{said}"
    );
    check("after the final prune");
    assert_eq!(fx.logged(), all[..3]);
    fx.assert_shallow_is(&all[2]);
    // A prune killed while rewriting packs can leave its temporary files behind (named so git
    // ignores them); the next prune or snapshot removes them.
    fx.snapshot(&[]).success().assert_quiet();
    assert_eq!(fx.count(&fx.repo), 3, "the remembered --keep 3");
    let stray: Vec<String> = std::fs::read_dir(fx.repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("pack-"))
        .collect();
    assert!(stray.is_empty(), "stray files in objects/pack: {stray:?}");
    fx.assert_fsck(&fx.repo);
    let size_after = dir_size(&fx.repo);
    assert!(
        size_after < size_before,
        "pruning 27 of 30 snapshots freed nothing ({size_before} -> {size_after} bytes)"
    );
}

/// A prune stopped after it moved the graft (killed here; a full disk fails it at the same
/// point) leaves the cut-off objects behind: the next `sqlgit prune` collects them although it
/// cuts nothing more, as does the next snapshot run; also when the stop was left by a sqlgit
/// that wrote no pending mark.
#[test]
fn a_prune_stopped_after_the_graft_is_collected_by_the_next_prune_or_run() {
    let fx = Fx::new(false);
    for _ in 0..8 {
        fx.snapshot(&[]).success();
    }
    let pristine = fx.env.path("pristine.sqlgit");
    copy_dir(&fx.repo, &pristine);
    fx.prune(&["--keep", "2"]).success();
    let clean = dir_size(&fx.repo.join("objects"));
    for how in ["prune", "snapshot"] {
        std::fs::remove_dir_all(&fx.repo).unwrap();
        copy_dir(&pristine, &fx.repo);
        let repo = fx.repo_arg();
        let mut cmd = fx
            .env
            .sqlgit_cmd(&["prune", "--repo", repo.as_str(), "--keep", "2"]);
        cmd.env("SQLGIT_NOW", fx.now.get().to_string())
            .env("SQLGIT_FAILPOINT", "prune-grafted");
        assert_eq!(run_limited(&fx.env, cmd, RUN_LIMIT).code(), None, "killed");
        assert_eq!(fx.count(&fx.repo), 2, "the graft moved");
        let stopped = dir_size(&fx.repo.join("objects"));
        assert!(
            stopped > clean + clean / 4,
            "{stopped} bytes against {clean}"
        );
        match how {
            "prune" => fx.prune(&["--keep", "2"]).success(),
            _ => {
                let db = fx.db.display().to_string();
                fx.sqlgit(&["snapshot", db.as_str(), "--repo", repo.as_str()])
                    .success()
            }
        };
        let after = dir_size(&fx.repo.join("objects"));
        assert!(
            after <= clean + (stopped - clean) / 4,
            "{how}: {after} bytes left, a clean prune leaves {clean}"
        );
        assert!(!fx.repo.join("sqlgit-collect-pending").exists());
        fx.assert_fsck(&fx.repo);
        assert_eq!(fx.count(&fx.repo), 2);
        // Nothing more to collect: the next prune changes nothing.
        let before = tree_state(&fx.repo.join("objects"));
        fx.prune(&["--keep", "2"]).success().assert_quiet();
        assert!(tree_state(&fx.repo.join("objects")) == before, "{how}");
    }
}
