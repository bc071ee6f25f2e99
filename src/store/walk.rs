//! Walking a repository's history one snapshot back at a time. A parent that cannot be read
//! (a commit cut short by a crash, or a `shallow` file gone where pruning cut the history) is
//! not the first snapshot: every reading command says so and names the repair, instead of
//! answering as if the history began there.

use std::path::Path;

use anyhow::{Result, bail};
use git2::{Commit, ErrorCode};

use super::short_id;

/// The snapshot before `commit` (None: `commit` is the first one, or where pruning cut the
/// history). An error naming `sqlgit snapshot --repo DIR --full` when it cannot be read.
pub fn parent<'r>(commit: &Commit<'r>, dir: &Path) -> Result<Option<Commit<'r>>> {
    if commit.parent_count() == 0 {
        return Ok(None);
    }
    match commit.parent(0) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            let id = commit.parent_id(0)?;
            let what = if e.code() == ErrorCode::NotFound {
                "is missing (damaged, or the repository's `shallow` file is gone)"
            } else {
                "is damaged"
            };
            bail!(
                "snapshot {}, the one before {}, {what}: the history here ends early; a run \
                 that reads everything cuts the local history above it, run: sqlgit snapshot \
                 --repo {} --full",
                short_id(id),
                short_id(commit.id()),
                crate::shellword::path(dir)
            )
        }
    }
}

/// How many snapshots the local history from `head` back holds, and the oldest one's time —
/// as far as it can be read, and why it cannot be read further (see [`parent`]).
pub fn count(head: Option<Commit>, dir: &Path) -> (usize, Option<i64>, Option<anyhow::Error>) {
    let (mut n, mut oldest) = (0, None);
    let mut next = head;
    while let Some(c) = next {
        n += 1;
        oldest = Some(c.time().seconds());
        next = match parent(&c, dir) {
            Ok(p) => p,
            Err(e) => return (n, oldest, Some(e)),
        };
    }
    (n, oldest, None)
}
