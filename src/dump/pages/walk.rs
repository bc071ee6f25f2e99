//! Walking a table's b-tree: every page reached from its root page, hashed and in page
//! number order, with what the walk was asked to gather on the way (keys, sums); and the quick
//! check that a table's pages are all as they were.

use anyhow::{Result, bail};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::super::btree::be32;
use super::super::keylist::{PageKeys, within_budget};
use super::cells::Parsed;
use super::sums::{CellSums, add_runs};
use super::{Kind, Mapped, Page, Pages, TableMap, Walked, What, page};

impl<'c> Pages<'c> {
    /// Whether every page of `old` still has the hash it had: then the table's rows are the same.
    /// The pages on the b-tree's rightmost path are looked at first: rows added at the end of a
    /// table (the most common change) change them, and the table's other pages are then not
    /// hashed twice (here, and by the walk that follows).
    pub fn unchanged(&mut self, old: &TableMap) -> Result<bool> {
        let mapped = old.mapped();
        let Some(Mapped { pages, .. }) = mapped.as_ref() else {
            return Ok(false); // taken by a read of this run: not known
        };
        let mut path = self.rightmost_path(old.rootpage).unwrap_or_default();
        for p in pages {
            if path.is_empty() {
                break;
            }
            if let Some(at) = path.iter().position(|&(pgno, _)| pgno == p.pgno)
                && path.swap_remove(at).1 != p.hash
            {
                return Ok(false);
            }
        }
        if !path.is_empty() {
            return Ok(false); // a page the table did not have
        }
        for p in pages {
            if self.hash(p.pgno)? != p.hash {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The pages from `rootpage` down to the b-tree's last leaf (each interior page's right
    /// child), with their hashes as they are now.
    pub(super) fn rightmost_path(&mut self, rootpage: u32) -> Result<Vec<(u32, u64)>> {
        let mut path = Vec::new();
        let mut pgno = rootpage;
        while path.len() < 64 {
            let data = page(&mut self.file, &mut self.stmt, self.page_count, pgno)?;
            path.push((pgno, xxh3_64_with_seed(data, self.seed)));
            let h = if pgno == 1 { 100 } else { 0 };
            match data.get(h) {
                Some(0x02 | 0x05) => pgno = be32(data, h + 8)?,
                _ => break,
            }
        }
        Ok(path)
    }

    /// Walk the b-tree rooted at `rootpage`: every page it reaches, hashed, in page number
    /// order, and the number of rows (cells of its leaves).
    pub fn walk(&mut self, rootpage: u32, expect: usize) -> Result<(Vec<Page>, u64)> {
        let walked = self.walk_keyed(rootpage, expect, None)?;
        Ok((walked.pages, walked.rows))
    }

    /// [`Pages::walk`], and for an index b-tree (a WITHOUT ROWID table) whose first `keys`
    /// record fields are its key, the keys of each page's first and last cell, of each
    /// overflow page's cell, and of each cell of an interior page with the hash of its bytes
    /// (None when a key does not fit in its page).
    pub fn walk_keyed(
        &mut self,
        rootpage: u32,
        expect: usize,
        keys: Option<usize>,
    ) -> Result<Walked> {
        let what = What { keys, firsts: None };
        self.walk_what(rootpage, expect, what)
    }

    /// [`Pages::walk_keyed`] gathering `what`.
    pub fn walk_what(&mut self, rootpage: u32, expect: usize, what: What) -> Result<Walked> {
        let mut walked = match self.walk_in_two(rootpage, expect, what)? {
            Some(walked) => walked,
            None => self.walk_from(rootpage, vec![rootpage], (expect, what), false)?,
        };
        walked.sums = match what.firsts {
            Some(firsts) if !walked.stray => {
                let mut sums = walked.sums.take().unwrap_or_else(|| vec![0; firsts.len()]);
                add_runs(&mut sums, &std::mem::take(&mut walked.runs));
                Some(sums)
            }
            _ => None,
        };
        if let Some(file) = &mut self.file {
            file.release(); // nothing of the file stays resident between walks
        }
        let out = &mut walked.pages;
        out.sort_unstable_by_key(|p| p.pgno);
        out.shrink_to_fit(); // kept in the map until the next snapshot
        if out.len() > self.page_count as usize {
            bail!("b-tree of page {rootpage} reaches more pages than the database has");
        }
        if out.windows(2).any(|w| w[0].pgno == w[1].pgno) {
            bail!("b-tree of page {rootpage} reaches a page twice");
        }
        if let Some(list) = &mut walked.keys {
            list.sort_by_pgno();
        }
        Ok(walked)
    }

    /// The pages reached from the pages on `todo` (a stack), unsorted; with `defer_children`,
    /// the children of `rootpage` are not walked but listed in [`Walked::deferred`]. With
    /// [`What::firsts`], the cells summed by chunk are in [`Walked::runs`].
    pub(super) fn walk_from(
        &mut self,
        rootpage: u32,
        mut todo: Vec<u32>,
        (expect, what): (usize, What),
        defer_children: bool,
    ) -> Result<Walked> {
        let keys = what.keys;
        let mut sums = what.firsts.map(CellSums::new);
        let mut deferred: Option<Vec<u32>> = None;
        let mut page_keys: Option<PageKeys> = keys.map(|_| PageKeys::default());
        let mut out = Vec::with_capacity(expect + expect / 16);
        let mut rows = 0u64;
        let limit = self.page_count as usize;
        while let Some(pgno) = todo.pop() {
            if out.len() > limit {
                bail!("b-tree of page {rootpage} reaches more pages than the database has");
            }
            if out.len() % 1024 == 0 {
                super::super::buffers::trim_now_and_then();
            }
            self.read(pgno)?;
            let Parsed {
                page,
                children,
                overflow,
                rows: held,
            } = self.parse_page(pgno, keys, &mut page_keys, sums.as_mut())?;
            rows += held;
            out.push(page);
            if let Some(list) = &page_keys
                && !within_budget(list.bytes(), out.len())
            {
                page_keys = None; // keys too long to keep: the table is read whole
            }
            for (first, owner, key) in overflow {
                let start = out.len();
                self.walk_overflow(first, owner, &mut out, limit)?;
                if let Some(list) = &mut page_keys {
                    for p in &out[start..] {
                        list.push(p.pgno, &key, &key);
                    }
                }
            }
            if defer_children && pgno == rootpage && deferred.is_none() {
                deferred = Some(children);
                continue;
            }
            // Depth first, children in order (the order only has to be the same every time).
            todo.extend(children.into_iter().rev());
        }
        Ok(Walked {
            pages: out,
            rows,
            keys: page_keys,
            deferred: deferred.unwrap_or_default(),
            sums: None,
            runs: sums.as_mut().map(CellSums::take_runs).unwrap_or_default(),
            stray: sums.is_some_and(|s| s.stray),
        })
    }

    fn walk_overflow(
        &mut self,
        mut pgno: u32,
        owner: i64,
        out: &mut Vec<Page>,
        limit: usize,
    ) -> Result<()> {
        while pgno != 0 {
            if out.len() > limit {
                bail!("an overflow chain longer than the database");
            }
            self.read(pgno)?;
            out.push(Page {
                pgno,
                kind: Kind::Overflow,
                hash: xxh3_64_with_seed(self.cur(), self.seed),
                lo: owner,
                hi: owner,
            });
            pgno = be32(self.cur(), 0)?;
        }
        Ok(())
    }
}
