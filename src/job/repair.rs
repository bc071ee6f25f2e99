//! What a run does about damaged history before its snapshot (see `store::headrepair`): a
//! `main` cut short, a latest snapshot that cannot be read, an older one, a damaged `shallow`
//! file. Each is repaired by the run that meets it, and reported: a warning when nothing is
//! lost, else the failure line (once).

use anyhow::{Context, Result};

use super::Report;
use crate::remote;
use crate::store::headrepair::{self, Cut, SetAside};
use crate::store::lostmain;
use crate::store::{Store, short_id};

/// Before the history remote is asked: point a `main` that cannot be read at the newest
/// snapshot again, and set aside a latest snapshot whose commit cannot be read (to be fetched
/// again by `remote::adopt` when `remote_copy`, a history remote, is set).
pub fn before_adopt(
    store: &mut Store,
    remote_copy: bool,
    report: &mut Report,
) -> Result<Option<SetAside>> {
    if let Some(main) = headrepair::repair_main_ref(store).context("repair refs/heads/main")? {
        report.warnings.push(format!(
            "refs/heads/main could not be read (the file is kept in {}): {}",
            store.path.join(headrepair::DAMAGED_DIR).display(),
            match main {
                Some(id) => format!("it names the newest snapshot here again, {id}"),
                None => "no snapshot is readable here: the history starts again".to_string(),
            }
        ));
    }
    // `main` deleted or renamed with plain git, or lost with packed-refs: never a new history
    // while the snapshots are here (with a history remote too: the unpushed ones are kept).
    let why = "deleted or renamed with plain git, or lost with packed-refs?";
    if let Some(warning) = lostmain::recover(store, why).context("point main at the snapshots")? {
        report.warnings.push(warning);
    }
    let damaged_head = headrepair::set_aside_damaged_head(store, !remote_copy)
        .context("set aside the latest snapshot, which cannot be read")?;
    if damaged_head.as_ref().is_some_and(|a| a.main.is_none()) && remote_copy {
        // What the remote confirmed is asked again: `adopt` fetches its main.
        remote::forget_confirmed(store, remote::Role::History)?;
    }
    report.head_set_aside = damaged_head.is_some();
    Ok(damaged_head)
}

/// Cut the local history above an older snapshot that cannot be read (and find the cut again
/// after a damaged `shallow` file); returns the failure lines.
pub fn cut_damaged_history(
    store: &mut Store,
    remote_copy: bool,
    report: &mut Report,
) -> Result<Vec<String>> {
    let confirmed = remote_copy.then(|| remote::confirmed_history(store));
    let cut = headrepair::cut_at_damaged_commit(store, confirmed)
        .context("cut the local history above a snapshot that cannot be read")?;
    Ok(match &cut {
        Some(cut) => damaged_commit_report(store, cut, report)
            .into_iter()
            .collect(),
        None if report.shallow_set_aside => {
            report.warnings.push(format!(
                "the shallow file, where pruning cut the local history, could not be read (kept \
                 in {}): every older snapshot is still here, the history is whole",
                store.path.join(headrepair::DAMAGED_DIR).display()
            ));
            Vec::new()
        }
        None => Vec::new(),
    })
}

/// Report a cut above an older snapshot that could not be read (see [`headrepair`]): a warning
/// when the history remote has it, else the failure line.
fn damaged_commit_report(store: &Store, cut: &Cut, report: &mut Report) -> Option<String> {
    if report.shallow_set_aside && cut.missing {
        report.warnings.push(format!(
            "the shallow file, where pruning cut the local history, could not be read (kept in \
             {}): written again, the local history starts at {} as before",
            store.path.join(headrepair::DAMAGED_DIR).display(),
            short_id(cut.oldest)
        ));
        return None;
    }
    let what = format!(
        "snapshot {} cannot be read (its object is damaged or missing): the local history now \
         starts at the snapshot after it, {}",
        short_id(cut.damaged),
        short_id(cut.oldest)
    );
    match cut.remote_has_it {
        Some(true) => {
            report.warnings.push(format!(
                "{what} (the history remote has the older snapshots)"
            ));
            None
        }
        None => Some(format!(
            "{what}; it and the snapshots before it are lost here (no history remote is set)"
        )),
        Some(false) => Some(format!(
            "{what}; the history remote does not have it either, so the snapshots kept here \
             cannot be pushed on top of what it has: put them on top of it, run: {}",
            remote::reroot_command(store)
        )),
    }
}

/// Report what became of a latest snapshot that could not be read (see
/// [`headrepair`]): a warning when the history remote gave it back, else the failure line (the
/// snapshot is lost here).
pub fn damaged_head_report(aside: &SetAside, report: &mut Report) -> Option<String> {
    let id = short_id(aside.damaged);
    let what = match &aside.kept {
        Some(path) => format!(
            "the latest snapshot {id} could not be read (its object is damaged; the file is kept \
             as {})",
            path.display()
        ),
        None => {
            format!("the latest snapshot {id} could not be read (its object is damaged or missing)")
        }
    };
    if aside.main == Some(aside.damaged) {
        report
            .warnings
            .push(format!("{what}: an intact copy in a pack is read instead"));
        return None;
    }
    let tip = match &report.adopted {
        Some(remote::Adopted::Continued { tip, .. }) => Some(*tip),
        _ => None,
    };
    if tip == Some(aside.damaged) {
        report
            .warnings
            .push(format!("{what}: fetched again from the history remote"));
        return None;
    }
    // The remote could not be asked (or fetching from it failed): a later run tries again.
    let waiting = matches!(report.adopted, None | Some(remote::Adopted::Deferred(_)));
    Some(match (tip, aside.main) {
        (Some(tip), _) => format!(
            "{what}, and the history remote does not have it: the history continues from the \
             remote's latest snapshot {}",
            short_id(tip)
        ),
        (None, Some(main)) => format!(
            "{what}: it is lost; the history continues from snapshot {}, the newest one readable \
             here",
            short_id(main)
        ),
        (None, None) if waiting => format!(
            "{what}: the history remote could not give it back yet, so this snapshot starts a \
             history of its own (the next run that reaches the remote puts it on top of the \
             remote's)"
        ),
        (None, None) => format!(
            "{what}: it is lost, and no other snapshot is readable here: this snapshot starts a \
             new history"
        ),
    })
}
