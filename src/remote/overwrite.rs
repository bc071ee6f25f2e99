//! The latest remote is force-pushed, so what is there is checked first: a mistyped URL must
//! not overwrite someone's repository, and a job pointed at another database's latest remote
//! must not replace that database's only latest copy.

use anyhow::{Context as _, Result, bail};
use git2::Oid;

use super::{Client, LATEST_TRACKING, scrubbed, short};
use crate::store::Store;

/// The latest remote is force-pushed: refuse when its main is not a sqlgit latest snapshot (a
/// parentless commit of snapshot folders), so a mistyped URL cannot overwrite someone's
/// repository. A main this repository pushed last is fine without asking more.
pub(super) fn check_overwritable(
    store: &Store,
    client: &dyn Client,
    url: &str,
    main: Oid,
) -> Result<()> {
    let repo = &store.repo;
    if repo.refname_to_id(LATEST_TRACKING).ok() == Some(main) {
        return Ok(());
    }
    const CHECKED: &str = "refs/sqlgit/latest-checked";
    let known = repo.find_commit(main).is_ok();
    if !known {
        // A depth-1 fetch lists the fetched commit in the `shallow` file, which names where
        // pruning cut local history: put it back as it was, or a rebuilt machine's reach into
        // older snapshots would look for the latest remote's commit on the history remote.
        let shallow = repo.path().join("shallow");
        let before = std::fs::read(&shallow).ok();
        let fetched = client
            .fetch_main(url, CHECKED)
            .map_err(|e| scrubbed(e, url))
            .context("fetch the latest remote's main to check it");
        if let Ok(mut r) = repo.find_reference(CHECKED) {
            let _ = r.delete();
        }
        restore_shallow(&shallow, before.as_deref())?;
        fetched?;
    }
    let commit = repo.find_commit(main)?;
    // Its own parents, whatever grafts (a shallow fetch) say.
    let has_parent = String::from_utf8_lossy(commit.raw_header_bytes())
        .lines()
        .any(|l| l.starts_with("parent "));
    if has_parent && in_history(repo, main) {
        bail!(
            "the latest remote's main ({}) is a snapshot of this repository's history: the \
             latest remote {} names the history remote's repository (its URL spelled another \
             way, or a copy of it), and its force push would erase that history; refusing to \
             overwrite it: give the latest remote a repository of its own (run: sqlgit init \
             --repo {} --latest-remote URL, or --latest-remote '' for none)",
            short(main),
            super::redact(url),
            crate::shellword::repo(&store.path)
        );
    }
    if has_parent || !crate::store::is_snapshot_tree(repo, &commit.tree()?) {
        bail!(
            "the latest remote's main ({}) is not a sqlgit snapshot: refusing to overwrite it \
             (point --latest-remote at an empty repository, or one only sqlgit pushes to)",
            short(main)
        );
    }
    Ok(())
}

/// Whether `id` is on this repository's history (its main, or what the history remote was last
/// seen to hold), where no latest snapshot (a parentless commit) with a parent ever is.
fn in_history(repo: &git2::Repository, id: Oid) -> bool {
    [crate::store::BRANCH, super::HISTORY_TRACKING]
        .iter()
        .filter_map(|r| repo.refname_to_id(r).ok())
        .any(|tip| tip == id || repo.graph_descendant_of(tip, id).unwrap_or(false))
}

/// Refuse a latest remote whose main holds none of the databases this repository's newest
/// snapshot holds: it is another database's latest copy (another repository's job pointed at
/// the same remote), and a force push would replace it, the two jobs then taking turns.
pub(super) fn refuse_another_database(store: &Store, head: &git2::Commit, main: Oid) -> Result<()> {
    let repo = &store.repo;
    if repo.refname_to_id(LATEST_TRACKING).ok() == Some(main) {
        return Ok(());
    }
    let folders = |tree: &git2::Tree| -> Vec<String> {
        tree.iter()
            .filter_map(|e| e.name().ok().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect()
    };
    let ours = folders(&head.tree()?);
    let theirs = folders(&repo.find_commit(main)?.tree()?);
    if ours.is_empty() || theirs.iter().any(|n| ours.contains(n)) {
        return Ok(());
    }
    bail!(
        "the latest remote's main ({}) is a snapshot of {}, not of {}: it is another database's \
         latest copy (another repository pushes there), which this repository must not \
         overwrite; give this repository a latest remote of its own, run: sqlgit init --repo {} \
         --latest-remote URL (an empty repository)",
        short(main),
        theirs.join(", "),
        ours.join(", "),
        crate::shellword::repo(&store.path)
    )
}

/// Put the `shallow` file back to `before` (None: there was none), atomically.
fn restore_shallow(shallow: &std::path::Path, before: Option<&[u8]>) -> Result<()> {
    if std::fs::read(shallow).ok().as_deref() == before {
        return Ok(());
    }
    let put_back = match before {
        None => std::fs::remove_file(shallow),
        Some(text) => {
            let tmp = shallow.with_extension("sqlgit-tmp");
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, shallow))
        }
    };
    put_back.with_context(|| format!("restore {}", shallow.display()))
}
