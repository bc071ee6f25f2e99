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

/// A tag on a snapshot's tree, on one dump file, an annotated tag of a tree and an annotated tag
/// of that tag: pruning keeps every object a ref names, whatever its type (git's own gc does).
#[test]
fn tags_on_trees_and_blobs_keep_their_objects() {
    let fx = Fx::new(false);
    fx.snapshot(&[]).success();
    let repo = fx.repo.clone();
    let tag = |args: &[&str]| {
        let mut all = vec!["-c", "user.name=u", "-c", "user.email=u@x", "tag"];
        all.extend_from_slice(args);
        fx.git(&repo, &all);
    };
    let file = fx.git(&repo, &["ls-tree", "-r", "--format=%(objectname)", "main"]);
    let file = file.lines().next().unwrap().to_string();
    tag(&["tree-tag", "main^{tree}"]);
    tag(&["blob-tag", &file]);
    tag(&["-a", "-m", "tree", "tree-annotated", "main^{tree}"]);
    tag(&["-a", "-m", "of a tag", "tag-of-tag", "tree-annotated"]);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "2"]).success();
    }
    assert_eq!(fx.count(&repo), 2);
    fx.assert_fsck(&repo);
    for t in ["tree-tag", "tree-annotated", "tag-of-tag"] {
        fx.git(&repo, &["archive", "-o", "/dev/null", t]);
    }
    fx.git(&repo, &["cat-file", "blob", "blob-tag"]);
    fx.sqlgit(&["verify", "--repo", &fx.repo_arg(), "-q"])
        .success();
}

/// `git worktree add` on sqlgit's repository to look at a snapshot's files: its HEAD, the
/// objects its index lists and its own refs (`refs/bisect/…`) are roots, as for `git gc`; and
/// `verify` and `status` fail when such a root's objects are gone (an older sqlgit pruned them).
#[test]
fn a_git_worktree_on_the_repository_keeps_its_snapshot() {
    let fx = Fx::new(false);
    let ids: Vec<String> = (0..3)
        .map(|_| printed_commit(&fx.snapshot(&[]).success()))
        .collect();
    let repo = fx.repo.clone();
    let look = fx.env.path("look");
    let look_arg = look.display().to_string();
    fx.git(
        &repo,
        &["worktree", "add", "-q", "--detach", &look_arg, &ids[2]],
    );
    fx.git(&look, &["update-ref", "refs/bisect/bad", &ids[1]]);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "2"]).success();
    }
    assert_eq!(fx.count(&repo), 2);
    fx.assert_fsck(&repo);
    assert_eq!(fx.git(&look, &["log", "-1", "--format=%H"]), ids[2]);
    fx.git(&look, &["status", "--porcelain"]);
    fx.git(&look, &["log", "-1", "refs/bisect/bad"]);
    fx.git(&repo, &["gc", "-q"]);
    let verify = |code: i32| {
        fx.sqlgit(&["verify", "--repo", &fx.repo_arg(), "-q"])
            .code_is(code)
    };
    verify(0);
    fx.sqlgit(&["status", "--repo", &fx.repo_arg()]).success();
    // The worktree's commit gone (as an older sqlgit's pruning left it): no longer green.
    std::fs::write(
        repo.join("worktrees/look/HEAD"),
        "0123456789012345678901234567890123456789\n",
    )
    .unwrap();
    let said = verify(1).stderr_str();
    assert!(
        said.contains("worktrees/look/HEAD") && said.contains("git worktree remove"),
        "{said}"
    );
    let status = fx.sqlgit(&["status", "--repo", &fx.repo_arg()]).failure();
    assert!(
        status.stdout_str().contains("worktrees/look/HEAD")
            || status.stderr_str().contains("worktrees/look/HEAD"),
        "status: {}",
        status.stdout_str()
    );
}

/// A `git stash` in a worktree on the first snapshot (a merge commit: its index commit is a
/// second parent) and a blob staged with a split index (`core.splitIndex`: entries kept in
/// `sharedindex.<id>`) survive pruning, as `git gc` keeps them.
#[test]
fn a_stash_and_a_split_index_keep_what_they_need() {
    let fx = Fx::new(false);
    fx.snapshot(&[]).success();
    let repo = fx.repo.clone();
    let wt = fx.env.path("wt");
    let wt_arg = wt.display().to_string();
    fx.git(&repo, &["worktree", "add", "-q", &wt_arg, "main"]);
    let file = fx
        .git(&wt, &["ls-files"])
        .lines()
        .last()
        .unwrap()
        .to_string();
    let edit = |text: &str| {
        let path = wt.join(&file);
        let mut body = std::fs::read(&path).unwrap();
        body.extend_from_slice(text.as_bytes());
        std::fs::write(&path, body).unwrap();
        fx.git(&wt, &["add", &file]);
    };
    edit("-- stashed edit\n");
    fx.git(
        &wt,
        &["-c", "user.name=t", "-c", "user.email=t@e", "stash", "-q"],
    );
    let index_commit = fx.git(&wt, &["rev-parse", "stash@{0}^2"]);
    fx.git(&wt, &["config", "core.splitIndex", "true"]);
    edit("-- staged edit\n");
    let staged = fx.git(&wt, &["rev-parse", &format!(":{file}")]);
    for _ in 0..4 {
        fx.snapshot(&["--keep", "1"]).success();
    }
    fx.assert_fsck(&repo);
    fx.git(&repo, &["cat-file", "-e", &index_commit]);
    fx.git(&repo, &["cat-file", "-e", &staged]);
    fx.git(&wt, &["stash", "show", "-p"]);
}
