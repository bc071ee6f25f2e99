//! Tests of the two-connection read: the same chunks as one connection, one moment under a
//! writer in both journal modes.

use super::*;
use crate::dump::schema::{Filters, read_schema};

/// A table of `rows` rows over many 512-byte pages, rowids spread from i64::MIN to
/// i64::MAX, values of every kind.
fn database(dir: &Path, journal: &str, rows: i64) -> std::path::PathBuf {
    let path = dir.join(format!("t-{journal}.db"));
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA page_size=512; PRAGMA journal_mode={journal};
         CREATE TABLE t(id INTEGER PRIMARY KEY, balance INTEGER, r REAL, s TEXT, b BLOB);
         CREATE TABLE plain(a, rowid_twin);
         -- Big values: a range of leaves holds more than a range's bytes.
         CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1200)
         INSERT INTO big SELECT x, randomblob(6000 + x) FROM c;
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
         INSERT INTO t SELECT x * 3, 100, x / 4.0, 'row ' || x || char(13, 0), randomblob(x % 90)
           FROM c;
         INSERT INTO t(id, balance, s) VALUES (-9223372036854775808, 100, 'min'),
           (9223372036854775807, 100, 'max'), (-1, 100, NULL), (0, 100, '');
         INSERT INTO plain SELECT s, id FROM t;"
    ))
    .unwrap();
    path
}

/// The chunks of one table: (folders, name, text).
type Chunks = Vec<(Vec<String>, String, Vec<u8>)>;

fn collect(chunks: &mut Chunks) -> impl FnMut(Chunk) -> Result<()> + '_ {
    |c: Chunk| {
        let groups = c.groups.iter().map(|g| g.to_string()).collect();
        chunks.push((groups, c.name, c.data));
        Ok(())
    }
}

/// Every table read on one connection and on two: the same chunks, and the two-connection
/// read was used for the big ones.
fn same_on_two(conn: &Connection, helper: &mut Helper) -> u64 {
    let schema = read_schema(conn, &Filters::default()).unwrap();
    let encoding = Encoding::of(conn).unwrap();
    let mut split = 0;
    for format in [Format::V1, Format::V2] {
        for table in &schema.tables {
            let (mut one, mut two) = (Chunks::new(), Chunks::new());
            let rows = super::super::rows::dump_rows(
                conn,
                table,
                encoding,
                format,
                &mut collect(&mut one),
            )
            .unwrap();
            let read = dump_rows(
                conn,
                helper,
                table,
                encoding,
                format,
                &mut collect(&mut two),
            );
            if let Some(n) = read.unwrap() {
                assert_eq!(n, rows, "table {}", table.name);
                assert!(
                    one == two,
                    "table {}: other chunks on two connections",
                    table.name
                );
                split += 1;
            }
        }
    }
    split
}

#[test]
fn two_connections_write_the_chunks_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), "delete", 6000);
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let _: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    open_helper(&conn, &path).unwrap();
    let mut helper = helper(&conn).unwrap();
    // The three tables (an INTEGER PRIMARY KEY, a plain rowid, big values), in both
    // formats.
    assert_eq!(same_on_two(&conn, &mut helper), 6);
}

/// A writer moves money between accounts far apart while tables are read on two
/// connections: every read is one moment (the sum never changes).
fn consistent_under_writer(journal: &str, pause: Duration, at_least: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path(), journal, 6000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let commits = std::sync::atomic::AtomicU64::new(0);
    /// Stops the writer however the reads end (a failed assertion too).
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        let _stop = Stop(&stop);
        scope.spawn(|| {
            let w = Connection::open(&path).unwrap();
            w.busy_timeout(Duration::from_secs(10)).unwrap();
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (from, to) = ((n * 37) % 6000 * 3 + 3, (n * 53 + 11) % 6000 * 3 + 3);
                w.execute_batch(&format!(
                    "BEGIN IMMEDIATE; UPDATE t SET balance = balance - 5 WHERE id = {from};
                     UPDATE t SET balance = balance + 5 WHERE id = {to}; COMMIT;"
                ))
                .unwrap();
                commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(pause);
            }
        });
        let mut helped = 0;
        let mut overlapped = 0;
        for _ in 0..12 {
            let before = commits.load(std::sync::atomic::Ordering::Relaxed);
            let conn = crate::dump::source::open(&path, Duration::from_secs(10)).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let schema = read_schema(&conn, &Filters::default()).unwrap();
            let mut helper = helper(&conn).unwrap();
            let table = schema.tables.iter().find(|t| t.name == "t").unwrap();
            let mut chunks = Chunks::new();
            let encoding = Encoding::of(&conn).unwrap();
            let read = dump_rows(
                &conn,
                &mut helper,
                table,
                encoding,
                Format::V2,
                &mut collect(&mut chunks),
            );
            if read.unwrap().is_none() {
                continue; // the second connection could not join: nothing was read
            }
            helped += 1;
            let restored = Connection::open_in_memory().unwrap();
            restored
                .execute_batch(std::str::from_utf8(&table.sql).unwrap())
                .unwrap();
            for (_, _, sql) in &chunks {
                restored
                    .execute_batch(&String::from_utf8_lossy(sql))
                    .unwrap();
            }
            let (count, sum): (i64, i64) = restored
                .query_row("SELECT count(*), sum(balance) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!((count, sum), (6004, 600_400), "{journal}: a torn read");
            drop(conn);
            if commits.load(std::sync::atomic::Ordering::Relaxed) > before {
                overlapped += 1;
            }
        }
        assert!(
            overlapped >= 3,
            "{journal}: the writer committed during {overlapped} reads"
        );
        assert!(
            helped >= at_least,
            "{journal}: a second connection only {helped} times of 12"
        );
    });
}

#[test]
fn two_connections_read_one_moment_wal() {
    // The writer never waits for readers: a second connection every time.
    consistent_under_writer("wal", Duration::ZERO, 8);
}

#[test]
fn two_connections_read_one_moment_rollback_journal() {
    // A writer that waits for the readers' lock to commit keeps a new reader out until it
    // has (the second connection then gives up, and the read goes on on one core): this
    // one pauses between transactions, as applications do.
    consistent_under_writer("delete", Duration::from_millis(20), 3);
}

#[test]
fn ranges_cover_every_rowid_once() {
    assert_eq!(ranges(&[5, 9]), vec![(i64::MIN, 5), (6, 9), (10, i64::MAX)]);
    assert_eq!(ranges(&[-1, i64::MAX]), vec![(i64::MIN, -1), (0, i64::MAX)]);
}

/// `SQLGIT_TWO_READERS=0` (and the other switches at 0 or empty) is off, as `SQLGIT_ONE_CORE=0`
/// always was; anything else is on.
#[test]
fn switches_at_0_or_empty_are_off() {
    use std::ffi::OsStr;
    assert!(!switch_on(None));
    assert!(!switch_on(Some(OsStr::new(""))));
    assert!(!switch_on(Some(OsStr::new("0"))));
    assert!(switch_on(Some(OsStr::new("1"))));
    assert!(switch_on(Some(OsStr::new("yes"))));
}
