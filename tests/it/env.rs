//! `TestEnv`: one hermetic scratch directory per test, plus the ways tests drive programs in it.
//!
//! Every integration test (dump, snapshot, remotes, ...) runs the real `sqlgit` binary and the real
//! `sqlite3` CLI the way a user would, so this module owns the parts that must be identical for all of
//! them: a temp dir that is kept (and its path printed) when the test fails, an environment that does
//! not leak the developer's git config, HOME, locale or `SQLGIT_*` variables into the run, and
//! failure messages that show the command line, exit code, stdout, stderr and the directory, the way
//! ripgrep's test helper does. `compare_databases` (in `env/compare.rs`) is the value-by-value oracle.

#![allow(dead_code)] // shared helpers: not every test binary module uses all of them

mod compare;
mod run;
mod signals;
mod util;

pub use compare::compare_databases;
pub use run::{Run, describe, excerpt};
pub use util::{
    copy_dir, dir_size, hook_lines, kill_group, logging_hook, one_error_line, parse_csv, rfc3339,
};

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `sqlite3` CLI the tests restore dumps with; override with `SQLGIT_TEST_SQLITE3`.
pub fn sqlite3_bin() -> PathBuf {
    let path = std::env::var_os("SQLGIT_TEST_SQLITE3")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/sqlite3"));
    if !path.is_file() {
        panic!(
            "the sqlite3 CLI is required by the integration tests but was not found at {}: \
             install it (apt-get install sqlite3) or set SQLGIT_TEST_SQLITE3=/path/to/sqlite3",
            path.display()
        );
    }
    path
}

/// Directory holding the fixture scripts (`fixtures/*.sql`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A scratch directory that every command of one test runs in.
pub struct TestEnv {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    home: PathBuf,
    nss: Option<NssHome>,
}

/// The user database as programs started by a test see it (nss_wrapper): the current user with
/// the test's HOME as home directory. OpenSSH ignores $HOME; without this, the git transport's
/// ssh would read the real `~/.ssh`. None when libnss_wrapper is not installed.
struct NssHome {
    library: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
}

impl NssHome {
    fn write(home: &Path) -> Option<NssHome> {
        let library = nss_wrapper_library()?;
        let (user, uid, gid) = current_user()?;
        let dir = home.join(".nss");
        std::fs::create_dir_all(&dir).ok()?;
        let passwd = dir.join("passwd");
        let group = dir.join("group");
        std::fs::write(
            &passwd,
            format!("{user}:x:{uid}:{gid}:{user}:{}:/bin/sh\n", home.display()),
        )
        .ok()?;
        std::fs::write(&group, format!("{user}:x:{gid}:\n")).ok()?;
        Some(NssHome {
            library,
            passwd,
            group,
        })
    }
}

/// libnss_wrapper.so (Debian: libnss-wrapper), if installed.
fn nss_wrapper_library() -> Option<PathBuf> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let mut dirs = Vec::new();
            for top in ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib"] {
                dirs.push(PathBuf::from(top));
                if let Ok(entries) = std::fs::read_dir(top) {
                    dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
            }
            dirs.into_iter()
                .map(|d| d.join("libnss_wrapper.so"))
                .find(|p| p.is_file())
        })
        .clone()
}

/// (name, uid, gid) of the user running the tests.
fn current_user() -> Option<(String, String, String)> {
    static FOUND: std::sync::OnceLock<Option<(String, String, String)>> =
        std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let id = |flag: &str| {
                let out = Command::new("id").arg(flag).output().ok()?;
                let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
                (out.status.success() && !text.is_empty()).then_some(text)
            };
            Some((id("-un")?, id("-u")?, id("-g")?))
        })
        .clone()
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("sqlgit-it-")
            .tempdir()
            .expect("create temp dir");
        let root = dir.path().to_path_buf();
        let home = root.join(".home");
        std::fs::create_dir_all(home.join("tmp")).expect("create HOME inside the temp dir");
        let nss = NssHome::write(&home);
        TestEnv {
            dir: Some(dir),
            root,
            home,
            nss,
        }
    }

    /// The variables that make programs see HOME as the user's home directory (every `command`
    /// has them; OpenSSH takes `~` from the user database, not from $HOME, so this is what makes
    /// ssh read the test's `~/.ssh`), or None without nss_wrapper.
    pub fn nss_vars(&self) -> Option<Vec<(String, String)>> {
        let nss = self.nss.as_ref()?;
        Some(vec![
            ("LD_PRELOAD".into(), nss.library.display().to_string()),
            (
                "NSS_WRAPPER_PASSWD".into(),
                nss.passwd.display().to_string(),
            ),
            ("NSS_WRAPPER_GROUP".into(), nss.group.display().to_string()),
        ])
    }

    /// The HOME commands run with.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The temp dir; commands run with it as their current directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/name`.
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.root.join(name)
    }

    /// Write `bytes` to `root/name` (creating parent dirs) and return the path.
    pub fn write(&self, name: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// A `Command` for `program` with the hermetic environment and the temp dir as cwd.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root).env_clear();
        for keep in ["PATH", "LLVM_PROFILE_FILE", "CARGO_LLVM_COV"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        let date = "2000-01-01T00:00:00+00:00";
        cmd.env("HOME", &self.home)
            .env("TMPDIR", self.home.join("tmp"))
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env("TERM", "dumb")
            .env("PAGER", "cat")
            .env("GIT_PAGER", "cat")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_COMMITTER_DATE", date);
        if let Some(nss) = &self.nss {
            cmd.env("LD_PRELOAD", &nss.library)
                .env("NSS_WRAPPER_PASSWD", &nss.passwd)
                .env("NSS_WRAPPER_GROUP", &nss.group);
        }
        cmd
    }

    /// A hermetic `Command` for the `sqlgit` binary under test.
    pub fn sqlgit_cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_sqlgit"));
        cmd.args(args);
        cmd
    }

    /// Run `sqlgit ARGS` with empty stdin and wait for it.
    pub fn sqlgit<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.run(self.sqlgit_cmd(args), b"")
    }

    /// `sqlgit ARGS` with `SQLGIT_NOW` pinned to `now` (Unix seconds), killed and failed after
    /// two minutes.
    pub fn sqlgit_at<S: AsRef<OsStr>>(&self, now: u64, args: &[S]) -> Run {
        let mut cmd = self.sqlgit_cmd(args);
        cmd.env("SQLGIT_NOW", now.to_string());
        self.run_limited(cmd, b"", Duration::from_secs(120)).0
    }

    /// A fix as sqlgit printed it (`sqlgit init --repo … --db '…'`), run by `sh` with
    /// `SQLGIT_NOW` pinned to `now`: its quoting is what is tested.
    pub fn sqlgit_printed(&self, now: u64, printed: &str) -> Run {
        let args = printed
            .strip_prefix("sqlgit ")
            .unwrap_or_else(|| panic!("not a sqlgit command: {printed}"));
        let mut cmd = self.command("sh");
        cmd.arg("-c")
            .arg(format!("exec \"$0\" {args}"))
            .arg(env!("CARGO_BIN_EXE_sqlgit"))
            .env("SQLGIT_NOW", now.to_string());
        self.run_limited(cmd, b"", Duration::from_secs(120)).0
    }

    /// `git -C DIR ARGS`, which must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = self.command("git");
        cmd.arg("-C").arg(dir).args(args);
        let run = self
            .run_limited(cmd, b"", Duration::from_secs(120))
            .0
            .success();
        run.stdout_str().trim().to_string()
    }

    /// `git --git-dir REPO ARGS` with `stdin` and its own index file (`index`, under the test's
    /// folder): plumbing that edits a bare repository's commits. Its stdout, as written.
    pub fn git_plumbing(&self, repo: &Path, index: &str, args: &[&str], stdin: &[u8]) -> String {
        let mut cmd = self.command("git");
        cmd.arg("--git-dir")
            .arg(repo)
            .env("GIT_INDEX_FILE", self.path(index))
            .args(args);
        self.run(cmd, stdin).success().stdout_str()
    }

    /// Run `sqlite3 [ARGS] DB` with `stdin` as its input (the CLI's `sqlite3 db < script`).
    pub fn sqlite3_args<S: AsRef<OsStr>>(&self, args: &[S], db: &Path, stdin: &[u8]) -> Run {
        let mut cmd = self.command(sqlite3_bin());
        cmd.arg("-batch").args(args).arg(db);
        self.run(cmd, stdin)
    }

    /// Run `sqlite3 DB < stdin`.
    pub fn sqlite3(&self, db: impl AsRef<Path>, stdin: impl AsRef<[u8]>) -> Run {
        self.sqlite3_args::<&str>(&[], db.as_ref(), stdin.as_ref())
    }

    /// Like [`TestEnv::run`], but kill `cmd` and fail the test if it runs longer than `limit`
    /// (a hang or an endless retry must not hang the suite). Returns the run and its wall time.
    pub fn run_limited(&self, cmd: Command, stdin: &[u8], limit: Duration) -> (Run, Duration) {
        let (run, elapsed, timed_out) = self.run_bounded(cmd, stdin, limit);
        if timed_out {
            run.fail(&format!(
                "killed after {limit:?}: no answer (hang or endless retry?)"
            ));
        }
        (run, elapsed)
    }

    /// Run `cmd`, killing it after `limit`; the caller decides what a timeout means. Returns the
    /// run, its wall time, and whether it was killed.
    pub fn run_bounded(
        &self,
        mut cmd: Command,
        stdin: &[u8],
        limit: Duration,
    ) -> (Run, Duration, bool) {
        let cmdline = describe(&cmd);
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let mut input = child.stdin.take().unwrap();
        let stdin = stdin.to_vec();
        let in_t = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out_t = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut v);
            v
        });
        let err_t = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut v);
            v
        });
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for child") {
                break status;
            }
            if start.elapsed() > limit {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed child");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        let _ = in_t.join();
        let run = Run {
            cmdline,
            output: Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            },
            dir: self.root().to_path_buf(),
        };
        (run, elapsed, timed_out)
    }

    /// Run `cmd` with `stdin` fed from a thread (so big inputs cannot deadlock) and collect output.
    pub fn run(&self, mut cmd: Command, stdin: &[u8]) -> Run {
        let cmdline = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let mut pipe = child.stdin.take().unwrap();
        let output = std::thread::scope(|s| {
            s.spawn(move || {
                // The program may exit without reading everything: a broken pipe is its business.
                let _ = pipe.write_all(stdin);
            });
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("waiting for {cmdline}: {e}"));
        Run {
            cmdline,
            output,
            dir: self.root.clone(),
        }
    }

    /// The directory commands use as TMPDIR (inside HOME).
    pub fn tmpdir(&self) -> PathBuf {
        self.home.join("tmp")
    }

    /// `sqlgit snapshot DB --repo REPO` at `SQLGIT_NOW=now`, which must make a commit: its id.
    pub fn snapshot_at(&self, db: &Path, repo: &Path, now: u64) -> String {
        let mut cmd = self.sqlgit_cmd(&[Path::new("snapshot"), db, Path::new("--repo"), repo]);
        cmd.env("SQLGIT_NOW", now.to_string());
        let run = self.run(cmd, b"").success();
        let id = run
            .stdout_str()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if id.len() != 40 {
            run.fail("the snapshot made no commit");
        }
        id
    }

    /// Build `root/NAME.db` by feeding `fixtures/NAME.sql` to the sqlite3 CLI (which must be silent).
    pub fn fixture_db(&self, name: &str) -> PathBuf {
        let script_path = fixtures_dir().join(format!("{name}.sql"));
        let script = std::fs::read(&script_path)
            .unwrap_or_else(|e| panic!("read fixture {}: {e}", script_path.display()));
        self.db_from_script(&format!("{name}.db"), &script)
    }

    /// Build `root/NAME` from an SQL script run by the sqlite3 CLI; stderr must stay empty.
    pub fn db_from_script(&self, name: &str, script: &[u8]) -> PathBuf {
        let db = self.path(name);
        assert!(!db.exists(), "{} already exists", db.display());
        self.sqlite3_args(&["-bail"], &db, script)
            .success()
            .assert_quiet();
        db
    }

    /// Restore `dump` into a new `root/NAME` with `sqlite3 NAME < dump`: exit 0 and empty stderr.
    pub fn restore(&self, dump: &[u8], name: &str) -> PathBuf {
        let db = self.path(name);
        assert!(!db.exists(), "{} already exists", db.display());
        self.sqlite3(&db, dump).success().assert_quiet();
        db
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && (std::thread::panicking() || std::env::var_os("SQLGIT_TEST_KEEP").is_some())
        {
            eprintln!(
                "test directory kept for inspection: {}",
                dir.keep().display()
            );
        }
    }
}

/// A file's bytes and mtime, to prove that reading a database did not touch it.
#[derive(Debug, PartialEq, Eq)]
pub struct FileState {
    pub len: u64,
    pub mtime: std::time::SystemTime,
    pub bytes: Vec<u8>,
}

impl FileState {
    pub fn of(path: &Path) -> FileState {
        let meta =
            std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        FileState {
            len: meta.len(),
            mtime: meta.modified().unwrap(),
            bytes: std::fs::read(path).unwrap(),
        }
    }

    #[track_caller]
    pub fn assert_unchanged(&self, path: &Path, what: &str) {
        let now = FileState::of(path);
        assert!(
            now.len == self.len,
            "{what}: {} changed size: {} -> {}",
            path.display(),
            self.len,
            now.len
        );
        assert!(
            now.bytes == self.bytes,
            "{what}: the bytes of {} changed",
            path.display()
        );
        assert!(
            now.mtime == self.mtime,
            "{what}: the mtime of {} changed",
            path.display()
        );
    }
}

/// Sorted names of the entries of `dir` (to see stray -journal / -wal / -shm files).
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
