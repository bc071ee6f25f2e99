//! Keeping the latest remote's snapshot when a new repository adopts the history remote: on a
//! machine rebuilt after a run whose history push failed, the latest remote's `main` is the only
//! copy of that run's snapshot. Adopting the history remote's older tip and force-pushing the
//! next snapshot to the latest remote would drop it; instead it is re-committed (same tree,
//! message, author and time) on top of the adopted tip, below the snapshots taken here, so the
//! next history push carries it. Also the checks that never give the latest remote an older
//! snapshot than the one it holds. Until the history remote has been asked (it was unreachable
//! on the rebuilt machine's first runs), the latest remote's main is not replaced.

use anyhow::{Context, Result, bail};
use git2::{Commit, Oid};

use super::{LATEST_TRACKING, Options, client, scrubbed};
use crate::settings::Settings;
use crate::store::Store;

/// Where the latest remote's main lands when fetched.
const FETCHED_LATEST: &str = "refs/sqlgit/fetched-latest";

/// The latest remote's main, fetched here (depth 1), when it is a snapshot of `folders` that
/// the history remote (whose main is `tip`, here; None: it is empty, and lacks everything)
/// lacks: not in its history (asked through the history cache; when that cannot be fetched,
/// dated after `tip`), nor a copy of a snapshot of local history. None when there is no such
/// snapshot. An error when the latest remote cannot be asked: the adoption waits for its
/// answer (its main is not replaced meanwhile, [`refuse_before_adopting`]), as it may be the
/// only copy of a snapshot.
pub(super) fn latest_only(
    store: &mut Store,
    settings: &Settings,
    options: &Options,
    tip: Option<Oid>,
    folders: &[String],
) -> Result<Option<Oid>> {
    let Some(url) = settings.latest_remote.as_deref() else {
        return Ok(None);
    };
    let asked = client(store, options, url)
        .and_then(|c| c.remote_main(url).map_err(|e| scrubbed(e, url)))
        .with_context(|| {
            format!(
                "the latest remote could not be asked whether it holds a snapshot the history \
                 remote never got (its only copy): the history remote's snapshots are \
                 continued, and it is pushed, once the latest remote answers (if it is gone for \
                 good, with nothing to rescue: `{}`)",
                super::confirmed::command(store, "init", "--latest-remote ''")
            )
        })?;
    let Some(main) = asked else {
        return Ok(None);
    };
    if store.repo.refname_to_id(LATEST_TRACKING).ok() == Some(main) {
        return Ok(None);
    }
    if store.repo.find_commit(main).is_err() {
        {
            let client = client(store, options, url)?;
            client
                .fetch_main(url, FETCHED_LATEST)
                .map_err(|e| scrubbed(e, url))
                .context("fetch the latest remote's main (a snapshot the history remote lacks?)")?;
        }
        if let Ok(mut r) = store.repo.find_reference(FETCHED_LATEST) {
            let _ = r.delete();
        }
        // Parentless: nothing was cut below it.
        crate::store::walk::ungraft(&store.repo, &[main])?;
        *store = Store::open(&store.path)?;
    }
    let theirs = store.repo.find_commit(main)?;
    let ours = crate::store::is_snapshot_tree(&store.repo, &theirs.tree()?)
        && super::recover::holds_one_of(store, main, folders).is_ok();
    let known = match store.head()? {
        Some(head) => copies_an_ancestor(store, &head, &theirs),
        None => false,
    };
    if !ours || known || theirs.parent_count() != 0 {
        return Ok(None);
    }
    // An empty history remote lacks it: the only copy left of what it had.
    let Some(tip) = tip else {
        return Ok(Some(main));
    };
    let tip = store.repo.find_commit(tip)?;
    if theirs.tree_id() == tip.tree_id() {
        return Ok(None);
    }
    // Whether the history remote has it is what matters, not the clocks: one that ran fast
    // dates a snapshot it has after its tip, a corrected one dates a snapshot it lacks before.
    // Its whole history is fetched into the history cache to ask; if that fails, only a
    // snapshot dated after its tip is taken for one it lacks.
    match history_has(store, settings, options, &theirs) {
        Ok(has) => Ok((!has).then_some(main)),
        Err(_) => Ok((theirs.time().seconds() > tip.time().seconds()).then_some(main)),
    }
}

/// Whether the history remote's history holds the snapshot `theirs` is a copy of (same tree,
/// author, committer and message), fetched into the history cache.
fn history_has(
    store: &Store,
    settings: &Settings,
    options: &Options,
    theirs: &Commit,
) -> Result<bool> {
    let url = settings
        .history_remote
        .as_deref()
        .context("no history remote")?;
    let _fetching = crate::store::cache::lock_for_fetch(store)?;
    let dir = crate::store::cache::create(store)?;
    let Some(main) = super::fetch_history(&dir, url, options)? else {
        return Ok(false);
    };
    let cache = git2::Repository::open_bare(&dir).context("open the history cache")?;
    Ok(holds_copy(&cache, main, theirs))
}

/// Whether `main`'s history in `repo` holds the snapshot `theirs` is a copy of.
fn holds_copy(repo: &git2::Repository, main: Oid, theirs: &Commit) -> bool {
    let Ok(mut walk) = repo.revwalk() else {
        return false;
    };
    if walk.push(main).is_err() {
        return false;
    }
    walk.flatten()
        .filter_map(|id| repo.find_commit(id).ok())
        .any(|c| same_snapshot(&c, theirs))
}

/// Whether the history cache (as last fetched) holds the snapshot `theirs` is a copy of: one
/// the history remote has, which a newer snapshot here may replace whatever its date (a clock
/// that ran fast when it was taken).
fn in_history_cache(store: &Store, theirs: &Commit) -> bool {
    let Ok(cache) = crate::store::cache::open(store) else {
        return false;
    };
    cache
        .refname_to_id("refs/heads/main")
        .is_ok_and(|main| holds_copy(&cache, main, theirs))
}

/// Whether two commits are copies of one snapshot (as the latest copy is made).
fn same_snapshot(c: &Commit, theirs: &Commit) -> bool {
    c.tree_id() == theirs.tree_id()
        && c.committer().when() == theirs.committer().when()
        && c.author().when() == theirs.author().when()
        && c.message_raw_bytes() == theirs.message_raw_bytes()
}

/// `latest` (the latest remote's parentless copy) re-committed on top of `tip`.
pub(super) fn on_top(store: &Store, latest: Oid, tip: Oid) -> Result<Oid> {
    let repo = &store.repo;
    recommit(repo, &repo.find_commit(latest)?, &[&repo.find_commit(tip)?])
}

/// `old` committed again (same tree, author, committer and message) on `parents`: with the
/// same parents, the same commit.
pub(super) fn recommit(repo: &git2::Repository, old: &Commit, parents: &[&Commit]) -> Result<Oid> {
    let message = old.message_raw().unwrap_or_default();
    let id = repo.commit(
        None,
        &old.author(),
        &old.committer(),
        message,
        &old.tree()?,
        parents,
    )?;
    Ok(id)
}

/// Refuse to replace the latest remote's `main` while this new repository has not yet asked the
/// history remote for its snapshots ([`super::recover::ADOPT_PENDING`]), unless it is a snapshot
/// this repository has (or pushed there): it may be the only copy of one the history remote
/// never got, which the adoption keeps.
pub(super) fn refuse_before_adopting(store: &Store, head: &Commit, main: Oid) -> Result<()> {
    let repo = &store.repo;
    if !repo.path().join(super::recover::ADOPT_PENDING).exists()
        || repo.refname_to_id(LATEST_TRACKING).ok() == Some(main)
    {
        return Ok(());
    }
    if let Ok(theirs) = repo.find_commit(main)
        && copies_an_ancestor(store, head, &theirs)
    {
        return Ok(());
    }
    bail!(
        "the latest remote's main {} is a snapshot this new repository does not have, and the \
         history remote could not be asked yet whether it has it: not replacing it (it may be \
         the only copy of a snapshot the history remote never got); the first run that reaches \
         the history remote keeps it and pushes here again by itself",
        super::short(main)
    )
}

/// Refuse to replace the latest remote's `main` with `local` (the head's copy) when it holds a
/// newer snapshot that this repository did not push last: this repository is an older copy (a
/// backup put back), or another machine pushes there. A main this repository pushed last may
/// be newer by its clock (a clock that ran fast): the head continues it.
pub(super) fn refuse_older_latest(store: &Store, head: &Commit, main: Oid) -> Result<()> {
    let repo = &store.repo;
    if repo.refname_to_id(LATEST_TRACKING).ok() == Some(main) {
        return Ok(());
    }
    let theirs = repo.find_commit(main)?;
    if theirs.time().seconds() <= head.time().seconds()
        || copies_an_ancestor(store, head, &theirs)
        || in_history_cache(store, &theirs)
    {
        return Ok(());
    }
    bail!(
        "the latest remote's main {} is a newer snapshot ({}) than the newest here ({}): \
         refusing to replace it with an older one (was this repository put back from an older \
         copy, or does another machine push there?); the next snapshot run pushes a newer one \
         (sqlgit snapshot --repo {}), and with a history remote `sqlgit push --repo {} \
         --reroot` makes this repository continue its newer snapshots",
        super::short(main),
        super::recover::show_time(&theirs),
        super::recover::show_time(head),
        crate::shellword::repo(&store.path),
        crate::shellword::repo(&store.path)
    )
}

/// Whether `theirs` (the latest remote's main) is the copy of `head` or of one of its
/// ancestors here (same tree, author, committer and message, as the latest copy is made): a
/// snapshot this history has already gone past, whatever the clocks said (one that ran fast,
/// then a rebuilt machine that lost the record of what it pushed).
pub(super) fn copies_an_ancestor(store: &Store, head: &Commit, theirs: &Commit) -> bool {
    holds_copy(&store.repo, head.id(), theirs)
}
