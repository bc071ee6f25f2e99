//! A table's pages walked on two threads (see [`Pages::walk_in_two`]).
//!
//! An incremental run walks every page of each table that changed, to hash them: for a 2 GB
//! table about a second of one core (reading the file and hashing), while the other core has
//! nothing to do yet. Two halves of the b-tree are independent, and the file view is a plain
//! read-only mapping, so a helper thread can walk one half through its own view of the same
//! mapping. Pages the file view cannot give (those a WAL frame names) are SQLite's to read, on
//! the connection's thread only: a helper that meets one gives up, and its half is walked here.

use anyhow::Result;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{Kind, Page, Pages, Walked};
use crate::dump::btree::{be16, be32};

/// Tables of fewer pages (at the last snapshot) are walked on one thread: a thread costs more
/// than it saves there.
const SPLIT_PAGES: usize = 4096;

impl Pages<'_> {
    /// A table b-tree whose root has children, walked on two threads when every page can be
    /// read from the file view (a rollback-journal database, or WAL frames elsewhere): this
    /// thread walks the first half of the root's children, a helper the second half (the pages
    /// of a 2 GB table take a core about a second to read and hash). None: walk on one thread.
    pub(super) fn walk_in_two(
        &mut self,
        rootpage: u32,
        expect: usize,
        keys: Option<usize>,
    ) -> Result<Option<Walked>> {
        if keys.is_some() || expect < SPLIT_PAGES {
            return Ok(None);
        }
        let Some(mut helper) = self.helper() else {
            return Ok(None);
        };
        self.read(rootpage)?;
        let h = if rootpage == 1 { 100 } else { 0 };
        if self.cur().get(h) != Some(&0x05) {
            return Ok(None);
        }
        let cells = be16(self.cur(), h + 3)? as usize;
        let mut children = Vec::with_capacity(cells + 1);
        for i in 0..cells {
            let at = be16(self.cur(), h + 12 + 2 * i)? as usize;
            children.push(be32(self.cur(), at)?);
        }
        children.push(be32(self.cur(), h + 8)?);
        if children.len() < 2 {
            return Ok(None);
        }
        let root = Page {
            pgno: rootpage,
            kind: Kind::Interior,
            hash: xxh3_64_with_seed(self.cur(), self.seed),
            lo: 1,
            hi: 0,
        };
        let second = children.split_off(children.len() / 2);
        // Depth first from the stack's end: push in reverse to keep the children in order.
        children.reverse();
        let mut theirs = second.clone();
        theirs.reverse();
        let half = expect / 2;
        let (mine, helped) = std::thread::scope(|scope| {
            let helped = scope.spawn(move || helper.walk_from(rootpage, theirs, half));
            let mine = self.walk_from(rootpage, children, half, None);
            (mine, helped.join())
        });
        let mut mine = mine?;
        let theirs = match helped {
            Ok(Ok(walked)) => walked,
            // A page the file view cannot give (or a panic): this thread walks that half.
            _ => {
                let mut again = second;
                again.reverse();
                self.walk_from(rootpage, again, half, None)?
            }
        };
        mine.pages.push(root);
        mine.pages.extend_from_slice(&theirs.pages);
        mine.rows += theirs.rows;
        Ok(Some(mine))
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
        }))
    }
}

/// [`Pages`] for a helper thread: only the file view, no statement (see [`Pages::helper`]).
struct HelperPages(Pages<'static>);

impl HelperPages {
    fn walk_from(&mut self, rootpage: u32, todo: Vec<u32>, expect: usize) -> Result<Walked> {
        self.0.walk_from(rootpage, todo, expect, None)
    }
}

// SAFETY: a helper's pages hold no SQLite statement (`stmt` is None), only pointers into the
// file view's mapping, which is read-only and outlives the helper (a scoped thread).
unsafe impl Send for HelperPages {}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// A database whose table `big` has well over [`SPLIT_PAGES`] pages (512-byte pages), some
    /// rows on overflow pages.
    fn big_table(path: &std::path::Path, journal: &str) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA page_size=512; PRAGMA journal_mode={journal};
             CREATE TABLE big(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40000)
             INSERT INTO big SELECT i, printf('%.*c', 20 + i % 50 + (i % 997 = 0) * 3000, 'x')
             FROM c;"
        ))
        .unwrap();
        conn
    }

    /// Walks `big` in a read transaction: on two threads when it can, and on one.
    fn walks(path: &std::path::Path) -> (Option<Walked>, Walked) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let root: u32 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'big'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut pages = Pages::new(&conn, 42).unwrap();
        assert!(pages.file.is_some(), "no file view");
        let expect = 2 * SPLIT_PAGES;
        let two = pages.walk_in_two(root, expect, None).unwrap();
        let parallel = pages.walk_keyed(root, expect, None).unwrap();
        pages.file = None; // every page through SQLite, one thread
        let single = pages.walk_keyed(root, expect, None).unwrap();
        assert_eq!(parallel.pages, single.pages);
        assert_eq!(parallel.rows, single.rows);
        assert_eq!(single.rows, 40_000);
        assert!(single.pages.len() > SPLIT_PAGES, "{}", single.pages.len());
        assert!(single.pages.iter().any(|p| p.kind == Kind::Overflow));
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
}
