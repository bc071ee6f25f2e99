//! Security: hostile table names stay inside the tree; database content never reaches a shell
//! (a logging `sh` on PATH sees only the hooks' own command lines).

use super::*;

/// Tables whose names try to leave the tree or make a `.git` path.
const HOSTILE_TABLES: &[&str] = &[
    "../../x",
    "..",
    ".",
    "a/b",
    "a%2Fb",
    "/etc/passwd",
    ".git",
    ".GiT ",
    ".git/config",
    ".git.",
    "git~1",
    "x\ny",
    "..\\..\\y",
    "a\\b",
    "%2e%2e",
    " ",
    "tab\there",
    "-rf",
    "0-create.sql",
    "1-rows",
];

#[test]
fn security_table_names_stay_inside_the_tree() {
    let env = TestEnv::new();
    let db = env.path("hostile.db");
    let conn = Connection::open(&db).unwrap();
    for (i, name) in HOSTILE_TABLES.iter().enumerate() {
        let q = format!("\"{}\"", name.replace('"', "\"\""));
        conn.execute_batch(&format!(
            "CREATE TABLE {q}(id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO {q} VALUES ({i}, 'row of table {i}');"
        ))
        .unwrap();
    }
    drop(conn);
    let listing_before = crate::env::list_dir(env.root());
    let run = env.sqlgit(&["snapshot", "hostile.db", "--repo", "hostile.sqlgit"]);
    let run = run.success();
    let _ = run;
    let repo = env.path("hostile.sqlgit");
    let mut p = Problems::default();
    let out = {
        let mut cmd = env.command("git");
        cmd.arg("-C")
            .arg(&repo)
            .args(["ls-tree", "-r", "-z", "--name-only", "main"]);
        env.run(cmd, b"").success().stdout().to_vec()
    };
    let paths: Vec<String> = out
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let mut table_dirs = std::collections::BTreeSet::new();
    for path in &paths {
        p.check(!path.starts_with('/'), || {
            format!("absolute path in the tree: {path:?}")
        });
        for part in path.split('/') {
            let lower = part.to_lowercase();
            let trimmed = lower.trim_end_matches(['.', ' ']);
            p.check(
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && trimmed != ".git"
                    && lower != "git~1",
                || format!("dangerous path component {part:?} in {path:?}"),
            );
            p.check(
                !part.contains('\\') && !part.bytes().any(|b| b.is_ascii_control()),
                || format!("backslash or control character in {path:?}"),
            );
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() >= 3 && parts[1] == "1-tables" {
            table_dirs.insert(parts[2].to_string());
        }
    }
    p.check(table_dirs.len() == HOSTILE_TABLES.len(), || {
        format!(
            "{} tables but {} table folders: {table_dirs:?}",
            HOSTILE_TABLES.len(),
            table_dirs.len()
        )
    });
    if let Some(e) = fsck_problems(&env, &repo) {
        p.push(e);
    }
    // Plain git restores it, and so does sqlgit; nothing was written outside.
    let restored = env.path("restored.db");
    env.sqlgit(&["restore", "--repo", "hostile.sqlgit", "--to", "restored.db"])
        .success();
    compare_databases(&db, &restored);
    let extract = env.path("extract");
    std::fs::create_dir(&extract).unwrap();
    let mut cmd = env.command("sh");
    cmd.args([
        "-c",
        "git -C hostile.sqlgit archive --format=tar main | tar -x -C extract",
    ]);
    env.run(cmd, b"").success();
    let mut listing = crate::env::list_dir(env.root());
    listing.retain(|n| !["hostile.sqlgit", "restored.db", "extract"].contains(&n.as_str()));
    p.check(listing == listing_before, || {
        format!("files appeared outside: {listing:?} (before: {listing_before:?})")
    });
    let mut extracted: Vec<String> = tree_state(&extract).into_keys().collect();
    extracted.retain(|k| !k.ends_with('/'));
    p.check(extracted.len() == paths.len(), || {
        format!(
            "the tree has {} files, the archive extracts {}",
            paths.len(),
            extracted.len()
        )
    });
    p.finish();
}

#[test]
fn security_no_database_content_reaches_a_shell() {
    let env = TestEnv::new();
    // A logging `sh` first on PATH: every shell sqlgit starts is recorded with its arguments.
    let bin = env.path("fakebin");
    std::fs::create_dir(&bin).unwrap();
    let log = env.path("sh.log");
    std::fs::write(
        bin.join("sh"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\036' \"$a\" >> '{}'; done\nprintf '\\n' >> '{}'\nexec /bin/sh \"$@\"\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let payloads = [
        "$(touch PWNED1)",
        "`touch PWNED2`",
        "'; touch PWNED3; '",
        "\"; touch PWNED4; \"",
        "; touch PWNED5 #",
        "\n touch PWNED6\n",
        "$(touch${IFS}PWNED7)",
    ];
    let db = env.path("inject.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
         CREATE TABLE \"$(touch PWNED_TABLE)\"(\"`touch PWNED_COLUMN`\" TEXT);
         INSERT INTO \"$(touch PWNED_TABLE)\" VALUES ('$(touch PWNED_VALUE)');",
    )
    .unwrap();
    for (i, s) in payloads.iter().enumerate() {
        conn.execute("INSERT INTO notes VALUES (?1, ?2)", (i as i64, s))
            .unwrap();
    }
    drop(conn);
    let ok_hook = "printf '%s|%s|%s|%s|%s\\n' \"$SQLGIT_COMMIT\" \"$SQLGIT_REPO\" \"$SQLGIT_TABLES\" \"$SQLGIT_ROWS\" \"$SQLGIT_ERROR\" >> hook.out; echo $SQLGIT_ERROR $SQLGIT_REPO >> hook.out; env > hook.env";
    let fail_hook =
        "printf 'failure|%s\\n' \"$SQLGIT_ERROR\" >> hook.out; echo $SQLGIT_ERROR >> hook.out";
    let repo = "repo-$(touch PWNED_REPO)";
    let vars = [("PATH", path.as_str())];
    let mut hooks_run = 0;
    let run = |args: &[&str]| sqlgit_umask022(&env, args, &vars);
    // Success: content and names in the snapshot.
    let r = run(&[
        "snapshot",
        "inject.db",
        "--repo",
        repo,
        "--on-success",
        ok_hook,
        "--on-failure",
        fail_hook,
    ]);
    if r.code() != Some(0) {
        r.fail("snapshot failed");
    }
    hooks_run += 1;
    // Failure: a remote URL and a database name carrying payloads end up in SQLGIT_ERROR.
    let r = run(&[
        "snapshot",
        "inject.db",
        "--repo",
        repo,
        "--history-remote",
        // No space: a URL with one is refused before the run (exit 2, no hook).
        "git://127.0.0.1:1/$(touch${IFS}PWNED_URL).git",
    ]);
    if r.code() != Some(1) {
        r.fail("the push to port 1 should fail");
    }
    hooks_run += 1;
    let r = run(&[
        "snapshot",
        "$(touch PWNED_DB).db",
        "--repo",
        repo,
        "--history-remote",
        "",
    ]);
    if r.code() != Some(1) {
        r.fail("a missing database should fail");
    }
    hooks_run += 1;
    // A verify (restores through sqlite, never a shell) and a restore.
    run(&["verify", "--repo", repo]).success();
    run(&["restore", "--repo", repo, "--to", "restored.db"]).success();
    compare_databases(&db, &env.path("restored.db"));

    let mut p = Problems::default();
    // No PWNED file anywhere.
    let mut pwned: Vec<String> = tree_state(env.root())
        .into_keys()
        .filter(|k| {
            k.rsplit('/')
                .find(|s| !s.is_empty())
                .is_some_and(|n| n.starts_with("PWNED"))
        })
        .collect();
    if let Ok(cwd) = std::env::current_dir() {
        pwned.extend(
            crate::env::list_dir(&cwd)
                .into_iter()
                .filter(|n| n.starts_with("PWNED")),
        );
    }
    p.check(pwned.is_empty(), || format!("a payload ran: {pwned:?}"));
    // The only shell from PATH is ours (`sh -c 'umask 022; exec …'`): sqlgit runs its hooks
    // (with their own text, the values in the environment) with /bin/sh, never one from PATH.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    for line in logged.lines() {
        let args: Vec<&str> = line.split('\u{1e}').filter(|a| !a.is_empty()).collect();
        if args.get(1) != Some(&"umask 022; exec \"$@\"") {
            p.push(format!("a shell from PATH ran with {args:?}"));
        }
    }
    let out = std::fs::read_to_string(env.path("hook.out")).unwrap_or_default();
    let failures = out.lines().filter(|l| l.starts_with("failure|")).count();
    let successes = out
        .lines()
        .filter(|l| !l.starts_with("failure|") && l.matches('|').count() == 4)
        .count();
    p.check(failures + successes == hooks_run, || {
        format!(
            "{} hooks ran for {hooks_run} runs; hook.out:\n{out}",
            failures + successes
        )
    });
    p.check(out.contains("PWNED_DB"), || {
        format!("the failure message should reach the hook (as data): {out}")
    });
    p.finish();
}
