//! Web servers on 127.0.0.1 for the HTTP remote tests: `git http-backend` behind lighttpd with
//! Basic auth (`Lighttpd`), dulwich's HTTP server, a second git implementation (`DulwichHttp`),
//! and an in-process server that refuses every request and records what credentials clients sent
//! (`CredLogger`).
//!
//! lighttpd logs every request's headers to its error log (`debug.log-request-header`), so a test
//! can see each Authorization header a client sent, and writes an access log with the status and
//! the authenticated user. Processes are started with a hermetic environment and killed by PID on
//! Drop; dulwich's script also exits when its stdin (held by the test) closes.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, hermetic, kill, read_log, require};

const LIGHTTPD: &str = "/usr/sbin/lighttpd";

/// One request as a server saw it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The request line, e.g. `GET /history.git/info/refs?service=git-receive-pack HTTP/1.1`.
    pub line: String,
    /// The decoded Basic credentials (`user:password`), the raw header for another scheme, or
    /// None when the request carried no Authorization header.
    pub authorization: Option<String>,
    /// The response's status (None: not answered, or not known to this server).
    pub status: Option<u16>,
    /// The request's Content-Length (None for a chunked body or none).
    pub content_length: Option<u64>,
}

/// One access-log line of `Lighttpd`: `METHOD PATH STATUS USER BYTES_IN BYTES_OUT`.
#[derive(Clone, Debug)]
pub struct Access {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `-` when the request was not authenticated.
    pub user: String,
    /// Bytes received, request line and headers included.
    pub bytes_in: u64,
}

/// The value of an Authorization header as a test wants to see it: `user:password` for Basic.
fn decode_authorization(value: &str) -> String {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, b64)) if scheme.eq_ignore_ascii_case("basic") => base64_decode(b64.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| format!("(bad base64) {value}")),
        _ => value.to_string(),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ------------------------------------------------------------------------------------------------

/// A new self-signed certificate and key for 127.0.0.1, in one PEM file in `dir`.
fn self_signed_certificate(dir: &Path) -> PathBuf {
    let pem = dir.join("server.pem");
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args([
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ])
    .arg("-keyout")
    .arg(&pem)
    .arg("-out")
    .arg(dir.join("cert.pem"));
    super::run_ok(cmd);
    let cert = std::fs::read(dir.join("cert.pem")).expect("read the certificate");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&pem)
        .expect("open the key");
    std::io::Write::write_all(&mut file, &cert).expect("append the certificate");
    dir.join("cert.pem")
}

/// `$(git --exec-path)/git-http-backend`.
fn git_http_backend() -> PathBuf {
    let mut cmd = Command::new("git");
    cmd.arg("--exec-path");
    let program = Path::new(super::run_ok(cmd).trim()).join("git-http-backend");
    if !program.is_file() {
        panic!(
            "git-http-backend is required by the lighttpd test server but {} does not exist",
            program.display()
        );
    }
    program
}

/// `git http-backend` as CGI behind lighttpd, Basic auth required for every path, on
/// `http://127.0.0.1:PORT/NAME.git`.
pub struct Lighttpd {
    base: PathBuf,
    /// Configuration, user file and logs (next to `base`).
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// HTTPS: the server's self-signed certificate (PEM), which a client must be told to trust.
    tls: Option<PathBuf>,
    /// `server.max-request-size` in KiB (0: no limit): a bigger request gets HTTP 413.
    max_request_kib: u32,
}

impl Lighttpd {
    /// Serve the repositories under `base` (created if missing) to `user:password` only.
    pub fn start_in(base: impl AsRef<Path>, user: &str, password: &str) -> Lighttpd {
        Self::start(base, user, password, false, 0)
    }

    /// [`Lighttpd::start_in`] refusing every request over `kib` KiB with HTTP 413 (a web
    /// server's request size limit in front of a forge).
    pub fn start_limited_in(
        base: impl AsRef<Path>,
        user: &str,
        password: &str,
        kib: u32,
    ) -> Lighttpd {
        Self::start(base, user, password, false, kib)
    }

    /// [`Lighttpd::start_in`] over HTTPS, with a new self-signed certificate for 127.0.0.1
    /// ([`Lighttpd::certificate`]; URLs from [`Lighttpd::https_url`]).
    pub fn start_tls_in(base: impl AsRef<Path>, user: &str, password: &str) -> Lighttpd {
        Self::start(base, user, password, true, 0)
    }

    /// The self-signed certificate of an HTTPS server.
    pub fn certificate(&self) -> &Path {
        self.tls.as_deref().expect("an HTTPS server")
    }

    /// `https://127.0.0.1:PORT/NAME.git`.
    pub fn https_url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}.git", self.port)
    }

    fn start(
        base: impl AsRef<Path>,
        user: &str,
        password: &str,
        tls: bool,
        max_request_kib: u32,
    ) -> Lighttpd {
        require("git", "the lighttpd test server runs git http-backend");
        if !Path::new(LIGHTTPD).is_file() {
            panic!(
                "{LIGHTTPD} is required by the HTTP remote tests but does not exist: \
                 install it (apt-get install lighttpd) and try again"
            );
        }
        let base = base.as_ref().to_path_buf();
        std::fs::create_dir_all(&base).expect("create the lighttpd base dir");
        let dir = base.with_extension("lighttpd");
        std::fs::create_dir_all(&dir).expect("create the lighttpd dir");
        std::fs::write(dir.join("users"), format!("{user}:{password}\n"))
            .expect("write the lighttpd user file");
        let tls = tls.then(|| self_signed_certificate(&dir));
        // The port is free a moment before lighttpd binds it; if someone takes it, try another.
        let mut last = String::new();
        for _ in 0..5 {
            let mut server = Lighttpd {
                base: base.clone(),
                dir: dir.clone(),
                port: free_port(),
                child: None,
                tls: tls.clone(),
                max_request_kib,
            };
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start lighttpd: {last}");
    }

    fn config(&self) -> String {
        let backend = git_http_backend();
        let (base, dir) = (self.base.display(), self.dir.display());
        let tls = match &self.tls {
            Some(_) => format!(
                "server.modules += ( \"mod_openssl\" )\nssl.engine = \"enable\"\n\
                 ssl.pemfile = \"{}\"\n",
                self.dir.join("server.pem").display()
            ),
            None => String::new(),
        };
        format!(
            r#"server.modules = ( "mod_alias", "mod_setenv", "mod_auth", "mod_authn_file",
                    "mod_cgi", "mod_accesslog" )
{tls}server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{base}"
server.errorlog = "{dir}/error.log"
server.pid-file = "{dir}/lighttpd.pid"
server.max-request-size = {max}
accesslog.filename = "{dir}/access.log"
accesslog.format = "%m %U %>s %u %I %O"
debug.log-request-header = "enable"
debug.log-response-header = "enable"
auth.backend = "plain"
auth.backend.plain.userfile = "{dir}/users"
auth.require = ( "" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
alias.url = ( "/" => "{backend}/" )
cgi.assign = ( "" => "" )
setenv.set-environment = (
  "GIT_PROJECT_ROOT" => "{base}",
  "GIT_HTTP_EXPORT_ALL" => "1",
  "GIT_CONFIG_GLOBAL" => "/dev/null",
  "GIT_CONFIG_NOSYSTEM" => "1",
  "HOME" => "{base}"
)
"#,
            port = self.port,
            backend = backend.display(),
            max = self.max_request_kib,
        )
    }

    fn try_start(&mut self) -> Result<(), String> {
        let conf = self.dir.join("lighttpd.conf");
        std::fs::write(&conf, self.config()).expect("write the lighttpd config");
        let stderr = std::fs::File::create(self.dir.join("stderr.log"))
            .expect("create lighttpd's stderr log");
        let mut cmd = Command::new(LIGHTTPD);
        hermetic(&mut cmd, &self.base);
        cmd.arg("-D")
            .arg("-f")
            .arg(&conf)
            .current_dir(&self.base)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().unwrap())
            .stderr(stderr);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {LIGHTTPD}: {e}"))?;
        self.child = Some(child);
        let logs = || {
            let (stderr, errors) = (self.dir.join("stderr.log"), self.dir.join("error.log"));
            format!("{}\n{}", read_log(&stderr), read_log(&errors))
        };
        super::wait_until_serving(&mut self.child, self.port, "lighttpd", logs)
    }

    /// Every request so far, in the order lighttpd finished reading their headers.
    pub fn requests(&self) -> Vec<Request> {
        parse_header_log(&read_log(&self.dir.join("error.log")))
    }

    /// The decoded `user:password` of every request's Authorization header (None: no header).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .map(|r| r.authorization)
            .collect()
    }

    /// The access log, once it holds a line for every request seen so far. lighttpd buffers it
    /// and writes it out about once a second, so this waits (up to 5 s) for it to catch up.
    pub fn log(&self) -> String {
        let path = self.dir.join("access.log");
        let expected = self.requests().len();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.lines().count() >= expected || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The access log, parsed.
    pub fn accesses(&self) -> Vec<Access> {
        self.log()
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                Some(Access {
                    method: f.first()?.to_string(),
                    path: f.get(1)?.to_string(),
                    status: f.get(2)?.parse().ok()?,
                    user: f.get(3)?.to_string(),
                    bytes_in: f.get(4)?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The requests and the access log as written so far, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::from("--- requests: status, authorization, request line\n");
        for r in self.requests() {
            let status = r.status.map_or("-".into(), |s| s.to_string());
            let auth = r.authorization.as_deref().unwrap_or("-");
            out.push_str(&format!("{status} {auth:?} {}\n", r.line));
        }
        out.push_str("--- access log (lighttpd writes it out about once a second)\n");
        out.push_str(&read_log(&self.dir.join("access.log")));
        out
    }
}

served!(Lighttpd, "http");

impl Drop for Lighttpd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// lighttpd's `debug.log-request-header` and `debug.log-response-header` lines,
/// `DATE: (FILE.c.N) fd:F rqst: TEXT` (or `resp: TEXT`), one per header line, a header block
/// ending with an empty TEXT. Requests on different connections (fd) may interleave; on one
/// connection a response follows its request.
fn parse_header_log(log: &str) -> Vec<Request> {
    let mut open: Vec<(String, Request)> = Vec::new();
    let mut awaiting: Vec<(String, usize)> = Vec::new();
    let mut done: Vec<Request> = Vec::new();
    for line in log.lines() {
        let Some((head, kind, text)) = [" rqst:", " resp:"].iter().find_map(|kind| {
            let (head, text) = line.split_once(kind)?;
            Some((head, *kind, text.strip_prefix(' ').unwrap_or(text)))
        }) else {
            continue;
        };
        let fd = head.rsplit(' ').next().unwrap_or_default().to_string();
        let text = text.trim_end_matches('\r');
        if kind == " resp:" {
            if let Some(at) = awaiting.iter().position(|(f, _)| *f == fd)
                && let Some(code) = text.strip_prefix("HTTP/")
            {
                let (_, index) = awaiting.remove(at);
                done[index].status = code.split(' ').nth(1).and_then(|c| c.parse().ok());
            }
            continue;
        }
        match open.iter().position(|(f, _)| *f == fd) {
            None if !text.is_empty() => open.push((
                fd,
                Request {
                    line: text.to_string(),
                    ..Request::default()
                },
            )),
            None => {}
            Some(at) if text.is_empty() => {
                awaiting.retain(|(f, _)| *f != fd);
                awaiting.push((fd, done.len()));
                done.push(open.remove(at).1);
            }
            Some(at) => {
                let request = &mut open[at].1;
                match text.split_once(':') {
                    Some((name, value)) if name.trim().eq_ignore_ascii_case("authorization") => {
                        request.authorization = Some(decode_authorization(value));
                    }
                    Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                        request.content_length = value.trim().parse().ok();
                    }
                    _ => {}
                }
            }
        }
    }
    done
}

// ------------------------------------------------------------------------------------------------

/// dulwich's smart-HTTP server (`dulwich.web`) over the bare repositories in a directory, with
/// receive-pack. Binds port 0 and prints the port; exits when its stdin closes.
const DULWICH_PY: &str = r#####"
import logging, os, sys, threading
from socketserver import ThreadingMixIn
from dulwich.server import FileSystemBackend
from dulwich.web import (make_wsgi_chain, make_server, WSGIRequestHandlerLogger,
                         WSGIServerLogger)

root, log_path = sys.argv[1:3]
logging.basicConfig(filename=log_path, level=logging.INFO,
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")

class Server(ThreadingMixIn, WSGIServerLogger):
    daemon_threads = True

class Backend(FileSystemBackend):
    # Request paths are absolute (`/NAME.git`): serve them relative to the root.
    def open_repository(self, path):
        if isinstance(path, bytes):
            path = path.decode("utf-8")
        return super().open_repository(path.lstrip("/"))

app = make_wsgi_chain(Backend(root))
server = make_server("127.0.0.1", 0, app, handler_class=WSGIRequestHandlerLogger,
                     server_class=Server)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
# Exit as soon as whoever started us goes away (stdin closes).
sys.stdin.buffer.read()
os._exit(0)
"#####;

/// dulwich's HTTP git server on `http://127.0.0.1:PORT/NAME.git`, no auth.
pub struct DulwichHttp {
    base: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl DulwichHttp {
    /// Serve the repositories under `base` (created if missing).
    pub fn start_in(base: impl AsRef<Path>) -> DulwichHttp {
        require("python3", "the dulwich test server is a Python script");
        let base = base.as_ref().to_path_buf();
        std::fs::create_dir_all(&base).expect("create the dulwich server's base dir");
        let script = base.with_extension("dulwich.py");
        std::fs::write(&script, DULWICH_PY).expect("write the dulwich server script");
        let log = base.with_extension("dulwich.log");
        let args = [base.as_os_str(), log.as_os_str()];
        let what = "dulwich server (is dulwich installed? apt-get install python3-dulwich)";
        let (child, stdin, port) = super::spawn_python_server(&base, &script, &args, &log, what);
        DulwichHttp {
            base,
            port,
            log,
            child: Some(child),
            stdin,
        }
    }

    /// dulwich's log so far (requests and tracebacks).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

served!(DulwichHttp, "http");

impl Drop for DulwichHttp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        kill(&mut self.child);
    }
}

// ------------------------------------------------------------------------------------------------

/// An HTTP server (a thread of the test) that answers every request `401` with
/// `WWW-Authenticate: Basic realm="x"` and records each request's Authorization header.
pub struct CredLogger {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl CredLogger {
    pub fn start() -> CredLogger {
        CredLogger::start_redirecting(None)
    }

    /// A logger that answers every request `302`, to the same path under `base`
    /// (`http://127.0.0.1:PORT`), instead of `401`.
    pub fn redirecting_to(base: &str) -> CredLogger {
        CredLogger::start_redirecting(Some(base.to_string()))
    }

    fn start_redirecting(redirect: Option<String>) -> CredLogger {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = seen2.clone();
                let redirect = redirect.clone();
                std::thread::spawn(move || refuse(stream, &seen, redirect.as_deref()));
            }
        });
        CredLogger { port, seen, stop }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/NAME.git`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// The decoded `user:password` of every request's Authorization header (None: no header).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.requests()
            .into_iter()
            .map(|r| r.authorization)
            .collect()
    }
}

impl Drop for CredLogger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Read one request's head (and body, if it has a length), record it, answer 401 (or 302 to
/// `redirect`) and close.
fn refuse(mut stream: TcpStream, seen: &Mutex<Vec<Request>>, redirect: Option<&str>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request: Option<Request> = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        match request.as_mut() {
            None => {
                request = Some(Request {
                    line: line.to_string(),
                    status: Some(401),
                    ..Request::default()
                })
            }
            Some(r) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("authorization") {
                        r.authorization = Some(decode_authorization(value));
                    } else if name.trim().eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
    }
    let Some(request) = request else { return };
    let path = request.line.split(' ').nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(request);
    let _ = std::io::copy(
        &mut reader.by_ref().take(length as u64),
        &mut std::io::sink(),
    );
    if let Some(base) = redirect {
        let _ = write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {base}{path}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        let _ = stream.flush();
        return;
    }
    let body = "authentication required\n";
    let _ = write!(
        stream,
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_log_is_parsed_per_connection() {
        let log = "\
2026-12-04 05:12:56: (server.c.1704) server started (lighttpd/1.4.69)
2026-12-04 05:12:58: (connections.c.770) fd:11 rqst: GET /x.git/info/refs HTTP/1.1
2026-12-04 05:12:58: (connections.c.770) fd:12 rqst: POST /x.git/git-receive-pack HTTP/1.1
2026-12-04 05:12:58: (connections.c.770) fd:11 rqst: Host: 127.0.0.1:1
2026-12-04 05:12:58: (connections.c.770) fd:12 rqst: authorization: Basic YmFja3VwOnB3
2026-12-04 05:12:58: (connections.c.770) fd:12 rqst: Content-Length: 358
2026-12-04 05:12:58: (connections.c.770) fd:11 rqst: 
2026-12-04 05:12:58: (connections.c.770) fd:12 rqst: 
2026-12-04 05:12:58: (response.c.179) fd:12 resp: HTTP/1.1 200 OK
2026-12-04 05:12:58: (response.c.179) fd:12 resp: Content-Length: 3
2026-12-04 05:12:58: (response.c.179) fd:12 resp: 
2026-12-04 05:12:58: (response.c.179) fd:11 resp: HTTP/1.1 401 Unauthorized
2026-12-04 05:12:58: (response.c.179) fd:11 resp: 
";
        let requests = parse_header_log(log);
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].line, "GET /x.git/info/refs HTTP/1.1");
        assert_eq!(requests[0].authorization, None);
        assert_eq!(requests[1].authorization.as_deref(), Some("backup:pw"));
        assert_eq!(
            (requests[0].status, requests[1].status),
            (Some(401), Some(200))
        );
        assert_eq!(decode_authorization(" Basic dTo="), "u:");
    }
}
