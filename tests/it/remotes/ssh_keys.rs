//! Which key ssh offers for `--ssh-key` (git transport), against a real OpenSSH server: the named
//! key first and alone, however many keys the user's agent holds, and also through the user's
//! own `GIT_SSH` program; a login the server cut short names the cause.

use super::ssh::{SshFx, assert_remote_main, shown};
use super::{FAIL_LIMIT, assert_push_failures};
use crate::servers::sshd::{SshAgent, keygen, pubkey};

/// An agent holding `n` keys the server does not know (a workstation's agent).
fn agent_with_other_keys(t: &SshFx, n: usize) -> SshAgent {
    let agent = SshAgent::start_in(&t.fx.env.path("agent"));
    for i in 0..n {
        let other = keygen(&t.fx.env.path(format!("keys/other{i}")), "", "other");
        agent.add(&other);
    }
    agent
}

#[test]
fn ssh_key_is_offered_first_even_with_six_other_keys_in_the_agent() {
    let t = SshFx::new();
    let key = keygen(&t.fx.env.path("keys/deploy"), "", "deploy");
    t.sshd.authorize(&pubkey(&key));
    t.trust_server();
    // sshd's MaxAuthTries is 6: six wrong keys offered first end the login.
    let agent = agent_with_other_keys(&t, 6);
    let sock = agent.sock();
    let with_agent = [("SSH_AUTH_SOCK", sock.as_str())];
    let history = t.sshd.create_bare("history");
    let latest = t.sshd.create_bare("latest");
    let user = t.sshd.user();
    let (h_url, l_url) = (
        t.sshd.url(Some(&user), "history"),
        t.sshd.url(Some(&user), "latest"),
    );
    let key_arg = key.display().to_string();
    let args = [
        "--history-remote",
        &h_url,
        "--latest-remote",
        &l_url,
        "--ssh-key",
        &key_arg,
        "--transport",
        "git",
    ];
    t.snapshot_ok(&args, &with_agent, &["history", "latest"]);
    t.fx.assert_history(&history, 1);
    t.fx.assert_latest(&latest);

    // Without --ssh-key, with the key only named in ~/.ssh (not IdentitiesOnly), the agent's
    // keys use up the tries: the cause is the server's reason and its fix, not "Disconnected".
    let moved = t.home.ssh_path("id_ed25519");
    std::fs::copy(&key, &moved).unwrap();
    t.fx.git(&t.fx.repo, &["config", "--unset", "sqlgit.sshKey"]);
    let tip = t.fx.head();
    t.fx.change();
    let (run, took) = t.snapshot(&[], &with_agent);
    assert!(took < FAIL_LIMIT, "took {took:?}");
    let causes = assert_push_failures(
        &run,
        &[("history", &shown(&h_url)), ("latest", &shown(&l_url))],
    );
    for cause in &causes {
        assert!(
            cause.contains("Too many authentication failures")
                && cause.contains("--ssh-key")
                && cause.contains("IdentitiesOnly"),
            "the cause should be the server's and name the fix: {causes:?}"
        );
        assert!(!cause.contains("Disconnected from"), "{causes:?}");
    }
    assert_remote_main(&t.fx, &history, Some(&tip));
}
