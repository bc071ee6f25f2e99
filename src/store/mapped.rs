//! Keeps libgit2's mapped pack indexes from growing the resident size. libgit2 maps each
//! `.idx` whole, and every object lookup (a binary search) touches pages of it: an incremental
//! snapshot of a 2 GB database looks up tens of thousands of objects and ends up with most of a
//! 17 MiB index resident. Those pages are clean page cache; dropping them from this process
//! (`MADV_DONTNEED` on a read-only file mapping) costs a minor fault when one is touched again,
//! and nothing else: the file's content comes back.
//!
//! Sound only while the mapping cannot go away under us (else the range could be reused by
//! memory of our own): libgit2 unmaps an index when it frees the pack, which happens when the
//! last repository that uses it is closed. Callers hold a repository open while they call it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the pages are dropped at most.
const EVERY: Duration = Duration::from_millis(10);

/// See the module doc.
pub struct IndexPages {
    /// The repository's `objects/pack` folder as the kernel names it (None: not found).
    dir: Option<PathBuf>,
    last: Instant,
}

impl IndexPages {
    pub fn new(objects_dir: &Path) -> IndexPages {
        IndexPages {
            dir: std::fs::canonicalize(objects_dir.join("pack")).ok(),
            last: Instant::now(),
        }
    }

    /// Drop the resident pages of the repository's mapped pack indexes, unless that was done
    /// less than [`EVERY`] ago. Call it as often as convenient.
    pub fn release_now_and_then(&mut self) {
        if self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        if let Some(dir) = &self.dir {
            release(dir);
        }
    }
}

#[cfg(target_os = "linux")]
fn release(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return;
    };
    let dir = dir.as_os_str().as_bytes();
    for line in maps.split(|&b| b == b'\n') {
        // start-end perms offset dev inode path
        let mut fields = line.splitn(6, |&b| b == b' ');
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields
            .nth(3)
            .map(|p| p.trim_ascii_start())
            .unwrap_or_default();
        let ours = path.starts_with(dir)
            && path.get(dir.len()) == Some(&b'/')
            && path.ends_with(b".idx")
            && perms.first() == Some(&b'r')
            && perms.get(1) == Some(&b'-');
        if !ours {
            continue;
        }
        let Some((start, end)) = parse_range(range) else {
            continue;
        };
        // SAFETY: a read-only mapping of a pack index that stays mapped (see the module doc);
        // MADV_DONTNEED only drops its pages from this process.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn release(_dir: &Path) {}

#[cfg(target_os = "linux")]
fn parse_range(range: &[u8]) -> Option<(usize, usize)> {
    let range = std::str::from_utf8(range).ok()?;
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    (end > start).then_some((start, end))
}
