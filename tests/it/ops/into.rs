//! Restoring under a running application: `restore --into` while a process (a Python script
//! with the sqlite3 module) keeps its connection open, on a WAL and on a rollback-journal
//! database; `restore --to --force` refusing a file a process has open; zstd dumps.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{Receiver, channel};

use super::*;
use crate::env::FileState;

/// The "application": one connection, kept open, that runs each line of its stdin as SQL in
/// autocommit mode (the sqlite3 module's own transactions off) and answers with its rows as
/// one JSON line (or `{"error": …}`).
const APP: &str = r#"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
print(json.dumps(db.execute("SELECT count(*) FROM sqlite_schema").fetchall()), flush=True)
for line in sys.stdin:
    try:
        print(json.dumps(db.execute(line).fetchall()), flush=True)
    except Exception as e:
        print(json.dumps({"error": str(e)}), flush=True)
"#;

/// A running application process; killed (by its pid) when dropped.
struct App {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl App {
    fn start(env: &TestEnv, db: &Path) -> App {
        let mut cmd = env.command("python3");
        cmd.arg("-c").arg(APP).arg(db);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed for the application process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut app = App {
            child,
            stdin,
            lines,
        };
        app.answer(); // connected and read the schema: it has the files open
        app
    }

    fn answer(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the application did not answer within 10 s")
    }

    /// Run one SQL statement in the application; its rows as JSON.
    fn sql(&mut self, sql: &str) -> String {
        writeln!(self.stdin, "{sql}").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `root/NAME` with table t(id, v) holding `rows`, in `journal_mode` with `page_size`.
fn app_db(env: &TestEnv, name: &str, journal_mode: &str, page_size: u32, rows: &[&str]) -> PathBuf {
    let mut script = format!(
        "PRAGMA page_size={page_size};\nPRAGMA journal_mode={journal_mode};\n\
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n"
    );
    for (i, v) in rows.iter().enumerate() {
        script.push_str(&format!("INSERT INTO t VALUES ({}, '{v}');\n", i + 1));
    }
    let db = env.path(name);
    env.sqlite3_args(&["-bail"], &db, script.as_bytes())
        .success();
    db
}

/// The saved-aside file named by `restore --into`'s one line of output.
#[track_caller]
fn saved_path(env: &TestEnv, run: &Run, target: &Path) -> PathBuf {
    let out = run.stdout_str();
    assert_eq!(out.lines().count(), 1, "one line of output: {out:?}");
    let name = target.file_name().unwrap().to_string_lossy();
    assert!(out.contains(&format!(" into {name};")), "{out}");
    let saved = out.trim_end().rsplit(' ').next().unwrap();
    let saved = env.root().join(saved);
    assert!(
        s(&saved).starts_with(&format!("{}.before-restore-", s(target))),
        "{out}"
    );
    saved
}

/// `restore --into` while the application is connected: it reads the restored rows at its next
/// query and its next write lands in the file; the old content is saved aside (0600); the
/// snapshot's default layout (4096) differs from the file's (8192): one warning says so.
fn restore_into_live(journal_mode: &str, from_snapshot: bool) {
    let env = TestEnv::new();
    let src = app_db(
        &env,
        "src.db",
        "DELETE",
        4096,
        &["restored-1", "restored-2"],
    );
    let target = app_db(&env, "app.db", journal_mode, 8192, &["old-1"]);
    let source: Vec<String> = if from_snapshot {
        let repo = s(&env.path("app.sqlgit"));
        sg(&env, T0, &["snapshot", &s(&src), "--repo", &repo]).success();
        vec!["--repo".into(), repo]
    } else {
        let file = s(&env.path("src.sql"));
        sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
        vec!["--from-file".into(), file]
    };
    let mut app = App::start(&env, &target);
    assert_eq!(app.sql("INSERT INTO t VALUES (10, 'app-before')"), "[]");
    assert_eq!(
        app.sql("SELECT v FROM t ORDER BY id"),
        r#"[["old-1"], ["app-before"]]"#
    );

    let mut args = vec!["restore", "--into", "app.db"];
    args.extend(source.iter().map(String::as_str));
    let run = sg(&env, T0, &args).success();
    // The snapshot's layout is SQLite's default (4096), the application's file keeps its own.
    let err = run.stderr_str();
    assert!(
        err.lines().count() == 1 && err.contains("app.db keeps its own page_size=8192"),
        "{err}"
    );
    let saved = saved_path(&env, &run, &target);

    assert_eq!(
        app.sql("SELECT v FROM t ORDER BY id"),
        r#"[["restored-1"], ["restored-2"]]"#,
        "the application sees the restored rows at its next query"
    );
    assert_eq!(app.sql("INSERT INTO t VALUES (20, 'app-after')"), "[]");
    drop(app);

    assert_eq!(
        query(&env, &target, "SELECT v FROM t ORDER BY id;"),
        "restored-1\nrestored-2\napp-after"
    );
    let mode = journal_mode.to_lowercase();
    assert_eq!(
        query(
            &env,
            &target,
            "PRAGMA journal_mode; PRAGMA page_size; PRAGMA integrity_check;"
        ),
        format!("{mode}\n8192\nok"),
        "the target keeps its journal mode and page size"
    );
    assert_eq!(
        query(&env, &saved, "SELECT v FROM t ORDER BY id;"),
        "old-1\napp-before",
        "the old content is saved aside"
    );
    let meta = std::fs::metadata(&saved).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let stray = list_dir(env.root());
    assert!(
        !stray.iter().any(|n| n.contains("sqlgit-")),
        "temporary files left: {stray:?}"
    );
}

#[test]
fn restore_into_a_wal_database_an_application_has_open() {
    restore_into_live("WAL", true);
}

#[test]
fn restore_into_a_rollback_journal_database_an_application_has_open() {
    restore_into_live("DELETE", false);
}

/// While the application holds the write lock past --busy-timeout, `--into` fails and changes
/// nothing (no saved copy, no temporary file); once it commits, the restore goes through.
#[test]
fn restore_into_waits_for_the_writer_then_gives_up() {
    let env = TestEnv::new();
    let src = app_db(&env, "src.db", "DELETE", 4096, &["restored-1"]);
    let file = s(&env.path("src.sql.zst"));
    sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
    let target = app_db(&env, "app.db", "DELETE", 4096, &["old-1"]);
    let mut app = App::start(&env, &target);
    assert_eq!(app.sql("BEGIN IMMEDIATE"), "[]");
    assert_eq!(app.sql("INSERT INTO t VALUES (2, 'uncommitted')"), "[]");
    let before = list_dir(env.root());
    let args = [
        "restore",
        "--from-file",
        &file,
        "--into",
        "app.db",
        "--busy-timeout",
        "300ms",
    ];
    let line = one_error_line(sg(&env, T0, &args), 1);
    assert!(
        line.contains("locked") && line.contains("--busy-timeout"),
        "{line}"
    );
    assert_eq!(
        list_dir(env.root()),
        before,
        "a refused restore leaves no file"
    );
    assert_eq!(app.sql("COMMIT"), "[]");
    sg(&env, T0, &args).success();
    assert_eq!(app.sql("SELECT v FROM t"), r#"[["restored-1"]]"#);
}

/// `--to FILE --force` while a process has FILE open: refused (that process would go on writing
/// to the unlinked old file), FILE unchanged; once it is gone, the same command works.
#[test]
fn restore_to_force_refuses_a_file_a_process_has_open() {
    let env = TestEnv::new();
    let src = app_db(&env, "src.db", "DELETE", 4096, &["restored-1"]);
    let file = s(&env.path("src.sql"));
    sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
    let target = app_db(&env, "app.db", "WAL", 4096, &["old-1"]);
    let app = App::start(&env, &target);
    let before = FileState::of(&target);
    let args = ["restore", "--from-file", &file, "--to", "app.db", "--force"];
    let line = one_error_line(sg(&env, T0, &args), 1);
    assert!(
        line.contains("--into") && line.contains(&format!("process {}", app.pid())),
        "{line}"
    );
    before.assert_unchanged(&target, "a refused restore --to --force");
    drop(app);
    sg(&env, T0, &args).success();
    compare_databases(&src, &target);
}

/// `--to FILE` (no --force: FILE is gone) while a process still has FILE's -wal and -shm open
/// (the WAL database deleted under it): refused, naming the side file and the process, the
/// -wal and -shm left in place; once the process is gone, the same command works.
#[test]
fn restore_to_refuses_side_files_a_process_has_open_after_its_database_is_gone() {
    let env = TestEnv::new();
    let src = app_db(&env, "src.db", "DELETE", 4096, &["restored-1"]);
    let file = s(&env.path("src.sql"));
    sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
    let target = app_db(&env, "app.db", "WAL", 4096, &["old-1"]);
    let mut app = App::start(&env, &target);
    app.sql("PRAGMA wal_autocheckpoint=0");
    assert_eq!(app.sql("INSERT INTO t(v) VALUES ('new')"), "[]");
    std::fs::remove_file(&target).unwrap();
    let (wal, shm) = (env.path("app.db-wal"), env.path("app.db-shm"));
    let before = [FileState::of(&wal), FileState::of(&shm)];
    let args = ["restore", "--from-file", &file, "--to", "app.db"];
    let line = one_error_line(sg(&env, T0, &args), 1);
    assert!(
        line.contains(&format!("process {}", app.pid())) && line.contains("app.db-"),
        "{line}"
    );
    assert!(!target.exists(), "a refused restore created app.db");
    before[0].assert_unchanged(&wal, "a refused restore --to");
    before[1].assert_unchanged(&shm, "a refused restore --to");
    drop(app);
    sg(&env, T0, &args).success();
    compare_databases(&src, &target);
}

/// `dump -o x.sql.zst` and `cat -o x.sql.zst` write zstd (0600); `restore --from-file` reads it
/// from a file and from a pipe; a truncated one is refused and leaves nothing behind.
#[test]
fn zstd_dump_cat_and_restore_from_file() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let repo = s(&env.path("app.sqlgit"));
    let zst = env.path("dump.sql.zst");
    assert_silent(sg(&env, T0, &["dump", &s(&db), "-o", &s(&zst)]));
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &repo]).success();
    let cat_zst = env.path("cat.sql.zst");
    assert_silent(sg(&env, T0, &["cat", "--repo", &repo, "-o", &s(&cat_zst)]));
    for file in [&zst, &cat_zst] {
        let bytes = std::fs::read(file).unwrap();
        assert!(bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "zstd magic");
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    for (file, to) in [(&zst, "n1.db"), (&cat_zst, "n2.db")] {
        let to = env.path(to);
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(file), "--to", &s(&to)],
        )
        .success()
        .assert_quiet();
        compare_databases(&db, &to);
    }
    let piped = env.path("piped.db");
    let cmd = sqlgit_cmd(
        &env,
        T0,
        &["restore", "--from-file", "/dev/stdin", "--to", &s(&piped)],
        &[],
    );
    run_limited(&env, cmd, &std::fs::read(&zst).unwrap())
        .success()
        .assert_quiet();
    compare_databases(&db, &piped);

    let bytes = std::fs::read(&zst).unwrap();
    let cut = env.write("cut.sql.zst", &bytes[..bytes.len() / 2]);
    let to = env.path("cut.db");
    one_error_line(
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(&cut), "--to", &s(&to)],
        ),
        1,
    );
    assert!(!to.exists(), "a failed restore leaves no database behind");
    let before = FileState::of(&piped);
    let names = list_dir(env.root());
    one_error_line(
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(&cut), "--into", &s(&piped)],
        ),
        1,
    );
    before.assert_unchanged(&piped, "a failed restore --into");
    assert_eq!(
        list_dir(env.root()),
        names,
        "a failed restore --into leaves no file"
    );
}

/// A writer that inserts a row every millisecond until the file `stop` exists, then prints how
/// many rows it wrote and the errors it met. It prints `started` after its first write.
const WRITER: &str = r#"
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
n, errors = 0, []
while not os.path.exists(sys.argv[2]):
    try:
        db.execute("INSERT INTO t(v) VALUES ('app')")
        n += 1
    except Exception as e:
        errors.append(str(e))
    if n == 1:
        print("started", flush=True)
    time.sleep(0.001)
print(n, errors, flush=True)
"#;

/// An application writing all the time while `restore --into` runs: no write is lost or torn —
/// each is in the saved copy or in the restored database, which passes `integrity_check`.
#[test]
fn restore_into_under_a_busy_writer_loses_nothing() {
    let env = TestEnv::new();
    let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<20000) \
                INSERT INTO t(v) SELECT hex(randomblob(100)) FROM n;";
    let src = app_db(&env, "src.db", "DELETE", 4096, &[]);
    sql(&env, &src, rows);
    let file = s(&env.path("src.sql.zst"));
    sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
    for (i, mode) in ["DELETE", "WAL"].into_iter().enumerate() {
        let name = format!("app{i}.db");
        let target = app_db(&env, &name, mode, 4096, &[]);
        sql(&env, &target, rows);
        let stop = env.path(format!("stop{i}"));
        let mut cmd = env.command("python3");
        cmd.arg("-c").arg(WRITER).arg(&target).arg(&stop);
        let mut writer = Background::start(cmd);
        assert_eq!(writer.line(), "started");
        let run = sg(
            &env,
            T0,
            &["restore", "--from-file", &file, "--into", &name],
        );
        let saved = saved_path(&env, &run.success(), &target);
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(&stop, "").unwrap();
        let report = writer.line();
        writer.wait_exit(); // its last close may checkpoint: let it finish before reading
        let (written, errors) = report.split_once(' ').unwrap();
        assert_eq!(errors, "[]", "{mode}: the application's writes failed");
        let count = |db: &Path| query(&env, db, "SELECT count(*) FROM t WHERE v='app';");
        let (before, after) = (count(&saved), count(&target));
        assert_eq!(
            before.parse::<u64>().unwrap() + after.parse::<u64>().unwrap(),
            written.parse::<u64>().unwrap(),
            "{mode}: every write is in the saved copy ({before}) or the restored database ({after})"
        );
        assert_eq!(query(&env, &target, "PRAGMA integrity_check;"), "ok");
        assert_eq!(query(&env, &saved, "PRAGMA integrity_check;"), "ok");
    }
}

/// A process whose stdout lines are read on a thread; killed (by its pid) when dropped.
struct Background {
    child: Child,
    lines: Receiver<String>,
}

impl Background {
    fn start(mut cmd: Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a background process");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background { child, lines }
    }

    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("no answer within 10 s")
    }

    /// Wait (10 s at most) for the process to end by itself.
    fn wait_exit(&mut self) {
        let start = std::time::Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "it did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--into` needs an existing database; and connections that are open cannot follow a change of
/// text encoding, so it refuses a UTF-16 snapshot for a UTF-8 database. Nothing changes.
#[test]
fn restore_into_refuses_a_missing_database_and_another_text_encoding() {
    let env = TestEnv::new();
    let src = env.db_from_script(
        "src.db",
        b"PRAGMA encoding='UTF-16le'; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
    );
    let file = s(&env.path("src.sql"));
    sg(&env, T0, &["dump", &s(&src), "-o", &file]).success();
    let target = app_db(&env, "app.db", "WAL", 4096, &["old-1"]);
    let before = FileState::of(&target);
    let names = list_dir(env.root());
    let args = ["restore", "--from-file", &file, "--into", "app.db"];
    let line = one_error_line(sg(&env, T0, &args), 1);
    assert!(
        line.contains("UTF-16le") && line.contains("UTF-8"),
        "{line}"
    );
    before.assert_unchanged(&target, "a refused restore --into");
    assert_eq!(
        list_dir(env.root()),
        names,
        "a refused restore --into leaves no file"
    );
}

/// A run stopped while it saves the old content (here by the file size limit, SIGXFSZ, as a
/// Ctrl-C would stop it) leaves no `APP.db.before-restore-*` that holds less than the whole old
/// content: the copy is written under a hidden temporary name, which the next run removes, and
/// named only once complete.
#[test]
fn a_restore_into_stopped_while_saving_leaves_no_partial_saved_copy() {
    let env = TestEnv::new();
    let src = app_db(&env, "src.db", "DELETE", 4096, &["restored"]);
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&src), "--repo", &s(&repo)])
        .success();
    let target = env.db_from_script(
        "app.db",
        b"CREATE TABLE big(v);\n\
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<4000)\n\
          INSERT INTO big SELECT randomblob(1000) FROM n;",
    );
    let before = FileState::of(&target);
    let saved = |env: &TestEnv| -> Vec<String> {
        list_dir(env.root())
            .into_iter()
            .filter(|f| f.starts_with("app.db.before-restore-"))
            .collect()
    };
    let stray = |env: &TestEnv| -> Vec<String> {
        list_dir(env.root())
            .into_iter()
            .filter(|f| f.contains("sqlgit-"))
            .collect()
    };
    // A file-size limit is an ordinary write error (SIGXFSZ is ignored): the copy is removed.
    let mut cmd = env.command("sh");
    cmd.args(["-c", "ulimit -f 1024; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_sqlgit"))
        .args(["restore", "--repo", &s(&repo), "--into", &s(&target)]);
    let run = env.run(cmd, b"");
    assert_eq!(run.code(), Some(1), "the size limit did not stop it");
    assert!(
        run.stderr_str().contains("File too large"),
        "{}",
        run.stderr_str()
    );
    before.assert_unchanged(&target, "a restore stopped while saving");
    assert_eq!(
        saved(&env),
        Vec::<String>::new(),
        "a partial saved copy is left"
    );
    assert_eq!(
        stray(&env),
        Vec::<String>::new(),
        "a failed save left its copy"
    );
    // Killed once the copy is whole but not named yet: it stays hidden, not a saved copy.
    let mut cmd = env.command(env!("CARGO_BIN_EXE_sqlgit"));
    cmd.args(["restore", "--repo", &s(&repo), "--into", &s(&target)])
        .env("SQLGIT_FAILPOINT", "into-saved-unnamed");
    let run = env.run(cmd, b"");
    assert_ne!(run.code(), Some(0), "the failpoint did not stop it");
    before.assert_unchanged(&target, "a restore killed while saving");
    assert_eq!(
        saved(&env),
        Vec::<String>::new(),
        "a partial saved copy is left"
    );
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&target)])
        .success();
    assert!(
        run.stdout_str().contains("left by a run that was killed"),
        "{}",
        run.stdout_str()
    );
    let stray: Vec<String> = list_dir(env.root())
        .into_iter()
        .filter(|f| f.contains("sqlgit-"))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
    assert_eq!(saved(&env).len(), 1);
    let conn = rusqlite::Connection::open(env.root().join(&saved(&env)[0])).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4000);
}
