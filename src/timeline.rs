//! The snapshots a reading command can reach: local history first, then — for a point that
//! pruning removed locally — the history remote's, through the history cache
//! ([`crate::store::cache`]).
//!
//! Nothing touches the network while local history answers. A point older than local history
//! (a time before the oldest kept snapshot, `HEAD~N` past it, a pruned commit id) loads the
//! cache; the cache is fetched (whole history on first use, what is new afterwards) only when it
//! lacks the oldest kept snapshot, since everything before that never changes. Commit ids are
//! the same in both, so a command gets ids from [`Timeline::resolve`] and reads them from
//! [`Timeline::repo`]: the cache (with the local objects as an alternate) once it was loaded,
//! else the repository itself.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use git2::{Oid, Repository};

use crate::output::human_bytes;
use crate::remote::redact;
use crate::settings::Settings;
use crate::store::{Store, cache, dir_size, walk};
use crate::when;

/// Why a WHEN answered locally is checked against the full history.
#[derive(Clone, Copy)]
enum Reach {
    Prefix,
    Time,
}

pub struct Timeline {
    pub store: Store,
    cache: Option<Repository>,
}

/// A run of snapshots, newest first, and whether the last one is the first snapshot of all (to
/// be compared with nothing) rather than a base to compare with.
pub struct Chain {
    pub commits: Vec<Oid>,
    pub rooted: bool,
}

impl Timeline {
    /// Open a repository to read snapshots from (also a plain clone of a history remote).
    pub fn open(dir: &Path) -> Result<Timeline> {
        Ok(Timeline {
            store: Store::open_read(dir)?,
            cache: None,
        })
    }

    /// Where to read commits from: the cache once loaded (it sees the local objects too).
    pub fn repo(&self) -> &Repository {
        self.cache.as_ref().unwrap_or(&self.store.repo)
    }

    /// The oldest snapshot kept locally, when pruning (or adopting the history remote's tip)
    /// cut history there: the end of `main`'s chain, if the `shallow` file names it. Other
    /// ids there (a commit a shallow fetch brought for a check) are not where history was cut.
    pub fn boundary(&self) -> Option<Oid> {
        let head = self.store.head().ok()??;
        crate::store::walk::cut_of(&self.store.repo, &head)
    }

    fn remote_url(&self) -> Option<String> {
        Settings::load(&self.store).history_remote
    }

    /// How to reach the history remote; a relative path there (written by hand) is refused:
    /// it would be looked for from the folder this command runs in.
    fn remote_options(&self) -> Result<crate::remote::Options> {
        let settings = Settings::load(&self.store);
        settings.refuse_relative_remotes(&self.store)?;
        settings.remote_options()
    }

    /// Whether older snapshots than local history exist and can be fetched.
    pub fn can_reach_older(&self) -> bool {
        self.boundary().is_some() && self.remote_url().is_some()
    }

    /// The latest snapshot (local).
    pub fn head(&self) -> Result<Oid> {
        match self.store.head()? {
            Some(c) => Ok(c.id()),
            None => bail!("the repository has no snapshots yet"),
        }
    }

    /// Resolve a WHEN (None: the latest snapshot) against local history, falling back to the
    /// history remote's when the point is older — or when the local answer could differ from
    /// the full history's: see [`Timeline::needs_full`].
    pub fn resolve(&mut self, spec: Option<&str>) -> Result<Oid> {
        // A latest snapshot that cannot be read: said with the command that repairs it.
        self.head()?;
        let local = when::resolve(&self.store.repo, spec).map(|c| c.id());
        if local.is_err() {
            // Not found here because the local history ends early: that is the error.
            self.check_local()?;
        }
        let spec = match (local, spec) {
            (Ok(id), None) => return Ok(id),
            (Ok(id), Some(s)) => match self.needs_full(s, id)? {
                Some(why) => return self.resolve_full(s, id, why),
                None => return Ok(id),
            },
            (Err(e), None) => return Err(e),
            (Err(e), Some(_)) if !self.can_reach_older() => return Err(e),
            (Err(e), Some(_)) if e.is::<when::Ambiguous>() => return Err(e),
            (Err(e), Some(s)) if !when::may_be_older(s) => return Err(e),
            (Err(_), Some(s)) => s,
        };
        self.load_cache()?;
        self.resolve_loaded(spec)
    }

    fn resolve_loaded(&self, spec: &str) -> Result<Oid> {
        let repo = self.repo();
        let head = repo.find_commit(self.head()?)?;
        Ok(when::resolve_at(repo, head, Some(spec), None)?.id())
    }

    /// Why `spec`, found locally as `id`, must be checked against the full history (None: the
    /// local answer stands). A commit-id prefix may also start a pruned snapshot's id; a time
    /// whose answer rests on the oldest kept snapshot's date may read differently with that
    /// snapshot's parent in view (a misdated snapshot counts as taken no earlier than it).
    fn needs_full(&self, spec: &str, id: Oid) -> Result<Option<Reach>> {
        if self.cache.is_some() || !self.can_reach_older() {
            return Ok(None);
        }
        if when::is_short_id(spec) && id.to_string().starts_with(&spec.to_ascii_lowercase()) {
            return Ok(Some(Reach::Prefix));
        }
        let head = self.store.repo.find_commit(self.head()?)?;
        Ok(when::time_rests_on_oldest(head, spec, id).then_some(Reach::Time))
    }

    /// Resolve `spec` against the full history, its local answer being `id`. A prefix checked
    /// offline keeps the local answer with a warning (a restore must work while the remote is
    /// down, and a full id is never ambiguous); a time fails, as its local answer may be wrong.
    fn resolve_full(&mut self, spec: &str, id: Oid, why: Reach) -> Result<Oid> {
        if let Err(e) = self.load_cache() {
            let shown = crate::store::short_id(id);
            return match why {
                Reach::Prefix => {
                    tell!(
                        "sqlgit: warning: commit id {spec:?} names snapshot {shown} here, but the pruned \
                         snapshots could not be checked for it ({e:#}): give the full id to \
                         be sure"
                    );
                    Ok(id)
                }
                Reach::Time => Err(e.context(format!(
                    "the time {spec:?} falls on the oldest kept snapshot {shown}, whose pruned \
                     parent decides what it means: reach the history remote, or name the \
                     snapshot by commit id"
                ))),
            };
        }
        self.resolve_loaded(spec)
    }

    /// Load the cache (fetching it first when it lacks the oldest local snapshot). Does nothing
    /// when local history is complete or no history remote is set.
    pub fn load_cache(&mut self) -> Result<()> {
        if self.cache.is_some() {
            return Ok(());
        }
        let (Some(boundary), Some(url)) = (self.boundary(), self.remote_url()) else {
            return Ok(());
        };
        if !cache::holds(&self.store, boundary) {
            let _fetching = cache::lock_for_fetch(&self.store)?;
            // Another reader may have fetched it while this one waited.
            if !cache::holds(&self.store, boundary) {
                self.fetch(&url, boundary)?;
            }
        }
        self.cache = Some(cache::open(&self.store)?);
        Ok(())
    }

    /// Load the cache after fetching what the history remote has now (a listing of the remote's
    /// snapshots must not show ones it lost since the last fetch). When the remote cannot be
    /// asked, a cache that has local history's oldest snapshot is read as it is, with a warning.
    pub fn refresh_cache(&mut self) -> Result<()> {
        let (Some(boundary), Some(url)) = (self.boundary(), self.remote_url()) else {
            return Ok(());
        };
        let fetched = {
            let _fetching = cache::lock_for_fetch(&self.store)?;
            self.fetch(&url, boundary)
        };
        if let Err(e) = fetched {
            if !cache::holds(&self.store, boundary) {
                return Err(e);
            }
            tell!(
                "sqlgit: warning: {}: listing the history remote's snapshots as the local \
                 history cache last saw them",
                crate::error::error_line(&e)
            );
        }
        self.cache = Some(cache::open(&self.store)?);
        Ok(())
    }

    /// The snapshots the loaded cache keeps that the history remote lost when it was rewound
    /// ([`cache::lost`]); empty when no cache is loaded.
    pub fn lost_by_remote(&self) -> HashSet<Oid> {
        self.cache
            .as_ref()
            .map(|c| cache::lost(c).into_iter().collect())
            .unwrap_or_default()
    }

    /// Ask the history remote whether it still holds `id`, a snapshot pruned here (read from
    /// the cache, which `sqlgit prune` deletes when unused): fetches what is new into the
    /// cache. An error when the remote cannot be asked or no longer holds it.
    pub fn confirm_remote_holds(&mut self, id: Oid) -> Result<()> {
        let shown_id = crate::store::short_id(id);
        let Some(url) = self.remote_url() else {
            bail!(
                "snapshot {shown_id} was pruned here and no history remote is set: only the \
                 local history cache holds it"
            );
        };
        let shown = redact(&url);
        let options = self.remote_options()?;
        let _fetching = cache::lock_for_fetch(&self.store)?;
        let dir = cache::dir(&self.store);
        crate::room::writes_in(&dir);
        let dir = crate::error::on_full_disk(cache::create(&self.store), || cache_full(&dir))?;
        let main = crate::remote::fetch_history(&dir, &url, &options).with_context(|| {
            format!(
                "history remote {shown} (asked whether it still holds snapshot {shown_id}, \
                 pruned here; only the local history cache was checked)"
            )
        });
        let main = crate::error::on_full_disk(main, || cache_full(&dir))?;
        let fetched = Repository::open_bare(&dir)?;
        let holds =
            |main: Oid| main == id || fetched.graph_descendant_of(main, id).unwrap_or(false);
        if !main.is_some_and(holds) {
            bail!(
                "history remote {shown} no longer holds snapshot {shown_id}, pruned here (it was \
                 rewound or emptied?): only the local history cache {} does, which keeps it until it is \
                 back on the remote; put it back, run: {}",
                dir.display(),
                crate::remote::reroot_command(&self.store)
            );
        }
        self.cache = Some(cache::open(&self.store)?);
        Ok(())
    }

    /// Fetch the history remote into the cache, and say so on stderr (one line).
    fn fetch(&self, url: &str, boundary: Oid) -> Result<()> {
        let shown = redact(url);
        let options = self.remote_options()?;
        let dir = cache::dir(&self.store);
        crate::room::writes_in(&dir);
        let dir = crate::error::on_full_disk(cache::create(&self.store), || cache_full(&dir))?;
        let main = |dir: &Path| {
            Repository::open_bare(dir)
                .ok()
                .and_then(|r| r.refname_to_id("refs/heads/main").ok())
        };
        let before = main(&dir);
        let bytes_before = dir_size(&dir.join("objects"));
        let meter =
            crate::progress::Progress::spinner(&format!("fetching from history remote {shown}"));
        let fetched = crate::remote::fetch_history(&dir, url, &options);
        meter.finish();
        let after =
            fetched.with_context(|| format!("fetch older snapshots from history remote {shown}"));
        let after = crate::error::on_full_disk(after, || cache_full(&dir))?;
        let Some(after) = after else {
            // Emptied (recreated): what the cache held is kept as lost, and read as such.
            if cache::holds(&self.store, boundary) {
                return Ok(());
            }
            bail!(
                "history remote {shown} is empty (was it recreated?): it does not have snapshot \
                 {boundary}, the oldest kept here"
            );
        };
        let cache_repo = Repository::open_bare(&dir)?;
        let mut walk = cache_repo.revwalk()?;
        walk.push(after)?;
        if let Some(before) = before {
            let _ = walk.hide(before);
        }
        let count = walk.count();
        let bytes = dir_size(&dir.join("objects")).saturating_sub(bytes_before);
        if !crate::say::quiet() && (count > 0 || before.is_none()) {
            tell!(
                "fetched {count} snapshot{} ({}) from history remote {shown} into {}",
                if count == 1 { "" } else { "s" },
                human_bytes(bytes),
                dir.display()
            );
        }
        if !cache::holds(&self.store, boundary) {
            bail!(
                "history remote {shown} does not have snapshot {boundary}, the oldest kept here \
                 (was it recreated or rewound?)"
            );
        }
        Ok(())
    }

    /// An error when a snapshot of local history cannot be read (see [`walk::parent`]).
    pub fn check_local(&self) -> Result<()> {
        match walk::count(self.store.head()?, &self.store.path).2 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What plain git reads first (`git fsck`, `git gc`): every ref, `git worktree` HEAD and
    /// index and reflog of the repository names objects that are here, whole.
    pub fn check_roots(&self) -> Result<()> {
        let missing = crate::store::roots::missing(&self.store.repo, true)?;
        crate::store::roots::fail_if_missing(&missing)
    }

    /// The snapshots of local history (an error when one cannot be read).
    pub fn local_ids(&self) -> Result<HashSet<Oid>> {
        let mut set = HashSet::new();
        let mut next = self.store.head()?;
        while let Some(c) = next {
            set.insert(c.id());
            next = walk::parent(&c, &self.store.path)?;
        }
        Ok(set)
    }

    /// Snapshots from `newest` back to `base` (included, as the last one) or to the first
    /// snapshot of all — through the cache when it is loaded, else local history (whose oldest
    /// snapshot is then a base when pruning cut history there).
    pub fn chain(&self, newest: Oid, base: Option<Oid>) -> Result<Chain> {
        let repo = self.repo();
        let mut commits = Vec::new();
        let mut commit = repo.find_commit(newest)?;
        loop {
            commits.push(commit.id());
            if Some(commit.id()) == base {
                return Ok(Chain {
                    commits,
                    rooted: false,
                });
            }
            match walk::parent(&commit, &self.store.path)? {
                Some(p) => commit = p,
                None => break,
            }
        }
        if let Some(base) = base {
            bail!("snapshot {base} is not older than {newest}");
        }
        let cut = self.cache.is_none() && self.boundary() == Some(commit.id());
        Ok(Chain {
            commits,
            rooted: !cut,
        })
    }
}

/// What to do when the history cache `dir` has no room for a fetch (a command run by hand).
fn cache_full(dir: &Path) -> String {
    format!(
        "the disk is full: free space (the history cache {} holds a copy of the history \
         remote's snapshots, to read those pruned here), then run it again",
        dir.display()
    )
}
