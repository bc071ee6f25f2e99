use std::path::PathBuf;

use super::credentials::{git_url, percent_decode};
use super::diagnose::{last_meaningful, porcelain_status, unpack_failure};
use super::ssh::{expand_home, is_ssh, ssh_destination};

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
