use super::*;

#[test]
fn a_token_given_as_the_user_is_not_kept() {
    for url in [
        "https://ghp_Tok7Secret@github.com/o/r.git",
        "http://glpat-abc@127.0.0.1:1/h.git",
        "https://0123456789abcdef0123456789abcdef01234567@forge/x.git",
    ] {
        let (kept, had) = without_password(url);
        assert!(had && !kept.contains('@'), "{url} -> {kept}");
    }
    for url in ["https://bob@forge/x.git", "ssh://ghp_x@host/x.git"] {
        assert_eq!(without_password(url), (url.to_string(), false));
    }
}

#[test]
fn a_push_record_belongs_to_its_remote_however_the_credentials_were_given() {
    let recorded = redact("https://ghp_Tok7Secret@forge/x.git");
    for configured in [
        "https://ghp_Tok7Secret@forge/x.git",
        "https://forge/x.git",
        "https://alice:pw@forge/x.git",
    ] {
        assert!(is_recorded_as(configured, &recorded), "{configured}");
    }
    assert!(!is_recorded_as("https://forge/y.git", &recorded));
    assert!(is_recorded_as("/srv/h.git", "/srv/h.git"));
    assert!(!is_recorded_as("/srv/new.git", "/srv/h.git"));
}

#[test]
fn an_scp_like_address_with_a_password_is_refused_without_showing_it() {
    let e = validate_url("bob:Secr3t@host:srv/h.git")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bob:…@…") && !e.contains("Secr3t"), "{e}");
    for fine in ["bob@host:srv/h.git", "host:srv/h.git", "/srv/a:b@c", "./x"] {
        validate_url(fine).unwrap();
    }
}

#[test]
fn dot_segments_and_percent_escapes_name_the_same_repository() {
    let same = [
        ("ssh://h/srv/git/app.git", "ssh://h/srv/git/./app.git"),
        ("ssh://h/srv/git/app.git", "h:/srv/git/./app.git"),
        ("https://f/ops/app.git", "https://f/x/../ops/app.git"),
        ("https://f/ops/app.git", "https://f/ops/%61pp.git"),
        ("git://h/app.git", "git://h/%61pp.git"),
        ("file:///srv/hist3.git", "file:///srv/hist%33.git"),
        ("/srv/hist3.git", "file://localhost/srv/hist3.git"),
        ("/srv/hist3.git", "file://LocalHost/srv//./hist3.git/"),
        ("/srv/hist3.git", "file://other/srv/x/../hist3.git"),
        ("/srv/hist3.git", "file://localhost%2Fsrv/hist3.git"),
    ];
    for (a, b) in same {
        assert_eq!(
            repository_named(a, None),
            repository_named(b, None),
            "{a} {b}"
        );
    }
    let different = [
        ("ssh://h/~/x.git", "ssh://h/~/../x.git"),
        ("h:srv/%61pp.git", "h:srv/app.git"),
        ("https://f/a/app.git", "https://f/b/app.git"),
    ];
    for (a, b) in different {
        assert_ne!(
            repository_named(a, None),
            repository_named(b, None),
            "{a} {b}"
        );
    }
}

#[test]
fn redacts_userinfo() {
    assert_eq!(
        redact("https://u:p@h.example/x.git"),
        "https://***@h.example/x.git"
    );
    assert_eq!(redact("https://h.example/a@b"), "https://h.example/a@b");
    assert_eq!(redact("git@host:repo.git"), "git@host:repo.git");
    let msg = scrub(
        "failed for https://u:s3cret@h/x (s3cret)",
        "https://u:s3cret@h/x",
    );
    assert!(!msg.contains("s3cret"), "{msg}");
    let msg = scrub(
        "fatal: could not read Password for 'http://ghp_Tok3n@127.0.0.1:9': No such device",
        "http://ghp_Tok3n@127.0.0.1:9/h.git",
    );
    assert_eq!(
        msg,
        "fatal: could not read Password for 'http://***@127.0.0.1:9': No such device"
    );
}

#[test]
fn a_password_hiding_its_userinfo_is_found_redacted_and_refused() {
    for url in [
        "https://alice:Pa/Secr3t@host/h.git",
        "https://alice:Pa#Secr3t@host/h.git",
        "https://alice:Pa?Secr3t@host/h.git",
        "https://alice:Pa/Se@cr3t@host/h.git",
        "https://alice:Pa/Secr3t@[::1]:8443/h.git",
        "bob:Pa/Secr3t@host:srv/h.git",
        "bob:Pa@Secr3t@host:srv/h.git",
    ] {
        assert!(!redact(url).contains("Secr3t"), "{url} -> {}", redact(url));
        let (kept, dropped) = without_password(url);
        assert!(dropped && !kept.contains("Secr3t"), "{url} -> {kept}");
        assert!(!scrub(&format!("git: {url}"), url).contains("Secr3t"));
        let e = validate_url(url).unwrap_err().to_string();
        assert!(!e.contains("Secr3t"), "{e}");
    }
    // Unambiguous ones: an '@' in the password, an IPv6 host, an '@' in a path.
    let url = "https://alice:p@ss@[::1]:8443/h.git";
    let info = Userinfo::of(url).unwrap();
    assert_eq!((info.user, info.password), ("alice", Some("p@ss")));
    assert_eq!(redact(url), "https://***@[::1]:8443/h.git");
    for fine in ["https://[::1]/a@b.git", "https://host/a@b", "git@host:a@b"] {
        assert_eq!(redact(fine), fine);
        validate_url(fine).unwrap();
    }
}

#[test]
fn one_repository_is_named_alike_however_its_url_is_spelled() {
    for (a, b) in [
        ("http://host:9/h.git", "http://alice@host:9/h.git"),
        ("http://host:9/h.git", "http://alice:pw@HOST:9/h"),
        ("https://host/h.git", "https://host:443/h.git/"),
        ("http://host/h.git", "http://host:80//h.git"),
        ("git@host:/srv/h.git", "ssh://git@host/srv/h.git"),
        ("git@host:/srv/h.git", "ssh://host:22/srv//h"),
        ("git@host:srv/h.git", "ssh://git@host/~/srv/h.git"),
        ("git@[::1]:srv/h.git", "ssh://git@[::1]:22/~/srv/h"),
        ("git://host/h.git", "git://host:9418/h"),
        ("http://127.0.0.1:9/x.git", "http://2130706433:9/x.git"),
        ("http://127.0.0.1:9/x.git", "http://127.000.000.001:9/x.git"),
        ("ssh://127.0.0.1/x", "2130706433:/x.git"),
        ("https://[::1]/x", "https://[0:0::1]:443/x"),
    ] {
        assert_eq!(
            repository_named(a, None),
            repository_named(b, None),
            "{a} vs {b}"
        );
    }
    for (a, b) in [
        ("http://host:9/h.git", "http://host:8080/h.git"),
        ("https://host/h.git", "http://host/h.git"),
        ("alice@host:h.git", "bob@host:h.git"),
        ("git@host:srv/h.git", "ssh://git@host/srv/h.git"),
    ] {
        assert_ne!(
            repository_named(a, None),
            repository_named(b, None),
            "{a} vs {b}"
        );
    }
}

#[test]
fn userinfo_no_push_could_use_is_refused_and_an_encoded_user_is_sent_decoded() {
    for (url, said) in [
        (
            "http://alice@example.com:Secr3t@h/x.git",
            "alice%40example.com",
        ),
        ("https://alice@example.com@h/x.git", "%40"),
        ("git://alice:Secr3t@h/x.git", "git:// URL takes no user"),
        ("GIT://alice@h/x.git", "git:// URL takes no user"),
        (
            "file://u:Secr3t@localhost/srv/h.git",
            "file:// URL takes no user",
        ),
    ] {
        let e = validate_url(url).unwrap_err().to_string();
        assert!(e.contains(said) && !e.contains("Secr3t"), "{url}: {e}");
    }
    for fine in [
        "http://alice%40example.com:pw@h/x.git",
        "ssh://alice@h/x.git",
        "git://h/x.git",
        "file:///srv/h.git",
    ] {
        validate_url(fine).unwrap();
    }
    let url = "http://alice%40example.com:p%2Fw@h/x.git";
    assert_eq!(url_user(url).as_deref(), Some("alice@example.com"));
    let info = Userinfo::of(url).unwrap();
    assert_eq!(info.decoded_password().as_deref(), Some("p/w"));
    assert_eq!(scrub("sent p/w to h", url), "sent *** to h");
}

/// A local remote that a run would look for from the folder it starts in: a plain relative path,
/// or a `file://` URL git reads from `/` (`file://./h.git`) or cannot use (`file://h.git`).
#[test]
fn relative_local_remotes() {
    for (url, relative) in [
        ("hist.git", Some("hist.git")),
        ("../b/h.git", Some("../b/h.git")),
        ("./h.git", Some("./h.git")),
        ("file://./h.git", Some("./h.git")),
        ("file://../h.git", Some("../h.git")),
        ("file://h.git", Some("h.git")),
        ("/srv/h.git", None),
        ("file:///srv/h.git", None),
        ("file://localhost/srv/h.git", None),
        ("host:h.git", None),
        ("ssh://host/h.git", None),
        ("https://host/h.git", None),
    ] {
        assert_eq!(relative_local(url), relative, "{url}");
    }
}
