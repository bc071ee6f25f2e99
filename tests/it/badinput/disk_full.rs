//! Disk full: a 2 MiB tmpfs (or a loop-mounted ext2 image) under the repository; `SmallFs` is
//! also used by other tests (re-exported from `badinput`).

use super::*;

// ------------------------------------------------------------------------------------------------
// Disk full
// ------------------------------------------------------------------------------------------------

/// A small filesystem mounted on a directory of the test; unmounted on drop.
pub(crate) struct SmallFs {
    pub dir: PathBuf,
    pub kind: &'static str,
}

impl SmallFs {
    /// A tmpfs of `mib` MiB, else a loop-mounted ext2 image; `Err(why)` when neither works.
    pub fn mount(env: &TestEnv, name: &str, mib: u64) -> Result<SmallFs, String> {
        let dir = env.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let tmpfs = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(&dir)
            .output();
        let tmpfs_err = match tmpfs {
            Ok(o) if o.status.success() => {
                return Ok(SmallFs { dir, kind: "tmpfs" });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let image = env.path(format!("{name}.img"));
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let mkfs = Command::new("mkfs.ext2")
            .arg("-q")
            .arg("-F")
            .arg(&image)
            .output();
        match mkfs {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "mount -t tmpfs: {tmpfs_err}; mkfs.ext2: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return Err(format!("mount -t tmpfs: {tmpfs_err}; mkfs.ext2: {e}")),
        }
        let loop_mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir)
            .output();
        match loop_mount {
            Ok(o) if o.status.success() => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
                Ok(SmallFs {
                    dir,
                    kind: "ext2 (loop)",
                })
            }
            Ok(o) => Err(format!(
                "mount -t tmpfs: {tmpfs_err}; mount -o loop: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("mount -t tmpfs: {tmpfs_err}; mount -o loop: {e}")),
        }
    }

    /// Bytes an unprivileged writer can still put there.
    pub fn available(&self) -> u64 {
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).unwrap();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "statvfs {}", self.dir.display());
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// `sqlgit cat --repo REPO` (latest).
fn cat_latest(env: &TestEnv, repo: &str) -> Vec<u8> {
    let run = sqlgit(env, &["cat", "--repo", repo], &[]).success();
    run.stdout().to_vec()
}

#[test]
fn disk_full() {
    let env = TestEnv::new();
    // Declared after `env`, so it is unmounted before the directory is removed.
    let fs = match SmallFs::mount(&env, "small", 2) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP disk_full: cannot mount a small filesystem: {why}");
            return;
        }
    };
    eprintln!("disk_full: on a 2 MiB {}", fs.kind);
    env.db_from_script(
        "app.db",
        b"CREATE TABLE items(id INTEGER PRIMARY KEY, body BLOB NOT NULL);\n\
          WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)\n\
          INSERT INTO items SELECT i, printf('item %d', i) FROM c;\n",
    );
    let repo = "small/app.sqlgit";
    sqlgit(&env, &["snapshot", "app.db", "--repo", repo], &[]).success();
    let first = cat_latest(&env, repo);
    let head = git_out(&env, &env.path(repo), &["rev-parse", "main"]);

    // Grow the database by ~3 MiB of incompressible data: the next snapshot cannot fit.
    let conn = Connection::open(env.path("app.db")).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 768)
         INSERT INTO items(body) SELECT randomblob(4096) FROM c;",
    )
    .unwrap();
    drop(conn);
    let free_before = fs.available();
    let before = repo_state(&env, &env.path(repo));
    let args = ["snapshot", "app.db", "--repo", repo];
    let run = sqlgit(&env, &args, &[]);
    let mut rows = Rows::new(&env, 20, "disk-full");
    rows.add("disk full (repository on a 2 MiB tmpfs)", &args, &run);
    let mut p = Problems::default();
    match refusal(&run, &[]) {
        Ok(msg) => {
            let lower = msg.to_lowercase();
            p.check(
                lower.contains("space") || lower.contains("disk full"),
                || format!("the disk-full message does not say so: {msg}"),
            );
            p.check(msg.contains("app.sqlgit"), || {
                format!("the disk-full message does not name the repository: {msg}")
            });
            p.check(run.code() == Some(1), || {
                format!("exit {:?}, want 1", run.code())
            });
        }
        Err(e) => p.push(e),
    }
    // The repository is valid, main unchanged, the previous snapshot intact; the failed run
    // released the space it took.
    if let Some(e) = fsck_problems(&env, &env.path(repo)) {
        p.push(e);
    }
    let after = repo_state(&env, &env.path(repo));
    for e in state_problems(&before, &after, true, "disk full") {
        p.push(e);
    }
    p.check(
        git_out(&env, &env.path(repo), &["rev-parse", "main"]) == head,
        || "main moved".into(),
    );
    p.check(cat_latest(&env, repo) == first, || {
        "the previous snapshot no longer restores to the same SQL".into()
    });
    let free_after = fs.available();
    p.check(free_after + 64 * 1024 >= free_before, || {
        format!(
            "the failed run left {} bytes behind",
            free_before - free_after
        )
    });

    // `dump -o` onto the full disk: one line, and no partial file left.
    let fill = env.path("small/filler");
    let avail = fs.available();
    std::fs::write(&fill, vec![0u8; avail.saturating_sub(16 * 1024) as usize]).unwrap();
    let listing = list_dir(&fs.dir);
    let dump_args = ["dump", "app.db", "-o", "small/app.sql"];
    let run = sqlgit(&env, &dump_args, &[]);
    rows.add(
        "disk full (`dump -o` onto a full filesystem)",
        &dump_args,
        &run,
    );
    if let Err(e) = refusal(&run, &["app.sql"]) {
        p.push(e);
    }
    p.check(list_dir(&fs.dir) == listing, || {
        format!("dump -o left files behind: {:?}", list_dir(&fs.dir))
    });
    std::fs::remove_file(&fill).unwrap();

    // Free space (move the repository to a bigger place): the next run succeeds.
    let big = env.path("app.sqlgit");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(env.path(repo))
        .arg(&big)
        .status()
        .unwrap();
    assert!(cp.success(), "cp -a the repository");
    sqlgit(&env, &["snapshot", "app.db", "--repo", "app.sqlgit"], &[]).success();
    let dump = sqlgit(&env, &["dump", "app.db"], &[]).success();
    p.check(cat_latest(&env, "app.sqlgit") == dump.stdout(), || {
        "after freeing space the snapshot does not match the database".into()
    });
    if let Some(e) = fsck_problems(&env, &big) {
        p.push(e);
    }

    // `verify` with TMPDIR on the small filesystem: its restores fill it midway. The line says
    // where, and what to set.
    let small = fs.dir.display().to_string();
    let verify_args = ["verify", "--repo", "app.sqlgit"];
    let run = sqlgit(&env, &verify_args, &[("TMPDIR", small.as_str())]);
    rows.add(
        "disk full (`verify` with TMPDIR on a 2 MiB tmpfs)",
        &verify_args,
        &run,
    );
    match refusal(&run, &[]) {
        Ok(msg) => p.check(msg.contains(&small) && msg.contains("TMPDIR"), || {
            format!("verify's disk-full line does not name the scratch place and TMPDIR: {msg}")
        }),
        Err(e) => p.push(e),
    }
    p.finish();
}

/// A WAL database whose own filesystem is full: SQLite cannot create the -shm file its reader
/// needs and says only "disk I/O error"; the line names the full filesystem and the fix.
#[test]
fn a_wal_database_on_a_full_filesystem_is_named_as_such() {
    let env = TestEnv::new();
    let fs = match SmallFs::mount(&env, "small", 2) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot mount a small filesystem: {why}");
            return;
        }
    };
    let db = env.path("small/app.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let fill = env.path("small/filler");
    let mut filler = std::fs::File::create(&fill).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    assert!(fs.available() < 64 * 1024, "not full: {}", fs.available());
    let run = sqlgit(
        &env,
        &["snapshot", "small/app.db", "--repo", "r.sqlgit"],
        &[],
    )
    .code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("small is full") && err.contains("free space"),
        "{err}"
    );
}

/// A 20 MiB tmpfs of `inodes` inodes at `name` (None when it cannot be mounted: not root).
fn few_inodes(env: &TestEnv, name: &str, inodes: u32) -> Option<SmallFs> {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size=20m,nr_inodes={inodes},mode=0700"))
        .arg("tmpfs")
        .arg(&dir)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: cannot mount a tmpfs: {mounted:?}");
        return None;
    }
    Some(SmallFs { dir, kind: "tmpfs" })
}

/// Take every inode left on `dir`'s filesystem.
fn use_up_inodes(dir: &Path) {
    let mut n = 0;
    while std::fs::File::create(dir.join(format!("f{n}"))).is_ok() {
        n += 1;
    }
}

/// Out of inodes with bytes to spare: every run fails to create its files and cannot record
/// that, so `status` must be unhealthy on its own account, naming the inodes.
#[test]
fn no_free_inodes_make_status_unhealthy() {
    let env = TestEnv::new();
    // Declared after `env`, so it is unmounted before the directory is removed.
    let Some(fs) = few_inodes(&env, "few-inodes", 200) else {
        return;
    };
    let dir = fs.dir.clone();
    env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);\n");
    let repo = "few-inodes/app.sqlgit";
    sqlgit(&env, &["snapshot", "app.db", "--repo", repo], &[]).success();
    let status = ["status", "--repo", repo, "--max-age", "15m"];
    sqlgit(&env, &status, &[]).success();
    // Something else takes every inode left.
    use_up_inodes(&dir);
    let run = sqlgit(&env, &status, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.stdout_str());
    let out = format!("{}{}", run.stdout_str(), run.stderr_str());
    assert!(out.contains("0 free inodes"), "{out}");
}

/// Out of inodes with bytes to spare, a run (and `cat -o` and `dump -o`, run by hand) says the inodes ran out and to delete files, never "the disk is full: free space"
/// (freeing bytes would not help), on stderr and to the failure hook.
#[test]
fn no_free_inodes_are_named_by_the_failure() {
    let env = TestEnv::new();
    let Some(fs) = few_inodes(&env, "few-inodes", 300) else {
        return;
    };
    env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);\n");
    let repo = "few-inodes/app.sqlgit";
    let hooks = env.path("hooks.txt");
    let hook = crate::env::logging_hook(&hooks);
    let args = ["snapshot", "app.db", "--repo", repo, "--on-failure", &hook];
    sqlgit(&env, &args, &[]).success();
    use_up_inodes(&fs.dir);
    env.sqlite3(env.path("app.db"), "INSERT INTO t VALUES (2)");
    let mut p = Problems::default();
    let run = sqlgit(&env, &["snapshot", "--repo", repo], &[]);
    let err = run.stderr_str();
    p.check(run.code() == Some(1), || format!("snapshot: {err}"));
    p.check(
        err.contains("0 free inodes") && err.contains("delete files there"),
        || format!("snapshot does not name the inodes: {err}"),
    );
    p.check(!err.contains("disk is full"), || {
        format!("snapshot says the disk is full: {err}")
    });
    let fired = crate::env::hook_lines(&hooks);
    p.check(
        fired.len() == 1
            && fired[0].contains("0 free inodes")
            && !fired[0].contains("disk is full"),
        || format!("the failure hook: {fired:?}"),
    );
    let by_hand: [&[&str]; 2] = [
        &["cat", "--repo", repo, "-o", "few-inodes/app.sql"],
        &["dump", "app.db", "-o", "few-inodes/app.sql"],
    ];
    for args in by_hand {
        let run = sqlgit(&env, args, &[]);
        match refusal(
            &run,
            &["0 free inodes", "delete files there, then run it again"],
        ) {
            Ok(line) => p.check(
                !line.contains("cron") && !line.contains("disk is full"),
                || format!("{args:?}: {line}"),
            ),
            Err(e) => p.push(e),
        }
    }
    p.finish();
}

/// A command line, its environment and what its refusal must say.
type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], &'a str);

/// `restore --to`, `restore --into`, `cat -o`, `dump -o` and `query` onto a full filesystem:
/// one line saying the disk is full with what fits these commands (the target is as it was), not the snapshot's
/// "a cron job picks up where it stopped"; nothing changed or left behind.
#[test]
fn restore_and_cat_onto_a_full_disk_say_what_fits_them() {
    let env = TestEnv::new();
    let fs = match SmallFs::mount(&env, "small", 2) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot mount a small filesystem: {why}");
            return;
        }
    };
    env.db_from_script(
        "app.db",
        b"CREATE TABLE items(id INTEGER PRIMARY KEY, body BLOB NOT NULL);\n\
          WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 64)\n\
          INSERT INTO items SELECT i, randomblob(4096) FROM c;\n",
    );
    sqlgit(&env, &["snapshot", "app.db", "--repo", "app.sqlgit"], &[]).success();
    env.db_from_script(
        "small/live.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES (1);\n",
    );
    let live = env.path("small/live.db");
    let live_before = FileState::of(&live);
    let fill = env.path("small/filler");
    let avail = fs.available();
    std::fs::write(&fill, vec![0u8; avail.saturating_sub(16 * 1024) as usize]).unwrap();
    let listing = list_dir(&fs.dir);
    let mut p = Problems::default();
    // `dump -o` and `query` (its restored copy in TMPDIR) are run by hand too.
    let tmp = env.path("small").display().to_string();
    let no_vars: &[(&str, &str)] = &[];
    let tmpdir = [("TMPDIR", tmp.as_str())];
    let repo = ["--repo", "app.sqlgit"];
    let cases: [Case; 5] = [
        (
            [&["restore"][..], &repo, &["--to", "small/new.db"]].concat(),
            no_vars,
            "nothing was replaced",
        ),
        (
            [&["restore"][..], &repo, &["--into", "small/live.db"]].concat(),
            no_vars,
            "small/live.db keeps its old content",
        ),
        (
            [&["cat"][..], &repo, &["-o", "small/app.sql"]].concat(),
            no_vars,
            "no partial small/app.sql is kept",
        ),
        (
            vec!["dump", "app.db", "-o", "small/app.sql"],
            no_vars,
            "no partial small/app.sql is kept",
        ),
        (
            [&["query"][..], &repo, &["SELECT count(*) FROM items"]].concat(),
            &tmpdir,
            "TMPDIR",
        ),
    ];
    for (args, vars, says) in cases {
        let run = sqlgit(&env, &args, vars);
        match refusal(&run, &["the disk is full", says]) {
            Ok(line) => p.check(!line.contains("cron"), || {
                format!("{args:?}: the snapshot's hint: {line}")
            }),
            Err(e) => p.push(e),
        }
        p.check(list_dir(&fs.dir) == listing, || {
            format!("{args:?} left files behind: {:?}", list_dir(&fs.dir))
        });
    }
    live_before.assert_unchanged(&live, "a restore --into onto a full disk");
    p.finish();
}
