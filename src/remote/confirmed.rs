//! What the history remote is recorded to have confirmed, and the checks that keep that record
//! honest: pruning drops only what the remote confirmed, so a remote recreated or rewound since
//! must lower the record before a prune, and a push that is not a fast-forward is refused with
//! the one command (`push --reroot`) that puts the kept snapshots back on top of it.

use anyhow::{Context, Result, anyhow, bail};
use git2::{Oid, Repository};

use super::{
    HISTORY_TRACKING, LATEST_TRACKING, Options, Role, client, recover, scrubbed, short,
    validate_url,
};
use crate::store::Store;

/// Ask the history remote at `url` for its main and correct what it is recorded to have
/// confirmed ([`correct_confirmed`]): run before a prune that does not push first, so a remote
/// recreated since the last push cannot make pruning drop what it no longer has.
pub fn refresh_confirmed(store: &Store, url: &str, options: &Options) -> Result<()> {
    validate_url(url)?;
    let remote_main = client(store, options, url)?
        .remote_main(url)
        .map_err(|e| scrubbed(e, url))?;
    correct_confirmed(store, remote_main)
}

/// Make the history remote's tracking ref say no more than the remote has now: a remote that
/// was recreated or rewound no longer has what it once confirmed, and pruning relies on it.
pub(super) fn correct_confirmed(store: &Store, remote_main: Option<Oid>) -> Result<()> {
    let repo = &store.repo;
    let Ok(confirmed) = repo.refname_to_id(HISTORY_TRACKING) else {
        return Ok(());
    };
    let still_there = remote_main.is_some_and(|main| {
        main == confirmed
            || repo.find_commit(main).is_ok()
                && repo.graph_descendant_of(main, confirmed).unwrap_or(false)
    });
    if still_there {
        return Ok(());
    }
    // Rewound to exactly where pruning cut (a backup taken then): the next push gives it back
    // every kept snapshot, so nothing is left to remember.
    if let (Some(main), Ok(Some(head))) = (remote_main, store.head())
        && crate::store::walk::continues_cut(repo, head.id(), main)
    {
        return forget_confirmed(store, Role::History);
    }
    match remote_main.filter(|main| repo.find_commit(*main).is_ok()) {
        Some(main) => {
            repo.reference(HISTORY_TRACKING, main, true, "sqlgit: remote rewound")?;
        }
        None => {
            forget_confirmed(store, Role::History)?;
            if remote_main.is_none() {
                // Emptied (recreated): the history cache may hold the only copy of what was
                // pruned here, kept as lost until a re-root puts it back.
                crate::store::cache::remote_emptied(store)?;
            }
            if remote_main.is_some() {
                // Not lost: it may be below the remote's main (an older copy of this repository).
                recover::remember_confirmed(store, confirmed)?;
            }
        }
    }
    Ok(())
}

/// Refuse a history push that is not a fast-forward of the remote's main, or that would leave
/// it with commits whose parents it lacks, with the one command that resolves it.
pub(super) fn check_fast_forward(
    store: &Store,
    local: Oid,
    remote_main: Option<Oid>,
) -> Result<()> {
    let repo = &store.repo;
    match remote_main {
        None if repo
            .find_commit(local)
            .is_ok_and(|c| crate::store::walk::cut_of(repo, &c).is_some()) =>
        {
            bail!(
                "the history remote is empty but older snapshots were pruned here (was it \
                 recreated?): re-seed it with the {} kept here, run: {}",
                kept(store),
                reroot_command(store)
            )
        }
        None => Ok(()),
        Some(main) if repo.find_commit(main).is_ok() => match repo.graph_descendant_of(local, main)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(diverged_error(store, main)),
            // A damaged snapshot on the way is not a diverged remote.
            Err(e) => bail!(
                "cannot tell whether the snapshots here continue the remote's main {}: {}; a \
                 run that reads everything cuts the local history above a snapshot that cannot \
                 be read, run: sqlgit snapshot --repo {} --full",
                short(main),
                e.message(),
                crate::shellword::repo(&store.path)
            ),
        },
        // Its main is the own parent of a commit where a graft cuts the history here (a
        // backup taken where pruning cut): a plain fast-forward, which git accepts.
        Some(main) if crate::store::walk::continues_cut(repo, local, main) => Ok(()),
        Some(main) => Err(diverged_error(store, main)),
    }
}

/// "N snapshots", the kept snapshots a refusal names (counted only when a push is refused).
fn kept(store: &Store) -> String {
    let n = store.local_snapshots();
    format!("{n} {}", if n == 1 { "snapshot" } else { "snapshots" })
}

/// Refusal of a history push onto a remote whose main has snapshots this repository lacks
/// (or that is a latest copy: [`latest_copy_error`]).
fn diverged_error(store: &Store, main: Oid) -> anyhow::Error {
    if let Some(e) = latest_copy_error(store, main) {
        return e;
    }
    anyhow!(
        "the remote's main {} is not a snapshot this repository has: it diverged (another \
         machine, someone else or an older copy of this repository pushed there), or it was \
         rewound (restored from an older backup of itself, it lacks snapshots it confirmed), \
         and sqlgit never rewrites a remote's history; to put those of the {} kept here that it \
         lacks (it may have some already) on top of it, run: {} (if another machine snapshots to this remote, give each machine its own \
         remote instead; if the remote holds history sqlgit did not write, point \
         --history-remote at an empty repository)",
        short(main),
        kept(store),
        reroot_command(store)
    )
}

/// When the history remote's `main` is not history but a latest copy of this repository (a
/// parentless copy of one of its snapshots, as the latest remote is force-pushed): the error
/// saying so, and that the two remotes are one repository when it is the very copy this
/// repository last pushed to its latest remote (a spelling [`super::check_roles`] cannot tell
/// apart: a symlink on the server, a DNS name). A re-root cannot help there (the copy is newer
/// than the snapshots kept here), and the latest push would erase what it put there.
pub(super) fn latest_copy_error(store: &Store, main: Oid) -> Option<anyhow::Error> {
    let repo = &store.repo;
    let pushed_last = repo.refname_to_id(LATEST_TRACKING).ok() == Some(main);
    let theirs = repo.find_commit(main).ok()?;
    let head = store.head().ok()??;
    // Its own parents, whatever grafts (where pruning cut) say.
    let parentless = !String::from_utf8_lossy(theirs.raw_header_bytes())
        .lines()
        .any(|l| l.starts_with("parent "));
    let copy = parentless
        && theirs
            .tree()
            .is_ok_and(|t| crate::store::is_snapshot_tree(repo, &t))
        && super::rescue::copies_an_ancestor(store, &head, &theirs);
    if !pushed_last && !copy {
        return None;
    }
    let what = match pushed_last {
        true => {
            "the very copy this repository last force-pushed to its latest remote: the \
                 history remote and the latest remote are the same repository (one URL spelled \
                 two ways that the remote check cannot tell apart, such as a symlink on the \
                 server or another DNS name of it)"
        }
        false => {
            "a one-commit copy of a snapshot here, as this repository force-pushes to its \
                  latest remote: the history remote is (or was) the latest remote's repository"
        }
    };
    Some(anyhow!(
        "the history remote's main {} is not history but {what}; each latest push would erase \
         the history pushed there, and a re-root cannot help; give the history remote an empty \
         repository of its own, run: {}",
        short(main),
        command(store, "init", "--history-remote URL"),
    ))
}

/// The command that re-roots the kept snapshots onto the history remote (as this program was
/// started: its name when found on PATH, else its full path).
pub fn reroot_command(store: &Store) -> String {
    command(store, "push", "--reroot")
}

/// `sqlgit SUBCOMMAND --repo DIR ARGS` for this repository, as this program was started (see
/// [`reroot_command`]).
pub fn command(store: &Store, subcommand: &str, args: &str) -> String {
    let exe = std::env::args_os()
        .next()
        .filter(|a| !a.to_string_lossy().contains('/') && !a.is_empty())
        .map(|a| a.to_string_lossy().into_owned())
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| "sqlgit".into());
    format!(
        "{} {subcommand} --repo {} {args}",
        crate::shellword::quote(&exe),
        crate::shellword::repo(&store.path)
    )
}

/// Forget what a remote confirmed (its URL changed: the new one may have nothing).
pub fn forget_confirmed(store: &Store, role: Role) -> Result<()> {
    let tracking = match role {
        Role::History => HISTORY_TRACKING,
        Role::Latest => LATEST_TRACKING,
    };
    if let Ok(mut r) = store.repo.find_reference(tracking) {
        r.delete()?;
    }
    if role == Role::History {
        recover::forget_once_confirmed(store)?;
    }
    Ok(())
}

/// The newest snapshot the history remote confirmed having.
pub fn confirmed_history(store: &Store) -> Option<Oid> {
    store.repo.refname_to_id(HISTORY_TRACKING).ok()
}

/// How many snapshot commits the history remote has not confirmed; an error when the local
/// history between cannot be read (a damaged commit, a `shallow` file gone): the count is not
/// known then, and the damaged snapshot is what to report, not a push the next run would make.
pub fn pending_history(store: &Store) -> Result<usize> {
    let Some(head) = store.head()? else {
        return Ok(0);
    };
    let base = store
        .repo
        .refname_to_id(HISTORY_TRACKING)
        .unwrap_or(Oid::ZERO_SHA1);
    count_between(&store.repo, head.id(), base).context("the local history between cannot be read")
}

/// The commits from `tip` back to `base` (without it); None when a commit on the way, or
/// below `base` where the walk marks what the remote has, cannot be read.
pub(super) fn count_between(repo: &Repository, tip: Oid, base: Oid) -> Option<usize> {
    if tip == base {
        return Some(0);
    }
    let mut walk = repo.revwalk().ok()?;
    walk.push(tip).ok()?;
    if !base.is_zero() {
        walk.hide(base).ok()?;
    }
    let mut n = 0;
    for id in walk {
        id.ok()?;
        n += 1;
    }
    Some(n)
}
