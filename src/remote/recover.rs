//! Recovery when one side of the history is lost, so that a rebuilt machine, a recreated remote
//! or two writers never leave every later cron run failing.
//!
//! * **Adopt** ([`adopt`]): a repository with no snapshots (the machine was rebuilt) whose history
//!   remote has a `main` fetches just that tip (depth 1: one commit and its tree, the commit a
//!   shallow boundary) and continues the history on top of it. When the remote cannot be asked,
//!   the run still takes its snapshot and leaves a marker; a later run that reaches the remote
//!   puts those never-published snapshots on top of the remote's tip, once, by itself.
//! * **Re-root** ([`reroot`], `sqlgit push --reroot`): the locally kept snapshots the remote
//!   lacks — those taken after its `main` — are rewritten (same trees, messages, authors and
//!   times; new ids) on top of it, or all of them as a new history when the remote is empty.
//!   The remote's own commits always stay ancestors of what is pushed next: sqlgit never
//!   rewrites a remote's history, and never puts an older snapshot above a newer one (an older
//!   copy of this repository would make its history run back in time).

use anyhow::{Context, Result, bail};
use git2::{Commit, Oid};

use super::held::{Held, remote_holds};
use super::{HISTORY_TRACKING, client, short};
use crate::settings::Settings;
use crate::store::{BRANCH, Store};

/// Where a fetched remote tip lands before it is used.
const FETCHED: &str = "refs/sqlgit/fetched";
/// File in the git dir: this repository's snapshots were started without asking the history
/// remote (it could not be reached), so they may belong on top of what it has.
pub(super) const ADOPT_PENDING: &str = "sqlgit-adopt-pending";

/// What the history remote last confirmed, kept when a push found its main to be one this
/// repository does not have (an older copy of this repository, another writer) and the
/// tracking ref had to go: a re-root leaves the snapshots it names out, as the remote's.
pub(crate) const ONCE_CONFIRMED: &str = "refs/sqlgit/history-once-confirmed";

/// Keep `confirmed` as [`ONCE_CONFIRMED`] (the tracking ref is about to be forgotten).
pub(super) fn remember_confirmed(store: &Store, confirmed: Oid) -> Result<()> {
    store
        .repo
        .reference(ONCE_CONFIRMED, confirmed, true, "sqlgit: once confirmed")?;
    Ok(())
}

/// Forget [`ONCE_CONFIRMED`] (re-rooted, or the tracking ref forgotten: another remote).
pub(super) fn forget_once_confirmed(store: &Store) -> Result<()> {
    if let Ok(mut r) = store.repo.find_reference(ONCE_CONFIRMED) {
        r.delete()?;
    }
    Ok(())
}

/// What [`adopt`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Adopted {
    /// Nothing to do (no history remote, or the repository already continues it).
    Nothing,
    /// The repository is new and the history remote has nothing either.
    FreshStart,
    /// The history now continues the remote's main (this commit); `rerooted` local snapshots
    /// taken while the remote was unreachable were put on top of it. `rescued`: the latest
    /// remote's main, a newer snapshot the history remote lacks, went on top of it first.
    Continued {
        tip: Oid,
        rerooted: usize,
        rescued: Option<Oid>,
    },
    /// The history remote is empty, and the latest remote's main (this commit) is a snapshot
    /// of this repository's databases it lacks (its only copy): the history starts from it;
    /// `rerooted` local snapshots taken while the remote was unreachable were put on top.
    Rescued { latest: Oid, rerooted: usize },
    /// The remote could not be asked: the snapshot goes on, the adoption is retried next run.
    Deferred(String),
}

/// Continue the history remote's history in a repository that has none of its own (see the
/// module documentation). Call with the repository lock held, before the snapshot.
///
/// `folders`: the snapshot folders of the databases this repository backs up. A remote whose
/// snapshots hold none of them is another database's history: continuing it would mix the two
/// and leave its own machine's runs failing, so it is refused (every run, until fixed).
pub fn adopt(store: &mut Store, settings: &Settings, folders: &[String]) -> Result<Adopted> {
    let Some(url) = settings.history_remote.as_deref() else {
        return Ok(Adopted::Nothing);
    };
    let pending = store.repo.path().join(ADOPT_PENDING);
    let head = store.head()?.map(|c| c.id());
    let confirmed = store.repo.refname_to_id(HISTORY_TRACKING).ok();
    // Adopt only into a repository whose snapshots nobody has seen: none at all, or ones taken
    // while the remote could not be asked and never confirmed by it.
    let unpublished = head.is_none() || (pending.exists() && confirmed.is_none());
    if !unpublished {
        if pending.exists() {
            let _ = std::fs::remove_file(&pending);
        }
        return Ok(Adopted::Nothing);
    }
    let options = settings.remote_options()?;
    let asked = {
        client(store, &options, url)
            .and_then(|client| client.remote_main(url).map_err(|e| super::scrubbed(e, url)))
    };
    // Whatever goes wrong from here, a later run tries again.
    let mark_pending =
        || std::fs::write(&pending, b"").with_context(|| format!("write {}", pending.display()));
    let remote_main = match asked {
        Ok(main) => main,
        Err(e) => {
            mark_pending()?;
            return Ok(Adopted::Deferred(crate::error::error_line(&e)));
        }
    };
    let Some(remote_main) = remote_main else {
        let started = start_empty(store, settings, &options, folders);
        if started.is_err() {
            mark_pending()?;
        } else {
            let _ = std::fs::remove_file(&pending);
        }
        return started;
    };
    let tip = match fetch_tip(store, url, &options, remote_main)
        .and_then(|tip| holds_one_of(store, tip, folders).map(|()| tip))
    {
        Ok(tip) => tip,
        Err(e) => {
            mark_pending()?;
            return Err(e);
        }
    };
    // The only copy of a snapshot the history remote never got (a rebuilt machine) goes on
    // top of its tip, before the latest remote is overwritten.
    let rescued = match super::rescue::latest_only(store, settings, &options, Some(tip), folders) {
        Ok(rescued) => rescued,
        Err(e) => {
            mark_pending()?;
            return Err(e);
        }
    };
    let base = match rescued {
        Some(latest) => super::rescue::on_top(store, latest, tip)?,
        None => tip,
    };
    let rerooted = match head {
        None => {
            store
                .repo
                .reference(BRANCH, base, true, "sqlgit: continue the history remote")?;
            0
        }
        Some(_) => match reroot_onto(store, Some(base), &Held::default()) {
            Ok((rerooted, ..)) => rerooted,
            Err(e) => {
                mark_pending()?;
                return Err(e);
            }
        },
    };
    store
        .repo
        .reference(HISTORY_TRACKING, tip, true, "sqlgit: confirmed")?;
    let _ = std::fs::remove_file(&pending);
    *store = Store::open(&store.path)?;
    Ok(Adopted::Continued {
        tip,
        rerooted,
        rescued,
    })
}

/// Start the history of a repository whose history remote is empty ([`adopt`]): from the latest
/// remote's snapshot when that is one of this repository's databases that the history remote
/// lacks (it was recreated empty, and this machine rebuilt: the only copy left), with the
/// snapshots taken here on top; else afresh — also when the latest remote cannot be asked: a
/// new setup whose latest remote is down or misnamed still starts its history (its own push
/// failure says why), and only a latest remote holding the last copy of a history remote
/// recreated empty, unreachable on the rebuilt machine's first run, is not asked again.
fn start_empty(
    store: &mut Store,
    settings: &Settings,
    options: &super::Options,
    folders: &[String],
) -> Result<Adopted> {
    let asked = super::rescue::latest_only(store, settings, options, None, folders);
    let Ok(Some(latest)) = asked else {
        return Ok(Adopted::FreshStart);
    };
    let rerooted = if store.head()?.is_none() {
        store
            .repo
            .reference(BRANCH, latest, true, "sqlgit: the latest remote's snapshot")?;
        0
    } else {
        reroot_onto(store, Some(latest), &Held::default())?.0
    };
    *store = Store::open(&store.path)?;
    Ok(Adopted::Rescued { latest, rerooted })
}

/// What [`reroot`] did.
#[derive(Debug)]
pub struct Rerooted {
    /// Local snapshots rewritten (0: they already continued the remote's main, or it has them
    /// all).
    pub snapshots: usize,
    /// Kept snapshots the remote already has (older than its main, which it confirmed): left
    /// out, the local history continuing its main instead.
    pub left: usize,
    /// The remote's main they now continue; None: they start a new history.
    pub onto: Option<Oid>,
    /// Of the rewritten snapshots, those the remote once confirmed having and no longer has
    /// (it was rewound: restored from an older backup of itself).
    pub rewound: usize,
    /// The remote was rewound below snapshots pruned here after it confirmed them: the newest
    /// of those that could not be put back (kept, if at all, only by the history cache).
    pub lost: Option<Oid>,
    /// Of the rewritten snapshots, those pruned here that the rewind lost, put back from the
    /// history cache (which kept them).
    pub recovered: usize,
}

/// Put the locally kept snapshots on top of the history remote's main (or make them a new
/// history when it has none), so the next push is a fast-forward. Call with the lock held.
pub fn reroot(store: &mut Store, settings: &Settings) -> Result<Rerooted> {
    let Some(url) = settings.history_remote.as_deref() else {
        bail!("no history remote is configured: nothing to re-root onto");
    };
    let Some(head) = store.head()?.map(|c| c.id()) else {
        bail!("the repository has no snapshots yet: nothing to re-root");
    };
    let options = settings.remote_options()?;
    let remote_main = {
        let client = client(store, &options, url)?;
        client
            .remote_main(url)
            .map_err(|e| super::scrubbed(e, url))?
    };
    let onto = match remote_main {
        Some(main)
            if main == head
                || store.repo.find_commit(main).is_ok()
                    && store.repo.graph_descendant_of(head, main).unwrap_or(false)
                || crate::store::walk::continues_cut(&store.repo, head, main) =>
        {
            return Ok(Rerooted {
                snapshots: 0,
                left: 0,
                onto: Some(main),
                rewound: 0,
                lost: None,
                recovered: 0,
            });
        }
        Some(main) => {
            let tip = fetch_tip(store, url, &options, main)?;
            // A latest copy is not history to continue (the two remotes are one repository?).
            if let Some(e) = super::confirmed::latest_copy_error(store, tip) {
                return Err(e);
            }
            // Never continue another database's history, whatever a re-root is asked.
            holds_one_of(store, tip, &crate::snapshot::db_folders(&settings.dbs))?;
            Some(tip)
        }
        None => None,
    };
    let held = remote_holds(store, url, &options, onto)?;
    let (snapshots, left, rewound, lost) = reroot_onto(store, onto, &held)?;
    match lost {
        // What the cache kept of the rewound history is back in local history.
        None => crate::store::cache::forget_rewound(store),
        // Only it and what is below it stay lost: the rest went back (as copies).
        Some(lost) => crate::store::cache::keep_only_rewound(store, lost)?,
    }
    match onto {
        Some(tip) => {
            store
                .repo
                .reference(HISTORY_TRACKING, tip, true, "sqlgit: confirmed")?;
            forget_once_confirmed(store)?;
        }
        None => {
            super::forget_confirmed(store, super::Role::History)?;
        }
    }
    let _ = std::fs::remove_file(store.repo.path().join(ADOPT_PENDING));
    *store = Store::open(&store.path)?;
    Ok(Rerooted {
        snapshots,
        left,
        onto,
        rewound,
        lost,
        recovered: held.recovered.len(),
    })
}

/// What [`reroot_onto`] did: (rewritten, left out as the remote's, of the rewritten those the
/// remote once confirmed (it was rewound), the newest pruned snapshot the rewind lost).
type RerootCounts = (usize, usize, usize, Option<Oid>);

/// The remote's main, locally: fetched (depth 1) unless this repository has it already.
fn fetch_tip(
    store: &mut Store,
    url: &str,
    options: &super::Options,
    remote_main: Oid,
) -> Result<Oid> {
    let fetched = if store.repo.find_commit(remote_main).is_ok() {
        remote_main
    } else {
        let fetched = {
            let client = client(store, options, url)?;
            client
                .fetch_main(url, FETCHED)
                .map_err(|e| super::scrubbed(e, url))
                .context("fetch the history remote's main")?
        };
        if let Ok(mut r) = store.repo.find_reference(FETCHED) {
            let _ = r.delete();
        }
        // The fetch wrote the tip into the `shallow` file; grafts are read when a repository
        // opens.
        *store = Store::open(&store.path)?;
        fetched
    };
    // Also when it is here already (fetched by an earlier attempt): never continue, nor
    // re-root onto, history that is not sqlgit's.
    let commit = store.repo.find_commit(fetched)?;
    if !crate::store::is_snapshot_tree(&store.repo, &commit.tree()?) {
        bail!(
            "the history remote's main ({}) is not a sqlgit snapshot: refusing to continue it \
             (give a history remote that only sqlgit writes to)",
            short(fetched)
        );
    }
    Ok(fetched)
}

/// Fail unless the snapshot `tip` holds one of `folders` (none given: anything goes).
pub(super) fn holds_one_of(store: &Store, tip: Oid, folders: &[String]) -> Result<()> {
    let tree = store.repo.find_commit(tip)?.tree()?;
    let names: Vec<String> = tree
        .iter()
        .filter_map(|e| e.name().ok().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    if folders.is_empty() || names.iter().any(|n| folders.contains(n)) {
        return Ok(());
    }
    bail!(
        "the history remote's snapshots ({}) are of {}, not of {}: it is another database's \
         history, which this repository must not continue; give this repository a history \
         remote of its own (the folders are named after the database files: a database that \
         was renamed needs its old file name back)",
        short(tip),
        names.join(", "),
        folders.join(", ")
    )
}

/// Rewrite the kept snapshots the remote lacks ([`lacked`]), oldest first, on top of `onto`
/// (None: all of them, the oldest becoming a root); `main` moves once, at the end (to `onto`
/// itself when the remote has them all). `held`: what the remote holds ([`remote_holds`]).
fn reroot_onto(store: &mut Store, onto: Option<Oid>, held: &Held) -> Result<RerootCounts> {
    let repo = &store.repo;
    let Some(head) = store.head()? else {
        return Ok((0, 0, 0, None));
    };
    let mut kept: Vec<Commit> = vec![head];
    while let Ok(parent) = kept[kept.len() - 1].parent(0) {
        kept.push(parent);
    }
    kept.reverse();
    let new_history = onto.is_none();
    let onto = onto.map(|id| repo.find_commit(id)).transpose()?;
    let (rewrite, left, rewound, lost) = match &onto {
        Some(tip) => lacked(store, tip, kept, held)?,
        // An empty remote: what the history cache kept of what it lost goes first.
        None => {
            let mut all = Vec::new();
            for &id in &held.recovered {
                all.push(repo.find_commit(id)?);
            }
            let recovered = all.len();
            all.extend(kept);
            (all, 0, recovered, None)
        }
    };
    let mut parent = onto;
    let mut written = Vec::new();
    for old in &rewrite {
        let parents: Vec<&Commit> = parent.iter().collect();
        let id = super::rescue::recommit(repo, old, &parents)?;
        written.push(id);
        parent = Some(repo.find_commit(id)?);
    }
    // Snapshots put back below a cut (from the history cache) give the cut snapshot its own
    // id again, now with its parent here: the graft must not hide it.
    crate::store::walk::ungraft(repo, &written)?;
    let tip = parent.context("no snapshot to re-root")?.id();
    repo.reference(BRANCH, tip, true, "sqlgit: re-rooted")?;
    let count = rewrite.len();
    drop(rewrite);
    if new_history {
        keep_grafts_still_needed(repo)?;
    }
    Ok((count, left, rewound, lost))
}

/// After a re-root into a new history its oldest snapshot is a real root, and the graft where
/// pruning cut the old one describes nothing reachable. A snapshot a tag (or another ref) keeps
/// is still cut off at its own commit, which plain git needs (`git log TAG`, `git fsck`): those
/// entries stay, and the file goes only when no ref reaches a grafted commit.
fn keep_grafts_still_needed(repo: &git2::Repository) -> Result<()> {
    let shallow = repo.path().join("shallow");
    let grafted = crate::store::walk::grafts(repo);
    let tips: Vec<Oid> = repo
        .references()?
        .flatten()
        .filter_map(|r| r.peel_to_commit().ok().map(|c| c.id()))
        .collect();
    let reached = |id: Oid| {
        tips.iter()
            .any(|&tip| tip == id || repo.graph_descendant_of(tip, id).unwrap_or(false))
    };
    let still: Vec<String> = grafted
        .into_iter()
        .filter(|&id| reached(id))
        .map(|id| id.to_string())
        .collect();
    if still.is_empty() {
        if shallow.exists() {
            std::fs::remove_file(&shallow).context("remove the shallow file")?;
        }
        return Ok(());
    }
    let tmp = repo.path().join("shallow.sqlgit-tmp");
    std::fs::write(&tmp, still.join("\n") + "\n")
        .and_then(|()| std::fs::rename(&tmp, &shallow))
        .context("write the shallow file")
}

/// Of the kept snapshots (oldest first), those the remote whose main is `tip` lacks: all but
/// the ones its main holds now (`held`: never what it once confirmed, which a remote restored
/// from an older backup of itself no longer has) and a copy of its tip itself (same tree and
/// time). Snapshots it once confirmed and lacks now mean it was rewound: they go back on top, in
/// their order, as its history had them. One it never confirmed that is older than its tip can
/// neither go on top (its history would run back in time, and a restore by time return that
/// snapshot for times it was not current) nor in between (its history is never rewritten), so
/// the re-root is refused. Returns (the lacked snapshots, how many were left out as the
/// remote's, how many it lacks though it once confirmed them, the newest pruned snapshot it
/// confirmed and lacks now).
fn lacked<'r>(
    store: &'r Store,
    tip: &Commit,
    kept: Vec<Commit<'r>>,
    held: &Held,
) -> Result<(Vec<Commit<'r>>, usize, usize, Option<Oid>)> {
    let tip_time = tip.time().seconds();
    let confirmed: Vec<Oid> = [HISTORY_TRACKING, ONCE_CONFIRMED]
        .iter()
        .filter_map(|r| store.repo.refname_to_id(r).ok())
        .collect();
    let known = kept
        .iter()
        .rposition(|c| confirmed.contains(&c.id()))
        .map_or(0, |i| i + 1);
    let same_as_tip = |c: &Commit| c.tree_id() == tip.tree_id() && c.time().seconds() == tip_time;
    let has = |c: &Commit| held.ids.contains(&c.id()) || same_as_tip(c);
    let rewound = kept.iter().take(known).filter(|c| !has(c)).count();
    let unknown: Vec<&Commit> = kept
        .iter()
        .filter(|c| rewound == 0 && c.time().seconds() < tip_time && !has(c))
        .collect();
    if let (Some(first), Some(last)) = (unknown.first(), unknown.last()) {
        bail!(
            "{} kept here ({} to {}) {} older than the history remote's newest ({}, {}) and it \
             never confirmed having {}: put on top, its history would run back in time (a \
             restore by time would return {} for times {} not current), and sqlgit never \
             rewrites a remote's history; if another machine snapshots to this remote, give \
             each machine its own remote; to keep them, point --history-remote at an empty \
             repository (they start a new history there)",
            counted(unknown.len()),
            show_time(first),
            show_time(last),
            if unknown.len() == 1 { "is" } else { "are" },
            short(tip.id()),
            show_time(tip),
            if unknown.len() == 1 { "it" } else { "them" },
            if unknown.len() == 1 { "it" } else { "them" },
            if unknown.len() == 1 {
                "it was"
            } else {
                "they were"
            },
        );
    }
    // The newest snapshot pruned here (the oldest kept one's own parent), when the remote
    // confirmed it and lacks it now: pruning dropped it trusting the remote, which lost it.
    let lost = match kept.first() {
        Some(oldest) if rewound > 0 && known > 0 && !has(oldest) => {
            crate::store::walk::raw_parents(oldest)
                .into_iter()
                .find(|p| !held.ids.contains(p) && *p != tip.id())
        }
        _ => None,
    };
    let total = kept.len();
    let mut lacked: Vec<Commit> = Vec::new();
    for &id in &held.recovered {
        lacked.push(store.repo.find_commit(id)?);
    }
    let lost = lost
        .filter(|id| !held.recovered.contains(id))
        .or(held.unrecovered);
    let rewound = rewound + held.recovered.len();
    lacked.extend(kept.into_iter().filter(|c| !has(c)));
    let left = total - (lacked.len() - held.recovered.len());
    Ok((lacked, left, rewound, lost))
}

/// "N snapshots".
fn counted(n: usize) -> String {
    format!("{n} {}", if n == 1 { "snapshot" } else { "snapshots" })
}

/// A commit's time, as RFC 3339 UTC.
pub(super) fn show_time(commit: &Commit) -> String {
    let secs = u64::try_from(commit.time().seconds()).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}
