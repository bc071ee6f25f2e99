//! One server (and one repository on it) spelled two ways: an ssh host alias in
//! `~/.ssh/config`, its address `127.0.0.1`, and `localhost`, which resolves to it. The remote
//! check refuses one repository as both remotes however it is spelled; a spelling no check can
//! see (a symlink on the server) is named by the history push, which finds the latest remote's
//! copy there; and a hung server's spellings share one `--push-timeout`.

use std::time::Duration;

use super::ssh::SshFx;
use super::transports::silent_server;
use super::*;
use crate::servers::sshd::{SshHome, pubkey};

impl SshFx {
    /// The server trusted as `127.0.0.1` and `localhost`, a key ssh offers by default, and the
    /// `Host backup` alias for it.
    fn with_alias_and_localhost(self) -> SshFx {
        let key = self.home.keygen("id_ed25519");
        self.sshd.authorize(&pubkey(&key));
        let line = self.sshd.known_hosts_line();
        let localhost = line.replacen("[127.0.0.1]", "[localhost]", 1);
        self.home.known_hosts(&[line, localhost]);
        self.backup_alias("id_ed25519");
        self
    }
}

/// The latest remote given as `backup:PATH`, then the same repository as the history remote
/// spelled `ssh://USER@localhost:PORT/PATH` or `ssh://127.0.0.1:PORT/PATH.git/`: refused (exit
/// 2) before anything is saved, as the alias and the host name resolve to one server. Another
/// repository on that server, spelled `localhost`, is pushed.
#[test]
fn one_ssh_repository_spelled_by_alias_address_or_localhost_is_refused_as_both_remotes() {
    let t = SshFx::new().with_alias_and_localhost();
    let (port, user) = (t.sshd.port(), t.sshd.user());
    let latest = t.sshd.create_bare("latest");
    let alias = format!("backup:{}", latest.display());
    t.snapshot_ok(&["--latest-remote", &alias], &[], &["latest"]);
    t.fx.change();
    for spelled in [
        format!("ssh://{user}@localhost:{port}{}", latest.display()),
        format!("ssh://127.0.0.1:{port}{}/", latest.display()),
    ] {
        let (run, _) = t.snapshot(&["--history-remote", &spelled], &[]);
        let run = run.code_is(2);
        assert!(
            run.stderr_str().contains("name the same repository"),
            "{spelled}: {}",
            run.stderr_str()
        );
        let config = std::fs::read_to_string(t.fx.repo.join("config")).unwrap();
        assert!(!config.contains("historyRemote"), "{spelled} saved");
    }
    let history = t.sshd.create_bare("history");
    let other = format!("ssh://{user}@localhost:{port}{}", history.display());
    t.snapshot_ok(&["--history-remote", &other], &[], &["history", "latest"]);
    t.fx.assert_history(&history, 2);
    t.fx.assert_latest(&latest);
}

/// `git://localhost:PORT/x.git` and `git://127.0.0.1:PORT/x.git` are one repository; over http
/// they are not (one address serves many sites: virtual hosts), so they are not refused.
#[test]
fn git_daemon_hosts_resolving_alike_are_one_server_http_virtual_hosts_are_not() {
    let fx = Fx::new();
    let url = fx.daemon.url("x");
    let run = fx
        .snapshot(&[
            "--history-remote",
            &url,
            "--latest-remote",
            &url.replace("127.0.0.1", "localhost"),
        ])
        .code_is(2);
    assert!(
        run.stderr_str().contains("same repository"),
        "{}",
        run.stderr_str()
    );
    let run = fx.snapshot(&[
        "--history-remote",
        "http://127.0.0.1:9/x.git",
        "--latest-remote",
        "http://localhost:9/x.git",
    ]);
    assert!(
        run.code() == Some(1) && !run.stderr_str().contains("same repository"),
        "{}",
        run.stderr_str()
    );
}

/// A spelling no check can see (`link.git`, a symlink on the server to the latest remote's
/// repository) given as the history remote: its push finds the very copy this repository last
/// pushed to the latest remote and says that the two remotes are one repository, with the
/// config fix, not the `push --reroot` that cannot help (which says so too).
#[test]
fn a_history_remote_holding_the_latest_copy_is_named_as_the_latest_remotes_repository() {
    let t = SshFx::new().with_alias_and_localhost();
    let latest = t.sshd.create_bare("latest");
    std::os::unix::fs::symlink(&latest, t.sshd.repo_path("link")).unwrap();
    let alias = format!("backup:{}", latest.display());
    t.snapshot_ok(&["--latest-remote", &alias], &[], &["latest"]);
    t.fx.change();
    t.snapshot_ok(&[], &[], &["latest"]);
    t.fx.change();
    let h_url = t.sshd.url(None, "link");
    let (run, _) = t.snapshot(&["--history-remote", &h_url], &[]);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(
        causes[0].contains("the history remote and the latest remote are the same repository")
            && causes[0].contains("init --repo")
            && causes[0].contains("--history-remote URL")
            && !causes[0].contains("--reroot"),
        "{causes:?}"
    );
    let vars = t.home.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    let repo = t.fx.repo_arg();
    let args = ["push", "--repo", repo.as_str(), "--reroot"];
    let (run, _) = t.fx.sqlgit_with(&args, &vars, FAIL_LIMIT);
    assert!(
        run.code() == Some(1) && run.stderr_str().contains("are the same repository"),
        "{}",
        run.stderr_str()
    );
}

/// A hung ssh server serving both remotes, spelled once as a `~/.ssh/config` alias and once by
/// its address (or `localhost`): the spellings share one `--push-timeout`, so the run holds the
/// lock for one timeout, not one per spelling.
#[test]
fn a_hung_server_spelled_as_an_alias_and_an_address_shares_one_push_timeout() {
    let fx = Fx::new();
    fx.snapshot(&[]).success();
    let port = silent_server();
    let home = SshHome::new(&fx.env);
    home.config(&format!(
        "Host hung\n    HostName 127.0.0.1\n    Port {port}\n"
    ));
    let vars = home.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    for (h_url, l_url) in [
        (
            "hung:/x.git".to_string(),
            format!("ssh://127.0.0.1:{port}/y.git"),
        ),
        (
            format!("ssh://localhost:{port}/x.git"),
            "hung:/y.git".to_string(),
        ),
    ] {
        fx.change();
        let args = [
            "--history-remote",
            &h_url,
            "--latest-remote",
            &l_url,
            "--push-timeout",
            "3s",
        ];
        let (run, took) = snapshot_with(&fx, &args, &vars);
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
}
