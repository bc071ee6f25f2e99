//! The command line and the output: usage errors, `-o FILE.gz`, `-o` naming a FIFO, names that
//! are not UTF-8 and relative paths starting with `file:`.

use super::*;

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    let db = env.fixture_db("utf16be");
    let db = db.to_str().unwrap();
    for args in [
        vec!["dump"],
        vec!["dump", db, "--busy-timeout", "banana"],
        vec!["dump", db, "--no-such-flag"],
        vec!["dump", db, "second.db"],
        vec!["dump", db, "-o"],
    ] {
        let run = env.sqlgit(&args).code_is(2);
        if run.stderr().is_empty() {
            run.fail("a usage error must say what is wrong on stderr");
        }
    }
    env.sqlgit(&["dump", db, "--busy-timeout", "250ms"])
        .success();
}

/// `-o FILE.gz` writes the same dump gzip-compressed (as `sqlgit dump --help` documents).
#[test]
fn output_gz_is_gzipped_dump() {
    use std::io::Read;
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let plain = dump_stdout(&env, &db);
    let gz = env.path("demo.sql.gz");
    env.sqlgit(&[Path::new("dump"), &db, Path::new("-o"), gz.as_path()])
        .success();
    let mut unpacked = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_end(&mut unpacked)
        .expect("-o FILE.gz is not gzip");
    assert_same_dump(&plain, &unpacked, "gunzip(dump -o FILE.gz) versus dump");
    let mode = std::fs::metadata(&gz).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "dump -o FILE.gz: mode {mode:o}");
}

/// `-o` naming something that is not a regular file (a FIFO here; `/dev/null` and `/dev/stdout`
/// alike) is written in place: replacing it with a renamed temp file would, run as root on
/// `/dev/null`, break the whole machine.
#[test]
fn output_to_a_fifo_writes_into_it() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let fifo = env.path("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    env.sqlgit(&[Path::new("dump"), &db, Path::new("-o"), &fifo])
        .success();
    let read = reader.join().unwrap();
    assert_eq!(read, dump_stdout(&env, &db));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced by a file"
    );
}

#[test]
fn a_name_that_is_not_utf8_is_named_in_the_error() {
    let env = TestEnv::new();
    for (script, said) in [
        (
            &b"CREATE TABLE \"t\xffx\"(a);"[..],
            "the name of table \"t\\xffx\"",
        ),
        (
            b"CREATE TABLE t(a, \"c\xfe\");",
            "column \"c\\xfe\" of table \"t\"",
        ),
        (
            b"CREATE TABLE t(a); CREATE INDEX \"i\xfe\" ON t(a);",
            "the name of index \"i\\xfe\"",
        ),
    ] {
        let db = env.db_from_script(&format!("n{}.db", said.len()), script);
        let run = env.sqlgit(&["dump", &db.display().to_string()]).code_is(1);
        let err = run.stderr_str();
        assert!(
            err.contains(said) && err.contains("not valid UTF-8"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// SQLite takes a name starting with `file:` as a URI: `file:app.db` opens `app.db`. A database
/// whose relative path starts so must still be that file for every command: dumped, restored
/// over (`--into`, its old content saved beside it) and created (`--to`), while a database named
/// `app.db` beside it is never read or written.
#[test]
fn a_relative_path_starting_with_file_colon_names_that_file() {
    let env = TestEnv::new();
    let ours = env.path("file:app.db");
    let other = env.path("app.db");
    let setup = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES";
    Connection::open_with_flags(
        &ours,
        rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
    .execute_batch(&format!("{setup}('ours');"))
    .unwrap();
    env.sqlite3(&other, format!("{setup}('other');")).success();
    let before_other = FileState::of(&other);
    let dump = env.sqlgit(&["dump", "file:app.db"]).success().stdout_str();
    assert!(
        dump.contains("'ours'") && !dump.contains("'other'"),
        "{dump}"
    );

    env.sqlgit(&["snapshot", "file:app.db", "--repo", "r.sqlgit"])
        .success();
    let value = |db: &Path| -> String {
        Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("SELECT group_concat(v) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    let plain = |db: &Path| {
        Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap()
    };
    plain(&ours)
        .execute_batch("UPDATE t SET v = 'changed'")
        .unwrap();
    env.sqlgit(&["restore", "--repo", "r.sqlgit", "--into", "file:app.db"])
        .success();
    assert_eq!(value(&ours), "ours");
    let saved: Vec<String> = list_dir(&env.path("."))
        .into_iter()
        .filter(|n| n.starts_with("file:app.db.before-restore-"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(value(&env.path(&saved[0])), "changed");

    env.sqlgit(&["restore", "--repo", "r.sqlgit", "--to", "file:new.db"])
        .success();
    assert_eq!(value(&env.path("file:new.db")), "ours");
    assert!(!env.path("new.db").exists());
    before_other.assert_unchanged(&other, "the database named app.db beside it");
    assert_eq!(value(&other), "other");
}
