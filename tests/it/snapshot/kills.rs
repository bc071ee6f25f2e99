//! SIGKILL at random moments while a writer commits, and aimed at the creation of the
//! repository and the update of `refs/heads/main`: the next run succeeds, every commit restores.

use super::*;

// ------------------------------------------------------------------------------------------------
// 8. SIGKILL at random moments while a writer runs
// ------------------------------------------------------------------------------------------------

const ACCOUNTS: i64 = 50;
const START_BALANCE: i64 = 1000;

/// The bank database: 50 accounts, a ledger of transfers, and padding rows the writer also
/// updates, so that every snapshot has new blobs to write and lasts long enough to be killed.
fn bank_db(env: &TestEnv) -> PathBuf {
    let script = format!(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL);
         CREATE INDEX ledger_src ON ledger(src);
         CREATE TABLE padding(id INTEGER PRIMARY KEY, pad TEXT NOT NULL);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {ACCOUNTS})
         INSERT INTO accounts SELECT i, {START_BALANCE} FROM c;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
         INSERT INTO padding SELECT i, printf('%08d %s', i, hex(randomblob(40))) FROM c;"
    );
    let db = env.path("bank.db");
    env.sqlite3_args(&["-bail"], &db, script.as_bytes())
        .success()
        .assert_quiet();
    db
}

/// The invariants of every committed state of the bank, checked on a restored copy.
#[track_caller]
fn assert_bank_consistent(db: &Path, what: &str) {
    let conn = Connection::open(db).unwrap();
    let (n, sum): (i64, i64) = conn
        .query_row("SELECT count(*), total(balance) FROM accounts", [], |r| {
            Ok((r.get(0)?, r.get::<_, f64>(1)? as i64))
        })
        .unwrap();
    assert_eq!(n, ACCOUNTS, "{what}: number of accounts");
    assert_eq!(
        sum,
        ACCOUNTS * START_BALANCE,
        "{what}: the sum of balances changed"
    );
    // Each balance is the start balance plus the ledger: the rows of both tables are one moment.
    let broken: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM accounts a WHERE balance != {START_BALANCE}
                   - (SELECT coalesce(sum(amount), 0) FROM ledger WHERE src = a.id)
                   + (SELECT coalesce(sum(amount), 0) FROM ledger WHERE dst = a.id)"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(broken, 0, "{what}: balances disagree with the ledger");
}

/// The sqlite3 CLI fed transfers through its stdin until `stop` is set.
fn start_writer(
    env: &TestEnv,
    db: &Path,
    stop: Arc<AtomicBool>,
) -> (Child, std::thread::JoinHandle<u64>) {
    let mut writer = env
        .command(sqlite3_bin())
        .arg("-batch")
        .arg("-bail")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(7);
        let mut transfers = 0u64;
        let _ = stdin.write_all(b".timeout 30000\nPRAGMA synchronous=OFF;\n");
        while !stop.load(Ordering::Relaxed) {
            let mut batch = String::new();
            for _ in 0..20 {
                let a = rng.random_range(1..=ACCOUNTS);
                let b = (a + rng.random_range(1..ACCOUNTS) - 1) % ACCOUNTS + 1;
                let amount = rng.random_range(1..=100);
                let pad = rng.random_range(1..=30000);
                let stamp: u32 = rng.random();
                batch.push_str(&format!(
                    "BEGIN IMMEDIATE;\n\
                     UPDATE accounts SET balance = balance - {amount} WHERE id = {a};\n\
                     INSERT INTO ledger(src, dst, amount) VALUES({a}, {b}, {amount});\n\
                     UPDATE padding SET pad = printf('%08d %08x', id, {stamp}) WHERE id = {pad};\n\
                     UPDATE accounts SET balance = balance + {amount} WHERE id = {b};\n\
                     COMMIT;\n"
                ));
                transfers += 1;
            }
            if stdin.write_all(batch.as_bytes()).is_err() {
                break; // the writer died; its stderr says why
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        transfers
    });
    (writer, feeder)
}

#[test]
fn sigkill_at_random_moments_while_a_writer_runs() {
    let env = TestEnv::new();
    let db = bank_db(&env);
    let repo = env.path("bank.sqlgit");
    snapshot_commit(&env, &db, &repo, None);

    let stop = Arc::new(AtomicBool::new(false));
    let (writer, feeder) = start_writer(&env, &db, stop.clone());

    // Kills land within the time one run takes here, under this writer (timed first): runs
    // got faster, and fixed delays came to miss most of them.
    let started = std::time::Instant::now();
    snapshot(&env, &db, &repo, None);
    let span = (started.elapsed().as_millis() as u64).max(2);

    // Up to 1.5 spans: some runs finish, so later kills hit a repository with new commits.
    let mut rng = StdRng::seed_from_u64(0x5eed_2026);
    let (mut killed, mut finished) = (0, 0);
    for round in 0..25 {
        let delay = Duration::from_millis(rng.random_range(0..span * 3 / 2));
        let mut child = env
            .sqlgit_cmd(&[
                OsStr::new("snapshot"),
                db.as_os_str(),
                OsStr::new("--repo"),
                repo.as_os_str(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            finished += 1;
        } else {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        let out = child.wait_with_output().unwrap();
        // A run that ended on its own must have succeeded (it may also have won the race).
        assert!(
            out.status.success() || out.status.code().is_none(),
            "round {round}: snapshot failed on its own: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let transfers = feeder.join().unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "the writer failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("kill test: {killed} runs killed, {finished} finished, {transfers} transfers");
    assert!(
        killed >= 3,
        "only {killed} of 25 runs were still running when killed: the test proves little"
    );
    assert!(
        transfers > 100,
        "the writer made only {transfers} transfers"
    );

    // The next run succeeds and captures the final state exactly. It also reads everything
    // and checks that the incremental read (from whatever page map the kills left) gives the
    // same tree: a map a killed run left behind is never trusted wrongly.
    let check = env.sqlgit(&[
        OsStr::new("snapshot"),
        db.as_os_str(),
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--full-every"),
        OsStr::new("0s"),
    ]);
    assert!(
        check.code() == Some(0),
        "checked run after the kills: {}",
        check.stderr_str()
    );
    let head = env.path("head.db");
    restore_run(&env, &repo, None, &head, false).success();
    compare_databases(&db, &head);

    assert_fsck_clean(&env, &repo);
    let pack_dir = repo.join("objects/pack");
    let leftovers: Vec<String> = list_dir(&pack_dir)
        .into_iter()
        .filter(|n| !(n.starts_with("pack-") && (n.ends_with(".pack") || n.ends_with(".idx"))))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left in objects/pack after a clean run: {leftovers:?}"
    );
    // Every pack has its index (a pack renamed into place without one is garbage forever).
    let names = list_dir(&pack_dir);
    for n in &names {
        let stem = n.trim_end_matches(".pack").trim_end_matches(".idx");
        for ext in [".pack", ".idx"] {
            assert!(
                names.contains(&format!("{stem}{ext}")),
                "{n} has no {stem}{ext}: {names:?}"
            );
        }
    }
    let counts = git_str(&env, &repo, &["count-objects", "-v"]);
    assert!(
        counts.lines().any(|l| l == "garbage: 0"),
        "git count-objects -v:\n{counts}"
    );

    // Every snapshot restores to a consistent bank.
    let log = log_json(&env, &repo);
    assert!(log.len() >= 2, "expected several snapshots, log: {log:?}");
    assert!(
        log.windows(2).all(|w| w[0].unix >= w[1].unix),
        "log is not newest first"
    );
    for (i, e) in log.iter().enumerate() {
        let to = env.path(format!("restored-{i}.db"));
        restore_run(&env, &repo, Some(&e.id), &to, false).success();
        assert_bank_consistent(&to, &format!("snapshot {} ({i} of {})", e.id, log.len()));
        std::fs::remove_file(&to).unwrap();
    }
    assert_private(&repo);
}

/// A run killed while it creates the repository must not leave a directory that later runs
/// refuse as "not sqlgit's": the next run succeeds.
#[test]
fn sigkill_while_creating_the_repository() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let mut states = Vec::new();
    for step in 0..20u64 {
        let repo = env.path(format!("repo{step}"));
        let mut child = env
            .sqlgit_cmd(&[
                OsStr::new("snapshot"),
                db.as_os_str(),
                OsStr::new("--repo"),
                repo.as_os_str(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the directory to appear, then kill a little later each step.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !repo.exists() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(20));
        }
        std::thread::sleep(Duration::from_micros(step * step * 25));
        let _ = child.kill();
        child.wait().unwrap();
        let left: Vec<String> = if repo.exists() {
            list_dir(&repo)
        } else {
            vec![]
        };
        states.push(format!("step {step}: {left:?}"));

        let run = snapshot_run(&env, &db, &repo, None, &[]);
        if run.code() != Some(0) {
            run.fail(&format!(
                "the run after a kill during creation failed; left behind: {left:?}"
            ));
        }
        assert_fsck_clean(&env, &repo);
        assert_eq!(log_json(&env, &repo).len(), 1);
        assert_private(&repo);
    }
    eprintln!("{}", states.join("\n"));
}

/// A run killed while `refs/heads/main.lock` exists (between writing the new branch value and
/// renaming it into place) must not block the next run.
#[test]
fn sigkill_while_moving_the_branch() {
    let env = TestEnv::new();
    let db = env.fixture_db("floats");
    let repo = env.path("repo");
    let first = snapshot_commit(&env, &db, &repo, Some(T));
    let ref_lock = repo.join("refs/heads/main.lock");
    let mut hits = 0;
    for attempt in 1..=40u64 {
        sql(
            &env,
            &db,
            &format!("UPDATE specials SET name = name || '{attempt}' WHERE rowid = 1;"),
        );
        let mut child = sqlgit_cmd_at(
            &env,
            Some(T + attempt),
            &[
                OsStr::new("snapshot"),
                db.as_os_str(),
                OsStr::new("--repo"),
                repo.as_os_str(),
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ref_lock.exists() {
                let _ = child.kill();
                hits += 1;
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::hint::spin_loop();
        }
        child.wait().unwrap();
        let left = list_dir(&repo.join("refs/heads"));
        let run = snapshot_run(&env, &db, &repo, Some(T + attempt), &[]);
        if run.code() != Some(0) {
            run.fail(&format!(
                "the run after a kill during the branch update failed; refs/heads: {left:?}"
            ));
        }
        if hits >= 3 {
            break;
        }
    }
    eprintln!("branch-update kill: hit the main.lock window {hits} times");
    let log = log_json(&env, &repo);
    assert_eq!(
        log.last().map(|e| e.id.as_str()),
        Some(first.as_str()),
        "the first snapshot is gone"
    );
    assert_fsck_clean(&env, &repo);
}

/// Every command stopped by SIGTERM (cron's `timeout`, systemd) says so in one line and exits 1,
/// removing its temporary files: `restore --to` its half-built database, `cat -o` its
/// half-written file.
#[test]
fn commands_stopped_by_sigterm_say_so_and_leave_no_temporary_files() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "big.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<40000)
          INSERT INTO t SELECT i, randomblob(1000) FROM n;",
    );
    let repo = env.path("big.sqlgit");
    snapshot_commit(&env, &db, &repo, Some(T));
    let out_dir = env.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let r = repo.display().to_string();
    let (to, sql) = (out_dir.join("new.db"), out_dir.join("then.sql.gz"));
    let (to, sql) = (to.display().to_string(), sql.display().to_string());
    let runs: [(&[&str], &str); 2] = [
        (
            &["restore", "--repo", &r, "--to", &to],
            ".new.db.sqlgit-restore-",
        ),
        (&["cat", "--repo", &r, "-o", &sql], ".then.sql.gz.tmp"),
    ];
    for (args, temp) in runs {
        let out = env.sqlgit_signalled(args, libc::SIGTERM, temp, || {
            let started = list_dir(&out_dir).iter().any(|n| n.starts_with(temp));
            if started {
                std::thread::sleep(Duration::from_millis(50));
            }
            started
        });
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{temp}: {err}");
        assert!(
            err.starts_with("sqlgit: stopped by SIGTERM"),
            "{temp}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{temp}: {err}");
        assert_eq!(
            list_dir(&out_dir),
            Vec::<String>::new(),
            "{temp}: left behind"
        );
    }
}
