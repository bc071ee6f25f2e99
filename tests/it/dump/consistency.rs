//! Consistency: dumps taken while another process commits non-stop are each one moment in time.
//!
//! A second process (the `sqlite3` CLI) moves money between 400 accounts in transactions, so the sum
//! of balances never changes in any committed state. While it runs, ~10 dumps are taken; each must
//! restore to a database with exactly 400 accounts and the original sum — a dump that mixed two
//! moments, or stopped early, breaks that. Done in WAL mode (the writer never waits for the reader)
//! and in rollback-journal mode (readers and the writer wait for each other's locks, which
//! `--busy-timeout` must absorb instead of failing or, like `sqlite3 .dump`, printing an empty dump).

use super::dump_stdout;
use crate::env::{TestEnv, sqlite3_bin};
use rusqlite::Connection;
use std::collections::HashSet;
use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Accounts of ~1.5 KB, so that the table spans 200 pages: a dump reads it in ranges on two
/// connections, and a transfer between two ranges read at different moments would show.
const ACCOUNTS: i64 = 400;
const START_BALANCE: i64 = 1000;
const DUMPS: usize = 10;
/// Rows of ~300 bytes that make each dump last long enough to overlap with commits.
const PADDING_ROWS: i64 = 8000;

#[test]
fn consistent_under_writer_wal() {
    dumps_under_writer("wal");
}

#[test]
fn consistent_under_writer_rollback_journal() {
    dumps_under_writer("delete");
}

fn dumps_under_writer(journal_mode: &str) {
    let env = TestEnv::new();
    let db = env.path("bank.db");
    {
        let conn = Connection::open(&db).unwrap();
        let mode: String = conn
            .query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(mode, journal_mode);
        conn.execute_batch(&format!(
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL,
               note BLOB);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ACCOUNTS})
             INSERT INTO accounts SELECT x, 'owner ' || x, {START_BALANCE}, randomblob(1500) FROM c;
             -- Padding so that each dump takes long enough to overlap with commits.
             CREATE TABLE ledger_padding(id INTEGER PRIMARY KEY, memo TEXT, data BLOB);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {PADDING_ROWS})
             INSERT INTO ledger_padding SELECT x, 'memo ' || x, randomblob(300) FROM c;"
        ))
        .unwrap();
    }

    // The writer: the sqlite3 CLI fed an endless script of transfers through its stdin.
    let mut writer = env
        .command(sqlite3_bin())
        .arg("-batch")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let dumps = std::thread::scope(|s| {
        s.spawn(|| {
            stdin
                .write_all(b".timeout 10000\nPRAGMA synchronous=OFF;\n")
                .unwrap();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut chunk = String::new();
                for _ in 0..50 {
                    n += 1;
                    let from = (n * 37) % ACCOUNTS as u64 + 1;
                    let to = (n * 53 + 11) % ACCOUNTS as u64 + 1;
                    chunk.push_str(&format!(
                        "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = {from}; \
                         UPDATE accounts SET balance = balance + 5 WHERE id = {to}; COMMIT;\n"
                    ));
                }
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    break; // the writer died; reported below
                }
                sent.store(n, Ordering::Relaxed);
            }
            drop(stdin);
        });
        // Let the writer get going before the first dump.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut dumps = Vec::new();
        let watcher = Connection::open(&db).unwrap();
        watcher
            .busy_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        let state = || -> String {
            watcher
                .query_row("SELECT group_concat(balance) FROM accounts", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let mut overlapped = 0;
        for _ in 0..DUMPS {
            let before = state();
            let d = env.sqlgit(&[
                "dump".as_ref(),
                db.as_os_str(),
                "--busy-timeout".as_ref(),
                "30s".as_ref(),
            ]);
            if d.code() != Some(0) {
                stop.store(true, Ordering::Relaxed);
                d.fail(&format!(
                    "dump under a concurrent writer ({journal_mode}) failed"
                ));
            }
            dumps.push(d.output.stdout);
            if state() != before {
                overlapped += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        // The writer committed while dumps were running, not only between them.
        assert!(
            overlapped > 0,
            "no commit happened during any of the {DUMPS} dumps ({journal_mode}): nothing was tested"
        );
        dumps
    });
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "the writer (sqlite3) failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        sent.load(Ordering::Relaxed) > 0,
        "the writer never got to send a transfer"
    );

    let mut distinct = HashSet::new();
    for (i, dump) in dumps.iter().enumerate() {
        let restored = env.restore(dump, &format!("restored{i}.db"));
        let conn = Connection::open(&restored).unwrap();
        let (count, sum): (i64, i64) = conn
            .query_row("SELECT count(*), total(balance) FROM accounts", [], |r| {
                Ok((r.get(0)?, r.get::<_, f64>(1)? as i64))
            })
            .unwrap_or_else(|e| {
                panic!("dump #{i} ({journal_mode}) restored without accounts: {e}")
            });
        assert_eq!(
            count, ACCOUNTS,
            "dump #{i} ({journal_mode}): wrong number of accounts"
        );
        assert_eq!(
            sum,
            ACCOUNTS * START_BALANCE,
            "dump #{i} ({journal_mode}): the sum of balances is broken"
        );
        let padding: i64 = conn
            .query_row("SELECT count(*) FROM ledger_padding", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            padding, PADDING_ROWS,
            "dump #{i} ({journal_mode}): padding rows missing"
        );
        let balances: Vec<i64> = conn
            .prepare("SELECT balance FROM accounts ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        distinct.insert(balances);
    }
    // The writer really ran during the dumps: they saw different moments.
    assert!(
        distinct.len() >= 2,
        "all {DUMPS} dumps ({journal_mode}) saw the same state: the writer did not run"
    );
    let final_dump = dump_stdout(&env, &db);
    let restored = env.restore(&final_dump, "final.db");
    let sum: i64 = Connection::open(&restored)
        .unwrap()
        .query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sum, ACCOUNTS * START_BALANCE);
}
