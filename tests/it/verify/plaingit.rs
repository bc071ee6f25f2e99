//! `verify` (and `status`) fail when plain git — the README's `git archive main | tar -xO |
//! sqlite3` — would read other content than sqlgit: a tree entry sqlgit never writes (a file
//! outside the database folder, a symbolic link, an executable, a submodule, a `.gitattributes`),
//! attributes or config that change what `git archive` writes, a ref that makes `main`
//! ambiguous. Each failure names the cause and its fix; after the fix the drill passes.

use std::path::Path;

use super::{ROWS_3000, s, snapshot};
use crate::env::TestEnv;

/// One snapshot of table `t` (3,000 rows, several chunks) in `app.sqlgit`; the repository.
fn one_snapshot(env: &TestEnv) -> std::path::PathBuf {
    let db = env.db_from_script("app.db", ROWS_3000);
    let repo = env.path("app.sqlgit");
    snapshot(env, &db, &repo);
    repo
}

/// A commit on main by plain git plumbing, with the snapshot's message (and so its `Sqlgit-*`
/// trailers), whose tree has the entry `mode,id,path` set.
fn commit_entry(env: &TestEnv, repo: &Path, mode: &str, id: &str, path: &str) {
    let git = |args: &[&str], stdin: &[u8]| -> String {
        let out = env.git_plumbing(repo, "entry.index", args, stdin);
        out.trim().to_string()
    };
    git(&["read-tree", "main"], b"");
    let entry = format!("{mode},{id},{path}");
    git(&["update-index", "--add", "--cacheinfo", &entry], b"");
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"");
    let commit = git(&["commit-tree", &tree, "-p", "main"], message.as_bytes());
    git(&["update-ref", "refs/heads/main", &commit], b"");
}

/// `sqlgit CMD --repo REPO` fails (exit 1) with every one of `wanted` in its stderr.
#[track_caller]
fn fails_naming(env: &TestEnv, cmd: &str, repo: &Path, wanted: &[&str]) {
    let err = env
        .sqlgit(&[cmd, "--repo", &s(repo)])
        .code_is(1)
        .stderr_str();
    for w in wanted {
        assert!(err.contains(w), "{cmd}: wanted {w:?} in: {err}");
    }
}

#[test]
fn tree_entries_sqlgit_never_writes_fail_verify_until_a_full_snapshot() {
    let cases = [
        (
            "100644",
            "zz.sql",
            "zz.sql is a file, outside every database folder",
        ),
        (
            "100644",
            "app.db/1-tables/t/notes.txt",
            "does not end in .sql",
        ),
        ("100644", "app.db/.gitattributes", "honours its attributes"),
        ("120000", "", "is a symbolic link"),
        ("100755", "", "is an executable file"),
        ("160000", "", "is a submodule"),
    ];
    for (mode, path, said) in cases {
        let env = TestEnv::new();
        let repo = one_snapshot(&env);
        let r = s(&repo);
        let files = env.git_in(&repo, &["ls-tree", "-r", "--name-only", "main"]);
        let chunk = files.lines().find(|f| f.contains("/1-rows/")).unwrap();
        let path = if path.is_empty() { chunk } else { path };
        let id = match mode {
            "160000" => env.git_in(&repo, &["rev-parse", "main"]),
            _ if path == chunk => env.git_in(&repo, &["rev-parse", &format!("main:{chunk}")]),
            _ => {
                let sql = env.write("stray.sql", "DELETE FROM t;\n* export-ignore\n");
                env.git_in(&repo, &["hash-object", "-w", &s(&sql)])
            }
        };
        commit_entry(&env, &repo, mode, &id, path);
        let fix = format!("sqlgit snapshot --repo {r} --full");
        fails_naming(&env, "verify", &repo, &[path, said, &fix]);
        if !path.contains('/') {
            // status reads the top of the newest snapshot.
            fails_naming(&env, "status", &repo, &[path, said, &fix]);
        }
        env.sqlgit(&["snapshot", "--repo", &r, "--full", "-q"])
            .success();
        env.sqlgit(&["verify", "--repo", &r]).success();
    }
}

#[test]
fn attributes_or_config_that_change_git_archive_fail_verify_and_status() {
    let env = TestEnv::new();
    let repo = one_snapshot(&env);
    let r = s(&repo);
    let info = repo.join("info/attributes");
    // Attributes that cannot touch a `.sql` file, or that switch conversion off, are harmless.
    std::fs::write(&info, "*.txt export-ignore\n*.sql -text binary\n").unwrap();
    env.sqlgit(&["verify", "--repo", &r]).success();
    std::fs::write(&info, "**/1-rows/*.sql export-ignore\n").unwrap();
    for cmd in ["verify", "status"] {
        fails_naming(&env, cmd, &repo, &[&s(&info), "1-rows/*.sql export-ignore"]);
    }
    std::fs::remove_file(&info).unwrap();
    // core.attributesFile in the repository's config, through a macro.
    let file = env.write("attrs", "[attr]windows eol=crlf\n* windows\n");
    env.git_in(&repo, &["config", "core.attributesFile", &s(&file)]);
    fails_naming(&env, "verify", &repo, &[&s(&file), "* windows"]);
    env.git_in(&repo, &["config", "--unset", "core.attributesFile"]);
    env.git_in(&repo, &["config", "core.autocrlf", "true"]);
    fails_naming(
        &env,
        "verify",
        &repo,
        &["core.autocrlf", "config core.autocrlf false"],
    );
    env.git_in(&repo, &["config", "core.autocrlf", "false"]);
    env.sqlgit(&["verify", "--repo", &r]).success();
}

#[test]
fn a_ref_that_makes_main_ambiguous_fails_verify_and_status() {
    let env = TestEnv::new();
    let repo = one_snapshot(&env);
    let r = s(&repo);
    let main = env.git_in(&repo, &["rev-parse", "main"]);
    let top = repo.join("main");
    let cases = [
        (
            "tag",
            format!("git -C {r} tag -d main"),
            "instead of refs/heads/main",
        ),
        (
            "refs/main",
            format!("git -C {r} update-ref --no-deref -d refs/main"),
            "instead of",
        ),
        (
            "refs/remotes/main",
            format!("git -C {r} update-ref --no-deref -d refs/remotes/main"),
            "warns that `main` is ambiguous",
        ),
        (
            "file",
            format!("rm {}", s(&top)),
            "instead of refs/heads/main",
        ),
    ];
    for (what, fix, said) in cases {
        match what {
            "tag" => drop(env.git_in(&repo, &["tag", "main", &main])),
            "file" => std::fs::write(&top, format!("{main}\n")).unwrap(),
            name => drop(env.git_in(&repo, &["update-ref", name, &main])),
        }
        for cmd in ["verify", "status"] {
            fails_naming(&env, cmd, &repo, &["makes `main` ambiguous", said, &fix]);
        }
        let mut run = env.command("sh");
        run.args(["-c", &fix]);
        env.run(run, b"").success();
        env.sqlgit(&["verify", "--repo", &r]).success();
    }
}
