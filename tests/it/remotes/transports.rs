//! Transports (system `git` and libgit2, fallback without git on PATH), hung and trickling
//! servers bounded by the push timeout, and a run stopped by SIGTERM recorded as a failure.

use super::*;

// ------------------------------------------------------------------------------------------------
// Transports: the system `git` (default) and libgit2 (`--transport libgit2`, or no git on PATH).

#[test]
fn transports_git_and_libgit2_push_to_git_daemon_and_smart_http_with_token() {
    for transport in ["git", "libgit2"] {
        let fx = Fx::new();
        let http = HttpGit::start_in(fx.env.path("http"), HTTP_USER, HTTP_PASS);
        let history = fx.daemon.create_bare("history");
        let latest = http.create_bare("latest");
        let (h_url, l_url) = (fx.daemon.url("history"), http.url("latest"));
        let token = [
            ("SQLGIT_HTTPS_TOKEN", HTTP_PASS),
            ("SQLGIT_HTTPS_USER", HTTP_USER),
        ];
        let (run, _) = snapshot_with(
            &fx,
            &[
                "--transport",
                transport,
                "--history-remote",
                &h_url,
                "--latest-remote",
                &l_url,
            ],
            &token,
        );
        let run = run.success().assert_quiet();
        assert_no_secret(&run, HTTP_PASS);
        fx.assert_history(&history, 1);
        fx.assert_latest(&latest);
        assert_eq!(
            fx.git(&fx.repo, &["config", "--get", "sqlgit.transport"]),
            transport,
            "--transport is remembered"
        );
        // The remembered transport is used by the next run, incrementally.
        fx.change();
        let (run, _) = snapshot_with(&fx, &[], &token);
        assert_no_secret(&run.success().assert_quiet(), HTTP_PASS);
        fx.assert_history(&history, 2);
        fx.assert_latest(&latest);
        fx.assert_fsck(&history);
        fx.assert_fsck(&latest);
    }
}

#[test]
fn transport_falls_back_to_libgit2_when_no_git_is_on_path() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    // A PATH without git (sqlgit itself needs nothing from PATH to snapshot and push).
    let empty = fx.env.path("no-git-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    let (run, _) = snapshot_with(&fx, &["--history-remote", &h_url], &[("PATH", &path)]);
    run.success().assert_quiet();
    fx.assert_history(&history, 1);
}

#[test]
fn transport_git_named_fails_loudly_when_no_git_is_on_path() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    // cron's PATH: git lives elsewhere (/usr/local/bin, linuxbrew).
    let empty = fx.env.path("no-git-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.display().to_string();
    let no_git = [("PATH", path.as_str())];
    let given = ["--transport", "git", "--history-remote", &h_url];
    // Named on the command line, then remembered (sqlgit.transport): never libgit2 instead.
    for args in [&given[..], &[]] {
        fx.change();
        let (run, _) = snapshot_with(&fx, args, &no_git);
        let causes = assert_push_failures(&run, &[("history", &h_url)]);
        assert!(
            causes[0].contains("git was not found on PATH")
                && causes[0].contains(&path)
                && causes[0].contains("PATH="),
            "the cause should say git is not on PATH and how to fix it: {causes:?}"
        );
        assert_eq!(fx.rev(&history, "refs/heads/main"), None);
    }
    // With git on PATH, the same run pushes.
    let (run, _) = snapshot_with(&fx, &[], &[]);
    run.success().assert_quiet();
    fx.assert_history(&history, 2);
}

/// A TCP server on 127.0.0.1 that accepts connections and never says anything.
pub(super) fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn hung_remote_fails_within_push_timeout_and_the_next_run_works() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let port = silent_server();
    for bad in [
        format!("git://127.0.0.1:{port}/latest.git"),
        format!("http://127.0.0.1:{port}/latest.git"),
    ] {
        fx.change();
        let (run, took) = snapshot_with(
            &fx,
            &[
                "--history-remote",
                &h_url,
                "--latest-remote",
                &bad,
                "--push-timeout",
                "2s",
            ],
            &[],
        );
        let causes = assert_push_failures(&run, &[("latest", &bad)]);
        // On the first run the latest remote was asked already, for a snapshot an empty
        // history remote lacks: that call used the server's share of the timeout.
        let spent =
            causes[0].contains("--push-timeout (2s)") && causes[0].contains("did not answer");
        assert!(
            causes[0].contains("did not answer within 2s") || spent,
            "the cause should name the timeout: {causes:?}"
        );
        assert!(
            took < Duration::from_secs(10),
            "a 2s push timeout took {took:?}"
        );
        assert_eq!(
            fx.git(&fx.repo, &["config", "--get", "sqlgit.pushTimeout"]),
            "2s"
        );
    }
    // The lock was released and nothing is left behind: the next run (a good latest remote)
    // works at once.
    let latest = fx.daemon.create_bare("latest");
    let l_url = fx.daemon.url("latest");
    let (run, took) = fx.sqlgit_with(
        &["push", "--repo", &fx.repo_arg(), "--latest-remote", &l_url],
        &[],
        FAIL_LIMIT,
    );
    run.success().assert_quiet();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    fx.assert_history(&history, 2);
    fx.assert_latest(&latest);
}

/// Both remotes on one server that hangs: the run's network calls (asking the history remote
/// before the snapshot, then pushing the latest one) share `--push-timeout`, so a run holds the
/// lock for one timeout, not one per call, and the next cron run gets it.
#[test]
fn a_hung_server_holds_the_lock_for_one_push_timeout_not_one_per_remote() {
    let fx = Fx::new();
    fx.snapshot(&[]).success();
    let port = silent_server();
    let h_url = format!("git://127.0.0.1:{port}/history.git");
    let l_url = format!("git://127.0.0.1:{port}/latest.git");
    let cron = [
        "--history-remote",
        h_url.as_str(),
        "--latest-remote",
        l_url.as_str(),
        "--push-timeout",
        "3s",
    ];
    for _ in 0..2 {
        fx.change();
        let (run, took) = snapshot_with(&fx, &cron, &[]);
        let causes = assert_push_failures(&run, &[("history", &h_url), ("latest", &l_url)]);
        assert!(
            causes[0].contains("did not answer within 3s")
                && causes[1].contains("share --push-timeout (3s)"),
            "{causes:?}"
        );
        assert!(
            took < Duration::from_millis(5500),
            "a 3s push timeout took {took:?}"
        );
    }
    assert_eq!(
        fx.git(&fx.repo, &["rev-list", "--count", "refs/heads/main"]),
        "3"
    );
}

/// `--transport libgit2` to a local remote (a path, `file://`) still runs the remote's hooks:
/// the git program pushes it, so a refusing `pre-receive` refuses, as over a server.
#[test]
fn libgit2_to_a_local_remote_still_runs_its_hooks() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let hook = history.join("hooks").join("pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'maintenance: 100% busy' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    for url in [
        history.display().to_string(),
        format!("file://{}", history.display()),
    ] {
        let (run, _) = snapshot_with(
            &fx,
            &["--history-remote", &url, "--transport", "libgit2"],
            &[],
        );
        let causes = assert_push_failures(&run, &[("history", &url)]);
        assert!(causes[0].contains("maintenance: 100% busy"), "{causes:?}");
        assert_eq!(fx.rev(&history, "refs/heads/main"), None);
    }
}

/// libgit2 has no bound of its own: `--push-timeout` becomes its socket timeouts, and a call
/// stuck past them stops the run. A first run (which asks the history remote before its
/// snapshot) against a server that never answers ends, fails loudly, and the next run works.
#[test]
fn hung_remote_over_libgit2_fails_within_push_timeout() {
    let fx = Fx::new();
    let port = silent_server();
    for bad in [
        format!("git://127.0.0.1:{port}/h.git"),
        format!("http://127.0.0.1:{port}/h.git"),
    ] {
        fx.change();
        let args = [
            "--history-remote",
            bad.as_str(),
            "--transport",
            "libgit2",
            "--push-timeout",
            "2s",
        ];
        let (run, took) = snapshot_with(&fx, &args, &[]);
        let run = run.code_is(1);
        assert!(
            took < Duration::from_secs(20),
            "a 2s push timeout took {took:?}"
        );
        assert!(
            run.stderr_str().contains("sqlgit: "),
            "{}",
            run.stderr_str()
        );
    }
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    fx.change();
    snapshot_with(&fx, &["--history-remote", &h_url], &[])
        .0
        .success();
    fx.assert_history(&history, 3);
}

/// A server that answers every connection with an HTTP status line, then one header a fifth of
/// a second, forever: no socket timeout ever fires.
fn trickling_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n",
                );
                while stream.write_all(b"X-A: b\r\n").is_ok() {
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    port
}

/// A new repository whose history remote hangs (it trickles, so libgit2's socket timeouts never
/// fire): past `--push-timeout` the run goes on without its answer, as with an unreachable
/// remote — every run takes its snapshot and pushes the latest remote, and fails loudly.
#[test]
fn a_hanging_history_remote_over_libgit2_does_not_keep_the_snapshot_from_being_taken() {
    let fx = Fx::new();
    let bad = format!("http://127.0.0.1:{}/h.git", trickling_server());
    let latest = fx.daemon.create_bare("latest");
    let l_url = fx.daemon.url("latest");
    for _ in 0..2 {
        fx.change();
        let args = [
            "--history-remote",
            bad.as_str(),
            "--latest-remote",
            l_url.as_str(),
            "--transport",
            "libgit2",
            "--push-timeout",
            "2s",
        ];
        let (run, took) = snapshot_with(&fx, &args, &[]);
        assert!(took < Duration::from_secs(14), "took {took:?}");
        printed_commit(&run);
        let causes = assert_push_failures(&run, &[("history", &bad)]);
        assert!(causes[0].contains("no answer within 2s"), "{causes:?}");
        fx.assert_latest(&latest);
    }
}

/// A run stopped by SIGTERM (cron's `timeout`, systemd, a shutdown) fails like any other: one
/// line on stderr, exit 1, the failure hook, the state and metrics files; the next run works.
#[test]
fn a_run_stopped_by_sigterm_is_recorded_as_a_failure() {
    let fx = Fx::new();
    let port = silent_server();
    let bad = format!("git://127.0.0.1:{port}/h.git");
    let hook_out = fx.env.path("failed");
    let metrics = fx.env.path("metrics.prom");
    let db = fx.db.display().to_string();
    let mut cmd = fx.env.sqlgit_cmd(&[
        "snapshot",
        &db,
        "--repo",
        &fx.repo_arg(),
        "--history-remote",
        &bad,
        "--push-timeout",
        "60s",
        "--metrics-file",
        &metrics.display().to_string(),
        "--on-failure",
        &format!("echo \"$SQLGIT_ERROR\" > '{}'", hook_out.display()),
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The run starts (its state file says so), then waits on the silent server.
    let state = fx.repo.join("sqlgit-state.json");
    let started = std::time::Instant::now();
    while !state.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sqlgit: stopped by SIGTERM"), "{stderr}");
    let said = std::fs::read_to_string(&hook_out).expect("the failure hook ran");
    assert!(said.contains("stopped by SIGTERM"), "{said}");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(recorded.contains("stopped by SIGTERM"), "{recorded}");
    let metrics = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sqlgit_last_run_success") && l.ends_with(" 0")),
        "{metrics}"
    );
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    fx.snapshot(&["--history-remote", &h_url]).success();
    fx.assert_history(&history, 1);
}
