//! Where SQL text goes: stdout, or a private file written beside its final name and renamed into
//! place only when complete (gzip when the name ends in `.gz`, zstd when it ends in `.zst`), so
//! a failed run never leaves a file that looks like a whole dump.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::write::GzEncoder;

use crate::dump::Sink;

mod guard;
pub use guard::refuse_target;

/// The file `path` names once every symlink on its last component is followed (also a link
/// to a file not there yet).
pub fn follow_symlinks(path: &Path) -> Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = std::fs::read_link(&path)
                    .with_context(|| format!("read symlink {}", path.display()))?;
                path = match path.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(path),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// A file root has just written at `path` in a folder another user owns (`sudo sqlgit init` on
/// the job user's repository) is given to that user: their runs must read and replace it. Other
/// users write only their own files, and a folder root owns keeps root's.
pub fn keep_folder_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match owner_root_gives_to(folder) {
        Some((uid, gid)) if std::fs::symlink_metadata(path)?.uid() == 0 => {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        }
        _ => Ok(()),
    }
}

/// Root running on a repository another user owns (`sudo sqlgit init`, `snapshot`, `prune`
/// on the job user's folder, trusted with git's `safe.directory`): every file and folder under
/// `folder` that root owns now — objects, packs, refs, `shallow`, the page map, the history
/// cache, written by libgit2 and git too — is given to the folder's owner, whose runs must read
/// and replace them. Symbolic links are not followed. Best effort: what cannot be given back is
/// named by the owner's next run with the `chown -R` that does.
pub fn give_back_tree(folder: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Some((uid, gid)) = owner_root_gives_to(folder) else {
        return;
    };
    let mut dirs = vec![folder.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.uid() == 0 {
                let _ = std::os::unix::fs::lchown(&path, Some(uid), Some(gid));
            }
            if meta.is_dir() {
                dirs.push(path);
            }
        }
    }
}

/// The owner (uid, gid) of `folder` when this is root and the folder is another user's: what
/// root writes there is given to them (see [`keep_folder_owner`], [`give_back_tree`]).
fn owner_root_gives_to(folder: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let m = std::fs::metadata(folder).ok()?;
    (m.is_dir() && m.uid() != 0).then(|| (m.uid(), m.gid()))
}

/// The uid owning `path` when it is not the user running sqlgit (None: ours, or no such file).
pub fn other_owner(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    std::fs::metadata(path)
        .ok()
        .map(|m| m.uid())
        .filter(|&uid| uid != me)
}

/// The files SQLite keeps beside a database, by the suffix added to its name.
pub const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// `path` with `suffix` appended to its file name (`app.db` → `app.db-wal`).
pub fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A hidden temporary name beside `path` (same directory, so a rename replaces it atomically):
/// `dir/.NAME.TAG<pid>`. What killed runs left there under the same tag is removed first (see
/// [`remove_stale_temps`]).
pub fn temp_beside(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    // Room for the pid and SQLite's `-journal` beside the temporary database.
    let mut tmp_name = fitted_name(".", name, &format!(".{tag}"), 10 + 8);
    remove_stale_temps(path, &tmp_name);
    tmp_name.push(std::process::id().to_string());
    Ok(path.with_file_name(tmp_name))
}

/// The longest file name most file systems take (Linux's NAME_MAX).
const NAME_MAX: usize = 255;

/// `PREFIX NAME SUFFIX` as a file name with `reserve` bytes to spare (for what is added to it
/// later): a name too long for that keeps its start and ends in `~` and a hash of the whole
/// name instead, the same for the same name (a 250-byte database name is valid; its
/// temporary or saved copy's name must be too).
pub fn fitted_name(
    prefix: &str,
    name: &std::ffi::OsStr,
    suffix: &str,
    reserve: usize,
) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = name.as_bytes();
    let fixed = prefix.len() + suffix.len() + reserve;
    let mut out = prefix.as_bytes().to_vec();
    if fixed + bytes.len() <= NAME_MAX {
        out.extend_from_slice(bytes);
    } else {
        let hash = format!("~{:016x}", xxhash_rust::xxh3::xxh3_64(bytes));
        let mut keep = NAME_MAX.saturating_sub(fixed + hash.len()).min(bytes.len());
        // Not in the middle of a UTF-8 character (when the name is text).
        if let Ok(text) = std::str::from_utf8(bytes) {
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
        }
        out.extend_from_slice(&bytes[..keep]);
        out.extend_from_slice(hash.as_bytes());
    }
    out.extend_from_slice(suffix.as_bytes());
    std::ffi::OsString::from_vec(out)
}

/// Remove the temporary file `tmp` (from [`temp_beside`]) and SQLite's files beside it if the
/// run is stopped before the returned guard is dropped.
pub fn remove_on_stop(tmp: &Path) -> crate::stop::Scratch {
    let sides = SIDE_FILES.iter().map(|s| side_file(tmp, s));
    crate::stop::remove_on_stop(std::iter::once(tmp.to_path_buf()).chain(sides))
}

/// Remove the files named `STEM<pid>` beside `path` (and a database's `-journal`, `-wal`,
/// `-shm` beside them) whose process is gone: a killed `restore` or `dump -o` leaves a file as
/// large as the database, which nothing else removes. A live process's file is never touched.
fn remove_stale_temps(path: &Path, stem: &std::ffi::OsStr) {
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.as_bytes().strip_prefix(stem.as_bytes()) else {
            continue;
        };
        let rest = String::from_utf8_lossy(rest);
        let pid = ["-journal", "-wal", "-shm"]
            .iter()
            .find_map(|s| rest.strip_suffix(s))
            .unwrap_or(&rest);
        let stale = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && crate::store::left_by_dead_process(pid);
        if stale
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            say!(
                "note: removed {}, left by a run that was killed (process {pid})",
                e.path().display()
            );
        }
    }
}

/// A private (0700) temporary directory in TMPDIR, `sqlgit-TAG-<pid>-XXXXXX`, removed when the
/// returned values are dropped or the run is stopped by a signal. Directories of the same tag
/// that killed runs left (`kill -9`, an out-of-memory kill: they hold restored copies of the
/// data, as large as the database) are removed first, as [`temp_beside`] does beside a target.
pub fn private_tempdir(tag: &str) -> io::Result<(tempfile::TempDir, crate::stop::Scratch)> {
    use std::os::unix::fs::PermissionsExt;
    let stem = format!("sqlgit-{tag}-");
    remove_stale_tempdirs(&std::env::temp_dir(), &stem);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{stem}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?;
    let remove = crate::stop::remove_on_stop([dir.path().to_path_buf()]);
    Ok((dir, remove))
}

/// Remove the directories `STEM<pid>-…` in `tmp` that this user owns and whose process is gone.
fn remove_stale_tempdirs(tmp: &Path, stem: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(stem)) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let ours = e.file_type().is_ok_and(|t| t.is_dir()) && other_owner(&e.path()).is_none();
        // This process is alive: its own directory is never stale.
        let stale = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && crate::store::left_by_dead_process(pid);
        // On stderr: a query's answer is on stdout.
        if ours && stale && std::fs::remove_dir_all(e.path()).is_ok() && !crate::say::quiet() {
            tell!(
                "note: removed {}, left by a run that was killed (process {pid})",
                e.path().display()
            );
        }
    }
}

/// A writer whose end is written explicitly (a compressed stream's last block), so that an
/// error there is reported rather than lost in a `drop`.
pub trait Finish: Write {
    fn finish_stream(self: Box<Self>) -> io::Result<()>;
}

impl Finish for BufWriter<File> {
    fn finish_stream(mut self: Box<Self>) -> io::Result<()> {
        self.flush()
    }
}

impl Finish for GzEncoder<BufWriter<File>> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        self.finish()?.flush()
    }
}

impl Finish for zstd::stream::write::Encoder<'static, BufWriter<File>> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        self.finish()?.flush()
    }
}

/// How a file's name asks for its content to be written.
#[derive(Clone, Copy)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn of(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }

    fn wrap(self, file: File) -> io::Result<Box<dyn Finish>> {
        let buffered = BufWriter::with_capacity(1 << 18, file);
        Ok(match self {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(GzEncoder::new(buffered, flate2::Compression::default())),
            Compression::Zstd => Box::new(zstd::stream::write::Encoder::new(buffered, 0)?),
        })
    }
}

/// A destination for SQL text.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    /// Something that is not a regular file (`/dev/null`, a FIFO, `/dev/stdout`): written in
    /// place, never replaced by a rename.
    Special {
        writer: Box<dyn Finish>,
        target: PathBuf,
    },
    File {
        writer: Box<dyn Finish>,
        tmp: PathBuf,
        target: PathBuf,
        _remove: crate::stop::Scratch,
    },
}

impl Output {
    /// `None` means stdout.
    pub fn create(path: Option<&Path>) -> Result<Output> {
        let Some(target) = path else {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                1 << 18,
                io::stdout(),
            )));
        };
        crate::room::writes_file(target);
        let compression = Compression::of(target);
        let wrap = |file: File| {
            compression
                .wrap(file)
                .with_context(|| format!("start compressing {}", target.display()))
        };
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            let file = OpenOptions::new()
                .write(true)
                .open(target)
                .with_context(|| format!("open {}", target.display()))?;
            return Ok(Output::Special {
                writer: wrap(file)?,
                target: target.to_path_buf(),
            });
        }
        let tmp = temp_beside(target, "tmp")?;
        let remove = remove_on_stop(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        let writer = wrap(file).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(Output::File {
            writer,
            tmp,
            target: target.to_path_buf(),
            _remove: remove,
        })
    }

    /// Flush and, for a file, rename it into place.
    pub fn finish(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => Ok(w.flush()?),
            Output::Special { writer, target } => writer
                .finish_stream()
                .with_context(|| format!("write {}", target.display())),
            Output::File {
                writer,
                tmp,
                target,
                ..
            } => {
                let result = (|| -> Result<()> {
                    writer.finish_stream()?; // the compressed stream's end; closes the file
                    File::open(&tmp)?.sync_all()?;
                    std::fs::rename(&tmp, &target)?;
                    Ok(())
                })();
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                result.with_context(|| format!("write {}", target.display()))
            }
        }
    }

    /// Remove a partly written file (stdout cannot be taken back).
    pub fn abandon(self) {
        if let Output::File { tmp, writer, .. } = self {
            drop(writer);
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { writer, .. } | Output::Special { writer, .. } => writer.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { writer, .. } | Output::Special { writer, .. } => writer.flush(),
        }
    }
}

impl Sink for Output {
    fn file(&mut self, _path: &[&str], data: Vec<u8>) -> Result<()> {
        let written = self.write_all(&data);
        crate::dump::buffers::give(data);
        written.with_context(|| match self {
            Output::Stdout(_) => "write to stdout".to_string(),
            Output::File { target, .. } | Output::Special { target, .. } => {
                format!("write {}", target.display())
            }
        })
    }
}

/// `1.2 MiB`-style sizes for people.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
