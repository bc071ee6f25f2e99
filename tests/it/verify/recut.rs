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

/// A snapshot that spells a REAL as a decimal where today's sqlgit writes `ieee754(M,E)` (an
/// older sqlgit's, before the parsers of sqlite3 3.43 and later counted: `1e23` lies too close
/// to a midpoint between two doubles for them) verifies: it restores to the same bits.
#[test]
fn a_snapshot_spelling_reals_as_an_older_sqlgit_did_verifies() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE r(x REAL); INSERT INTO r VALUES (1e23), (-1e23), (0.5);",
    );
    let repo = env.path("app.sqlgit");
    snapshot(&env, &db, &repo);
    let git = |args: &[&str], stdin: &[u8]| env.git_plumbing(&repo, "respell.index", args, stdin);
    let files = git(&["ls-tree", "-r", "--name-only", "main"], b"");
    let chunk = files
        .lines()
        .find(|f| f.starts_with("app.db/1-tables/r/1-rows/"))
        .unwrap();
    let rows = git(&["cat-file", "blob", &format!("main:{chunk}")], b"");
    assert!(
        rows.contains("(1,ieee754(5960464477539062,24)),\n(2,ieee754(-5960464477539062,24)),\n"),
        "today's sqlgit spells 1e23 as ieee754(): {rows}"
    );
    let old = rows
        .replace("ieee754(5960464477539062,24)", "1e23")
        .replace("ieee754(-5960464477539062,24)", "-1e23");
    let blob = git(&["hash-object", "-w", "--stdin"], old.as_bytes());
    git(&["read-tree", "main"], b"");
    let entry = format!("100644,{},{chunk}", blob.trim());
    git(&["update-index", "--cacheinfo", &entry], b"");
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"");
    let shorter = (rows.len() - old.len()) as u64;
    let line = message
        .lines()
        .find(|l| l.starts_with("Sqlgit-Bytes: "))
        .unwrap();
    let was: u64 = line["Sqlgit-Bytes: ".len()..].trim().parse().unwrap();
    let message = message.replace(line, &format!("Sqlgit-Bytes: {}", was - shorter));
    let commit = git(
        &["commit-tree", tree.trim(), "-p", "main"],
        message.as_bytes(),
    );
    git(&["update-ref", "refs/heads/main", commit.trim()], b"");
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    // The two spellings are one value: `diff` shows no update, its patch changes nothing.
    let diff = env.sqlgit(&["diff", "--repo", &s(&repo), "main~1", "main"]);
    assert_eq!(diff.output.status.code(), Some(0), "{}", diff.stdout_str());
    let patch = env.sqlgit(&["diff", "--repo", &s(&repo), "main~1", "main", "--sql"]);
    assert_eq!(
        patch.output.status.code(),
        Some(0),
        "{}",
        patch.stdout_str()
    );
}
