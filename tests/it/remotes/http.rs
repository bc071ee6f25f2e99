//! Issue 13: pushing over HTTP to real web servers through the default (`git`) transport.
//!
//! * lighttpd + `git http-backend` with Basic auth: a token (with `SQLGIT_HTTPS_USER` or a user in
//!   the URL) reaches both remotes, and no request ever carries the user with an empty password;
//!   an incremental push sends a thin pack to both remotes (the latest one included).
//! * A password a git credential helper holds for one `http://host:port` is used there and is
//!   never sent to another port (`CredLogger` records what a client sends).
//! * dulwich's HTTP server (a second git implementation) accepts both remotes' pushes.
//! * A password in a URL never shows in output, the state file or the metrics file.
//!
//! The servers come from `servers/web.rs`; every sqlgit run has a time limit.

use super::*;
use crate::servers::web::{CredLogger, DulwichHttp, Lighttpd, Request};

/// `--history-remote H --latest-remote L` snapshots, `runs` of them (a change before each but
/// the first), with `vars`; each must succeed quietly without printing `secret`.
#[track_caller]
fn snapshots_succeed(fx: &Fx, urls: (&str, &str), vars: &[(&str, &str)], runs: usize) {
    for i in 1..=runs {
        if i > 1 {
            fx.change();
        }
        let (run, _) = snapshot_with(
            fx,
            &["--history-remote", urls.0, "--latest-remote", urls.1],
            vars,
        );
        let run = run.success().assert_quiet();
        assert_no_secret(&run, HTTP_PASS);
        for role in ["history", "latest"] {
            if !run.stdout_str().contains(&format!("to {role} remote")) {
                run.fail(&format!("snapshot {i} was not pushed to the {role} remote"));
            }
        }
    }
}

/// What lighttpd saw: every Authorization header is exactly `user:password` (never the user with
/// an empty password, never anything else), every credentialed request succeeded, and every
/// refusal (401) is git's anonymous first request of a process, `GET …/info/refs`, answered by
/// exactly one retry with the credentials. Returns the number of 401 answers.
#[track_caller]
fn assert_clean_logins(web: &Lighttpd, user: &str, password: &str) -> usize {
    let expected = format!("{user}:{password}");
    let requests = web.requests();
    let logs = web.logs();
    for request in &requests {
        let status = request.status.unwrap_or(0);
        match &request.authorization {
            Some(given) => {
                assert_eq!(
                    given, &expected,
                    "a request carried other credentials:\n{logs}"
                );
                assert!(
                    (200..400).contains(&status),
                    "a request with the right credentials was not served:\n{logs}"
                );
            }
            None => {
                assert!(
                    status == 401
                        && request.line.starts_with("GET ")
                        && request.line.contains("/info/refs?service=git-"),
                    "only git's first request of a process goes without credentials:\n{logs}"
                );
            }
        }
    }
    let refused = requests.iter().filter(|r| r.status == Some(401)).count();
    let retried = requests
        .iter()
        .filter(|r| r.authorization.is_some() && r.line.contains("/info/refs?service=git-"))
        .count();
    assert_eq!(
        refused, retried,
        "each anonymous probe is followed by exactly one retry with credentials:\n{logs}"
    );
    refused
}

// ------------------------------------------------------------------------------------------------
// a. A token through lighttpd: no empty-password logins, a bounded number of 401s.

#[test]
fn lighttpd_token_reaches_both_remotes_without_empty_password_logins() {
    // The user from SQLGIT_HTTPS_USER, then from the URL (the case: libgit2 first tried
    // that user with an empty password on every connection).
    for user_in_url in [false, true] {
        let fx = Fx::new();
        let web = Lighttpd::start_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
        let history = web.create_bare("history");
        let latest = web.create_bare("latest");
        let mut vars = vec![("SQLGIT_HTTPS_TOKEN", HTTP_PASS)];
        let (h_url, l_url) = if user_in_url {
            let with_user =
                |name: &str| format!("http://{HTTP_USER}@127.0.0.1:{}/{name}.git", web.port());
            (with_user("history"), with_user("latest"))
        } else {
            vars.push(("SQLGIT_HTTPS_USER", HTTP_USER));
            (web.url("history"), web.url("latest"))
        };
        const RUNS: usize = 3;
        snapshots_succeed(&fx, (&h_url, &l_url), &vars, RUNS);
        fx.assert_history(&history, RUNS);
        fx.assert_latest(&latest);
        fx.assert_fsck(&history);
        fx.assert_fsck(&latest);

        let refused = assert_clean_logins(&web, HTTP_USER, HTTP_PASS);
        // Observed: git sends no credentials until a server asks (its first request per process
        // is anonymous and gets the 401 that names the realm), then asks the credential helper
        // sqlgit gives it and keeps the answer for the rest of that process. sqlgit runs three
        // git processes per remote per run (`ls-remote` for the remote's main, `push`, and
        // `ls-remote` to see the remote holds what it accepted), and the first run, on a new
        // repository, asks the history remote once more whether it has snapshots to continue
        // (it is empty: so the latest remote too, whether it holds a snapshot of an earlier
        // history), and each remote once after its first push what its HEAD names: one 401 per
        // process, 3 × 2 remotes × RUNS + 2 + 2, none with a password.
        assert_eq!(
            refused,
            3 * 2 * RUNS + 2 + 2,
            "user in URL: {user_in_url}; expected one anonymous probe per git process:\n{}",
            web.logs()
        );
        eprintln!(
            "user in URL: {user_in_url}: {} requests, {refused} answered 401 (anonymous probes)",
            web.requests().len()
        );
    }
}

/// An incremental push over HTTP sends what changed, as a thin pack, to both remotes: the latest
/// remote's new parentless commit too (its pack's base is the remote's previous commit).
#[test]
fn lighttpd_incremental_pushes_send_only_what_changed() {
    let fx = Fx::new();
    let web = Lighttpd::start_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    let history = web.create_bare("history");
    let latest = web.create_bare("latest");
    // ~30,000 rows of incompressible text: a few MiB of SQL, ~1.5 MiB packed.
    fx.env
        .sqlite3(
            &fx.db,
            "WITH RECURSIVE c(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM c WHERE x < 30000) \
             INSERT INTO t(id, v) SELECT x, hex(randomblob(24)) FROM c;",
        )
        .success()
        .assert_quiet();
    let token = [
        ("SQLGIT_HTTPS_TOKEN", HTTP_PASS),
        ("SQLGIT_HTTPS_USER", HTTP_USER),
    ];
    let urls = (web.url("history"), web.url("latest"));
    snapshots_succeed(&fx, (&urls.0, &urls.1), &token, 1);
    let first = web.requests().len();
    for round in 1..=2 {
        fx.env
            .sqlite3(
                &fx.db,
                format!("UPDATE t SET v = 'changed {round}' WHERE id % 5000 = {round};"),
            )
            .success()
            .assert_quiet();
        snapshots_succeed(&fx, (&urls.0, &urls.1), &token, 1);
    }
    fx.assert_history(&history, 3);
    fx.assert_latest(&latest);
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);
    let pushes: Vec<Request> = web.requests()[first..]
        .iter()
        .filter(|r| r.line.starts_with("POST ") && r.line.contains("/git-receive-pack "))
        .cloned()
        .collect();
    assert_eq!(
        pushes.len(),
        4,
        "one receive-pack POST per remote and round:\n{}",
        web.logs()
    );
    for push in &pushes {
        // git sends a body over 1 MiB (http.postBuffer) chunked, without a length.
        let bytes = push.content_length.unwrap_or(u64::MAX);
        eprintln!("{}: {bytes} bytes", push.line);
        assert!(
            bytes < 64 * 1024,
            "6 changed rows out of 30,000 made a push of {bytes} bytes ({}): a whole tree \
             was sent instead of a thin pack",
            push.line
        );
    }
}

// ------------------------------------------------------------------------------------------------
// b. A credential helper's password stays with its host and port.

/// A global git config for the run: `credential.helper = store --file F`, F holding `user:pass`
/// for `http://127.0.0.1:PORT` only. Returns the config's path.
fn credential_store_config(fx: &Fx, port: u16, user: &str, pass: &str) -> String {
    let store = fx.env.write(
        "git-credentials",
        format!("http://{user}:{pass}@127.0.0.1:{port}\n"),
    );
    let config = fx.env.write(
        "gitconfig",
        format!(
            "[credential]\n\thelper = store --file {}\n",
            store.display()
        ),
    );
    config.display().to_string()
}

#[test]
fn credential_helper_password_is_used_for_its_port_and_never_sent_to_another() {
    let fx = Fx::new();
    let web = Lighttpd::start_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    let logger = CredLogger::start();
    let history = web.create_bare("history");
    let (h_url, l_url) = (web.url("history"), logger.url("latest"));
    let config = credential_store_config(&fx, web.port(), HTTP_USER, HTTP_PASS);
    // No token, no password in a URL: only the helper knows the password.
    let (run, took) = snapshot_with(
        &fx,
        &["--history-remote", &h_url, "--latest-remote", &l_url],
        &[("GIT_CONFIG_GLOBAL", &config)],
    );
    assert!(took < FAIL_LIMIT, "took {took:?}");
    assert_no_secret(&run, HTTP_PASS);
    let causes = assert_push_failures(&run, &[("latest", &l_url)]);
    assert!(
        causes[0].contains("no credentials"),
        "the other port has no credentials: {causes:?}"
    );
    if !run.stdout_str().contains("to history remote") {
        run.fail("the history remote (the helper's port) should have been pushed");
    }
    fx.assert_history(&history, 1);
    assert!(
        web.authorizations().iter().flatten().count() > 0,
        "the helper's password was never sent to its own server:\n{}",
        web.logs()
    );
    assert_clean_logins(&web, HTTP_USER, HTTP_PASS);

    let seen = logger.requests();
    assert!(!seen.is_empty(), "git never contacted the logging server");
    for request in &seen {
        assert_eq!(
            request.authorization, None,
            "credentials were sent to another port than the helper's: {seen:#?}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// c. dulwich's HTTP server: the git transport pushes both remotes; libgit2 cannot.

#[test]
fn dulwich_http_server_receives_both_remotes_through_git() {
    let fx = Fx::new();
    let web = DulwichHttp::start_in(fx.env.path("dulwich"));
    let history = web.create_bare("history");
    let latest = web.create_bare("latest");
    let (h_url, l_url) = (web.url("history"), web.url("latest"));
    snapshots_succeed(&fx, (&h_url, &l_url), &[], 3);
    fx.assert_history(&history, 3);
    fx.assert_latest(&latest);
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);
    // The objects arrived as dulwich stored them and still read back through the server.
    let clone = fx.env.path("clone");
    fx.git(
        fx.env.root(),
        &["clone", "-q", &h_url, &clone.display().to_string()],
    );
    assert_eq!(fx.rev(&clone, "HEAD"), Some(fx.head()));
}

/// Once pruning has cut local history (a `shallow` file), git push sends `shallow` lines, which
/// dulwich's receive-pack rejects: every later push failed, and the history remote never
/// confirmed anything again. Pushes now go out from a view with grafts instead.
#[test]
fn dulwich_http_server_keeps_receiving_after_local_history_is_pruned() {
    let fx = Fx::new();
    let web = DulwichHttp::start_in(fx.env.path("dulwich"));
    let history = web.create_bare("history");
    let latest = web.create_bare("latest");
    let (h_url, l_url) = (web.url("history"), web.url("latest"));
    const RUNS: usize = 4;
    for i in 1..=RUNS {
        if i > 1 {
            fx.change();
        }
        let (run, _) = snapshot_with(
            &fx,
            &[
                "--history-remote",
                &h_url,
                "--latest-remote",
                &l_url,
                "--keep",
                "1",
            ],
            &[],
        );
        run.success().assert_quiet();
    }
    assert!(
        std::fs::read_to_string(fx.repo.join("shallow"))
            .unwrap_or_default()
            .trim()
            .len()
            == 40,
        "local history must have been pruned to one snapshot"
    );
    fx.assert_history(&history, RUNS);
    fx.assert_latest(&latest);
    fx.assert_fsck(&history);
    fx.assert_fsck(&latest);
    assert!(
        !fx.repo.join("sqlgit-push.git").exists(),
        "the push view must be removed"
    );
}

/// The report: libgit2 cannot talk to dulwich's server ("could not read refs"). This
/// records that it still fails, plainly: one line, exit 1, nothing written to the remote.
#[test]
fn dulwich_http_server_with_libgit2_fails_with_one_line() {
    let fx = Fx::new();
    let web = DulwichHttp::start_in(fx.env.path("dulwich"));
    let history = web.create_bare("history");
    let h_url = web.url("history");
    let (run, took) = snapshot_with(
        &fx,
        &["--transport", "libgit2", "--history-remote", &h_url],
        &[],
    );
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(
        causes[0].contains("could not read refs"),
        "libgit2's known failure against dulwich changed (fixed?): {causes:?}\n{}",
        web.log()
    );
    assert_eq!(fx.rev(&history, "refs/heads/main"), None);
}

// ------------------------------------------------------------------------------------------------
// d. A password in the URL never shows.

/// Every file under `dir` (recursively) except the repository's `config` and its object store
/// (zlib-compressed): none may contain `secret`.
#[track_caller]
fn assert_no_secret_in_files(dir: &Path, secret: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "objects" {
                assert_no_secret_in_files(&path, secret);
            }
        } else if name != "config" {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} contains the URL's password",
                path.display()
            );
        }
    }
}

#[test]
fn url_password_never_shows_in_output_state_or_metrics() {
    const SECRET: &str = "secret-Kq7w2z";
    let fx = Fx::new();
    let web = Lighttpd::start_in(fx.env.path("web"), "u", SECRET);
    let history = web.create_bare("history");
    let latest = web.create_bare("latest");
    let h_url = web.url_with_credentials("history", "u", SECRET);
    let l_url = web.url_with_credentials("latest", "u", SECRET);
    let metrics = fx.env.path("metrics.prom").display().to_string();
    for i in 1..=2 {
        if i > 1 {
            fx.change();
        }
        let (run, _) = snapshot_with(
            &fx,
            &[
                "--history-remote",
                &h_url,
                "--latest-remote",
                &l_url,
                "--metrics-file",
                &metrics,
            ],
            &[],
        );
        assert_no_secret(&run.success().assert_quiet(), SECRET);
    }
    fx.assert_history(&history, 2);
    fx.assert_latest(&latest);
    assert_clean_logins(&web, "u", SECRET);
    let repo = fx.repo_arg();
    for args in [
        &["log", "--repo", repo.as_str()][..],
        &["log", "--json", "--repo", repo.as_str()][..],
        &["push", "--repo", repo.as_str()][..],
    ] {
        // The URL's password was never saved: later runs give it in the environment.
        let (run, _) = fx.sqlgit_with(args, &[("SQLGIT_HTTPS_TOKEN", SECRET)], super::RUN_LIMIT);
        assert_no_secret(&run.success(), SECRET);
    }
    let state = fx.repo.join("sqlgit-state.json");
    assert!(state.is_file(), "no state file at {}", state.display());
    let metrics_text = std::fs::read_to_string(&metrics).expect("the metrics file was written");
    assert!(
        !metrics_text.contains(SECRET),
        "the metrics file has the password"
    );
    assert_no_secret_in_files(&fx.repo, SECRET);
}

/// The token reaches only the remote's own host and port: not a host the server redirects
/// libgit2 to, not the hooks of a local remote (git inherits sqlgit's environment). A token
/// given as the URL's user never shows when the server refuses it.
#[test]
fn the_token_reaches_only_the_remotes_own_host() {
    const TOKEN: &str = "ghp_Tok7SecretQ8w";
    let fx = Fx::new();
    let elsewhere = CredLogger::start();
    let redirector = CredLogger::redirecting_to(&format!("http://127.0.0.1:{}", elsewhere.port()));
    let (run, _) = snapshot_with(
        &fx,
        &[
            "--history-remote",
            &redirector.url("h"),
            "--transport",
            "libgit2",
        ],
        &[("SQLGIT_HTTPS_TOKEN", TOKEN)],
    );
    run.code_is(1);
    assert!(!redirector.requests().is_empty(), "libgit2 never asked");
    let sent: Vec<_> = elsewhere.authorizations().into_iter().flatten().collect();
    assert!(
        sent.is_empty(),
        "credentials sent to the redirect's host: {sent:?}"
    );

    // A local remote's hook sees sqlgit's environment but the token.
    let local = crate::servers::init_bare(fx.env.root(), "local");
    let seen = fx.env.path("hook-env");
    let hook = local.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh
env > '{}'
",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fx.change();
    let (run, _) = snapshot_with(
        &fx,
        &[
            "--history-remote",
            &local.display().to_string(),
            "--transport",
            "git",
        ],
        &[("SQLGIT_HTTPS_TOKEN", TOKEN)],
    );
    run.success();
    let env = std::fs::read_to_string(&seen).expect("the hook ran");
    assert!(
        !env.contains(TOKEN),
        "the remote's hook saw the token:\n{env}"
    );

    // The token as the URL's user, refused: git quotes the URL in its error.
    let web = Lighttpd::start_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    web.create_bare("t");
    let url = web.url("t").replace("http://", &format!("http://{TOKEN}@"));
    let hook_out = fx.env.path("failure-hook");
    fx.change();
    let (run, _) = snapshot_with(
        &fx,
        &[
            "--history-remote",
            &url,
            "--on-failure",
            &format!("echo \"$SQLGIT_ERROR\" > '{}'", hook_out.display()),
        ],
        &[],
    );
    assert_no_secret(&run.code_is(1), TOKEN);
    let said = std::fs::read_to_string(&hook_out).expect("the failure hook ran");
    assert!(!said.is_empty() && !said.contains(TOKEN), "{said}");
    assert_no_secret_in_files(&fx.repo, TOKEN);
}

// f. HTTPS through libgit2, which starts without the system's CA bundle and loads it (or the
// user's `SSL_CERT_FILE`) before it connects.

/// libgit2 over HTTPS trusts the certificate `SSL_CERT_FILE` names, and refuses one nobody
/// trusts with one line that says so.
#[test]
fn libgit2_over_https_trusts_ssl_cert_file_and_refuses_an_unknown_certificate() {
    let fx = Fx::new();
    let web = Lighttpd::start_tls_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    let history = web.create_bare("history");
    let url = web.https_url("history");
    let args = ["--transport", "libgit2", "--history-remote", url.as_str()];
    let token = [
        ("SQLGIT_HTTPS_TOKEN", HTTP_PASS),
        ("SQLGIT_HTTPS_USER", HTTP_USER),
    ];

    let (run, _) = snapshot_with(&fx, &args, &token);
    let run = run.failure();
    let stderr = run.stderr_str();
    if !stderr.to_lowercase().contains("certificate") || stderr.lines().count() != 1 {
        run.fail("an untrusted certificate must fail the push with one line naming it");
    }

    let cert = web.certificate().display().to_string();
    let mut trusted = token.to_vec();
    trusted.push(("SSL_CERT_FILE", cert.as_str()));
    fx.change();
    let (run, _) = snapshot_with(&fx, &args, &trusted);
    run.success().assert_quiet();
    fx.assert_history(&history, 2);
    fx.assert_fsck(&history);
}

/// libgit2 trusts a private CA the way git does: `GIT_SSL_CAINFO`, or `http.sslCAInfo` in the
/// user's git config (here `GIT_CONFIG_GLOBAL`, which libgit2 itself does not read).
#[test]
fn libgit2_over_https_trusts_the_ca_git_is_configured_with() {
    let fx = Fx::new();
    let web = Lighttpd::start_tls_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    let history = web.create_bare("history");
    let url = web.https_url("history");
    let args = ["--transport", "libgit2", "--history-remote", url.as_str()];
    let cert = web.certificate().display().to_string();
    let gitconfig = fx.env.path("ca.gitconfig");
    std::fs::write(&gitconfig, format!("[http]\n\tsslCAInfo = {cert}\n")).unwrap();
    let gitconfig = gitconfig.display().to_string();
    let token = [
        ("SQLGIT_HTTPS_TOKEN", HTTP_PASS),
        ("SQLGIT_HTTPS_USER", HTTP_USER),
    ];
    for (var, value) in [
        ("GIT_SSL_CAINFO", cert.as_str()),
        ("GIT_CONFIG_GLOBAL", gitconfig.as_str()),
    ] {
        fx.change();
        let mut vars = token.to_vec();
        vars.push((var, value));
        let (run, _) = snapshot_with(&fx, &args, &vars);
        run.success().assert_quiet();
    }
    fx.assert_history(&history, 2);
}

/// A trusted certificate that names another host (127.0.0.1, reached as `localhost`) is named
/// as a certificate problem by both transports, with what to check — libgit2 itself says only
/// "SSL error: received early EOF".
#[test]
fn a_certificate_naming_another_host_is_named_by_both_transports() {
    let fx = Fx::new();
    let web = Lighttpd::start_tls_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    web.create_bare("history");
    let url = web.https_url("history").replace("127.0.0.1", "localhost");
    let cert = web.certificate().display().to_string();
    for transport in ["git", "libgit2"] {
        let args = ["--transport", transport, "--history-remote", url.as_str()];
        let (run, _) = snapshot_with(&fx, &args, &[("GIT_SSL_CAINFO", cert.as_str())]);
        let causes = assert_push_failures(&run, &[("history", &url)]);
        assert!(
            causes[0].contains("certificate") && causes[0].contains("names the URL's host"),
            "{transport}: {causes:?}"
        );
    }
}

/// A remote that redirects to another host, with the token set: the token is rightly not sent
/// there, and the error says so and names the host, instead of telling to set the token.
#[test]
fn a_redirect_to_another_host_is_named_not_blamed_on_a_missing_token() {
    let fx = Fx::new();
    let elsewhere = CredLogger::start();
    let target = format!("http://127.0.0.1:{}", elsewhere.port());
    let redirector = CredLogger::redirecting_to(&target);
    let url = redirector.url("h");
    let (run, _) = snapshot_with(
        &fx,
        &["--history-remote", &url, "--transport", "git"],
        &[("SQLGIT_HTTPS_TOKEN", "tok123SECRET")],
    );
    let causes = assert_push_failures(&run, &[("history", &url)]);
    assert!(
        causes[0].contains("redirected to") && causes[0].contains(&target),
        "{causes:?}"
    );
    assert!(!causes[0].contains("set SQLGIT_HTTPS_TOKEN"), "{causes:?}");
}
