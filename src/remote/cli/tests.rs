use std::path::PathBuf;

use super::credentials::{git_url, http_credentials, remote_url};
use super::diagnose::{
    fsck_refusal, is_progress, last_meaningful, porcelain_status, refusal, unpack_failure,
};
use super::ssh::{expand_home, is_ssh, ssh_destination};
use crate::remote::url::percent_decode;

#[test]
fn porcelain_lines() {
    let out = "To git://h/x\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n";
    assert_eq!(
        porcelain_status(out),
        Some(('!', "[rejected] (fetch first)".into()))
    );
    let out = "To git://h/x\n*\trefs/sqlgit/latest:refs/heads/main\t[new branch]\nDone\n";
    assert_eq!(porcelain_status(out).unwrap().0, '*');
}

#[test]
fn why_the_remote_could_not_store_a_push() {
    let stderr = "error: remote unpack failed: unable to create temporary object directory\n\
                  To /srv/h.git\n";
    assert_eq!(
        unpack_failure(stderr).as_deref(),
        Some("unable to create temporary object directory")
    );
    assert_eq!(unpack_failure("To /srv/h.git\n"), None);
}

#[test]
fn urls() {
    assert_eq!(git_url("https://u:p@h:1/x", true), "https://u@h:1/x");
    assert_eq!(git_url("https://u:p@h:1/x", false), "https://h:1/x");
    assert_eq!(git_url("https://u@h/x", false), "https://h/x");
    assert_eq!(git_url("https://u@h/x", true), "https://u@h/x");
    assert_eq!(git_url("https://:p@h/x", true), "https://h/x");
    assert_eq!(git_url("https://h/a:b@c", false), "https://h/a:b@c");
    assert_eq!(git_url("ssh://u:p@h/x", true), "ssh://u@h/x");
    assert!(is_ssh("git@host:repo.git"));
    assert!(is_ssh("ssh://host/x"));
    assert!(!is_ssh("/srv/x.git"));
    assert!(!is_ssh("git://h/x"));
    assert_eq!(percent_decode("a%2Bb+c%40"), "a+b+c@");
}

#[test]
fn ssh_destinations() {
    let d = |u: &str| ssh_destination(u);
    let s = |v: &str| Some(v.to_string());
    assert_eq!(d("backup:/srv/h.git"), Some((None, "backup".into(), None)));
    assert_eq!(
        d("git@host:repo.git"),
        Some((s("git"), "host".into(), None))
    );
    assert_eq!(
        d("ssh://u@127.0.0.1:2222/abs/x.git"),
        Some((s("u"), "127.0.0.1".into(), s("2222")))
    );
    assert_eq!(d("ssh://backup/x"), Some((None, "backup".into(), None)));
    assert_eq!(d("ssh://[::1]:22/x"), Some((None, "::1".into(), s("22"))));
    assert_eq!(d("ssh://-oProxyCommand=x/y"), None);
    let home = PathBuf::from("/h");
    assert_eq!(
        expand_home("~/.ssh/k", Some(&home)),
        PathBuf::from("/h/.ssh/k")
    );
    assert_eq!(expand_home("%d/k", Some(&home)), PathBuf::from("/h/k"));
    assert_eq!(expand_home("/abs/k", Some(&home)), PathBuf::from("/abs/k"));
}

#[test]
fn meaningful_line() {
    let err = "fatal: remote error: access denied\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
    assert_eq!(last_meaningful(err).unwrap(), "remote error: access denied");
}

#[test]
fn the_servers_reason_for_a_disconnect_is_the_meaningful_line() {
    let err = "Received disconnect from 127.0.0.1 port 2222:2: Too many authentication failures\r\nDisconnected from 127.0.0.1 port 2222\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
    assert_eq!(
        last_meaningful(err).unwrap(),
        "Received disconnect from 127.0.0.1 port 2222:2: Too many authentication failures"
    );
}

#[test]
fn a_servers_reason_with_a_percent_sign_is_quoted_whole() {
    let stderr = "Enumerating objects: 5, done.\nWriting objects:  40% (2/5)\rWriting objects: \
                  100% (5/5), 1.2 KiB | 1.2 MiB/s, done.\nremote: Resolving deltas: 100% (1/1)\n\
                  remote: repository quota exceeded: 100% of 1 GiB used\nTo git://h/x\n";
    let e = refusal(
        "[remote rejected] (pre-receive hook declined)",
        stderr,
        false,
    )
    .to_string();
    assert!(
        e.contains("the remote said: repository quota exceeded: 100% of 1 GiB used"),
        "{e}"
    );
    assert!(!e.contains("Resolving"), "{e}");
    let long = format!("remote: {}\n", "why ".repeat(200));
    let e = refusal("[remote rejected] (hook declined)", &long, false).to_string();
    assert!(e.trim_end_matches(')').ends_with("why"), "{e}");
    assert!(is_progress(
        "Writing objects:  45% (9/20), 1.10 MiB | 250.00 KiB/s"
    ));
    assert!(is_progress(
        "Total 3 (delta 0), reused 0 (delta 0), pack-reused 0"
    ));
    assert!(!is_progress("quota exceeded: 100% of 1 GiB used"));
    assert_eq!(
        last_meaningful("fatal: disk 100% full\nWriting objects: 100% (3/3)\n").as_deref(),
        Some("disk 100% full")
    );
}

#[test]
fn a_non_bare_remote_with_main_checked_out_is_named_with_the_fix() {
    let stderr = "remote: error: refusing to update checked out branch: refs/heads/main\n\
                  remote: error: By default, updating the current branch in a non-bare repository\n\
                  remote: is denied, because it will make the index and work tree inconsistent\n";
    let e = refusal(
        "[remote rejected] (branch is currently checked out)",
        stderr,
        false,
    );
    let e = e.to_string();
    assert!(
        e.contains("bare repository") && e.contains("updateInstead"),
        "{e}"
    );
}

#[test]
fn a_transfer_in_progress_is_noted_with_its_meter() {
    use std::time::{Duration, Instant};
    let before = Instant::now() - Duration::from_secs(10);
    let activity = std::sync::Mutex::new((before, String::new()));
    super::run::note_activity(
        &activity,
        b"Enumerating objects: 5, done.\nWriting objects:  45% (9/20), 1.10 MiB | 250.00 KiB/s\r",
    );
    let (when, meter) = activity.lock().unwrap().clone();
    assert_eq!(
        meter,
        "Writing objects: 45% (9/20), 1.10 MiB | 250.00 KiB/s"
    );
    assert!(when > before);
    super::run::note_activity(&activity, b"Total 3 (delta 0), reused 0 (delta 0)\n");
    assert_eq!(activity.lock().unwrap().1, meter);
}

#[test]
fn a_meter_cut_by_a_read_is_noted_whole() {
    use std::time::Instant;
    /// Gives its pieces one read at a time, as a pipe does.
    struct Pieces(Vec<&'static [u8]>);
    impl std::io::Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let piece = self.0.remove(0);
            out[..piece.len()].copy_from_slice(piece);
            Ok(piece.len())
        }
    }
    let activity = std::sync::Mutex::new((Instant::now(), String::new()));
    let mut stream = Pieces(vec![
        b"remote: Enumerating objects: 5, done.\nremote: Compres",
        b"sing objects:  61% (280/458)\r",
        b"remote: Compressing obj",
    ]);
    let said = super::run::collect(&mut stream, Some(&activity));
    assert!(said.ends_with(b"Compressing obj"));
    assert_eq!(
        activity.lock().unwrap().1,
        "remote: Compressing objects: 61% (280/458)"
    );
}

#[test]
fn a_push_refused_by_the_remotes_fsck_says_so() {
    let stderr = "remote: error: object 1234: hasDotgit: contains '.git'\n\
                  remote: fatal: fsck error in packed object\n\
                  error: remote unpack failed: unpack-objects abnormal exit\n";
    assert_eq!(
        fsck_refusal(stderr).as_deref(),
        Some("error: object 1234: hasDotgit: contains '.git'")
    );
    let said = format!(
        "{}",
        refusal("[remote rejected] (unpacker error)", stderr, false)
    );
    assert!(
        said.contains("receive.fsckObjects") && !said.contains("free space"),
        "{said}"
    );
    assert_eq!(
        fsck_refusal("error: remote unpack failed: disk full\n"),
        None
    );
}

#[test]
fn a_token_given_as_the_urls_user_goes_through_the_helper() {
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let url = format!("https://{token}@h:8443/x.git");
    assert_eq!(
        http_credentials(&url, None),
        Some(("https://h:8443".into(), token.into(), token.into()))
    );
    assert_eq!(remote_url(&url, None), "https://h:8443/x.git");
    assert_eq!(http_credentials("https://alice@h/x.git", None), None);
    assert_eq!(
        remote_url("https://alice@h/x.git", None),
        "https://alice@h/x.git"
    );
}

#[test]
fn an_untrusted_certificate_names_the_ca_settings() {
    let cli = super::GitCli::new(
        "git".into(),
        "/nonexistent".into(),
        None,
        std::time::Duration::from_secs(5),
        None,
    );
    let stderr = "fatal: unable to access 'https://127.0.0.1:8443/h.git/': server certificate \
                  verification failed. CAfile: none CRLfile: none\n";
    let e = cli
        .failure("push", "https://127.0.0.1:8443/h.git", stderr)
        .to_string();
    assert!(
        e.contains("GIT_SSL_CAINFO") && e.contains("http.sslCAInfo"),
        "{e}"
    );
}

/// `receive.maxInputSize`, or GitHub's 2 GB a push: the server's reason, not a storage problem.
#[test]
fn a_push_over_the_servers_size_limit_says_so() {
    let stderr = "remote: fatal: pack exceeds maximum allowed size (19.53 KiB)        \n\
                  error: remote unpack failed: index-pack abnormal exit\n";
    let said = refusal("[remote rejected] (unpacker error)", stderr, false).to_string();
    assert!(
        said.contains("pack exceeds maximum allowed size (19.53 KiB)")
            && said.contains("receive.maxInputSize")
            && said.contains("2 GB")
            && !said.contains("free space"),
        "{said}"
    );
    // Another reason of the server's is kept beside the storage hint.
    let stderr = "remote: fatal: unable to create temporary object directory\n\
                  error: remote unpack failed: unpack-objects abnormal exit\n";
    let said = refusal("[remote rejected] (unpacker error)", stderr, false).to_string();
    assert!(
        said.contains("unable to create temporary object directory") && said.contains("free space"),
        "{said}"
    );
}

/// A history remote another user owns: git's reason stays beside the command it gives.
#[test]
fn dubious_ownership_keeps_gits_reason() {
    let err = "fatal: detected dubious ownership in repository at '/srv/h.git'\n\
               '/srv/h.git' is owned by:\n\tbob (1001)\nbut the current user is:\n\troot (0)\n\
               To add an exception for this directory, call:\n\n\
               \tgit config --global --add safe.directory /srv/h.git\n";
    let said = last_meaningful(err).unwrap();
    assert!(
        said.contains("detected dubious ownership in repository at '/srv/h.git'")
            && said.contains("git config --global --add safe.directory /srv/h.git"),
        "{said}"
    );
}

/// An HTTP request that failed mid-push: git's `RPC failed` line names it, not the disconnect
/// after it; HTTP 413 is a size limit, with where to raise it.
#[test]
fn an_http_error_mid_push_is_the_meaningful_line() {
    let after = "send-pack: unexpected disconnect while reading sideband packet\n\
                 fatal: the remote end hung up unexpectedly\n";
    for status in [
        "RPC failed; HTTP 413 curl 22 The requested URL returned error: 413",
        "RPC failed; HTTP 500 curl 22 The requested URL returned error: 500",
        "RPC failed; HTTP 502 curl 22 The requested URL returned error: 502",
        "RPC failed; HTTP 503 curl 22 The requested URL returned error: 503",
        "RPC failed; HTTP 504 curl 22 The requested URL returned error: 504",
        "RPC failed; curl 56 Recv failure: Connection reset by peer",
        "RPC failed; curl 92 HTTP/2 stream 5 was not closed cleanly: CANCEL (err 8)",
    ] {
        let stderr = format!("Enumerating objects: 5, done.\nerror: {status}\n{after}");
        assert_eq!(last_meaningful(&stderr).as_deref(), Some(status));
        assert_eq!(
            super::diagnose::http_error(&stderr).as_deref(),
            Some(status)
        );
    }
    let cli = super::GitCli::new(
        "git".into(),
        "/nonexistent".into(),
        None,
        std::time::Duration::from_secs(5),
        None,
    );
    let url = "http://127.0.0.1:8080/h.git";
    let stderr = format!(
        "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\n{after}"
    );
    let e = cli.failure("push", url, &stderr).to_string();
    assert!(e.contains("HTTP 502") && !e.contains("disconnect"), "{e}");
    let stderr = format!(
        "error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413\n{after}"
    );
    let e = cli.failure("push", url, &stderr).to_string();
    assert!(
        e.contains("refuses a push this large") && e.matches("HTTP 413").count() == 1,
        "{e}"
    );
    assert_eq!(super::diagnose::http_error(after), None);
    assert_eq!(
        last_meaningful(after).as_deref(),
        Some("send-pack: unexpected disconnect while reading sideband packet")
    );
}
