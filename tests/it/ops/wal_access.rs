//! A WAL database the backup user may read, whose -wal or -shm file it cannot open, or whose
//! -shm it cannot create (the application runs with umask 077; cron runs sqlgit as another
//! user): one line naming the file or directory and the access missing, not SQLite's "unable
//! to open database file" of a file that opens.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::env::{TestEnv, describe};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `sqlgit dump db` as a user who cannot read what mode 0 (0600 for root's files) denies.
fn dump_as_other_user(env: &TestEnv, db: &Path) -> String {
    let sqlgit = env.sqlgit_cmd(&["dump", &db.display().to_string(), "-o", "/dev/null"]);
    let cmd = if unsafe { libc::geteuid() } == 0 {
        let mut other = Command::new("setpriv");
        other
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(sqlgit.get_program())
            .args(sqlgit.get_args())
            .env_clear()
            .envs(sqlgit.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir("/");
        other
    } else {
        sqlgit
    };
    let shown = describe(&cmd);
    let out = env.run(cmd, b"");
    assert_eq!(out.code(), Some(1), "{shown}: {}", out.stderr_str());
    out.stderr_str()
}

#[test]
fn a_wal_database_whose_wal_or_shm_cannot_be_opened_names_it() {
    let env = TestEnv::new();
    // A directory everyone may enter (the test's own is private).
    let dir = tempfile::Builder::new()
        .prefix("sqlgit-wal")
        .tempdir()
        .unwrap();
    chmod(dir.path(), 0o755);
    let db = dir.path().join("app.db");
    let app = rusqlite::Connection::open(&db).unwrap();
    app.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES(1,'a');",
    )
    .unwrap();
    let (wal, shm) = (dir.path().join("app.db-wal"), dir.path().join("app.db-shm"));
    assert!(wal.exists() && shm.exists());
    let closed = if unsafe { libc::geteuid() } == 0 {
        0o600
    } else {
        0
    };
    chmod(&db, 0o644);
    for (file, name) in [(&wal, "app.db-wal"), (&shm, "app.db-shm")] {
        chmod(&wal, 0o644);
        chmod(&shm, 0o644);
        chmod(file, closed);
        let err = dump_as_other_user(&env, &db);
        assert!(
            err.contains(&format!("cannot read {}", dir.path().join(name).display()))
                && err.contains("needs read access to its -wal and -shm files")
                && err.lines().count() == 1,
            "{name}: {err}"
        );
    }
    // A -wal without its -shm in a directory the user cannot write.
    chmod(&wal, 0o644);
    chmod(&shm, 0o644);
    drop(app);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES(2,'b');")
        .unwrap();
    // Closing checkpointed and removed the -wal: write one that stays (a copy taken while open).
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch("PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES(3,'c');")
        .unwrap();
    let wal_copy = std::fs::read(&wal).unwrap();
    drop(writer);
    std::fs::write(&wal, wal_copy).unwrap();
    chmod(&wal, 0o644);
    let _ = std::fs::remove_file(&shm);
    chmod(dir.path(), 0o555);
    let err = dump_as_other_user(&env, &db);
    chmod(dir.path(), 0o755);
    assert!(
        err.contains(&format!(
            "needs write access to its directory {}, to create its -shm file",
            dir.path().display()
        )) && err.lines().count() == 1,
        "{err}"
    );
}
