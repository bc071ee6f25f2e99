//! Bad repositories: `--repo` a regular file, a foreign git repository, missing: every command
//! that takes `--repo` refuses, naming it, and changes nothing.

use super::*;

// ------------------------------------------------------------------------------------------------
// Bad repositories
// ------------------------------------------------------------------------------------------------

/// Every command that takes `--repo`, pointed at `repo` (relative to the test dir).
fn repo_commands(repo: &str) -> Vec<Vec<String>> {
    let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    vec![
        r(&["snapshot", "app.db", "--repo", repo]),
        r(&["log", "--repo", repo]),
        r(&["cat", "--repo", repo]),
        r(&["status", "--repo", repo]),
        r(&["restore", "--repo", repo, "--to", "restored.db"]),
        r(&["verify", "--repo", repo]),
        r(&["push", "--repo", repo]),
        r(&["prune", "--repo", repo, "--keep", "3"]),
        r(&["diff", "HEAD~1", "--repo", repo]),
    ]
}

/// Run every `--repo` command against `repo`; each must be refused naming it, and change nothing
/// in the directory `watch` (recursive content) nor create `restored.db`.
fn refuse_every_command(
    fx: &Fx,
    rows: &mut Rows,
    input: &str,
    repo: &str,
    must_say: &[&str],
    p: &mut Problems,
) {
    let env = &fx.env;
    for args in repo_commands(repo) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = tree_state(env.root());
        let run = fx.run(&args);
        rows.add(input, &args, &run);
        let mut names = vec![repo];
        names.extend_from_slice(must_say);
        if let Err(e) = refusal(&run, &names) {
            p.push(e);
        }
        // `diff` documents exit 2 for every error; all other commands exit 1.
        let want = if args[0] == "diff" { 2 } else { 1 };
        p.check(run.code() == Some(want) || run.code() == Some(0), || {
            format!("{}: exit {:?}, want {want}", run.cmdline, run.code())
        });
        let mut after = tree_state(env.root());
        // A refused snapshot still records its failure in app.sqlgit's state file: not our repo.
        after.retain(|k, _| !k.starts_with("app.sqlgit/"));
        let mut before = before;
        before.retain(|k, _| !k.starts_with("app.sqlgit/"));
        if after != before {
            let changed: Vec<&String> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .map(|(k, _)| k)
                .chain(before.keys().filter(|k| !after.contains_key(*k)))
                .collect();
            p.push(format!("{}: changed {changed:?}", run.cmdline));
        }
    }
}

#[test]
fn repo_is_a_regular_file() {
    let fx = Fx::new();
    fx.env.write("not-a-repo", "just a file\n");
    let mut rows = Rows::new(&fx.env, 8, "repo-is-a-file");
    let mut p = Problems::default();
    refuse_every_command(
        &fx,
        &mut rows,
        "`--repo` is a regular file",
        "not-a-repo",
        &[],
        &mut p,
    );
    p.finish();
}

#[test]
fn repo_is_a_foreign_git_repository() {
    let fx = Fx::new();
    let env = &fx.env;
    // A plain `git init` with a commit, and a bare repository holding the same branch.
    std::fs::create_dir(env.path("work")).unwrap();
    git_out(env, &env.path("work"), &["init", "-q", "-b", "main"]);
    env.write("work/README", "mine\n");
    git_out(env, &env.path("work"), &["add", "README"]);
    git_out(env, &env.path("work"), &["commit", "-q", "-m", "my work"]);
    git_out(
        env,
        &env.path("work"),
        &["commit", "-q", "--allow-empty", "-m", "more"],
    );
    git_out(
        env,
        env.root(),
        &["clone", "-q", "--bare", "work", "bare.git"],
    );
    // An empty `git init`.
    git_out(env, env.root(), &["init", "-q", "empty"]);

    let mut rows = Rows::new(env, 9, "repo-is-foreign");
    let mut p = Problems::default();
    for (input, repo) in [
        (
            "`--repo` is a foreign git repository (`git init`, with commits)",
            "work",
        ),
        ("`--repo` is a foreign bare repository", "bare.git"),
        ("`--repo` is an empty `git init`", "empty"),
    ] {
        refuse_every_command(&fx, &mut rows, input, repo, &[], &mut p);
    }
    // Not foreign: a plain `git clone --bare` of a sqlgit repository (what one gets from the
    // history remote) has no `sqlgit.format` marker, but its snapshots must stay readable.
    git_out(
        env,
        env.root(),
        &["clone", "-q", "--bare", "app.sqlgit", "clone.git"],
    );
    for args in [
        vec!["log", "--repo", "clone.git"],
        vec!["cat", "--repo", "clone.git"],
        vec!["verify", "--repo", "clone.git"],
    ] {
        let run = fx.run(&args);
        p.check(run.code() == Some(0), || {
            format!(
                "{}: a bare clone of a sqlgit repository must stay readable: {} {}",
                run.cmdline,
                run.output.status,
                run.stderr_str()
            )
        });
    }
    p.finish();
}

#[test]
fn repo_missing() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 10, "repo-missing");
    let mut p = Problems::default();
    // `snapshot` creates a missing repository: every other command must refuse it.
    let env = &fx.env;
    for args in repo_commands("missing.sqlgit").into_iter().skip(1) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = fx.run(&args);
        rows.add("`--repo` missing", &args, &run);
        if let Err(e) = refusal(&run, &["missing.sqlgit"]) {
            p.push(e);
        }
        p.check(!env.path("missing.sqlgit").exists(), || {
            format!("{}: created the repository", run.cmdline)
        });
        p.check(!env.path("restored.db").exists(), || {
            format!("{}: created restored.db", run.cmdline)
        });
    }
    p.finish();
}
