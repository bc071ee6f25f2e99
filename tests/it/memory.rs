//! Peak memory is bounded by the biggest row, not by the number of rows: every queue between
//! the dump, the object writer and the compressors (and between a restore's reader, decoder and
//! writer) is bounded by bytes as well as by count. Measured with `/usr/bin/time` (skipped
//! without it).

use std::path::Path;

use crate::env::TestEnv;

/// Peak RSS in KiB of `sqlgit ARGS`, which must succeed; None without /usr/bin/time.
fn peak_kib(env: &TestEnv, args: &[&str]) -> Option<u64> {
    peak_kib_exiting(env, args, 0)
}

/// Peak RSS in KiB of `sqlgit ARGS`, which must exit `code`; None without /usr/bin/time.
fn peak_kib_exiting(env: &TestEnv, args: &[&str], code: i32) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let out = env.path("rss");
    let mut cmd = env.command(time);
    cmd.args(["-f", "%M", "-o"])
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_sqlgit"))
        .args(args);
    env.run(cmd, b"").code_is(code);
    // After "Command exited with non-zero status N" when it did.
    let text = std::fs::read_to_string(&out).unwrap();
    Some(text.trim().lines().last().unwrap().parse().unwrap())
}

fn blobs(env: &TestEnv, name: &str, rows: u32) -> String {
    let script = format!(
        "CREATE TABLE photos(id INTEGER PRIMARY KEY, jpeg BLOB);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<{rows})
         INSERT INTO photos SELECT i, randomblob(1000000) FROM c;"
    );
    env.db_from_script(name, script.as_bytes())
        .display()
        .to_string()
}

#[test]
fn memory_of_many_big_rows_is_that_of_a_few() {
    let env = TestEnv::new();
    let mut peaks = Vec::new();
    for rows in [6, 48] {
        let db = blobs(&env, &format!("{rows}.db"), rows);
        let repo = env.path(format!("{rows}.sqlgit")).display().to_string();
        let Some(first) = peak_kib(&env, &["snapshot", &db, "--repo", &repo, "-q"]) else {
            eprintln!("SKIP: no /usr/bin/time");
            return;
        };
        // Every row changed: an incremental run writes them all again.
        env.sqlite3(&db, "UPDATE photos SET jpeg = randomblob(1000000);")
            .success();
        let again = peak_kib(&env, &["snapshot", &db, "--repo", &repo, "-q"]).unwrap();
        let to = env
            .path(format!("{rows}.restored.db"))
            .display()
            .to_string();
        let restore = peak_kib(&env, &["restore", "--repo", &repo, "--to", &to, "-q"]).unwrap();
        peaks.push([first, again, restore]);
    }
    // Before the queues were bounded by bytes: 33 → 160 MB for the snapshots.
    for (what, i) in [
        ("first snapshot", 0),
        ("incremental", 1),
        ("restore --to", 2),
    ] {
        let (few, many) = (peaks[0][i], peaks[1][i]);
        assert!(
            many < few + (20 << 10),
            "{what}: 6 rows of 1 MB peak at {few} KiB, 48 rows at {many} KiB"
        );
    }
}

/// Per-table state is small: an unchanged run over 20,000 one-row tables stays under 64 MiB
/// (it took 71 MiB: libgit2's object cache kept every table's tree, counted by its bytes in
/// git, not by its size parsed).
#[test]
fn memory_of_an_unchanged_run_over_many_tables_stays_under_64_mib() {
    let env = TestEnv::new();
    let mut script = String::from("PRAGMA page_size=512; BEGIN;");
    for i in 0..20_000 {
        script.push_str(&format!(
            "CREATE TABLE tenant_{i}(id INTEGER PRIMARY KEY, v); INSERT INTO tenant_{i} VALUES(1, {i});"
        ));
    }
    script.push_str("COMMIT;");
    let db = env
        .db_from_script("t.db", script.as_bytes())
        .display()
        .to_string();
    let repo = env.path("t.sqlgit").display().to_string();
    let args = ["snapshot", &db, "--repo", &repo, "-q"];
    if peak_kib(&env, &args).is_none() {
        eprintln!("SKIP: no /usr/bin/time");
        return;
    }
    let unchanged = peak_kib(&env, &args).unwrap();
    assert!(unchanged < 64 << 10, "peak {unchanged} KiB");
}

/// `diff` and `history` of one large value changed by a character show it cut to a few dozen
/// characters: they hold the two values' literals, not a 4-byte copy of each character.
#[test]
fn memory_of_a_diff_of_one_large_changed_value_is_a_few_times_the_value() {
    let env = TestEnv::new();
    const MB: u64 = 25;
    let db = env.db_from_script(
        "big.db",
        format!(
            "CREATE TABLE h(id INTEGER PRIMARY KEY, v TEXT);\n\
             INSERT INTO h VALUES (1, printf('%.*c', {}, 'x'));",
            MB * 1_000_000
        )
        .as_bytes(),
    );
    let repo = env.path("big.sqlgit");
    let (d, r) = (db.to_str().unwrap(), repo.to_str().unwrap());
    env.sqlgit(&["snapshot", d, "--repo", r]).success();
    env.sqlite3(&db, "UPDATE h SET v = v || 'y';").success();
    env.sqlgit(&["snapshot", "--repo", r]).success();
    for (args, code) in [
        (&["diff", "HEAD~1", "HEAD", "--repo", r][..], 1),
        (&["history", "h", "1", "--repo", r][..], 0),
    ] {
        let Some(kib) = peak_kib_exiting(&env, args, code) else {
            return;
        };
        // Before: about 12 times the value (two literals as 4-byte characters).
        assert!(kib < 8 * MB * 1024, "{args:?}: {} MiB", kib / 1024);
    }
}

/// One huge row is held once: the BLOB as SQLite gives it, its hex text, and (a snapshot) that
/// text compressed. The row's text was once copied whole into a chunk of its own (one 100 MiB
/// BLOB: 514 MiB for `dump` and `snapshot`, now 313 and 324).
#[test]
fn memory_of_one_huge_blob_holds_its_text_once() {
    let env = TestEnv::new();
    const MB: u64 = 20;
    let db = env.db_from_script(
        "huge.db",
        format!(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);\n\
             INSERT INTO t VALUES (1, randomblob({})), (2, 'x');",
            MB << 20
        )
        .as_bytes(),
    );
    let repo = env.path("huge.sqlgit");
    let (d, r) = (db.to_str().unwrap(), repo.to_str().unwrap());
    let out = env.path("dump.sql");
    let Some(dump) = peak_kib(&env, &["dump", d, "-o", out.to_str().unwrap()]) else {
        return;
    };
    let snapshot = peak_kib(&env, &["snapshot", d, "--repo", r, "-q"]).unwrap();
    // The value (MB) and its hex (2 MB), with room for the program itself; a second copy of the
    // hex would add 2 MB more.
    assert!(dump < (4 * MB + 16) << 10, "dump: {} MiB", dump >> 10);
    assert!(
        snapshot < (9 * MB / 2 + 16) << 10,
        "snapshot: {} MiB",
        snapshot >> 10
    );
}
