//! Real git servers on loopback for the tests that push (remotes, and later prune / restore-from-
//! remote tests): `GitDaemon` (git://, `git daemon --enable=receive-pack`) and `HttpGit` (smart
//! HTTP: `git http-backend` as CGI behind a tiny Python server with HTTP Basic auth).
//!
//! Both listen on 127.0.0.1 only, serve the bare repositories under one directory (normally a
//! folder of the test's `TestEnv`), run with a hermetic git environment (no global or system
//! config), wait a bounded time for the server to come up, keep a log file next to the repositories
//! for failure messages, and are killed on Drop. `git` and `python3` must be on PATH; a clear panic
//! says so when they are not.

#![allow(dead_code)] // shared helpers: not every test module uses all of them

/// The methods every test git server shares, from its `base` folder and `port` fields:
/// `url(name)` (`SCHEME://127.0.0.1:PORT/NAME.git`), `url_with_credentials`, `repo_path`,
/// `create_bare` (`git init --bare -b main`), `port`, `base`.
macro_rules! served {
    ($server:ty, $scheme:literal) => {
        impl $server {
            pub fn port(&self) -> u16 {
                self.port
            }

            /// The directory the repositories are served from.
            pub fn base(&self) -> &std::path::Path {
                &self.base
            }

            /// `SCHEME://127.0.0.1:PORT/NAME.git`.
            pub fn url(&self, name: &str) -> String {
                format!(concat!($scheme, "://127.0.0.1:{}/{}.git"), self.port, name)
            }

            /// `SCHEME://USER:PASS@127.0.0.1:PORT/NAME.git` (no escaping: keep them URL-safe).
            pub fn url_with_credentials(&self, name: &str, user: &str, pass: &str) -> String {
                format!(
                    concat!($scheme, "://{}:{}@127.0.0.1:{}/{}.git"),
                    user, pass, self.port, name
                )
            }

            /// Where `NAME.git` lives on disk.
            pub fn repo_path(&self, name: &str) -> std::path::PathBuf {
                self.base.join(format!("{name}.git"))
            }

            /// `git init --bare -b main BASE/NAME.git`; returns its path.
            pub fn create_bare(&self, name: &str) -> std::path::PathBuf {
                $crate::servers::init_bare(&self.base, name)
            }
        }
    };
}

pub mod sshd;
pub mod web;

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Panic with a clear message unless `program --version` runs.
fn require(program: &str, why: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        panic!(
            "`{program}` is required by the integration tests ({why}) but could not be run \
             from PATH: install it (apt-get install {program}) and try again"
        );
    }
}

/// A hermetic `git` command (no global/system config, HOME and cwd = `dir`), for setting up and
/// inspecting the repositories a server exports.
pub fn git(dir: &Path) -> Command {
    require("git", "the loopback git servers");
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    hermetic(&mut cmd, dir);
    cmd
}

fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("HOME", home)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Server Side")
        .env("GIT_AUTHOR_EMAIL", "server@example.com")
        .env("GIT_COMMITTER_NAME", "Server Side")
        .env("GIT_COMMITTER_EMAIL", "server@example.com");
}

/// Run a command to completion; panic with its output unless it exits 0. Returns stdout.
#[track_caller]
pub fn run_ok(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if !out.status.success() {
        panic!(
            "{shown} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait until the server `child` itself listens on `port` and accepts connections: Err (with
/// `log`) when it exits first or does not within START_TIMEOUT (then it is killed), so the caller
/// can try another port. "Itself": another test's server may have taken the port between
/// `free_port()` and this one's bind; it would accept connections too, and this server would die
/// on its failed bind while the test talks to the other one.
pub(crate) fn wait_until_serving(
    child: &mut Option<Child>,
    port: u16,
    what: &str,
    log: impl Fn() -> String,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let pid = child.as_ref().map(|c| c.id());
        if pid.is_some_and(|pid| listens(pid, port)) && accepts(port) {
            return Ok(());
        }
        if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
            *child = None;
            return Err(format!(
                "{what} on port {port} exited with {status}; log:\n{}",
                log()
            ));
        }
        if Instant::now() > deadline {
            kill(child);
            return Err(format!(
                "{what} did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT:?}; \
                 log:\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `python3 SCRIPT ARGS…` in `base`, stderr appended to `log`: a test server that prints
/// its port on its first line and exits when its stdin (returned, held by the caller) closes, so
/// it cannot outlive a killed test process. Returns the child, its stdin and the port.
pub(crate) fn spawn_python_server(
    base: &Path,
    script: &Path,
    args: &[&std::ffi::OsStr],
    log: &Path,
    what: &str,
) -> (Child, Option<ChildStdin>, u16) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open the {what} log: {e}"));
    let mut cmd = Command::new("python3");
    hermetic(&mut cmd, base);
    let mut child = cmd
        .current_dir(base)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 for the {what}: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    let Ok(port) = line.trim().parse() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the {what} did not report its port within {START_TIMEOUT:?} (got {line:?}); \
             log:\n{}",
            read_log(log)
        );
    };
    (child, stdin, port)
}

/// `$(git --exec-path)/git-daemon`.
fn git_daemon_program() -> PathBuf {
    let exec_path = run_ok({
        let mut cmd = Command::new("git");
        cmd.arg("--exec-path");
        cmd
    });
    let program = Path::new(exec_path.trim()).join("git-daemon");
    if !program.is_file() {
        panic!(
            "git-daemon is required by the git:// test server but {} does not exist \
             (install git's daemon, e.g. apt-get install git-daemon-run or a full git)",
            program.display()
        );
    }
    program
}

/// `git init --bare -b main BASE/NAME.git`; returns its path.
pub(crate) fn init_bare(base: &Path, name: &str) -> PathBuf {
    let path = base.join(format!("{name}.git"));
    let mut cmd = git(base);
    cmd.args(["init", "--quiet", "--bare", "-b", "main"])
        .arg(&path);
    run_ok(cmd);
    path
}

/// A port on 127.0.0.1 that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux: the socket's
/// inode in /proc/net/tcp is among the process's open files).
pub(crate) fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
        .map(|f| format!("socket:[{}]", f[9]))
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// ------------------------------------------------------------------------------------------------

/// `git daemon --enable=receive-pack` serving `BASE/*.git` as `git://127.0.0.1:PORT/NAME.git`.
pub struct GitDaemon {
    base: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl GitDaemon {
    /// Start a daemon exporting the repositories under `base` (created if missing) on a free port.
    pub fn start_in(base: impl AsRef<Path>) -> GitDaemon {
        require("git", "the git:// test server (git daemon)");
        let base = base.as_ref().to_path_buf();
        std::fs::create_dir_all(&base).expect("create the git daemon's base dir");
        let log = base.with_extension("daemon.log");
        // The port is released before git binds it; if someone takes it meanwhile, try another.
        let mut last = String::new();
        for _ in 0..5 {
            let mut daemon = GitDaemon {
                base: base.clone(),
                port: free_port(),
                log: log.clone(),
                child: None,
            };
            match daemon.try_start() {
                Ok(()) => return daemon,
                Err(e) => last = e,
            }
        }
        panic!("could not start git daemon: {last}");
    }

    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "git daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the git daemon log");
        // Run git-daemon itself: `git daemon` would run it as a child of the `git` wrapper, and
        // killing the wrapper would leave the daemon listening.
        let mut cmd = Command::new(git_daemon_program());
        hermetic(&mut cmd, &self.base);
        cmd.current_dir(&self.base)
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--enable=receive-pack")
            .arg("--informative-errors")
            .arg("--verbose")
            .arg(format!("--base-path={}", self.base.display()))
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(&self.base)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run git daemon: {e}"))?;
        self.child = Some(child);
        wait_until_serving(&mut self.child, self.port, "git daemon", || {
            read_log(&self.log)
        })
    }

    /// Stop the daemon (connections to its port are then refused).
    pub fn stop(&mut self) {
        kill(&mut self.child);
        let deadline = Instant::now() + START_TIMEOUT;
        while accepts(self.port) {
            assert!(
                Instant::now() < deadline,
                "port {} still accepts connections after stopping git daemon",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the daemon again on the same port.
    pub fn start(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.try_start() {
                Ok(()) => return,
                // The port can stay busy for a moment after a stop; --reuseaddr covers TIME_WAIT.
                Err(e) if Instant::now() > deadline => panic!("could not restart git daemon: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The daemon's log so far (for failure messages).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

served!(GitDaemon, "git");

impl Drop for GitDaemon {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

// ------------------------------------------------------------------------------------------------

/// The smart-HTTP server: `git http-backend` as CGI, HTTP Basic auth, loopback only. It binds port
/// 0 itself and prints the port; it exits when its stdin (held by `HttpGit`) closes, so it cannot
/// outlive a killed test process. Chunked request bodies (libgit2 sends them) are decoded before
/// they reach the CGI. One line per request goes to the log: `METHOD PATH STATUS USER`.
const HTTP_SERVER_PY: &str = r#####"
import base64, hmac, os, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

root, user, password, log_path = sys.argv[1:5]
expected = "Basic " + base64.b64encode((user + ":" + password).encode()).decode()
log_lock = threading.Lock()

def log(line):
    with log_lock, open(log_path, "a") as f:
        f.write(line + "\n")

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, headers, body):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_git(self):
        body = self.read_body()
        path, _, query = self.path.partition("?")
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            log("%s %s 401 -" % (self.command, path))
            self.reply(401, [("WWW-Authenticate", 'Basic realm="git"'),
                             ("Content-Type", "text/plain")], b"authentication required\n")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": root,
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_PROJECT_ROOT": root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        cgi = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if cgi.stderr:
            log("  http-backend: " + cgi.stderr.decode(errors="replace").strip())
        out = cgi.stdout
        sep = out.find(b"\r\n\r\n")
        skip = 4
        if sep < 0 or (out.find(b"\n\n") >= 0 and out.find(b"\n\n") < sep):
            sep, skip = out.find(b"\n\n"), 2
        if sep < 0:
            log("%s %s 500 %s (no CGI headers, exit %d)" % (self.command, path, user, cgi.returncode))
            self.reply(500, [("Content-Type", "text/plain")], b"bad CGI output\n")
            return
        status, headers = 200, []
        for line in out[:sep].decode("latin-1").splitlines():
            if not line.strip():
                continue
            key, _, value = line.partition(":")
            if key.strip().lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key.strip(), value.strip()))
        log("%s %s %d %s" % (self.command, path, status, user))
        self.reply(status, headers, out[sep + skip:])

    do_GET = handle_git
    do_POST = handle_git
    do_HEAD = handle_git

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
# Exit as soon as whoever started us goes away (stdin closes).
sys.stdin.buffer.read()
os._exit(0)
"#####;

/// Smart HTTP (`git http-backend`) with Basic auth on `http://127.0.0.1:PORT/NAME.git`.
pub struct HttpGit {
    base: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl HttpGit {
    /// Serve the repositories under `base` (created if missing), accepting only `user:password`.
    pub fn start_in(base: impl AsRef<Path>, user: &str, password: &str) -> HttpGit {
        require("git", "the smart-HTTP test server runs git http-backend");
        require("python3", "the smart-HTTP test server is a Python script");
        let base = base.as_ref().to_path_buf();
        std::fs::create_dir_all(&base).expect("create the HTTP server's base dir");
        let script = base.with_extension("http-server.py");
        std::fs::write(&script, HTTP_SERVER_PY).expect("write the HTTP server script");
        let log = base.with_extension("http.log");
        let mut args: Vec<&std::ffi::OsStr> = vec![base.as_os_str(), user.as_ref()];
        args.extend([password.as_ref(), log.as_os_str()]);
        let (child, stdin, port) =
            spawn_python_server(&base, &script, &args, &log, "HTTP test server");
        let server = HttpGit {
            base,
            port,
            log,
            child: Some(child),
            stdin,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !accepts(server.port) {
            assert!(
                Instant::now() < deadline,
                "the HTTP test server does not accept connections on 127.0.0.1:{}; log:\n{}",
                server.port,
                read_log(&server.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The request log so far: one `METHOD PATH STATUS USER` line per request.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// How many requests were refused with 401 so far.
    pub fn unauthorized_requests(&self) -> usize {
        self.log().lines().filter(|l| l.contains(" 401 ")).count()
    }
}

served!(HttpGit, "http");

impl Drop for HttpGit {
    fn drop(&mut self) {
        drop(self.stdin.take());
        kill(&mut self.child);
    }
}
