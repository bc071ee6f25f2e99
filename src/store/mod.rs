//! The git repository that holds the snapshots: a bare repository that sqlgit created (marked
//! with `sqlgit.format` in its config, so sqlgit never commits onto someone else's branch), with
//! the snapshots on `refs/heads/main`.

pub mod cache;
mod copy;
mod create;
pub use create::{exists_as_repository, to_create};
pub(crate) use trust::{global_git_config, open_git_dir};
pub mod dates;
pub mod delta;
mod deltify;
mod garbage;
mod gitlocks;
pub mod headrepair;
mod leftovers;
pub mod lock;
pub mod lostconfig;
pub mod lostmain;
pub mod pack;
pub mod packindex;
pub mod packread;
mod plaingit;
pub mod previous;
pub mod prune;
pub mod refcheck;
pub mod reindex;
pub mod repack;
pub mod roots;
pub mod scrub;
pub mod tree;
mod trust;
pub mod walk;
pub mod writer;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{Commit, Repository};

/// The branch snapshots are committed to.
pub const BRANCH: &str = "refs/heads/main";
pub(crate) const FORMAT_KEY: &str = "sqlgit.format";

pub struct Store {
    pub repo: Repository,
    pub path: PathBuf,
    /// The copy of the config that settings are written to while [`Store::save_settings`]
    /// runs, made at its first write.
    pending: RefCell<Option<git2::Config>>,
    /// Whether [`Store::save_settings`] is running.
    saving: std::cell::Cell<bool>,
}

/// Whether `main` of a repository sqlgit did not mark holds snapshots (a clone of a remote):
/// every top-level entry a database folder with a `0-header.sql`.
fn holds_snapshots(repo: &Repository) -> bool {
    let Ok(tree) = repo
        .find_reference(BRANCH)
        .and_then(|r| r.peel_to_commit())
        .and_then(|c| c.tree())
    else {
        return false;
    };
    is_snapshot_tree(repo, &tree)
}

/// Whether a commit's tree is a sqlgit snapshot: every top-level entry a database folder with a
/// `0-header.sql`.
pub fn is_snapshot_tree(repo: &Repository, tree: &git2::Tree) -> bool {
    !tree.is_empty()
        && tree.iter().all(|e| {
            e.kind() == Some(git2::ObjectType::Tree)
                && repo
                    .find_tree(e.id())
                    .is_ok_and(|t| t.get_name("0-header.sql").is_some())
        })
}

/// Fails when the repository's config exists but cannot be read: libgit2 skips such a file
/// silently, and the repository would look like one sqlgit did not create (an admin's `sudo git
/// config` under umask 077 replaces it with a root-owned 0600 file).
fn config_readable(git_dir: &Path, shown: &str) -> Result<()> {
    let config = git_dir.join("config");
    match std::fs::File::open(&config) {
        Err(e) if crate::cause::is_descriptor_limit(&e) => bail!(
            "repository {shown}: cannot open {}: {}",
            config.display(),
            crate::cause::descriptor_hint()
        ),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(unreadable(git_dir, &config, e)),
        _ => Ok(()),
    }
}

/// `path` of the repository `dir` could not be opened (`e`): a permission names the file's owner
/// and the `chown -R` that gives the repository back (see [`crate::cause::not_damage`]).
pub(crate) fn unreadable(dir: &Path, path: &Path, e: std::io::Error) -> anyhow::Error {
    match crate::cause::not_damage(path, dir, &e) {
        Some(line) => anyhow::anyhow!("repository {}: {line}", dir.display()),
        None => anyhow::anyhow!(
            "repository {}: cannot read {}: {e}",
            dir.display(),
            path.display()
        ),
    }
}

/// A repository another user owns, which git (and libgit2) refuse to open unless told to
/// trust it: say whose it is and the command that trusts it.
fn owned_by_another(dir: &Path, e: &git2::Error) -> anyhow::Error {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(dir).map(|m| m.uid()).ok();
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    anyhow::anyhow!(
        "repository {}: owned by another user (uid {}), which git does not trust ({}): run \
         sqlgit as that user, or trust it with `git config --global --add safe.directory {}`",
        dir.display(),
        owner.map_or("unknown".to_string(), |u| u.to_string()),
        e.message(),
        crate::shellword::path(&absolute)
    )
}

impl Store {
    /// Open an existing sqlgit repository, for any command.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_checked(dir, true)
    }

    /// Open a repository to read snapshots from: also a plain clone of a history remote.
    pub fn open_read(dir: &Path) -> Result<Store> {
        Store::open_checked(dir, false)
    }

    fn open_checked(dir: &Path, need_marker: bool) -> Result<Store> {
        crate::room::writes_in(dir);
        let shown = dir.display();
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("repository {shown}: does not exist (sqlgit snapshot creates it)")
            }
            Err(e) => return Err(unreadable(dir, dir, e)),
            Ok(m) if !m.is_dir() => bail!("repository {shown}: not a directory"),
            Ok(_) => {}
        }
        config_readable(dir, &shown.to_string())?;
        let repo = open_git_dir(dir).map_err(|e| match headrepair::shallow_damaged(dir) {
            true => anyhow::anyhow!(
                "repository {shown}: its shallow file (where pruning cut the local history) \
                     cannot be read ({}): run `sqlgit snapshot --repo {}`, which repairs it",
                e.message(),
                crate::shellword::repo(dir)
            ),
            false if e.code() == git2::ErrorCode::Owner => owned_by_another(dir, &e),
            false if let Some(format) = ref_format(dir) => anyhow::anyhow!(
                "repository {shown}: its refs are stored in git's {format} format (`git refs \
                     migrate`), which sqlgit cannot read ({}); move them back, run: git -C {} \
                     refs migrate --ref-format=files",
                e.message(),
                crate::shellword::repo(dir)
            ),
            false => anyhow::anyhow!(
                "repository {shown}: not a git repository ({}){}",
                e.message(),
                unopenable_hint(dir, &e)
            ),
        })?;
        let format = repo.config()?.get_i64(FORMAT_KEY).ok();
        if format.is_none() && !need_marker && !holds_snapshots(&repo) {
            bail!(
                "repository {shown}: not a sqlgit repository (no sqlgit snapshot on its main branch)"
            );
        }
        let known = crate::dump::Format::CURRENT.number();
        if let Some(f) = format.filter(|&f| f > known) {
            bail!(
                "repository {shown}: written by a newer sqlgit (snapshot format {f}; this one \
                 knows formats up to {known}): upgrade sqlgit"
            );
        }
        if format.is_none() && need_marker {
            if lostconfig::config_lost(dir) {
                bail!("repository {shown}: {}", lostconfig::missing_line(dir));
            }
            if lostconfig::unadopted_copy(dir) {
                bail!("repository {shown}: {}", lostconfig::copy_line(dir));
            }
            bail!(
                "repository {shown}: a git repository that sqlgit did not create; refusing to use it"
            );
        }
        Ok(Store {
            repo,
            path: dir.to_path_buf(),
            pending: RefCell::new(None),
            saving: std::cell::Cell::new(false),
        })
    }

    /// Record that the repository holds snapshots in `format` (a repository moves to a newer
    /// format at its next snapshot; older snapshots stay readable).
    pub fn note_format(&self, format: crate::dump::Format) -> Result<()> {
        let config = self.repo.config()?;
        if config.get_i64(FORMAT_KEY).unwrap_or(1) < format.number() {
            self.edit_config(|c| Ok(c.set_i64(FORMAT_KEY, format.number())?))?;
        }
        Ok(())
    }

    /// The newest snapshot, if any.
    pub fn head(&self) -> Result<Option<Commit<'_>>> {
        match self.repo.find_reference(BRANCH) {
            Ok(r) => match r.peel_to_commit() {
                Ok(commit) => Ok(Some(commit)),
                Err(e) => Err(self.unreadable_head(&r, e)),
            },
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.unreadable_place(None).unwrap_or_else(|| {
                anyhow::anyhow!(
                    "refs/heads/main cannot be read ({}): run `sqlgit snapshot --repo {}`, which \
                 points it at the newest snapshot again",
                    e.message(),
                    crate::shellword::path(&self.path)
                )
            })),
        }
    }

    /// Where `main` (and its commit `id`) is stored, when a file or folder there cannot be
    /// opened for a reason that is no damage (a permission, the open-file limit): the line
    /// naming it and the fix. A repair would fail the same way, and nothing is to be set aside.
    fn unreadable_place(&self, id: Option<git2::Oid>) -> Option<anyhow::Error> {
        let mut places = vec![self.repo.path().join(BRANCH)];
        if let Some(id) = id {
            places.extend(headrepair::object_places(&self.objects_dir(), id));
        }
        places.iter().find_map(|place| {
            let opened = match place.is_dir() {
                true => std::fs::read_dir(place).map(drop),
                false => std::fs::File::open(place).map(drop),
            };
            let e = opened.err()?;
            let line = crate::cause::not_damage(place, &self.path, &e)?;
            Some(anyhow::anyhow!("{line}"))
        })
    }

    /// The error for a `main` whose commit cannot be read, with the command that repairs it.
    fn unreadable_head(&self, main: &git2::Reference, e: git2::Error) -> anyhow::Error {
        if let Some(e) = self.unreadable_place(main.target()) {
            return e;
        }
        if crate::cause::descriptors_short() {
            return anyhow::anyhow!(
                "the latest snapshot cannot be read ({}): {}",
                e.message(),
                crate::cause::descriptor_hint()
            );
        }
        let id = main.target().map(short_id);
        anyhow::anyhow!(
            "the latest snapshot {} cannot be read ({}): run `sqlgit snapshot --repo {}`, which \
             sets it aside and goes on from the history remote's copy of it (if one is set) or \
             from the newest snapshot here that can be read",
            id.as_deref().unwrap_or("(main)"),
            e.message(),
            crate::shellword::path(&self.path)
        )
    }

    /// A `sqlgit.*` setting from the repository's config.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.repo
            .config()
            .ok()?
            .get_string(&format!("sqlgit.{key}"))
            .ok()
    }

    /// Remember a `sqlgit.*` setting in the repository's config.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.edit_config(|config| {
            config
                .set_str(&format!("sqlgit.{key}"), value)
                .map_err(Into::into)
        })
        .with_context(|| format!("save setting {key} in {}", self.config_path().display()))
    }

    /// Replace every value of a multi-valued `sqlgit.*` setting (escaped here: see [`escaped`]).
    pub fn set_settings(&self, key: &str, values: &[String]) -> Result<()> {
        let name = format!("sqlgit.{key}");
        self.edit_config(|config| {
            let _ = config.remove_multivar(&name, ".*");
            crate::failpoint::hit("settings-list-removed");
            for v in values {
                config.set_multivar(&name, "^$", &escaped(v))?;
            }
            Ok(())
        })
        .with_context(|| format!("save setting {key} in {}", self.config_path().display()))
    }

    /// Run `save`, with every setting it writes going to a copy of the config that then
    /// replaces the config in one rename: a run killed while saving leaves the old settings or
    /// the new ones, never some of them (git's config is rewritten whole for each key). A save
    /// that changes nothing leaves the config alone (not copied, not renamed: a read-only or full
    /// disk fails only a run that has something to save). The caller holds the repository's
    /// lock.
    pub fn save_settings<T>(&self, save: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.saving.get() {
            return save();
        }
        self.saving.set(true);
        let saved = save();
        self.saving.set(false);
        let copied = self.pending.borrow_mut().take().is_some();
        let tmp = self.config_tmp_path();
        let done = saved.and_then(|v| {
            if copied {
                let config = self.config_path();
                replace_file(&tmp, &config)
                    .with_context(|| format!("save settings in {}", config.display()))?;
            }
            Ok(v)
        });
        if done.is_err() && copied {
            let _ = std::fs::remove_file(&tmp);
        }
        done
    }

    /// Change the config: within [`Store::save_settings`] its copy (made now if this is the
    /// first change), else the config itself (atomically, the same way).
    fn edit_config<T>(&self, edit: impl FnOnce(&mut git2::Config) -> Result<T>) -> Result<T> {
        if !self.saving.get() {
            return self.save_settings(|| self.edit_config(edit));
        }
        let mut pending = self.pending.borrow_mut();
        if pending.is_none() {
            let (config, tmp) = (self.config_path(), self.config_tmp_path());
            let copy = copy_private(&config, &tmp)
                .and_then(|()| Ok(git2::Config::open(&tmp)?))
                .with_context(|| format!("copy {} to save settings", config.display()));
            *pending = Some(copy.inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?);
        }
        edit(pending.as_mut().expect("copied above"))
    }

    fn config_tmp_path(&self) -> PathBuf {
        self.repo
            .path()
            .join(format!("{CONFIG_TMP}{}", std::process::id()))
    }

    fn config_path(&self) -> PathBuf {
        self.repo.path().join("config")
    }

    /// Remove what killed runs left: sqlgit's temporary files of processes that are gone (git's
    /// lock files a killed run left went when `_held` was taken: [`lock::lock`]); then wait up
    /// to `wait` for another git command's lock in this run's way (see [`gitlocks`]), failing
    /// the run past it. The caller holds `_held`.
    pub fn remove_stale_locks(&self, _held: &lock::Lock, wait: std::time::Duration) -> Result<()> {
        let git_dir = self.repo.path();
        // Temporary state files of runs that were killed (`state::write_atomically`).
        if let Ok(entries) = std::fs::read_dir(git_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix(".sqlgit-state.json.tmp")
                    .or_else(|| name.strip_prefix(CONFIG_TMP))
                    .map(|pid| pid.trim_end_matches(".lock"));
                if pid.is_some_and(left_by_dead_process) {
                    let _ = std::fs::remove_file(e.path());
                }
                // A creation in place killed after its config was in place.
                let staged = name.strip_prefix(create::STAGING);
                if staged.is_some_and(left_by_dead_process) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        gitlocks::wait_for_others(git_dir, wait)
    }

    /// Snapshots in local history.
    pub fn local_snapshots(&self) -> usize {
        walk::count(self.head().ok().flatten(), &self.path).0
    }

    /// The objects directory (bare repository layout).
    pub fn objects_dir(&self) -> PathBuf {
        self.repo.path().join("objects")
    }
}

/// How to fix a repository git cannot open: a config with a syntax error, a `HEAD` gone.
/// The ref storage format other than git's files that `DIR/config` names
/// (`extensions.refStorage`, set by `git refs migrate --ref-format=reftable`): libgit2 cannot
/// open such a repository at all.
pub(crate) fn ref_format(dir: &Path) -> Option<String> {
    git2::Config::open(&dir.join("config"))
        .and_then(|c| c.get_string("extensions.refstorage"))
        .ok()
        .filter(|f| !f.eq_ignore_ascii_case("files"))
}

fn unopenable_hint(dir: &Path, e: &git2::Error) -> String {
    let shown = dir.display();
    if e.class() == git2::ErrorClass::Config {
        format!(
            ": fix the syntax of {} by hand (`git config --file {0} --list` shows where)",
            dir.join("config").display()
        )
    } else if std::fs::read_dir(dir).is_ok_and(|d| {
        let names: Vec<String> = d
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        create::config_only(dir, &names)
    }) {
        format!(
            ": only its config is left (a rebuilt machine?); a snapshot run builds it again \
             around that config (continuing the history remote), run: sqlgit snapshot --repo {}",
            crate::shellword::repo(dir)
        )
    } else if !dir.join("HEAD").exists() && dir.join("objects").is_dir() {
        format!(
            ": its HEAD file is missing, restore it: echo 'ref: refs/heads/main' > {shown}/HEAD"
        )
    } else {
        String::new()
    }
}

/// The copy of the config that [`Store::save_settings`] writes (its name ends in the process id).
const CONFIG_TMP: &str = ".sqlgit-config.tmp";

/// Copy `from` to a new file `to` (mode 0600; a leftover `to` is replaced).
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(to);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    std::io::copy(&mut std::fs::File::open(from)?, &mut out)?;
    Ok(())
}

/// Rename `tmp` over `target` once it is on disk (mode 0600), and sync the folder.
fn replace_file(tmp: &Path, target: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // libgit2 wrote the copy through a lock file of its own, with its own mode.
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))?;
    crate::output::keep_folder_owner(tmp)?;
    std::fs::File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, target)?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The first 12 hex digits of an object id, as messages name snapshots.
pub fn short_id(id: git2::Oid) -> String {
    id.to_string()[..12].to_string()
}

/// Where object `id` is stored loose under `objects`.
pub(crate) fn loose_path(objects: &Path, id: git2::Oid) -> PathBuf {
    let hex = id.to_string();
    objects.join(&hex[..2]).join(&hex[2..])
}

/// Create `dir` (0700) unless it exists.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create {}", dir.display()))?;
    }
    Ok(())
}

/// Bytes used by files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The one place libgit2's global options are set, once, before any repository is opened.
///
/// libgit2 maps whole packs (1 GiB windows) and keeps every page it touched: reading a few
/// hundred scattered chunks of a large pack (diff, prune, verify) would grow the resident size
/// by the pack's size. Small windows under a cap keep it bounded (measured: no slower; 256 KiB
/// windows under a 2 MiB cap take 5 MiB less than 1 MiB under 8 MiB in an incremental snapshot
/// of a 2 GB database); the mappings are clean page cache either way.
///
/// libgit2 also starts OpenSSL when it starts, and OpenSSL then parses the system's whole CA
/// bundle (about 20 ms, a twentieth of an incremental snapshot) for HTTPS connections that
/// most commands never make through libgit2 (the `git` program is the usual transport). It is
/// started with `SSL_CERT_FILE` pointing at an empty file, so only the lazily read certificate
/// folder is set up; [`load_ca_certificates`] adds the bundle before libgit2 connects anywhere.
pub fn configure_libgit2() {
    let user_cert_file = std::env::var_os(CERT_FILE_ENV);
    // SAFETY: no other thread runs yet (this is the start of `main`), and libgit2's global
    // settings are changed before this process opens any repository.
    unsafe {
        std::env::set_var(CERT_FILE_ENV, "/dev/null");
        git2::opts::enable_caching(true); // starts libgit2 (and OpenSSL) with the empty bundle
        match user_cert_file {
            Some(file) => std::env::set_var(CERT_FILE_ENV, file),
            None => std::env::remove_var(CERT_FILE_ENV),
        }
        let _ = git2::opts::set_mwindow_size(256 << 10);
        let _ = git2::opts::set_mwindow_mapped_limit(2 << 20);
        // Trees read once each (an incremental snapshot walks a large table's folders) need no
        // 256 MiB object cache.
        let _ = git2::opts::set_cache_max_size(2 << 20);
    }
}

const CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// Give libgit2's OpenSSL the CA bundle it was started without (see [`configure_libgit2`]):
/// the user's `SSL_CERT_FILE`, else the system's bundle. Once per process, before libgit2 opens
/// a connection.
pub fn load_ca_certificates() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(file) = openssl_probe::probe().cert_file {
            // SAFETY: sets libgit2's global TLS context, which only connections read.
            let _ = unsafe { git2::opts::set_ssl_cert_file(file) };
        }
    });
}

/// Whether `pid` (the process id a temporary name ends with) names no live process, so what
/// it names is a leftover.
pub(crate) fn left_by_dead_process(pid: &str) -> bool {
    !pid.parse::<i32>().is_ok_and(process_is_alive)
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
fn process_is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A value as git's config format writes it: `"`, `\`, tab, line feed and backspace escaped.
/// libgit2 escapes what `set_str` writes but writes `set_multivar`'s value as given (a `"` in a
/// database path was read back without it; a `\` made the file unreadable); it still adds the
/// surrounding quotes a value with `;`, `#` or an outer space needs.
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out
}
