//! Free room on the filesystems a command writes to. A filesystem can refuse a new file
//! (ENOSPC, "No space left on device") for want of bytes or for want of inodes, with bytes
//! free: `status` checks the repository's filesystem for both ([`Room::problem`]), and an error
//! that says the disk is full names the inodes when they are what ran out ([`inode_shortage`]
//! over the directories registered with [`writes_in`]): freeing bytes would not help.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Less free space than this on the repository's filesystem: a run can write neither its pack
/// nor the state file that records its failure, so status would go on showing the last run
/// that could.
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// Fewer free inodes than this on the repository's filesystem: a run creates a handful of files
/// (its lock, pack, index, refs and state file), so it can write neither its snapshot nor the
/// record of its failure, however many bytes are free.
pub const MIN_FREE_INODES: u64 = 64;

/// What is free for this user on a filesystem.
#[derive(Clone, Copy, Debug)]
pub struct Room {
    pub bytes: u64,
    /// None: the filesystem has no fixed number of inodes (btrfs and others report 0 in all).
    pub inodes: Option<u64>,
}

impl Room {
    /// What is short here (`512 KiB free and 3 free inodes (…)`) and what frees it.
    fn shortage(&self) -> Option<(String, String)> {
        let (mut short, mut fix) = (Vec::new(), Vec::new());
        if self.bytes < MIN_FREE_BYTES {
            short.push(format!("{} free", crate::output::human_bytes(self.bytes)));
            fix.push("free some space");
        }
        if let Some(n) = self.inodes.filter(|&n| n < MIN_FREE_INODES) {
            short.push(format!("{n} free inodes (files that can still be created)"));
            fix.push("delete files there");
        }
        (!short.is_empty()).then(|| (short.join(" and "), fix.join(", ")))
    }

    /// Why runs on this filesystem (of the repository `dir`) cannot work, if they cannot.
    pub fn problem(&self, dir: &Path) -> Option<String> {
        let (short, fix) = self.shortage()?;
        Some(format!(
            "the filesystem of {} has {short}: runs can neither snapshot nor record that they \
             failed ({fix})",
            dir.display()
        ))
    }
}

/// Bytes and inodes free for this user on the filesystem of `dir` (None: unknown).
pub fn free_room(dir: &Path) -> Option<Room> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs(3) on a NUL-terminated path into a zeroed struct it fills.
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then(|| Room {
        bytes: st.f_bavail as u64 * st.f_frsize as u64,
        inodes: (st.f_files != 0).then_some(st.f_favail as u64),
    })
}

/// The directories this command writes in (its repository, an output file's folder, the
/// metrics file's), for [`inode_shortage`].
static WRITES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Note that this command writes in `dir` (or creates it: its parent's filesystem is asked).
pub fn writes_in(dir: &Path) {
    let mut dirs = WRITES.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.iter().any(|d| d == dir) {
        dirs.push(dir.to_path_buf());
    }
}

/// Note that this command writes the file `path` (see [`writes_in`]).
pub fn writes_file(path: &Path) {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => writes_in(p),
        _ => writes_in(Path::new(".")),
    }
}

/// When a write was refused for a full disk and the inodes of a filesystem this command writes
/// in ran out (fewer than [`MIN_FREE_INODES`]): what is short there and what frees it
/// (`the filesystem of /r has 0 free inodes (…)`, `delete files there`). None when only bytes
/// are short, or nothing is known to be: the disk is full.
pub fn inode_shortage() -> Option<(String, String)> {
    let dirs = WRITES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The latest short of anything first: what the command writes now (an output file, after
    // the repository). Short of bytes only there, the disk is full.
    let (dir, room) = dirs.iter().rev().find_map(|dir| {
        // A folder not made yet (a new repository): its parent's filesystem.
        let room = dir
            .ancestors()
            .find_map(|d| match d.as_os_str().is_empty() {
                true => free_room(Path::new(".")),
                false => free_room(d),
            })?;
        room.shortage().map(|_| (dir, room))
    })?;
    room.inodes.filter(|&n| n < MIN_FREE_INODES)?;
    let (short, fix) = room.shortage()?;
    Some((
        format!("the filesystem of {} has {short}", dir.display()),
        fix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_free_inodes_is_a_problem_like_too_few_free_bytes() {
        let dir = Path::new("/r");
        let room = |bytes, inodes| Room { bytes, inodes }.problem(dir);
        assert_eq!(room(20 << 20, Some(10_000)), None);
        assert_eq!(room(20 << 20, None), None, "no fixed inode count (btrfs)");
        let p = room(20 << 20, Some(0)).expect("no free inode");
        assert!(p.contains("0 free inodes") && p.contains("/r"), "{p}");
        let p = room(1000, None).expect("no free byte");
        assert!(p.contains("free") && !p.contains("inodes"), "{p}");
        let p = room(1000, Some(3)).expect("neither");
        assert!(p.contains(" and 3 free inodes"), "{p}");
    }
}
