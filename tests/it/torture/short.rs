//! `torture_short`: two bank databases under non-stop writers, snapshotted and pushed about once
//! a second with random SIGKILLs and a flapping git daemon; then every check of the file header.

use super::*;

// The snapshot loop
// ------------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    runs: u64,
    ok: u64,
    push_failed: u64,
    killed: u64,
    /// Runs picked for a kill that had finished before it.
    kill_too_late: u64,
    /// Where the killed runs were, judged from the refs they left.
    killed_before_commit: u64,
    killed_after_commit: u64,
    killed_after_push: u64,
    kill_ms: Vec<u64>,
    ok_ms: Vec<u64>,
    /// Commit ids printed by runs that exited 0 (committed and pushed to both remotes).
    confirmed: Vec<String>,
    /// Commit ids printed by any run (exit 0 or a failed push).
    printed: Vec<String>,
    unexpected: Vec<String>,
}

fn first_commit_id(stdout: &str) -> Option<String> {
    let word = stdout.lines().next()?.split_whitespace().next()?;
    (word.len() == 40 && word.bytes().all(|b| b.is_ascii_hexdigit())).then(|| word.to_string())
}

fn rev(env: &TestEnv, repo: &Path, name: &str) -> Option<String> {
    let mut cmd = env.command("git");
    cmd.arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", name]);
    let run = env.run(cmd, b"");
    (run.code() == Some(0)).then(|| run.stdout_str().trim().to_string())
}

fn snapshot_loop(env: &TestEnv, bank: &Bank, deadline: Instant, seed: u64) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let kill_after = rng
            .random_ratio(1, 3)
            .then(|| Duration::from_millis(rng.random_range(0..=800)));
        let main_before = rev(env, &bank.repo, "refs/heads/main");
        let mut cmd = env.sqlgit_cmd(&bank.snapshot_args());
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sqlgit");
        let out_t = reader(child.stdout.take().unwrap());
        let err_t = reader(child.stderr.take().unwrap());
        let mut hung = false;
        let mut sent_kill = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            let elapsed = started.elapsed();
            if !sent_kill && kill_after.is_some_and(|k| elapsed >= k) {
                sent_kill = kill_group(child.id());
            }
            if elapsed > HANG && !hung {
                hung = true;
                kill_group(child.id());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
        st.runs += 1;
        let printed = first_commit_id(&stdout);
        if let Some(id) = &printed {
            st.printed.push(id.clone());
        }
        let show = || {
            format!(
                "{} run {}: {status}, stdout {stdout:?}, stderr {stderr:?}",
                bank.name, st.runs
            )
        };
        if hung {
            st.unexpected
                .push(format!("hung for more than {HANG:?}: {}", show()));
        } else if status.signal() == Some(libc::SIGKILL) && sent_kill {
            st.killed += 1;
            st.kill_ms.push(took.as_millis() as u64);
            let main_after = rev(env, &bank.repo, "refs/heads/main");
            let confirmed = rev(env, &bank.repo, "refs/remotes/history/main");
            if main_after == main_before {
                st.killed_before_commit += 1;
            } else if confirmed != main_after {
                st.killed_after_commit += 1;
            } else {
                st.killed_after_push += 1;
            }
        } else {
            if kill_after.is_some() {
                st.kill_too_late += 1;
            }
            match status.code() {
                Some(0) => {
                    st.ok += 1;
                    st.ok_ms.push(took.as_millis() as u64);
                    if let Some(id) = printed {
                        st.confirmed.push(id);
                    }
                    if !stderr.is_empty() {
                        st.unexpected
                            .push(format!("exit 0 with stderr: {}", show()));
                    }
                }
                // The git daemon is down now and then: the history push may fail, nothing else
                // (and then nothing is pruned, which the run may say in one line).
                Some(1)
                    if stderr
                        .lines()
                        .filter(|l| !l.starts_with("sqlgit: warning: nothing pruned: "))
                        .eq(stderr
                            .lines()
                            .filter(|l| l.starts_with("sqlgit: push to history remote "))
                            .take(1)) =>
                {
                    st.push_failed += 1;
                }
                _ => st.unexpected.push(show()),
            }
        }
        let next = started + Duration::from_secs(1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    st
}

// ------------------------------------------------------------------------------------------------

#[test]
fn torture_short() {
    let secs: u64 = std::env::var("SQLGIT_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("SQLGIT_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let env = TestEnv::new();
    let mut daemon = GitDaemon::start_in(env.path("srv"));
    let creds = ("torture", "Latest-Pw-31337");
    let http = HttpGit::start_in(env.path("web"), creds.0, creds.1);
    let banks = [
        Bank::new(&env, "wal", "WAL", &daemon, &http, creds),
        Bank::new(&env, "rollback", "DELETE", &daemon, &http, creds),
    ];

    // The first snapshot, clean: the size every later one is measured against.
    let mut first_size = Vec::new();
    for bank in &banks {
        let (run, hung) = run_limited(&env, env.sqlgit_cmd(&bank.snapshot_args()), HANG);
        if hung || run.code() != Some(0) {
            run.fail("the first snapshot failed");
        }
        first_size.push(dir_size(&bank.repo));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<Writer> = banks
        .iter()
        .enumerate()
        .map(|(i, b)| start_writer(&env, &b.db, seed + i as u64, stop.clone()))
        .collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut outages = 0u32;
    let mut down = Duration::ZERO;
    let stats: Vec<Stats> = std::thread::scope(|s| {
        let loops: Vec<_> = banks
            .iter()
            .enumerate()
            .map(|(i, bank)| {
                let env = &env;
                s.spawn(move || snapshot_loop(env, bank, deadline, seed * 1000 + i as u64))
            })
            .collect();
        // Meanwhile: outages of the git daemon (the history remote).
        let mut rng = StdRng::seed_from_u64(seed ^ 0xdead);
        loop {
            let up = Duration::from_millis(rng.random_range(2000..8000));
            std::thread::sleep(up.min(deadline.saturating_duration_since(Instant::now())));
            if Instant::now() >= deadline {
                break;
            }
            daemon.stop();
            outages += 1;
            let t = Instant::now();
            let length = Duration::from_millis(rng.random_range(1000..4000));
            std::thread::sleep(length.min(deadline.saturating_duration_since(Instant::now())));
            daemon.start();
            down += t.elapsed();
        }
        loops.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(daemon.is_running());

    let mut p = Problems::default();
    stop.store(true, Ordering::Relaxed);
    let transfers: Vec<u64> = writers
        .into_iter()
        .zip(&banks)
        .map(|(w, b)| finish_writer(b.name, w, &mut p))
        .collect();

    let mut verified = Vec::new();
    for ((bank, st), first) in banks.iter().zip(&stats).zip(&first_size) {
        for u in st.unexpected.iter().take(5) {
            p.push(format!("unexpected run result: {u}"));
        }
        if st.unexpected.len() > 5 {
            p.push(format!(
                "{}: {} more unexpected run results",
                bank.name,
                st.unexpected.len() - 5
            ));
        }
        // One clean run, configured only by what the repository remembered.
        let mut cmd = env.sqlgit_cmd(&[
            OsStr::new("snapshot"),
            OsStr::new("--repo"),
            bank.repo.as_os_str(),
        ]);
        cmd.env("SQLGIT_TEST_FINAL", "1");
        // The URL's password was used by the runs that gave it, never saved: it comes from the
        // environment, as cron would give it.
        cmd.env("SQLGIT_HTTPS_TOKEN", creds.1);
        let (run, hung) = run_limited(&env, cmd, HANG);
        if hung || run.code() != Some(0) || !run.stderr().is_empty() {
            p.push(format!(
                "{}: the clean run after the torture failed: {} {}",
                bank.name,
                run.output.status,
                run.stderr_str()
            ));
        }
        let mut confirmed = st.confirmed.clone();
        confirmed.extend(first_commit_id(&run.stdout_str()));

        for (what, dir) in [
            ("local", &bank.repo),
            ("history", &bank.history_dir),
            ("latest", &bank.latest_dir),
        ] {
            if let Some(e) = fsck_problems(&env, dir) {
                p.push(format!("{} {what}: {e}", bank.name));
            }
        }
        let head = rev(&env, &bank.repo, "refs/heads/main").unwrap_or_default();
        let history_head = rev(&env, &bank.history_dir, "refs/heads/main").unwrap_or_default();
        p.check(head == history_head, || {
            format!(
                "{}: local main {head} but history remote main {history_head}",
                bank.name
            )
        });
        let latest_commits = lines(git_out(&env, &bank.latest_dir, &["rev-list", "main"]));
        let latest_tree = rev(&env, &bank.latest_dir, "main^{tree}");
        let head_tree = rev(&env, &bank.repo, "main^{tree}");
        p.check(latest_commits.len() == 1, || {
            format!(
                "{}: the latest remote has {} commits",
                bank.name,
                latest_commits.len()
            )
        });
        p.check(latest_tree.is_some() && latest_tree == head_tree, || {
            format!(
                "{}: latest remote tree {latest_tree:?} != local head tree {head_tree:?}",
                bank.name
            )
        });

        // Every commit on the history remote restores to a consistent bank.
        let history = lines(git_out(&env, &bank.history_dir, &["rev-list", "main"]));
        let parents = lines(git_out(
            &env,
            &bank.history_dir,
            &["rev-list", "--parents", "main"],
        ));
        p.check(parents.iter().all(|l| l.split(' ').count() <= 2), || {
            format!(
                "{}: the history remote is not a single line of commits",
                bank.name
            )
        });
        for e in check_commits(&env, &bank.history_dir, &history) {
            p.push(format!("{} history: {e}", bank.name));
        }
        verified.push(history.len());

        // Nothing printed (let alone confirmed) is missing from the history remote.
        let on_remote: HashSet<&String> = history.iter().collect();
        for id in &confirmed {
            p.check(on_remote.contains(id), || {
                format!(
                    "{}: confirmed commit {id} is not on the history remote",
                    bank.name
                )
            });
        }
        for id in &st.printed {
            p.check(on_remote.contains(id), || {
                format!("{}: committed {id} is not on the history remote", bank.name)
            });
        }

        // Local history: the newest KEEP commits; size bounded; private.
        let local = lines(git_out(&env, &bank.repo, &["rev-list", "main"]));
        p.check(local.len() == KEEP.min(history.len()), || {
            format!(
                "{}: local history has {} commits, want {}",
                bank.name,
                local.len(),
                KEEP.min(history.len())
            )
        });
        p.check(history.starts_with(&local), || {
            format!(
                "{}: local history is not the newest of the remote's",
                bank.name
            )
        });
        let size = dir_size(&bank.repo);
        p.check(size < 20 * first, || {
            format!(
                "{}: the repository grew from {first} to {size} bytes",
                bank.name
            )
        });
        for path in not_private(&bank.repo) {
            p.push(format!("{}: group/other can access {path}", bank.name));
        }
        // The head is the final database, exactly.
        let dump = env.sqlgit(&[OsStr::new("dump"), bank.db.as_os_str()]);
        let cat = env.sqlgit(&[
            OsStr::new("cat"),
            OsStr::new("--repo"),
            bank.repo.as_os_str(),
        ]);
        p.check(
            dump.code() == Some(0) && cat.code() == Some(0) && dump.stdout() == cat.stdout(),
            || {
                format!(
                    "{}: the head is not the final database (dump: {} {} bytes, cat: {} {} bytes)",
                    bank.name,
                    dump.output.status,
                    dump.stdout().len(),
                    cat.output.status,
                    cat.stdout().len()
                )
            },
        );

        eprintln!(
            "torture {}: {} runs: {} ok, {} push failed, {} killed ({} before the commit, {} after \
             the commit, {} after the history push; kill delays p10/p50/p90 {}/{}/{} ms; {} more \
             finished before their kill), {} unexpected; ok runs p50/p90 {}/{} ms; {} commits \
             printed, {} confirmed; repository {} KiB after the first snapshot, {} KiB at the end",
            bank.name,
            st.runs,
            st.ok,
            st.push_failed,
            st.killed,
            st.killed_before_commit,
            st.killed_after_commit,
            st.killed_after_push,
            percentile(&st.kill_ms, 10),
            percentile(&st.kill_ms, 50),
            percentile(&st.kill_ms, 90),
            st.kill_too_late,
            st.unexpected.len(),
            percentile(&st.ok_ms, 50),
            percentile(&st.ok_ms, 90),
            st.printed.len(),
            confirmed.len(),
            first / 1024,
            size / 1024,
        );
    }
    let total = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    eprintln!(
        "torture: {secs} s, seed {seed}: {} snapshots ({} ok), {} kills, {} outages ({:.1} s down), \
         {} commits verified on the history remotes ({}), {} transfers ({})",
        total(|s| s.runs),
        total(|s| s.ok),
        total(|s| s.killed),
        outages,
        down.as_secs_f64(),
        verified.iter().sum::<usize>(),
        banks
            .iter()
            .zip(&verified)
            .map(|(b, n)| format!("{} {n}", b.name))
            .collect::<Vec<_>>()
            .join(", "),
        transfers.iter().sum::<u64>(),
        banks
            .iter()
            .zip(&transfers)
            .map(|(b, n)| format!("{} {n}", b.name))
            .collect::<Vec<_>>()
            .join(", "),
    );
    // The run must have tortured something.
    p.check(total(|s| s.killed) >= 3, || {
        "fewer than 3 runs were killed".into()
    });
    p.check(secs < 20 || outages >= 2, || {
        format!("only {outages} outages")
    });
    p.check(stats.iter().all(|s| s.ok >= 3), || {
        "fewer than 3 clean runs per bank".into()
    });
    p.finish();
}
