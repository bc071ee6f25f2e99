//! Reading one pack's entries with `pread`: an entry's header for its size, an entry stored
//! whole or a chain of offset deltas inflated (libdeflate, in one call), and the read-ahead
//! window shared by entries read in the pack's order.

use anyhow::{Context, Result, bail};

use super::super::delta::ofs_base;
use super::super::pack::OFS_DELTA;
use super::{Pack, read_some_at};

thread_local! {
    /// libdeflate's decompressor, made at a thread's first whole entry and kept.
    static INFLATE: std::cell::RefCell<Option<libdeflater::Decompressor>> =
        const { std::cell::RefCell::new(None) };
}

/// A pack entry inflated: its type code, its content (for an offset delta, the delta) and, for
/// an offset delta, where its base starts.
struct Entry {
    code: u8,
    data: Vec<u8>,
    base: Option<u64>,
}

/// How much of a pack is read at once by entries read one after another.
const READ_AHEAD: usize = 256 << 10;

/// How far past the window an entry may start and still be read as the next one.
const NEAR: u64 = 4 << 10;

impl Pack {
    /// The size of the object whose entry starts at `offset` in the pack.
    pub(super) fn entry_size(&self, offset: u64) -> Result<u64> {
        let mut head = [0u8; 128];
        let got = read_some_at(&self.pack, &mut head, offset)?;
        let head = &head[..got];
        let (kind, size, mut used) = entry_header(head)?;
        match kind {
            1..=4 => return Ok(size),
            6 => {
                // Offset to the base: a varint of its own.
                while *head.get(used).context("short pack entry")? & 0x80 != 0 {
                    used += 1;
                }
                used += 1;
            }
            7 => used += 20,
            _ => bail!("pack entry of unknown type {kind}"),
        }
        let delta = head.get(used..).context("short pack entry")?;
        self.delta_result_size(offset + used as u64, delta)
    }

    /// The inflated content of the object at index position `at` when it is of type `kind` and
    /// at most `max` bytes: its entry stored whole, or a chain of offset deltas in this pack
    /// (what merging packs writes for old versions) applied to the whole entry it ends at.
    /// None: another type, bigger, a delta by id or a longer chain, or an entry that does not
    /// inflate (callers ask libgit2, which says what is wrong).
    pub(super) fn whole_entry(&self, at: u64, kind: u8, max: usize) -> Result<Option<Vec<u8>>> {
        /// Longer chains are left to libgit2 (merging makes them at most 50 long).
        const MAX_CHAIN: usize = 64;
        let mut offset = self.offset(at)?;
        let mut deltas = Vec::new();
        let mut data = loop {
            let Some(Entry { code, data, base }) = self.entry_at(offset, max)? else {
                return Ok(None);
            };
            match base {
                Some(base) if deltas.len() < MAX_CHAIN => {
                    deltas.push(data);
                    offset = base;
                }
                Some(_) => return Ok(None),
                None if code == kind => break data,
                None => return Ok(None),
            }
        };
        for delta in deltas.iter().rev() {
            match super::super::delta::apply(&data, delta) {
                Ok(next) if next.len() <= max => data = next,
                _ => return Ok(None),
            }
        }
        Ok(Some(data))
    }

    /// The entry at `offset` inflated. None: bigger than `max` (a delta:
    /// bigger than 8 MiB), a delta by id, or an entry that does not inflate. The header and the
    /// compressed data come in one read for entries of a few KiB (a second one for bigger
    /// ones), inflated by libdeflate in one call: several times faster than a streaming zlib.
    /// The read's bound covers zlib's output for any data.
    fn entry_at(&self, offset: u64, max: usize) -> Result<Option<Entry>> {
        /// Objects bigger than this are inflated as their compressed bytes are read.
        const STREAM_FROM: usize = 8 << 20;
        /// The first read of an entry: its header, and all of a small one.
        const PROBE: usize = 8 << 10;
        let head = self.with_bytes(offset, PROBE, |input| -> Result<_> {
            let (code, size, mut used) = entry_header(input)?;
            let mut base = None;
            if code == OFS_DELTA {
                base = ofs_base(offset, &input[used..]);
                if base.is_none() {
                    return Ok(None);
                }
                used += super::super::delta::ofs_len(&input[used..]);
            } else if !(1..=4).contains(&code) {
                return Ok(None);
            }
            let Some(first) = input.get(used..) else {
                return Ok(None);
            };
            // What a big entry's stream starts with (a small one is read again, below).
            let first = (size > STREAM_FROM as u64).then(|| first.to_vec());
            Ok(Some((code, size, used, base, first)))
        })??;
        let Some((code, size, used, base, first)) = head else {
            return Ok(None);
        };
        // Deflate shrinks data at most ~1032 times: a size past that is a damaged header,
        // which must not ask for gigabytes.
        let left = self.len.saturating_sub(offset + used as u64);
        let size = usize::try_from(size).context("object too big")?;
        let limit = if base.is_some() {
            max.min(STREAM_FROM)
        } else {
            max
        };
        if size > limit || size as u64 > left.saturating_mul(1032) {
            return Ok(None);
        }
        if let Some(first) = first {
            // A big object (a row with a value of many MiB) is inflated from the pack as it is
            // read: holding its compressed bytes whole too would double the memory it takes.
            let mut out = vec![0u8; size];
            let stream = offset + used as u64;
            let (done, _) = self.inflate_at(stream, &first, &mut out, 1 << 20, |_| false)?;
            return Ok((done == size).then_some(Entry {
                code,
                data: out,
                base,
            }));
        }
        let bound = used + size + size / 8 + 64;
        let data = self.with_bytes(offset, bound, |input| {
            inflate_exact(input.get(used..).unwrap_or_default(), size)
        })?;
        Ok(data.map(|data| Entry { code, data, base }))
    }

    /// `f` on the pack's bytes from `offset` on: `len` of them (fewer at the end of the file).
    /// Entries read one after another (a restore reads a snapshot's files in the order they
    /// were written, which is the pack's) come out of one read of [`READ_AHEAD`] bytes, kept
    /// in the pack's [`Window`](super::Window): one `pread` for a hundred entries. Reads
    /// elsewhere read what they need. A window in use by another thread, or a bigger read, is
    /// not kept.
    fn with_bytes<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let window = match self.window.try_lock() {
            Ok(w) if len <= READ_AHEAD => Some(w),
            _ => None,
        };
        let Some(mut w) = window else {
            let mut buf = vec![0u8; len];
            let got = read_some_at(&self.pack, &mut buf, offset)?;
            return Ok(f(&buf[..got]));
        };
        let end = w.start + w.data.len() as u64;
        let covered =
            w.start <= offset && (offset + len as u64 <= end || w.to_eof && offset <= end);
        if !covered {
            // Just past the window (an entry it held the start of, or the next one): reading
            // on through the pack. Entries further on are read alone: a run re-reading the
            // trees around scattered changes reads one every ~100 KB, and reading the pack
            // through a window would read all of it.
            let ahead = offset > w.start && offset <= end + NEAR;
            let size = if ahead { READ_AHEAD } else { len };
            w.data.resize(size, 0);
            let got = read_some_at(&self.pack, &mut w.data, offset)?;
            w.data.truncate(got);
            (w.start, w.to_eof) = (offset, got < size);
        }
        let from = (offset - w.start) as usize;
        let to = (from + len).min(w.data.len());
        Ok(f(&w.data[from..to]))
    }

    /// A delta's result size: the second varint of its inflated data.
    fn delta_result_size(&self, at: u64, first: &[u8]) -> Result<u64> {
        let mut out = [0u8; 32];
        let enough = |o: &[u8]| delta_sizes_end(o).is_some();
        let (done, _) = self.inflate_at(at, first, &mut out, 256, enough)?;
        let (base_end, result_end) =
            delta_sizes_end(&out[..done]).context("short delta in pack")?;
        Ok(varint_le(&out[base_end + 1..=result_end]))
    }

    /// Inflate the zlib stream at `at` in the pack into `out` — `first`: its bytes already read
    /// (any number), then `input` bytes a read — until it ends, `out` is full or `enough` holds
    /// for what came out. Returns the bytes out and whether the stream ended.
    fn inflate_at(
        &self,
        at: u64,
        first: &[u8],
        out: &mut [u8],
        input: usize,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<(usize, bool)> {
        let mut inflate = flate2::Decompress::new(true);
        let mut buf = first.to_vec();
        let (mut pos, mut read_at) = (0, at + first.len() as u64);
        loop {
            if pos == buf.len() {
                buf.resize(input, 0);
                let got = read_some_at(&self.pack, &mut buf, read_at)?;
                buf.truncate(got);
                (pos, read_at) = (0, read_at + got as u64);
            }
            let (before_in, before_out) = (inflate.total_in(), inflate.total_out() as usize);
            let status = inflate
                .decompress(
                    &buf[pos..],
                    &mut out[before_out..],
                    flate2::FlushDecompress::None,
                )
                .context("inflate pack entry")?;
            pos += (inflate.total_in() - before_in) as usize;
            let done = inflate.total_out() as usize;
            if status == flate2::Status::StreamEnd {
                return Ok((done, true));
            }
            let stalled = inflate.total_in() == before_in && done == before_out;
            if enough(&out[..done]) || buf.is_empty() || stalled || done == out.len() {
                return Ok((done, false));
            }
        }
    }
}
/// Where a delta's two sizes (base, result) end in its first inflated bytes: each is a varint
/// ending at a byte without its top bit.
fn delta_sizes_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut ends = (0..data.len()).filter(|&i| data[i] & 0x80 == 0);
    Some((ends.next()?, ends.next()?))
}

/// Type, size and header length of a pack entry.
pub(in crate::store) fn entry_header(head: &[u8]) -> Result<(u8, u64, usize)> {
    let mut byte = *head.first().context("short pack entry")?;
    let kind = (byte >> 4) & 7;
    let mut size = u64::from(byte & 15);
    let mut shift = 4;
    let mut used = 1;
    while byte & 0x80 != 0 {
        byte = *head.get(used).context("short pack entry")?;
        if shift > 57 {
            bail!("damaged pack entry header");
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        used += 1;
    }
    Ok((kind, size, used))
}

/// The type code and inflated content of a pack entry stored whole (`entry`: all its bytes).
pub(in crate::store) fn inflate_entry(entry: &[u8]) -> Result<(u8, Vec<u8>)> {
    let (code, size, used) = entry_header(entry)?;
    if !(1..=4).contains(&code) {
        bail!("pack entry is a delta");
    }
    let size = usize::try_from(size).context("object too big")?;
    if size as u64 > (entry.len() as u64).saturating_mul(1032) {
        bail!("damaged pack entry header");
    }
    match inflate_exact(&entry[used..], size) {
        Some(data) => Ok((code, data)),
        None => bail!("pack entry does not inflate"),
    }
}

/// `input`, a zlib stream, inflated by libdeflate in one call when it gives exactly `size`
/// bytes.
fn inflate_exact(input: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size];
    let done = INFLATE.with_borrow_mut(|inflate| {
        let inflate = inflate.get_or_insert_with(libdeflater::Decompressor::new);
        inflate.zlib_decompress(input, &mut out)
    });
    matches!(done, Ok(done) if done == size).then_some(out)
}

/// A little-endian base-128 number (a delta's sizes; bits past 64 are dropped).
fn varint_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(10)
        .enumerate()
        .fold(0, |n, (i, b)| n | (u64::from(b & 0x7f) << (7 * i)))
}
