//! Bad remotes: one line naming the failing remote, exit 1, nothing lost, the other one served;
//! ssh failures through a fake ssh (`GIT_SSH_COMMAND`, refused key, passphrase without agent).

use super::*;

// ------------------------------------------------------------------------------------------------
// 7. Bad input: one line naming the failing remote, exit 1, nothing lost, the other one served.

/// Snapshot with `--history-remote H --latest-remote L` where one of them is bad; check the failure
/// line (`bad` = (role, shown URL)), the kept commit and the other remote. Returns the cause.
#[track_caller]
fn one_bad_remote(fx: &Fx, h_url: &str, l_url: &str, bad: (&str, &str)) -> String {
    let good_role = if bad.0 == "history" {
        "latest"
    } else {
        "history"
    };
    let good = fx.daemon.create_bare(good_role);
    let db = fx.db.display().to_string();
    let repo = fx.repo_arg();
    let (run, took) = fx.sqlgit_with(
        &[
            "snapshot",
            &db,
            "--repo",
            &repo,
            "--history-remote",
            h_url,
            "--latest-remote",
            l_url,
        ],
        &[],
        FAIL_LIMIT,
    );
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let id = printed_commit(&run);
    let cause = assert_push_failures(&run, &[bad]).remove(0);
    if !run.stdout_str().contains(&format!("to {good_role} remote")) {
        run.fail(&format!(
            "the good {good_role} remote should still be pushed"
        ));
    }
    assert_eq!(fx.head(), id, "the local commit is kept");
    fx.assert_logged(&id);
    assert_eq!(
        fx.rev(&fx.repo, &format!("refs/remotes/{}/main", bad.0)),
        None,
        "no tracking ref for a remote that accepted nothing"
    );
    if good_role == "history" {
        fx.assert_history(&good, 1);
    } else {
        fx.assert_latest(&good);
    }
    // And again through `sqlgit push`: same single line, exit 1.
    let (run, _) = fx.sqlgit_with(&["push", "--repo", &repo], &[], FAIL_LIMIT);
    assert_push_failures(&run, &[bad]);
    cause
}

/// A malformed URL is refused before it is saved (exit 2, nothing taken), as `init` refuses it;
/// see `urls::a_url_init_refuses_is_not_saved_by_snapshot_or_push`.
#[test]
fn bad_input_malformed_url() {
    let fx = Fx::new();
    let l_url = fx.daemon.url("latest");
    let run = fx
        .snapshot(&[
            "--history-remote",
            "notaurl::://",
            "--latest-remote",
            &l_url,
        ])
        .code_is(2);
    let err = run.stderr_str();
    assert!(
        err.starts_with("sqlgit: --history-remote: bad remote URL notaurl::://")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        !fx.repo.exists(),
        "a refused first run created the repository"
    );
}

#[test]
fn bad_input_connection_refused() {
    let fx = Fx::new();
    let h_url = fx.daemon.url("history");
    let port = free_port();
    let bad = format!("git://127.0.0.1:{port}/latest.git");
    one_bad_remote(&fx, &h_url, &bad, ("latest", &bad));

    let fx = Fx::new();
    let h_url = fx.daemon.url("history");
    let bad = format!("http://127.0.0.1:{port}/latest.git");
    one_bad_remote(&fx, &h_url, &bad, ("latest", &bad));
}

#[test]
fn bad_input_remote_is_not_a_git_repository() {
    // Nothing at that path on the server.
    let fx = Fx::new();
    let l_url = fx.daemon.url("latest");
    let bad = fx.daemon.url("missing");
    one_bad_remote(&fx, &bad, &l_url, ("history", &bad));

    // A directory that exists but is not a repository.
    let fx = Fx::new();
    let h_url = fx.daemon.url("history");
    fx.env.write("srv/plain.git/README", "not a repository\n");
    let bad = fx.daemon.url("plain");
    one_bad_remote(&fx, &h_url, &bad, ("latest", &bad));
    assert_eq!(
        std::fs::read_dir(fx.daemon.repo_path("plain"))
            .unwrap()
            .count(),
        1,
        "nothing may be written into a directory that is not a repository"
    );
}

#[test]
fn bad_input_history_remote_diverged() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();

    // Someone else pushes a commit on top of the history remote's main, with plain git.
    let clone = fx.env.path("someone");
    fx.git(
        fx.env.root(),
        &["clone", "-q", &h_url, &clone.display().to_string()],
    );
    fx.env.write("someone/NOTE", "not a snapshot\n");
    fx.git(&clone, &["add", "NOTE"]);
    fx.git(&clone, &["commit", "-q", "-m", "someone else"]);
    fx.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let foreign = fx.rev(&clone, "HEAD").unwrap();
    let confirmed = fx.head();
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), foreign);

    fx.change();
    let (run, took) = fx.sqlgit_with(
        &[
            "snapshot",
            &fx.db.display().to_string(),
            "--repo",
            &fx.repo_arg(),
        ],
        &[],
        FAIL_LIMIT,
    );
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let id = printed_commit(&run);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(
        causes[0].contains("diverged") || causes[0].contains("fast-forward"),
        "the cause should say the remote diverged: {causes:?}"
    );
    if !run.stdout_str().contains("to latest remote") {
        run.fail("the latest remote should still have been pushed");
    }
    assert_eq!(fx.head(), id, "the local commit is kept");
    fx.assert_logged(&id);
    assert_eq!(
        fx.rev(&history, "refs/heads/main").unwrap(),
        foreign,
        "the foreign commit must not be overwritten"
    );
    // The remote's main is unknown here: what it confirmed is forgotten (pruning then keeps
    // everything) or kept, but never moved to what it did not accept.
    let tracking = fx.rev(&fx.repo, "refs/remotes/history/main");
    assert!(
        tracking.is_none() || tracking.as_deref() == Some(confirmed.as_str()),
        "refs/remotes/history/main must not move to {tracking:?}"
    );
    assert!(
        causes[0].contains("--reroot"),
        "the cause should name the command that resolves it: {causes:?}"
    );
    fx.assert_latest(&latest);
    fx.assert_fsck(&history);
}

/// A fake ssh: records its arguments and a few variables, then fails as sshd would when no key
/// is accepted.
fn fake_ssh(fx: &Fx) -> (PathBuf, PathBuf) {
    let record = fx.env.path("ssh-called");
    let script = fx.env.write(
        "fake-ssh",
        format!(
            "#!/bin/sh\nprintf 'args=%s\\naskpass=%s\\n' \"$*\" \"${{SSH_ASKPASS_REQUIRE:-}}\" > '{}'\n\
             echo 'backup@127.0.0.1: Permission denied (publickey).' >&2\nexit 255\n",
            record.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, record)
}

/// A snapshot pushing to `ssh://127.0.0.1/srv/app.git` through `GIT_SSH_COMMAND=script` (made
/// executable): its push fails at once; the causes it gives.
#[track_caller]
fn push_failures_through_ssh_command(fx: &Fx, script: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = "ssh://127.0.0.1/srv/app.git";
    let script = script.display().to_string();
    let (run, took) = snapshot_with(
        fx,
        &["--history-remote", url],
        &[("GIT_SSH_COMMAND", &script)],
    );
    let causes = assert_push_failures(&run, &[("history", url)]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    causes
}

/// An account whose shell is nologin answers git's command with a sentence on stdout; git only
/// says "protocol error: bad line length character: This". The line names the cause.
#[test]
fn an_ssh_account_without_a_usable_shell_is_named_as_the_cause() {
    let fx = Fx::new();
    let script = fx.env.write(
        "nologin-ssh",
        "#!/bin/sh\necho 'This account is currently not available.'\nexit 1\n",
    );
    let causes = push_failures_through_ssh_command(&fx, &script);
    assert!(
        causes[0].contains("nologin") && causes[0].contains("shell"),
        "{causes:?}"
    );
}

#[test]
fn git_ssh_command_is_honoured_and_a_refused_key_fails_at_once() {
    let fx = Fx::new();
    let (script, record) = fake_ssh(&fx);
    let causes = push_failures_through_ssh_command(&fx, &script);
    assert!(
        causes[0].contains("authentication failed") && causes[0].contains("Permission denied"),
        "the cause should say the key was refused, in git's words too: {causes:?}"
    );
    let called = std::fs::read_to_string(&record).expect("GIT_SSH_COMMAND was not run");
    assert!(called.contains("127.0.0.1"), "{called}");
    assert!(
        !called.contains("BatchMode"),
        "the user's ssh command is used as given: {called}"
    );
    assert!(called.contains("askpass=never"), "{called}");
}

#[test]
fn passphrase_key_without_agent_fails_at_once_naming_ssh_agent() {
    let fx = Fx::new();
    let (script, record) = fake_ssh(&fx);
    let key = fx.env.path("id_ed25519");
    let mut keygen = fx.env.command("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&key);
    fx.env.run(keygen, b"").success();
    let url = "ssh://127.0.0.1/srv/app.git";
    let script = script.display().to_string();
    let key_arg = key.display().to_string();
    let (run, took) = snapshot_with(
        &fx,
        &["--history-remote", url, "--ssh-key", &key_arg],
        &[("GIT_SSH_COMMAND", &script)],
    );
    let causes = assert_push_failures(&run, &[("history", url)]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    assert!(
        causes[0].contains("passphrase") && causes[0].contains("ssh-agent"),
        "the cause should say the key needs a passphrase and name ssh-agent: {causes:?}"
    );
    let called = std::fs::read_to_string(&record).expect("GIT_SSH_COMMAND was not run");
    assert!(
        called.contains(&format!("-i {key_arg}")),
        "--ssh-key is passed to ssh: {called}"
    );
    // `--ssh-key ""` forgets the key: the next run's ssh gets none.
    std::fs::remove_file(&record).unwrap();
    fx.change();
    let (run, _) = snapshot_with(&fx, &["--ssh-key", ""], &[("GIT_SSH_COMMAND", &script)]);
    assert_push_failures(&run, &[("history", url)]);
    let called = std::fs::read_to_string(&record).expect("GIT_SSH_COMMAND was not run");
    assert!(!called.contains("-i "), "the key is forgotten: {called}");
}

/// Something that is not a git server on a `git://` URL's port (another service, a load
/// balancer): named as such, without the SSH login-shell advice of the same git error over ssh.
#[test]
fn a_git_url_answered_by_another_service_is_not_blamed_on_ssh() {
    use std::io::{Read, Write};
    let fx = Fx::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 512]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let url = format!("git://127.0.0.1:{port}/h.git");
    let (run, took) = fx.sqlgit_with(
        &[
            "snapshot",
            &fx.db.display().to_string(),
            "--repo",
            &fx.repo_arg(),
            "--history-remote",
            &url,
        ],
        &[],
        FAIL_LIMIT,
    );
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(&run, &[("history", &url)]);
    assert!(
        causes[0].contains("not git's protocol") && !causes[0].contains("SSH"),
        "{causes:?}"
    );
}

/// A lock file left in the repository of a server's remote (a git killed there) fails the push
/// with a line naming it and how to remove it on the server, with either transport.
#[test]
fn a_lock_file_left_on_a_server_is_named_with_its_fix_there() {
    for transport in ["git", "libgit2"] {
        let fx = Fx::new();
        let history = fx.daemon.create_bare("history");
        let url = fx.daemon.url("history");
        fx.snapshot(&["--transport", transport, "--history-remote", &url])
            .success();
        let lock = history.join("refs/heads/main.lock");
        std::fs::write(&lock, "").unwrap();
        fx.change();
        let run = fx.snapshot(&[]).code_is(1);
        let said = run.stderr_str();
        let lock = std::fs::canonicalize(&lock).unwrap();
        assert!(
            said.contains("in the remote's repository on its server")
                && said.contains(&format!("rm {} in the server's repository", lock.display()))
                && said.contains(&format!("({transport}: ")),
            "{transport}: {said}"
        );
        std::fs::remove_file(&lock).unwrap();
        fx.push(&[]).success();
        fx.assert_history(&history, 2);
    }
}
