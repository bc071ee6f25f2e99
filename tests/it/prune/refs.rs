//! Refs other than `main` on snapshots pruning cuts off — a user's tag or branch, sqlgit's own
//! `refs/sqlgit/…` — keep their snapshot, and plain git still reads the repository: `git fsck`
//! is clean and `git log REF` works (the ref's commit is cut off like the oldest kept one).

use super::{Fx, printed_commit};

#[test]
fn tags_branches_and_sqlgit_refs_on_pruned_snapshots_leave_plain_git_clean() {
    let fx = Fx::new(false);
    let ids: Vec<String> = (0..5)
        .map(|_| printed_commit(&fx.snapshot(&[]).success()))
        .collect();
    let repo = fx.repo.clone();
    fx.git(&repo, &["tag", "before-migration", &ids[3]]);
    fx.git(
        &repo,
        &[
            "-c",
            "user.name=u",
            "-c",
            "user.email=u@x",
            "tag",
            "-a",
            "-m",
            "pinned",
            "pinned",
            &ids[2],
        ],
    );
    fx.git(&repo, &["branch", "old", &ids[1]]);
    fx.git(
        &repo,
        &["update-ref", "refs/sqlgit/history-once-confirmed", &ids[0]],
    );
    for _ in 0..6 {
        fx.snapshot(&["--keep", "3"]).success();
    }
    assert_eq!(fx.count(&repo), 3);
    fx.assert_fsck(&repo);
    for (r, id) in [
        ("before-migration", &ids[3]),
        ("pinned", &ids[2]),
        ("old", &ids[1]),
    ] {
        let log = fx.git(&repo, &["log", "--format=%H", r]);
        assert_eq!(log.lines().next(), Some(id.as_str()), "git log {r}");
        let by_ref = fx.cat(Some(r), &repo).success();
        assert!(!by_ref.stdout().is_empty(), "sqlgit cat {r}");
    }
    // Pruning again keeps them cut off where they were.
    fx.snapshot(&[]).success();
    fx.assert_fsck(&repo);
}
