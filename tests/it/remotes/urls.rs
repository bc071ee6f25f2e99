//! Remote URLs remembered in the repository config, flags overriding; remotes that would erase
//! history or hold a foreign repository refused; a latest remote refusing forced pushes named.

use super::*;

// ------------------------------------------------------------------------------------------------
// 2. The URLs given once are remembered; flags override.

#[test]
fn remote_urls_are_remembered_in_the_repository_config() {
    let fx = Fx::new();
    let (history, latest, h_url, l_url) = fx.both_remotes();
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success()
        .assert_quiet();
    assert_eq!(fx.git(&fx.repo, &["config", "sqlgit.historyRemote"]), h_url);
    assert_eq!(fx.git(&fx.repo, &["config", "sqlgit.latestRemote"]), l_url);
    for i in 2..=3 {
        fx.change();
        let run = fx.snapshot(&[]).success().assert_quiet();
        for role in ["history", "latest"] {
            if !run.stdout_str().contains(&format!("to {role} remote")) {
                run.fail(&format!("the remembered {role} remote was not pushed"));
            }
        }
        fx.assert_history(&history, i);
        fx.assert_latest(&latest);
    }

    // `push` remembers too, and a flag overrides the remembered value.
    let latest2 = fx.daemon.create_bare("latest2");
    let l2_url = fx.daemon.url("latest2");
    fx.change();
    fx.push(&["--latest-remote", &l2_url]).success();
    assert_eq!(fx.git(&fx.repo, &["config", "sqlgit.latestRemote"]), l2_url);
    fx.snapshot(&[]).success().assert_quiet();
    fx.assert_history(&history, 4);
    fx.assert_latest(&latest2);
    assert_eq!(
        fx.git(&latest, &["rev-list", "--count", "refs/heads/main"]),
        "1",
        "the old latest remote keeps its one commit"
    );

    // "" forgets a remote: only history is pushed from now on.
    fx.change();
    fx.snapshot(&["--latest-remote", ""])
        .success()
        .assert_quiet();
    fx.assert_history(&history, 5);
    let l2_tip = fx.rev(&latest2, "refs/heads/main").unwrap();
    fx.change();
    let run = fx.snapshot(&[]).success().assert_quiet();
    assert!(
        !run.stdout_str().contains("latest remote"),
        "{}",
        run.stdout_str()
    );
    fx.assert_history(&history, 6);
    assert_eq!(fx.rev(&latest2, "refs/heads/main").unwrap(), l2_tip);
}

/// Remotes that would destroy what they are for are refused before anything is saved: one
/// repository as both the history and the latest remote (each spelled its own way), the
/// repository itself. A relative local path is remembered absolute (cron runs elsewhere).
#[test]
fn remotes_that_would_erase_history_are_refused_and_local_paths_remembered_absolute() {
    let fx = Fx::new();
    let bare = crate::servers::init_bare(fx.env.root(), "same");
    let plain = bare.display().to_string();
    let file_url = format!("file://{}/", bare.display());
    // Git reaches `same` as `same.git`, and a work tree `nb` as `nb/.git`.
    let without_suffix = fx.env.path("same").display().to_string();
    let work = fx.env.path("nb");
    fx.git(
        fx.env.root(),
        &["init", "-q", "-b", "main", &work.display().to_string()],
    );
    let (work, work_git) = (
        work.display().to_string(),
        format!("{}/.git", work.display()),
    );
    for (history, latest) in [
        (plain.as_str(), plain.as_str()),
        (&plain, &file_url),
        (&plain, &without_suffix),
        (&work, &work_git),
    ] {
        let run = fx
            .snapshot(&["--history-remote", history, "--latest-remote", latest])
            .code_is(2);
        assert!(
            run.stderr_str().contains("same repository"),
            "{}",
            run.stderr_str()
        );
    }
    let run = fx
        .snapshot(&["--history-remote", &fx.repo_arg()])
        .code_is(2);
    assert!(
        run.stderr_str().contains("this repository itself"),
        "{}",
        run.stderr_str()
    );
    // A repository `self.git` given `self` as its history remote (also while a folder `self`
    // exists empty): git would push into the repository itself, which confirms every snapshot
    // and lets pruning drop them all.
    let own = fx.env.path("self.git").display().to_string();
    let db = fx.db.display().to_string();
    let own_without_suffix = fx.env.path("self").display().to_string();
    for make_empty_folder in [false, true] {
        if make_empty_folder {
            std::fs::create_dir(&own_without_suffix).unwrap();
        }
        let run = fx
            .sqlgit(&[
                "snapshot",
                &db,
                "--repo",
                &own,
                "--history-remote",
                &own_without_suffix,
            ])
            .code_is(2);
        assert!(
            run.stderr_str().contains("this repository itself"),
            "{}",
            run.stderr_str()
        );
    }
    assert!(
        fx.env
            .run(
                {
                    let mut c = fx.env.command("git");
                    c.arg("--git-dir")
                        .arg(&bare)
                        .args(["rev-parse", "--verify", "-q", "main"]);
                    c
                },
                b""
            )
            .code()
            != Some(0),
        "a refused run pushed"
    );
    // Relative to the working directory of the run that was given it.
    let db = fx.db.display().to_string();
    let mut cmd = fx.env.sqlgit_cmd(&[
        "snapshot",
        &db,
        "--repo",
        &fx.repo_arg(),
        "--history-remote",
        "same.git",
    ]);
    cmd.current_dir(fx.env.root());
    fx.env.run(cmd, b"").success();
    assert_eq!(fx.git(&fx.repo, &["config", "sqlgit.historyRemote"]), plain);
    // `..` is resolved when remembered: the folder the command ran from may go away.
    let sub = fx.env.path("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut cmd = fx.env.sqlgit_cmd(&[
        "snapshot",
        "../app.db",
        "--repo",
        "../app.sqlgit",
        "--history-remote",
        "../same.git",
    ]);
    cmd.current_dir(&sub);
    fx.env.run(cmd, b"").success();
    std::fs::remove_dir(&sub).unwrap();
    let resolved = |p: &Path| p.canonicalize().unwrap().display().to_string();
    assert_eq!(
        fx.git(&fx.repo, &["config", "sqlgit.historyRemote"]),
        resolved(&bare)
    );
    assert_eq!(fx.git(&fx.repo, &["config", "sqlgit.db"]), resolved(&fx.db));
    fx.change();
    fx.sqlgit(&["snapshot", "--repo", &fx.repo_arg()]).success();
}

/// A `file://` URL is the path git makes of it: a host (`localhost`, which git ignores like any
/// other) is no part of the path, and `.`, `..`, doubled or trailing `/` and a symlink reach the
/// same folder. So `file://localhost/REPO` is this repository itself (refused: it would confirm
/// every snapshot, and pruning would drop them all), and `PATH` with `file://localhost/PATH`
/// is one repository as both remotes.
#[test]
fn every_spelling_git_reads_as_this_repository_or_one_repository_is_refused() {
    let fx = Fx::new();
    let repo = fx.repo_arg();
    fx.snapshot(&[]).success();
    let link = fx.env.path("link-to-repo");
    std::os::unix::fs::symlink(&fx.repo, &link).unwrap();
    let link = link.display().to_string();
    for own in [
        format!("file://localhost{repo}"),
        format!("file://LOCALHOST{repo}/"),
        format!("file://elsewhere{repo}"),
        format!("file://{repo}/."),
        format!("file:///{repo}//"),
        format!(
            "{repo}/../{}",
            fx.repo.file_name().unwrap().to_str().unwrap()
        ),
        link.clone(),
        format!("file://localhost{link}/"),
    ] {
        let run = fx.snapshot(&["--history-remote", &own]).code_is(2);
        assert!(
            run.stderr_str().contains("this repository itself"),
            "{own}: {}",
            run.stderr_str()
        );
        let run = fx.snapshot(&["--latest-remote", &own]).code_is(2);
        assert!(run.stderr_str().contains("this repository itself"), "{own}");
    }
    let bare = crate::servers::init_bare(fx.env.root(), "one");
    let plain = bare.display().to_string();
    std::fs::create_dir(fx.env.path("x")).unwrap();
    for other in [
        format!("file://localhost{plain}"),
        format!("file://localhost{plain}/./"),
        format!("file://host{}/x/../one.git", fx.env.root().display()),
    ] {
        let run = fx
            .snapshot(&["--history-remote", &plain, "--latest-remote", &other])
            .code_is(2);
        assert!(
            run.stderr_str().contains("same repository"),
            "{other}: {}",
            run.stderr_str()
        );
    }
    assert_eq!(
        fx.env
            .run(
                {
                    let mut c = fx.env.command("git");
                    c.arg("--git-dir").arg(&fx.repo).args([
                        "config",
                        "--get-regexp",
                        "sqlgit\\..*remote",
                    ]);
                    c
                },
                b""
            )
            .code(),
        Some(1),
        "a refused remote was saved"
    );
}

/// A latest remote whose server refuses forced pushes (`receive.denyNonFastForwards`, set by
/// `git init --shared`, or a forge's protected branch) is said to be that, with the setting to
/// change — not "diverged", which would send the user looking for another machine.
#[test]
fn a_latest_remote_refusing_forced_pushes_is_named_as_such() {
    let fx = Fx::new();
    let latest = fx.env.path("shared-latest.git");
    fx.git(
        fx.env.root(),
        &[
            "init",
            "-q",
            "--bare",
            "--shared=group",
            "-b",
            "main",
            &latest.display().to_string(),
        ],
    );
    let url = latest.display().to_string();
    fx.snapshot(&["--latest-remote", &url]).success();
    fx.change();
    let run = fx.snapshot(&[]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("refuses forced pushes") && err.contains("receive.denyNonFastForwards false"),
        "{err}"
    );
    assert!(!err.contains("diverged"), "{err}");
}

/// A remote holding someone else's repository is never written: the latest remote (which is
/// force-pushed) refuses to overwrite it, and a history remote is neither continued nor
/// re-rooted onto, also by `push --reroot` after the first refusal fetched its main.
#[test]
fn a_remote_holding_a_foreign_repository_is_never_overwritten_nor_continued() {
    let fx = Fx::new();
    for name in ["foreign-latest.git", "foreign-history.git"] {
        let bare = fx.env.path(name);
        let work = fx.env.path(format!("{name}.work"));
        std::fs::create_dir(&work).unwrap();
        fx.git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("main.c"), "int main;\n").unwrap();
        fx.git(&work, &["add", "main.c"]);
        fx.git(
            &work,
            &[
                "-c",
                "user.name=d",
                "-c",
                "user.email=d@x",
                "commit",
                "-qm",
                "work",
            ],
        );
        let mut clone = fx.env.command("git");
        clone.args(["clone", "-q", "--bare"]).arg(&work).arg(&bare);
        fx.env.run(clone, b"").success();
    }
    let (latest, history) = (
        fx.env.path("foreign-latest.git"),
        fx.env.path("foreign-history.git"),
    );
    let tips = || (fx.rev(&latest, "main"), fx.rev(&history, "main"));
    let before = tips();
    let run = fx
        .snapshot(&["--latest-remote", &latest.display().to_string()])
        .code_is(1);
    assert!(
        run.stderr_str().contains("refusing to overwrite"),
        "{}",
        run.stderr_str()
    );
    fx.snapshot(&[
        "--latest-remote",
        "",
        "--history-remote",
        &history.display().to_string(),
    ])
    .code_is(1);
    let run = fx.push(&["--reroot"]).code_is(1);
    assert!(
        run.stderr_str().contains("not a sqlgit snapshot"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(tips(), before, "a foreign repository was written");
}

/// A rebuilt machine (a new repository) pushing to a local latest remote over libgit2: its main
/// was written by the old repository, so it is checked before it is overwritten — libgit2
/// cannot fetch a local remote shallow, so it fetches it whole.
#[test]
fn a_rebuilt_repository_takes_over_a_local_latest_remote_over_libgit2() {
    let fx = Fx::new();
    let latest = crate::servers::init_bare(fx.env.root(), "latest");
    let l = latest.display().to_string();
    fx.snapshot(&["--latest-remote", &l, "--transport", "libgit2"])
        .success();
    std::fs::remove_dir_all(&fx.repo).unwrap();
    fx.change();
    fx.snapshot(&["--latest-remote", &l, "--transport", "libgit2"])
        .success();
    fx.assert_latest(&latest);
}

/// A second job whose `--latest-remote` was copied unchanged from the first: that remote holds
/// another database's latest copy, which must not be force-pushed over (nor its owner told to
/// re-root, as if it were its own history); the printed command gives it a remote of its own.
#[test]
fn a_latest_remote_holding_another_database_is_refused() {
    let fx = Fx::new();
    let latest = crate::servers::init_bare(fx.env.root(), "latest");
    let l = latest.display().to_string();
    fx.snapshot(&["--latest-remote", &l]).success();
    let before = fx.rev(&latest, "main");
    let billing = fx.env.db_from_script("billing.db", b"CREATE TABLE b(x);\n");
    let other = fx.env.path("billing.sqlgit").display().to_string();
    let snapshot_b = |extra: &[&str]| {
        let mut args = vec![
            "snapshot",
            billing.to_str().unwrap(),
            "--repo",
            other.as_str(),
        ];
        args.extend_from_slice(extra);
        fx.sqlgit(&args)
    };
    let run = snapshot_b(&["--latest-remote", &l]).code_is(1);
    let err = run.stderr_str();
    if !err.contains("another database's latest copy") || !err.contains("app.db") {
        run.fail("the other database's latest remote was not refused, naming what it holds");
    }
    assert_eq!(
        fx.rev(&latest, "main"),
        before,
        "app.db's latest copy replaced"
    );
    // The first job goes on as before.
    fx.change();
    fx.snapshot(&[]).success();
    // The fix as printed: a latest remote of its own.
    let own = crate::servers::init_bare(fx.env.root(), "latest-billing");
    let own = own.display().to_string();
    fx.sqlgit(&["init", "--repo", &other, "--latest-remote", &own])
        .success();
    snapshot_b(&[]).success();
}

/// A URL no push could use (a space, an unknown scheme, an unencoded `@` in an http user name,
/// which git ends at the first `@`; a user or password in a `git://` or `file://` URL, which
/// take none) is refused by `snapshot` and `push` as `init` refuses it: exit 2, one line naming
/// the flag and what to write instead, no password shown, nothing saved (a new repository not
/// even created), instead of being saved for every later run to fail on.
#[test]
fn a_url_init_refuses_is_not_saved_by_snapshot_or_push() {
    let fx = Fx::new();
    let bad_urls = [
        ("ssh://127.0.0.1:1/my backups/h.git", "%20"),
        ("foo://127.0.0.1/h.git", "unsupported scheme"),
        (
            "http://alice@example.com:Secr3tPw@127.0.0.1:1/h.git",
            "alice%40example.com",
        ),
        ("https://alice@example.com@127.0.0.1:1/h.git", "%40"),
        ("git://alice:Secr3tPw@127.0.0.1:1/h.git", "no user name"),
        ("git://alice@127.0.0.1:1/h.git", "no user name"),
        ("file://alice:Secr3tPw@localhost/tmp/h.git", "no user name"),
    ];
    for (url, hint) in bad_urls {
        for flag in ["--history-remote", "--latest-remote"] {
            let run = fx.snapshot(&[flag, url]).code_is(2);
            let err = run.stderr_str();
            assert!(
                err.contains(flag)
                    && err.contains("bad remote URL")
                    && err.contains(hint)
                    && !err.contains("Secr3tPw")
                    && err.lines().count() == 1,
                "{url}: {err}"
            );
            assert!(
                !fx.repo.exists(),
                "a refused first run created the repository"
            );
        }
    }
    fx.snapshot(&[]).success();
    for (url, _) in bad_urls {
        fx.snapshot(&["--history-remote", url]).code_is(2);
        fx.push(&["--latest-remote", url]).code_is(2);
        for key in ["sqlgit.historyRemote", "sqlgit.latestRemote"] {
            let saved = fx
                .env
                .command("git")
                .args(["config", "-f"])
                .arg(fx.repo.join("config"))
                .arg(key)
                .output()
                .unwrap();
            assert!(saved.stdout.is_empty(), "{url} saved as {key}");
        }
    }
}

/// The same over the libgit2 transport (a git daemon refusing forced pushes): the fix named,
/// not git's "you should pull first".
#[test]
fn a_latest_remote_refusing_forced_pushes_is_named_as_such_over_libgit2() {
    let fx = Fx::new();
    let daemon = GitDaemon::start_in(fx.env.path("daemon"));
    let bare = daemon.create_bare("latest");
    fx.git(&bare, &["config", "receive.denyNonFastForwards", "true"]);
    let url = daemon.url("latest");
    let args = ["--latest-remote", url.as_str(), "--transport", "libgit2"];
    fx.snapshot(&args).success();
    fx.change();
    let run = fx.snapshot(&[]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("refuses forced pushes") && err.contains("receive.denyNonFastForwards false"),
        "{err}"
    );
    assert!(!err.contains("pull first"), "{err}");
}

/// An IP address spelled another way (`2130706433`, `127.000.000.001`: what the token's host
/// check and the resolver read as 127.0.0.1) is the same server, so one repository as both
/// remotes is refused.
#[test]
fn an_ip_address_spelled_another_way_is_the_same_repository() {
    let fx = Fx::new();
    for other in ["2130706433", "127.000.000.001", "0x7f.0.0.1"] {
        let run = fx
            .snapshot(&[
                "--history-remote",
                "http://127.0.0.1:9/x.git",
                "--latest-remote",
                &format!("http://{other}:9/x.git"),
            ])
            .code_is(2);
        assert!(
            run.stderr_str().contains("same repository"),
            "{other}: {}",
            run.stderr_str()
        );
    }
}

/// With the git transport an ssh host alias is resolved as ssh resolves it (`~/.ssh/config`'s
/// HostName, User, Port): spellings of one repository through the alias are refused as both
/// remotes, and a URL whose own port overrides the alias's reaches another server, so it is
/// not. libgit2 reads no ssh config: to it the alias is a host name like any other.
#[test]
fn an_ssh_host_alias_is_resolved_as_ssh_resolves_it() {
    let fx = Fx::new();
    let home = crate::servers::sshd::SshHome::new(&fx.env);
    home.config(
        "Host backup\n    HostName 127.0.0.1\n    Port 22316\n    User root\n\
         \x20   StrictHostKeyChecking yes\n    ConnectTimeout 5\n",
    );
    let vars = home.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    let run = |history: &str, latest: &str, transport: &str| {
        let args = ["--history-remote", history, "--latest-remote", latest];
        let args = [
            &args[..],
            &["--transport", transport, "--push-timeout", "10s"],
        ]
        .concat();
        snapshot_with(&fx, &args, &vars).0
    };
    for (history, latest) in [
        ("root@backup:x.git", "backup:x.git"),
        ("backup:/srv/p.git", "ssh://backup:22316/srv/p"),
        ("backup:/srv/p.git", "ssh://root@127.0.0.1:22316/srv/p.git"),
    ] {
        let done = run(history, latest, "git");
        assert_eq!(
            done.code(),
            Some(2),
            "{history} {latest}: {}",
            done.stderr_str()
        );
        assert!(
            done.stderr_str().contains("same repository"),
            "{history} {latest}: {}",
            done.stderr_str()
        );
    }
    for (history, latest) in [
        ("ssh://backup:22/srv/p", "backup:/srv/p"),
        ("ssh://backup:22/~/x.git", "backup:x.git"),
    ] {
        let done = run(history, latest, "git");
        assert!(
            !done.stderr_str().contains("same repository") && done.code() == Some(1),
            "{history} {latest} reach two servers: {}",
            done.stderr_str()
        );
        // (Saved by the run before: refused, but no more a usage error.)
        let done = run(history, latest, "libgit2");
        assert!(
            done.stderr_str().contains("same repository") && done.code() != Some(0),
            "libgit2 reaches backup:22 for both: {}",
            done.stderr_str()
        );
    }
}

/// One repository the remote check cannot tell is one (`link.git`, a symlink on the server to
/// `both.git`): the second run's latest push finds the history there and refuses to overwrite
/// it, saying that the latest remote names the history remote's repository.
#[test]
fn a_latest_remote_holding_the_history_is_named_as_the_history_remotes_repository() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("both");
    std::os::unix::fs::symlink(&history, fx.daemon.repo_path("link")).unwrap();
    let h_url = fx.daemon.url("both");
    let l_url = fx.daemon.url("link");
    fx.snapshot(&["--history-remote", &h_url, "--latest-remote", &l_url])
        .success();
    fx.change();
    let run = fx.snapshot(&[]);
    let causes = assert_push_failures(&run, &[("latest", &l_url)]);
    assert!(
        causes[0].contains("names the history remote's repository")
            && causes[0].contains("refusing"),
        "{causes:?}"
    );
    fx.assert_history(&history, 2);
}
