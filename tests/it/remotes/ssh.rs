//! Pushing over SSH to a real OpenSSH server, as operators set it up (issue 13).
//!
//! With the git transport, sqlgit's pushes go through the system `ssh`, so everything OpenSSH
//! reads applies: a `Host` alias in `~/.ssh/config` (HostName, Port, User, IdentityFile), keys in
//! ssh-agent for a URL without a user, `known_hosts`, `--ssh-key`, and the user's own
//! `GIT_SSH_COMMAND` / `core.sshCommand`. Failures that need a person (a passphrase, an unknown
//! host key) fail at once with one line that says what to do, instead of prompting or hanging.
//!
//! Each test runs its own `sshd` on 127.0.0.1 (`servers::sshd`) and gives ssh a temporary home
//! through nss_wrapper, since OpenSSH takes `~` from getpwuid(), not `$HOME`.

use std::path::PathBuf;

use super::{FAIL_LIMIT, Fx, RUN_LIMIT, assert_push_failures, snapshot_with};
use crate::env::Run;
use crate::servers::sshd::{SshAgent, SshHome, Sshd, current_user, encrypt_key, keygen, pubkey};

/// One SSH test's world: the remotes fixture, a running sshd, and the home ssh reads.
/// (`sshd` first: it is killed before the test directory goes away.)
pub(super) struct SshFx {
    pub(super) sshd: Sshd,
    pub(super) home: SshHome,
    pub(super) fx: Fx,
}

impl SshFx {
    pub(super) fn new() -> SshFx {
        let fx = Fx::new();
        let sshd = Sshd::start_in(fx.env.path("sshd"));
        let home = SshHome::new(&fx.env);
        SshFx { sshd, home, fx }
    }

    /// `~/.ssh/known_hosts` with this server's key.
    pub(super) fn trust_server(&self) {
        self.home.known_hosts(&[self.sshd.known_hosts_line()]);
    }

    /// A `Host backup` alias for this server in `~/.ssh/config`, logging in with `key`
    /// (`~/.ssh/NAME`).
    pub(super) fn backup_alias(&self, key: &str) {
        self.home.config(&format!(
            "Host backup\n\
             \x20   HostName 127.0.0.1\n\
             \x20   Port {port}\n\
             \x20   User {user}\n\
             \x20   IdentityFile ~/.ssh/{key}\n\
             \x20   IdentitiesOnly yes\n\
             \x20   UserKnownHostsFile ~/.ssh/known_hosts\n\
             \x20   StrictHostKeyChecking yes\n",
            port = self.sshd.port(),
            user = self.sshd.user(),
        ));
    }

    /// `snapshot` with the nss_wrapper home and `extra` variables; bounded by `FAIL_LIMIT`.
    pub(super) fn snapshot(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> (Run, std::time::Duration) {
        let vars = self.home.vars();
        let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
        all.extend_from_slice(extra);
        snapshot_with(&self.fx, args, &all)
    }

    /// A snapshot that must succeed quietly and report both configured pushes.
    #[track_caller]
    pub(super) fn snapshot_ok(&self, args: &[&str], extra: &[(&str, &str)], roles: &[&str]) -> Run {
        let (run, took) = self.snapshot(args, extra);
        let run = run.success();
        if !run.stderr().is_empty() {
            run.fail(&format!(
                "expected an empty stderr; sshd log:\n{}",
                self.sshd.log()
            ));
        }
        for role in roles {
            if !run.stdout_str().contains(&format!("to {role} remote")) {
                run.fail(&format!(
                    "stdout should report the push to the {role} remote"
                ));
            }
        }
        assert!(took < RUN_LIMIT, "took {took:?}");
        run
    }
}

/// The remote at `path` still has `main` at `tip` (a failed push changed nothing there).
#[track_caller]
pub(super) fn assert_remote_main(fx: &Fx, path: &std::path::Path, tip: Option<&str>) {
    assert_eq!(
        fx.rev(path, "refs/heads/main").as_deref(),
        tip,
        "a failed push must leave {} as it was",
        path.display()
    );
}

/// How sqlgit shows `url` in messages (the user name hidden).
pub(super) fn shown(url: &str) -> String {
    url.replacen(&format!("{}@", current_user()), "***@", 1)
}

// ------------------------------------------------------------------------------------------------
// a. A `Host backup` alias in ~/.ssh/config: HostName, Port, User, IdentityFile all honoured.

#[test]
fn ssh_config_host_alias_is_honoured_by_the_git_transport() {
    let t = SshFx::new();
    let key = t.home.keygen("deploy_key");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    t.backup_alias("deploy_key");
    let history = t.sshd.create_bare("history");
    let latest = t.sshd.create_bare("latest");
    let h_url = format!("backup:{}", history.display());
    let l_url = format!("ssh://backup{}", latest.display());
    let remotes = ["--history-remote", &h_url, "--latest-remote", &l_url];
    t.snapshot_ok(&remotes, &[], &["history", "latest"]);
    let accepted = format!("Accepted publickey for {}", t.sshd.user());
    assert!(
        t.sshd.log().contains(&accepted),
        "sshd should have accepted deploy_key:\n{}",
        t.sshd.log()
    );
    t.fx.assert_history(&history, 1);
    t.fx.assert_latest(&latest);
    t.fx.change();
    t.snapshot_ok(&[], &[], &["history", "latest"]);
    t.fx.assert_history(&history, 2);
    t.fx.assert_latest(&latest);
    t.fx.assert_fsck(&history);
    t.fx.assert_fsck(&latest);

    // libgit2 does not read ~/.ssh/config: "backup" is no host name to it. This is the known
    // limitation the git transport exists for; it must still fail with one line per remote.
    let (h_tip, l_tip) = (t.fx.head(), t.fx.rev(&latest, "refs/heads/main"));
    t.fx.change();
    let (run, took) = t.snapshot(&["--transport", "libgit2"], &[]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    assert_push_failures(&run, &[("history", &h_url), ("latest", &l_url)]);
    assert_remote_main(&t.fx, &history, Some(&h_tip));
    assert_remote_main(&t.fx, &latest, l_tip.as_deref());
}

// ------------------------------------------------------------------------------------------------
// b. A URL without a user, the key only in ssh-agent.

#[test]
fn url_without_user_and_key_only_in_the_agent() {
    let t = SshFx::new();
    // The key lives outside ~/.ssh and nothing names it: only the agent can offer it.
    let key = keygen(&t.fx.env.path("keys/agent_only"), "", "agent-only");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    let agent = SshAgent::start_in(&t.fx.env.path("agent"));
    agent.add(&key);
    std::fs::remove_file(&key).unwrap();
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(None, "history");
    assert!(!url.contains('@'), "{url}");
    let sock = agent.sock();
    let with_agent = [("SSH_AUTH_SOCK", sock.as_str())];
    t.snapshot_ok(&["--history-remote", &url], &with_agent, &["history"]);
    t.fx.assert_history(&history, 1);

    // Without the agent there is no key at all: a refused login, at once.
    let tip = t.fx.head();
    t.fx.change();
    let (run, took) = t.snapshot(&[], &[]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(&run, &[("history", &url)]);
    assert!(causes[0].contains("authentication failed"), "{causes:?}");
    assert_remote_main(&t.fx, &history, Some(&tip));
}

// ------------------------------------------------------------------------------------------------
// c. A passphrase-protected key named by IdentityFile, no agent: one line naming ssh-agent.

#[test]
fn passphrase_key_from_ssh_config_without_agent_names_the_key_and_ssh_agent() {
    let t = SshFx::new();
    let key = t.home.keygen("backup_key");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    t.backup_alias("backup_key");
    let agent = SshAgent::start_in(&t.fx.env.path("agent"));
    agent.add(&key);
    encrypt_key(&key, "correct horse");
    let history = t.sshd.create_bare("history");
    let h_url = format!("backup:{}", history.display());

    // A $HOME that is not the home ssh uses (cron jobs often have another one): the key must be
    // found where ssh finds it, through getpwuid().
    let elsewhere = t.fx.env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let elsewhere = elsewhere.display().to_string();
    let (run, took) = t.snapshot(&["--history-remote", &h_url], &[("HOME", &elsewhere)]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    assert!(
        causes[0].contains("passphrase") && causes[0].contains("ssh-agent"),
        "the cause should say the key needs a passphrase and name ssh-agent: {causes:?}"
    );
    assert!(
        causes[0].contains(&key.display().to_string()),
        "the cause should name the key from ~/.ssh/config ({}): {causes:?}",
        key.display()
    );
    assert_eq!(t.fx.rev(&history, "refs/heads/main"), None);

    // With the agent holding the key, the next run pushes both snapshots.
    t.fx.change();
    let sock = agent.sock();
    t.snapshot_ok(&[], &[("SSH_AUTH_SOCK", &sock)], &["history"]);
    t.fx.assert_history(&history, 2);
}

// ------------------------------------------------------------------------------------------------
// d. An unknown host key fails at once (BatchMode: no "are you sure" prompt, no hang).

#[test]
fn unknown_host_key_fails_at_once_with_the_known_hosts_message() {
    let t = SshFx::new();
    let key = t.home.keygen("id_ed25519");
    t.sshd.authorize(&pubkey(&key));
    t.home.known_hosts(&[]);
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(Some(&t.sshd.user()), "history");
    let (run, took) = t.snapshot(&["--history-remote", &url], &[]);
    assert!(
        took < std::time::Duration::from_secs(10),
        "an unknown host key took {took:?}"
    );
    let causes = assert_push_failures(&run, &[("history", &shown(&url))]);
    assert!(
        causes[0].contains("known_hosts") && causes[0].contains("never asks"),
        "the cause should say the host key is unknown: {causes:?}"
    );
    assert_eq!(t.fx.rev(&history, "refs/heads/main"), None);
    let known = std::fs::read_to_string(t.home.ssh_path("known_hosts")).unwrap();
    assert!(known.trim().is_empty(), "nothing may be added: {known}");
    // The libgit2 transport says how to add the key too.
    let (run, _) = t.snapshot(&["--transport", "libgit2"], &[]);
    let causes = assert_push_failures(&run, &[("history", &shown(&url))]);
    assert!(
        causes[0].contains("known_hosts") && causes[0].contains("ssh-keyscan"),
        "the libgit2 cause should say how to add the host key: {causes:?}"
    );

    // Once the key is known, the same setup works.
    t.trust_server();
    t.fx.change();
    t.snapshot_ok(&["--transport", "git"], &[], &["history"]);
    t.fx.assert_history(&history, 2);
}

/// A host key that CHANGED (known_hosts holds another key for the host: a rebuilt server, or
/// someone in the middle) is named as changed by both transports, with `ssh-keygen -R`; never
/// the advice for an unknown host (appending whatever key is presented now).
#[test]
fn a_changed_host_key_is_named_as_changed_by_both_transports() {
    let t = SshFx::new();
    let key = t.home.keygen("id_ed25519");
    t.sshd.authorize(&pubkey(&key));
    let impostor = keygen(&t.fx.env.path("keys/impostor"), "", "impostor");
    let impostor_pub = std::fs::read_to_string(pubkey(&impostor)).unwrap();
    let mut words = impostor_pub.split_whitespace();
    let (kind, body) = (words.next().unwrap(), words.next().unwrap());
    t.home
        .known_hosts(&[format!("[127.0.0.1]:{} {kind} {body}", t.sshd.port())]);
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(Some(&t.sshd.user()), "history");
    for transport in ["git", "libgit2"] {
        let (run, _) = t.snapshot(&["--history-remote", &url, "--transport", transport], &[]);
        let causes = assert_push_failures(&run, &[("history", &shown(&url))]);
        let cause = causes[0].to_ascii_lowercase();
        assert!(
            cause.contains("changed") && cause.contains("ssh-keygen -r"),
            "{transport}: {causes:?}"
        );
        assert!(!cause.contains("ssh-keyscan"), "{transport}: {causes:?}");
    }
    assert_eq!(t.fx.rev(&history, "refs/heads/main"), None);
}

/// known_hosts holding the server only under a key of another type (an old RSA key; the
/// rebuilt server offers ed25519): libgit2 asks the server for that type only and the key
/// exchange fails. The error names the host key in known_hosts and `ssh-keygen -R`, as the git
/// transport's does, not a bare "Unable to exchange encryption keys".
#[test]
fn a_host_key_of_another_type_in_known_hosts_is_named_by_libgit2() {
    let t = SshFx::new();
    let key = t.home.keygen("id_ed25519");
    t.sshd.authorize(&pubkey(&key));
    let old = t.fx.env.path("keys/old_rsa");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen -t rsa");
    let old_pub = std::fs::read_to_string(pubkey(&old)).unwrap();
    let old_pub: Vec<&str> = old_pub.split_whitespace().take(2).collect();
    let line = format!("[127.0.0.1]:{} {}", t.sshd.port(), old_pub.join(" "));
    t.home.known_hosts(&[line]);
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(Some(&t.sshd.user()), "history");
    let args = ["--history-remote", &url, "--transport", "libgit2"];
    let (run, _) = t.snapshot(&args, &[]);
    let causes = assert_push_failures(&run, &[("history", &shown(&url))]);
    let cause = causes[0].to_ascii_lowercase();
    assert!(
        cause.contains("known_hosts")
            && cause.contains("ssh-rsa")
            && cause.contains(&format!("ssh-keygen -r '[127.0.0.1]:{}'", t.sshd.port())),
        "{causes:?}"
    );
    assert_eq!(t.fx.rev(&history, "refs/heads/main"), None);
}

// ------------------------------------------------------------------------------------------------
// e. --ssh-key against the real server.

#[test]
fn ssh_key_flag_logs_in_with_a_key_ssh_would_not_find() {
    let t = SshFx::new();
    let key = keygen(&t.fx.env.path("keys/sqlgit_deploy"), "", "sqlgit-deploy");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(Some(&t.sshd.user()), "history");

    // Without --ssh-key, ssh has no key to offer.
    let (run, _) = t.snapshot(&["--history-remote", &url], &[]);
    let causes = assert_push_failures(&run, &[("history", &shown(&url))]);
    assert!(causes[0].contains("authentication failed"), "{causes:?}");

    let key_arg = key.display().to_string();
    t.snapshot_ok(&["--ssh-key", &key_arg], &[], &["history"]);
    t.fx.assert_history(&history, 1);
    t.fx.change();
    t.snapshot_ok(&[], &[], &["history"]);
    t.fx.assert_history(&history, 2);
}

// ------------------------------------------------------------------------------------------------
// f. The user's own ssh command (GIT_SSH_COMMAND, core.sshCommand) is used as given.

/// An ssh config file outside ~/.ssh with a `Host vault` alias for the server.
fn vault_config(t: &SshFx, key: &std::path::Path) -> PathBuf {
    t.fx.env.write(
        "custom/ssh_config",
        format!(
            "Host vault\n\
             \x20   HostName 127.0.0.1\n\
             \x20   Port {port}\n\
             \x20   User {user}\n\
             \x20   IdentityFile {key}\n\
             \x20   IdentitiesOnly yes\n\
             \x20   UserKnownHostsFile {known}\n\
             \x20   StrictHostKeyChecking yes\n\
             \x20   BatchMode yes\n",
            port = t.sshd.port(),
            user = t.sshd.user(),
            key = key.display(),
            known = t.fx.env.path("custom/known_hosts").display(),
        ),
    )
}

#[test]
fn git_ssh_command_and_core_ssh_command_are_honoured() {
    let t = SshFx::new();
    let key = keygen(&t.fx.env.path("custom/vault_key"), "", "vault");
    t.sshd.authorize(&pubkey(&key));
    t.fx.env.write(
        "custom/known_hosts",
        format!("{}\n", t.sshd.known_hosts_line()),
    );
    let config = vault_config(&t, &key);
    // ~/.ssh knows nothing of "vault": only the user's command can reach it.
    t.home.config("# nothing here\n");
    let history = t.sshd.create_bare("history");
    let url = format!("vault:{}", history.display());
    let ssh = format!("ssh -F {}", config.display());

    t.snapshot_ok(
        &["--history-remote", &url],
        &[("GIT_SSH_COMMAND", &ssh)],
        &["history"],
    );
    t.fx.assert_history(&history, 1);

    // core.sshCommand in the repository's config, no GIT_SSH_COMMAND.
    t.fx.git(&t.fx.repo, &["config", "core.sshCommand", &ssh]);
    t.fx.change();
    t.snapshot_ok(&[], &[], &["history"]);
    t.fx.assert_history(&history, 2);

    // Without it, "vault" means nothing to ssh: the push fails (so the above used the command).
    t.fx.git(&t.fx.repo, &["config", "--unset", "core.sshCommand"]);
    let tip = t.fx.head();
    t.fx.change();
    let (run, took) = t.snapshot(&[], &[]);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(&run, &[("history", &url)]);
    assert!(causes[0].contains("vault"), "{causes:?}");
    assert_remote_main(&t.fx, &history, Some(&tip));
}

// ------------------------------------------------------------------------------------------------
// g. The libgit2 transport and a URL without a user: the local user, as OpenSSH does.

#[test]
fn libgit2_logs_in_as_the_local_user_when_the_url_names_none() {
    let t = SshFx::new();
    let key = keygen(&t.fx.env.path("keys/sqlgit_deploy"), "", "sqlgit-deploy");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    let history = t.sshd.create_bare("history");
    let url = t.sshd.url(None, "history");
    assert!(!url.contains('@'), "{url}");
    let key_arg = key.display().to_string();
    let args = [
        "--history-remote",
        &url,
        "--ssh-key",
        &key_arg,
        "--transport",
        "libgit2",
    ];
    t.snapshot_ok(&args, &[], &["history"]);
    t.fx.assert_history(&history, 1);
}
