//! A b-tree's pages walked on two threads (see [`Pages::walk_in_two`]).
//!
//! An incremental run walks every page of each table that changed, to hash them: for a 2 GB
//! table about a second of one core (reading the file and hashing), while the other core has
//! nothing to do yet. The subtrees under the root are independent, and the file view is a
//! plain read-only mapping, so a helper thread can walk some of them through its own view of
//! the same mapping. Pages the file view cannot give (those a WAL frame names) are SQLite's to
//! read, on the connection's thread only: a helper that meets one gives up, and the subtree it
//! was in (and those it did not take) is walked here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use super::{Pages, Walked, What};

/// Tables of fewer pages (at the last snapshot) are walked on one thread: a thread costs more
/// than it saves there.
const SPLIT_PAGES: usize = 4096;

impl Pages<'_> {
    /// A b-tree whose root has children, walked on two threads when the file view can give
    /// its pages: the root here, then each thread takes the root's children one by one (so
    /// neither waits while the other has work) and walks them. None: walk on one thread.
    pub(super) fn walk_in_two(
        &mut self,
        rootpage: u32,
        expect: usize,
        what: What,
    ) -> Result<Option<Walked>> {
        if expect < SPLIT_PAGES {
            return Ok(None);
        }
        let Some(mut helper) = self.helper() else {
            return Ok(None);
        };
        let mut root = self.walk_from(rootpage, vec![rootpage], (0, what), true)?;
        if let Some(firsts) = what.firsts {
            // Each child's sums are added as it is done (see `Walked::merge`).
            let mut sums = vec![0; firsts.len()];
            super::sums::add_runs(&mut sums, &std::mem::take(&mut root.runs));
            root.sums = Some(sums);
        }
        let children = std::mem::take(&mut root.deferred);
        let next = AtomicUsize::new(0);
        let take = || children.get(next.fetch_add(1, Ordering::Relaxed)).copied();
        // One list for both threads, sized for the pages the table had: each child's pages
        // are added as it is done (a list per thread would hold the pages twice when joined).
        root.pages.reserve_exact(expect + expect / 16);
        let all = Mutex::new(root);
        let (mine, helped) = std::thread::scope(|scope| {
            let helped = scope.spawn(|| {
                let helper = &mut helper; // the whole wrapper (Send), not its field
                helper.0.walk_children(rootpage, what, &take, &all, true)
            });
            let mine = self.walk_children(rootpage, what, &take, &all, false);
            (mine, helped.join())
        });
        mine?;
        let Ok(helped) = helped else {
            return Ok(None); // the helper panicked: walk the whole b-tree here
        };
        let mut all = all
            .into_inner()
            .map_err(|_| anyhow::anyhow!("page walk failed"))?;
        if let Some(child) = helped? {
            // A page the file view cannot give: the rest of that child is walked here.
            all.merge(self.walk_from(rootpage, vec![child], (0, what), false)?);
        }
        Ok(Some(all))
    }

    /// Walk the children `take` gives until it gives none, adding each one's pages to `all`.
    /// `soft`: a child whose walk fails is handed back and the walk stops, instead of an error.
    fn walk_children(
        &mut self,
        rootpage: u32,
        what: What,
        take: &(dyn Fn() -> Option<u32> + Sync),
        all: &Mutex<Walked>,
        soft: bool,
    ) -> Result<Option<u32>> {
        while let Some(child) = take() {
            match self.walk_from(rootpage, vec![child], (0, what), false) {
                Ok(part) => all
                    .lock()
                    .map_err(|_| anyhow::anyhow!("page walk failed"))?
                    .merge(part),
                Err(_) if soft => return Ok(Some(child)),
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// A second reader of the file view for a helper thread (None: no file view).
    fn helper(&self) -> Option<HelperPages> {
        let file = self.file.as_ref()?.share();
        Some(HelperPages(Pages {
            stmt: None,
            seed: self.seed,
            usable: self.usable,
            page_count: self.page_count,
            cur: (std::ptr::null(), 0),
            encoding: self.encoding,
            file: Some(file),
            copy: Vec::new(), // a helper only walks: no page is copied out
        }))
    }
}

/// [`Pages`] for a helper thread: only the file view, no statement (see [`Pages::helper`]).
struct HelperPages(Pages<'static>);

// SAFETY: a helper's pages hold no SQLite statement (`stmt` is None), only pointers into the
// file view's mapping, which is read-only and outlives the helper (a scoped thread).
unsafe impl Send for HelperPages {}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::dump::fileview::FileView;
    use crate::dump::pages::{Kind, Mapped, TableMap};

    /// A database whose table `big` has well over [`SPLIT_PAGES`] pages (512-byte pages), some
    /// rows on overflow pages.
    fn big_table(path: &std::path::Path, journal: &str) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size=512; PRAGMA journal_mode={journal};
             CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40000)
             INSERT INTO big SELECT i, printf('%.*c', 20 + i % 50 + (i % 997 = 0) * 3000, 'x')
             FROM c;
             CREATE TABLE kbig(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
             INSERT INTO kbig SELECT printf('key %d %.*c', id, id % 40, 'k'),
                 id FROM big;"
        ))
        .unwrap();
        conn
    }

    /// The root page of table `name`.
    fn root_of(conn: &Connection, name: &str) -> u32 {
        let sql = "SELECT rootpage FROM sqlite_schema WHERE name = ?1";
        conn.query_row(sql, [name], |r| r.get(0)).unwrap()
    }

    /// Walks `big` in a read transaction: on two threads when it can, and on one.
    fn walks(path: &std::path::Path) -> (Option<Walked>, Walked) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let root = root_of(&conn, "big");
        let mut pages = Pages::new(&conn, 42).unwrap();
        assert!(pages.file.is_some(), "no file view");
        let expect = 2 * SPLIT_PAGES;
        let two = pages.walk_in_two(root, expect, What::default()).unwrap();
        let parallel = pages.walk_keyed(root, expect, None).unwrap();
        pages.file = None; // every page through SQLite, one thread
        let single = pages.walk_keyed(root, expect, None).unwrap();
        assert_eq!(parallel.pages, single.pages);
        assert_eq!(parallel.rows, single.rows);
        assert_eq!(single.rows, 40_000);
        assert!(single.pages.len() > SPLIT_PAGES, "{}", single.pages.len());
        assert!(single.pages.iter().any(|p| p.kind == Kind::Overflow));

        // A WITHOUT ROWID table: the same pages and the same keys of each page.
        let root = root_of(&conn, "kbig");
        let single_keyed = pages.walk_keyed(root, expect, Some(1)).unwrap();
        pages.file = Some(FileView::open(&conn, 512, pages.page_count).unwrap());
        let parallel_keyed = pages.walk_keyed(root, expect, Some(1)).unwrap();
        assert_eq!(parallel_keyed.pages, single_keyed.pages);
        assert_eq!(parallel_keyed.rows, 40_000);
        let keys = single_keyed.keys.as_ref().expect("keys");
        assert!(keys.len() > 1000, "{}", keys.len());
        assert_eq!(parallel_keyed.keys.as_ref(), Some(keys));
        conn.execute_batch("COMMIT").unwrap();
        (two, single)
    }

    #[test]
    fn two_threads_walk_the_pages_one_thread_walks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        drop(big_table(&path, "delete"));
        let (two, single) = walks(&path);
        let mut two = two.expect("walked on two threads");
        two.pages.sort_unstable_by_key(|p| p.pgno);
        assert_eq!(two.pages, single.pages);

        // WAL: pages a frame names are SQLite's; the helper's half falls back to this thread
        // when it meets one, with the same result.
        let path = dir.path().join("w.db");
        let writer = big_table(&path, "wal");
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); UPDATE big SET v = 'changed' WHERE id % 5000 = 0;")
            .unwrap();
        walks(&path);
    }

    /// The rightmost path runs from the root to the leaf of the largest rowid, with the hashes a
    /// walk finds; a row appended (which changes only pages on that path) and a row changed
    /// elsewhere both make the table changed, and nothing changed leaves it unchanged.
    #[test]
    fn an_appended_row_is_found_on_the_rightmost_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let writer = big_table(&path, "delete");
        let map_now = || {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let root = root_of(&conn, "big");
            let mut pages = Pages::new(&conn, 42).unwrap();
            let tail = pages.rightmost_path(root).unwrap();
            let (walked, _) = pages.walk(root, 0).unwrap();
            drop(pages);
            let mapped = Mapped {
                pages: walked.iter().copied().collect(),
                ..Mapped::default()
            };
            let map = TableMap::new(root, (0, 0), mapped);
            (tail, walked, map)
        };
        let unchanged = |map: &TableMap| {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            Pages::new(&conn, 42).unwrap().unchanged(map).unwrap()
        };
        let (tail, walked, map) = map_now();
        assert!(tail.len() >= 3, "{tail:?}");
        assert_eq!(tail[0].0, map.rootpage);
        let hash_of = |pgno: u32| walked.iter().find(|p| p.pgno == pgno).map(|p| p.hash);
        for &(pgno, hash) in &tail {
            assert_eq!(hash_of(pgno), Some(hash));
        }
        let leaves = walked.iter().filter(|p| p.kind == Kind::Leaf);
        let last = leaves.max_by_key(|p| p.hi).unwrap();
        let last_pgno = last.pgno;
        assert_eq!(tail.last().unwrap().0, last_pgno);
        assert!(unchanged(&map));

        writer
            .execute_batch("INSERT INTO big(v) VALUES ('appended')")
            .unwrap();
        assert!(!unchanged(&map));
        let (_, _, map) = map_now();
        assert!(unchanged(&map));
        writer
            .execute_batch("UPDATE big SET v = 'changed' WHERE id = 20000")
            .unwrap();
        assert!(!unchanged(&map));
    }

    /// The sums a walk gathers for chunks of `big` (on two threads, on one, and with pages
    /// through SQLite) are the ones [`Pages::range_sums`] finds for the same rowid ranges, and
    /// a changed row changes only its own chunk's sum.
    #[test]
    fn a_walk_sums_each_chunk_as_range_sums_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let writer = big_table(&path, "wal");
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let firsts: Vec<i64> = (0..400).map(|c| 1 + c * 100 + c % 7).collect();
        let ranges: Vec<(i64, i64)> = firsts
            .iter()
            .enumerate()
            .map(|(i, &f)| (f, firsts.get(i + 1).map_or(i64::MAX, |n| n - 1)))
            .collect();
        let sums_now = |firsts: &[i64]| {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN").unwrap();
            let root = root_of(&conn, "big");
            let mut pages = Pages::new(&conn, 7).unwrap();
            let what = What {
                keys: None,
                firsts: Some(firsts),
            };
            let two = pages.walk_what(root, 2 * SPLIT_PAGES, what).unwrap().sums;
            let one = pages.walk_what(root, 0, what).unwrap().sums;
            let by_range = pages.range_sums(root, &ranges).unwrap();
            pages.file = None; // every page through SQLite
            let through_sqlite = pages.walk_what(root, 0, what).unwrap().sums;
            assert_eq!(two.as_ref(), Some(&by_range));
            assert_eq!(one.as_ref(), Some(&by_range));
            assert_eq!(through_sqlite.as_ref(), Some(&by_range));
            conn.execute_batch("COMMIT").unwrap();
            by_range
        };
        let before = sums_now(&firsts);
        assert!(before.iter().all(|&s| s != 0));
        writer
            .execute_batch(
                "UPDATE big SET v = v || 'y' WHERE id = 5050; DELETE FROM big WHERE id = 20000;",
            )
            .unwrap();
        let after = sums_now(&firsts);
        let differ: Vec<usize> = (0..firsts.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        assert_eq!(differ, vec![50, 199]);
        // A row before the first chunk: no sums.
        let conn = Connection::open(&path).unwrap();
        let root = root_of(&conn, "big");
        let mut pages = Pages::new(&conn, 7).unwrap();
        let late = [5i64, 100];
        let what = What {
            keys: None,
            firsts: Some(&late),
        };
        assert_eq!(pages.walk_what(root, 0, what).unwrap().sums, None);
    }
}
