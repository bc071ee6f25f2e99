//! `verify` of a snapshot whose chunks end elsewhere than today's sqlgit ends them.

use super::{ROWS_3000, s, snapshot};
use crate::env::TestEnv;

/// A snapshot whose rows are cut into chunks elsewhere than today's sqlgit cuts them (an older
/// sqlgit's, here two chunk files made one statement with plain git, its commit recording the
/// bytes it then holds) verifies: the restore holds the same rows, in other statements.
#[test]
fn a_snapshot_cut_into_other_chunks_verifies() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", ROWS_3000);
    let repo = env.path("app.sqlgit");
    snapshot(&env, &db, &repo);
    let git = |args: &[&str], stdin: &[u8]| env.git_plumbing(&repo, "recut.index", args, stdin);
    let files = git(&["ls-tree", "-r", "--name-only", "main"], b"");
    let chunks: Vec<&str> = files
        .lines()
        .filter(|f| f.starts_with("app.db/1-tables/t/1-rows/"))
        .take(2)
        .collect();
    let [first, second] = chunks[..] else {
        panic!("table t has several chunk files: {files}")
    };
    let (a, b) = (
        git(&["cat-file", "blob", &format!("main:{first}")], b""),
        git(&["cat-file", "blob", &format!("main:{second}")], b""),
    );
    let (head, rows_b) = b.split_once('\n').unwrap();
    let joined = format!("{},\n{rows_b}", a.strip_suffix(";\n").unwrap());
    let blob = git(&["hash-object", "-w", "--stdin"], joined.as_bytes());
    git(&["read-tree", "main"], b"");
    git(&["rm", "--cached", "-q", second], b"");
    let entry = format!("100644,{},{first}", blob.trim());
    git(&["update-index", "--cacheinfo", &entry], b"");
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"");
    let bytes = |m: &str| -> u64 {
        let line = m.lines().find(|l| l.starts_with("Sqlgit-Bytes: ")).unwrap();
        line["Sqlgit-Bytes: ".len()..].trim().parse().unwrap()
    };
    let was = bytes(&message);
    let now = was - head.len() as u64 - 1;
    let message = message.replace(
        &format!("Sqlgit-Bytes: {was}"),
        &format!("Sqlgit-Bytes: {now}"),
    );
    let commit = git(
        &["commit-tree", tree.trim(), "-p", "main"],
        message.as_bytes(),
    );
    git(&["update-ref", "refs/heads/main", commit.trim()], b"");
    let cat = env.sqlgit(&["cat", "--repo", &s(&repo)]).success();
    assert_eq!(
        cat.stdout().len() as u64,
        now,
        "the commit records what the files hold"
    );
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
}
