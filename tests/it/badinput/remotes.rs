//! Bad remotes: a malformed URL, an unreachable remote, a remote that is not a repository, an
//! authentication failure (no secret in any output).

use super::*;

// ------------------------------------------------------------------------------------------------
// Bad remotes
// ------------------------------------------------------------------------------------------------

/// A URL no push could use is refused before it is saved, as `init` refuses it: exit 2, the
/// flag and the cause named, the config unchanged, a password not shown.
#[test]
fn remote_url_malformed() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 15, "remote-malformed");
    let mut p = Problems::default();
    for url in ["http://[::1", "ftp://127.0.0.1/x.git", "not a url"] {
        // Without "://" a URL is a local path or an scp-like address: its push says what fails.
        let want: &[&str] = match url.contains("://") {
            true => &["--history-remote", "bad remote URL", url],
            false => &["history remote", url],
        };
        refused_url(&fx, &mut rows, "malformed remote URL", url, want, &mut p);
    }
    let url = "http://alice:Malformed7Secret@[::1/x.git";
    let run = refused_url(
        &fx,
        &mut rows,
        "malformed remote URL with a password",
        url,
        &["--history-remote", "***@"],
        &mut p,
    );
    p.check(!run.stderr_str().contains("Malformed7Secret"), || {
        format!("the password is shown: {}", run.stderr_str())
    });
    // `init` refuses it the same way: a usage error naming the flag.
    let args = [
        "init",
        "--repo",
        "app.sqlgit",
        "--history-remote",
        "ftp://127.0.0.1/x.git",
    ];
    let run = sqlgit(&fx.env, &args, &[]);
    p.check(
        run.code() == Some(2)
            && run
                .stderr_str()
                .contains("--history-remote: bad remote URL"),
        || format!("init: exit {:?}: {}", run.code(), run.stderr_str()),
    );
    p.finish();
}

/// `snapshot --history-remote URL` with a malformed URL: refused with `names` in its line.
fn refused_url(
    fx: &Fx,
    rows: &mut Rows,
    input: &str,
    url: &str,
    names: &[&str],
    p: &mut Problems,
) -> Run {
    if !names.contains(&"--history-remote") {
        return bad_remote(fx, rows, input, url, &[], &[url], &[], p);
    }
    let before = fx.state();
    let args = [
        "snapshot",
        "app.db",
        "--repo",
        "app.sqlgit",
        "--history-remote",
        url,
    ];
    let run = sqlgit(&fx.env, &args, &[]);
    rows.add(input, &args, &run);
    match refusal(&run, names) {
        Ok(_) => p.check(run.code() == Some(2), || {
            format!("{}: exit {:?}, want 2", run.cmdline, run.code())
        }),
        Err(e) => p.push(e),
    }
    for e in state_problems(&before, &fx.state(), true, input) {
        p.push(e);
    }
    run
}

#[test]
fn remote_unreachable() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 16, "remote-unreachable");
    let mut p = Problems::default();
    let port = free_port(); // nothing listens there
    rows.show_as(format!(":{port}/"), ":PORT/");
    for url in [
        format!("git://127.0.0.1:{port}/x.git"),
        format!("http://127.0.0.1:{port}/x.git"),
        format!("ssh://git@127.0.0.1:{port}/x.git"),
    ] {
        let shown = url.replace("git@", "***@");
        bad_remote(
            &fx,
            &mut rows,
            "unreachable remote (nothing listening)",
            &url,
            &[],
            &[&shown],
            &[],
            &mut p,
        );
    }
    p.finish();
}

#[test]
fn remote_is_not_a_repository() {
    let fx = Fx::new();
    let daemon = GitDaemon::start_in(fx.env.path("srv"));
    let http = HttpGit::start_in(fx.env.path("web"), "alice", "RightPass2026");
    let mut rows = Rows::new(&fx.env, 17, "remote-not-a-repo");
    rows.show_as(format!(":{}/", daemon.port()), ":PORT/");
    rows.show_as(format!(":{}/", http.port()), ":PORT/");
    let mut p = Problems::default();
    let git_url = daemon.url("nothing-here");
    bad_remote(
        &fx,
        &mut rows,
        "remote is not a git repository",
        &git_url,
        &[],
        &[&git_url],
        &[],
        &mut p,
    );
    let http_url = http.url_with_credentials("nothing-here", "alice", "RightPass2026");
    bad_remote(
        &fx,
        &mut rows,
        "remote is not a git repository",
        &http_url,
        &[],
        &["***@"],
        &["RightPass2026"],
        &mut p,
    );
    p.finish();
}

#[test]
fn remote_auth_failure() {
    let fx = Fx::new();
    let http = HttpGit::start_in(fx.env.path("web"), "alice", "RightPass2026");
    http.create_bare("x");
    let mut rows = Rows::new(&fx.env, 18, "remote-auth");
    rows.show_as(format!(":{}/", http.port()), ":PORT/");
    let mut p = Problems::default();
    let secrets = ["WrongPass4242", "WrongToken5151", "RightPass2026"];
    let url = http.url_with_credentials("x", "alice", "WrongPass4242");
    bad_remote(
        &fx,
        &mut rows,
        "auth failure (wrong password in the URL)",
        &url,
        &[],
        &["***@"],
        &secrets,
        &mut p,
    );
    let url = http.url("x");
    bad_remote(
        &fx,
        &mut rows,
        "auth failure (wrong `SQLGIT_HTTPS_TOKEN`)",
        &url,
        &[
            ("SQLGIT_HTTPS_TOKEN", "WrongToken5151"),
            ("SQLGIT_HTTPS_USER", "alice"),
        ],
        &[&url],
        &secrets,
        &mut p,
    );
    // Nothing else shows them either.
    for args in [
        vec!["log", "--repo", "app.sqlgit"],
        vec!["status", "--repo", "app.sqlgit", "--json"],
        vec!["status", "--repo", "app.sqlgit"],
    ] {
        let run = fx.run(&args);
        for s in secrets {
            let all = format!("{}{}", run.stdout_str(), run.stderr_str());
            p.check(!all.contains(s), || {
                format!("{}: shows {s:?}:\n{all}", run.cmdline)
            });
        }
    }
    // A wrong password is not replayed endlessly (a server counting failures would lock us out).
    let refused = http.unauthorized_requests();
    p.check(refused <= 6, || {
        format!("{refused} requests refused with 401 for two runs: credentials replayed?")
    });
    p.check(
        std::fs::read_to_string(http.repo_path("x").join("refs/heads/main")).is_err(),
        || "the remote got a main branch despite the wrong credentials".into(),
    );
    p.finish();
}
