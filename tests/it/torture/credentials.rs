//! Security: credentials (URL userinfo, `SQLGIT_HTTPS_TOKEN`) appear in no output, state file,
//! metrics file, hook environment or commit message.

use super::*;

#[test]
fn security_credentials_never_leak() {
    let env = TestEnv::new();
    // Latest: Basic auth from the URL's userinfo. History: a token from SQLGIT_HTTPS_TOKEN.
    let url_server = HttpGit::start_in(env.path("web1"), "alice", "UrlSecret4711");
    url_server.create_bare("latest");
    let token_server = HttpGit::start_in(env.path("web2"), "sqlgit", "TokenSecret0815");
    token_server.create_bare("history");
    let latest = url_server.url_with_credentials("latest", "alice", "UrlSecret4711");
    let history = token_server.url("history");
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO t(v) VALUES ('a');\n",
    );
    let token = ("SQLGIT_HTTPS_TOKEN", "TokenSecret0815");
    let hooks = [
        "--on-success",
        "env > hook-success.env",
        "--on-failure",
        "env > hook-failure.env",
        "--metrics-file",
        "metrics.prom",
    ];
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut keep = |what: String, run: &Run| {
        outputs.push((format!("stdout of {what}"), run.stdout_str()));
        outputs.push((format!("stderr of {what}"), run.stderr_str()));
    };
    let mut args = vec![
        "snapshot",
        "app.db",
        "--repo",
        "app.sqlgit",
        "--latest-remote",
        &latest,
        "--history-remote",
        &history,
    ];
    args.extend(hooks);
    let run = sqlgit_umask022(&env, &args, &[token]);
    if run.code() != Some(0) {
        run.fail("the snapshot with both credentials failed");
    }
    keep("the first snapshot".into(), &run);
    env.sqlite3(env.path("app.db"), "INSERT INTO t(v) VALUES ('b');")
        .success();
    // The latest remote's password is never saved: cron gives the URL with it every run.
    let run = sqlgit_umask022(
        &env,
        &[
            "snapshot",
            "--repo",
            "app.sqlgit",
            "--latest-remote",
            &latest,
        ],
        &[token],
    );
    if run.code() != Some(0) {
        run.fail("the configured snapshot failed");
    }
    keep("the second snapshot".into(), &run);
    assert!(
        env.path("hook-success.env").exists(),
        "the success hook did not run"
    );
    // Failures: a wrong token, and a wrong password in the URL.
    env.sqlite3(env.path("app.db"), "INSERT INTO t(v) VALUES ('c');")
        .success();
    let run = sqlgit_umask022(
        &env,
        &["snapshot", "--repo", "app.sqlgit"],
        &[("SQLGIT_HTTPS_TOKEN", "WrongToken999")],
    );
    if run.code() != Some(1) {
        run.fail("a wrong token must fail the run");
    }
    keep("the run with a wrong token".into(), &run);
    let wrong = url_server.url_with_credentials("latest", "alice", "WrongUrlPw123");
    let run = sqlgit_umask022(
        &env,
        &["push", "--repo", "app.sqlgit", "--latest-remote", &wrong],
        &[token],
    );
    if run.code() != Some(1) {
        run.fail("a wrong password must fail the push");
    }
    keep("the push with a wrong password".into(), &run);
    let run = sqlgit_umask022(
        &env,
        &["snapshot", "--repo", "app.sqlgit"],
        &[("SQLGIT_HTTPS_TOKEN", "WrongToken999")],
    );
    keep("the second run with a wrong token".into(), &run);
    assert!(
        env.path("hook-failure.env").exists(),
        "the failure hook did not run"
    );
    for args in [
        vec!["log", "--repo", "app.sqlgit"],
        vec!["log", "--repo", "app.sqlgit", "--json"],
        vec!["status", "--repo", "app.sqlgit"],
        vec!["status", "--repo", "app.sqlgit", "--json"],
    ] {
        let run = sqlgit_umask022(&env, &args, &[token]);
        keep(format!("sqlgit {}", args.join(" ")), &run);
    }

    let read = |p: &str| std::fs::read_to_string(env.path(p)).unwrap_or_default();
    outputs.push((
        "the state file".into(),
        read("app.sqlgit/sqlgit-state.json"),
    ));
    outputs.push(("the metrics file".into(), read("metrics.prom")));
    outputs.push((
        "the success hook's environment".into(),
        read("hook-success.env"),
    ));
    outputs.push((
        "the failure hook's environment".into(),
        read("hook-failure.env"),
    ));
    for (what, dir) in [
        ("local", env.path("app.sqlgit")),
        ("latest remote", url_server.repo_path("latest")),
        ("history remote", token_server.repo_path("history")),
    ] {
        outputs.push((
            format!("commit messages ({what})"),
            git_out(
                &env,
                &dir,
                &["log", "--all", "--format=%H %an %ae %cn %ce%n%B"],
            ),
        ));
    }
    // Every file of the repository that is not compressed (objects are checked via git log).
    for (rel, (_, bytes)) in tree_state(&env.path("app.sqlgit")) {
        if rel.starts_with("objects/") || rel == "config" {
            continue;
        }
        if let Some(bytes) = bytes {
            outputs.push((
                format!("app.sqlgit/{rel}"),
                String::from_utf8_lossy(&bytes).into(),
            ));
        }
    }
    let secrets = [
        "UrlSecret4711",
        "TokenSecret0815",
        "WrongToken999",
        "WrongUrlPw123",
        // What a Basic auth header would carry: base64("alice:UrlSecret4711").
        "YWxpY2U6VXJsU2VjcmV0NDcxMQ",
    ];
    let mut p = Problems::default();
    for (what, text) in &outputs {
        for s in secrets {
            p.check(!text.contains(s), || {
                format!("{s:?} appears in {what}:\n{text}")
            });
        }
    }
    let hook_env = read("hook-success.env");
    p.check(hook_env.contains("SQLGIT_RESULT=success"), || {
        format!("the hook environment lacks SQLGIT_RESULT:\n{hook_env}")
    });
    p.check(!hook_env.contains("SQLGIT_HTTPS_TOKEN"), || {
        "the hook sees SQLGIT_HTTPS_TOKEN".into()
    });
    // The URL is stored in the config (documented): private.
    let config = env.path("app.sqlgit/config");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o7777;
    p.check(mode == 0o600, || {
        format!("app.sqlgit/config has mode {mode:o}, want 600")
    });
    p.finish();
}
