//! A private OpenSSH server on 127.0.0.1 for the SSH remote tests (`Sshd`), and the client side
//! that real OpenSSH reads: a temporary home (`SshHome`) and an agent (`SshAgent`).
//!
//! `Sshd` runs `/usr/sbin/sshd -D` with its own host key and config in a test directory: public
//! key authentication only, against an `authorized_keys` file there, for the current user (CI runs
//! as root, hence `PermitRootLogin prohibit-password`). Server-side git gets
//! `GIT_CONFIG_GLOBAL=/dev/null` through `SetEnv`, so it never reads the real `~/.gitconfig`.
//!
//! OpenSSH ignores `$HOME`: it takes `~` from `getpwuid()`. `SshHome` therefore runs the client
//! under nss_wrapper (`LD_PRELOAD`), with a passwd file that maps the current user to the test's
//! home, so `~/.ssh/config`, `~/.ssh/known_hosts` and `~/.ssh/id_*` are the test's files and the
//! real `~/.ssh` is never read or touched. Every process started here is killed by PID on Drop.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{START_TIMEOUT, accepts, free_port, hermetic, init_bare, kill, read_log, run_ok};

const SSHD: &str = "/usr/sbin/sshd";

/// Panic with a clear message unless the OpenSSH server and client tools are installed.
fn require_openssh() {
    if !Path::new(SSHD).is_file() {
        panic!(
            "{SSHD} is required by the SSH remote tests but does not exist: \
             apt-get install openssh-server openssh-client"
        );
    }
    for tool in ["ssh", "ssh-keygen", "ssh-agent", "ssh-add"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            panic!(
                "`{tool}` is required by the SSH remote tests but is not on PATH: \
                 apt-get install openssh-client"
            );
        }
    }
}

/// A hermetic command for one of the OpenSSH tools (HOME = `dir`; the real ~/.ssh is not used
/// by the tools run this way: ssh-keygen/ssh-add get explicit paths).
fn tool(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    hermetic(&mut cmd, dir);
    cmd.current_dir(dir);
    cmd
}

/// `id FLAG` of the current process, trimmed.
fn id(flag: &str) -> String {
    let mut cmd = Command::new("id");
    cmd.arg(flag);
    run_ok(cmd).trim().to_string()
}

/// The login name of the current user (the user tests log in as).
pub fn current_user() -> String {
    id("-un")
}

/// `ssh-keygen -t ed25519` at `path` (no passphrase when `passphrase` is empty), mode 0600.
pub fn keygen(path: &Path, passphrase: &str, comment: &str) -> PathBuf {
    let dir = path.parent().expect("a key path has a parent");
    std::fs::create_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let mut cmd = tool("ssh-keygen", dir);
    cmd.args(["-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f"])
        .arg(path);
    run_ok(cmd);
    chmod(path, 0o600);
    path.to_path_buf()
}

/// Protect an existing unencrypted key with `passphrase` (`ssh-keygen -p`).
pub fn encrypt_key(path: &Path, passphrase: &str) {
    let mut cmd = tool("ssh-keygen", path.parent().unwrap());
    cmd.args(["-q", "-p", "-P", "", "-N", passphrase, "-f"])
        .arg(path);
    run_ok(cmd);
}

/// The public half of a key made by `keygen`.
pub fn pubkey(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

// ------------------------------------------------------------------------------------------------

/// `sshd -D` on 127.0.0.1:PORT, serving bare repositories under `DIR/srv` by absolute path.
pub struct Sshd {
    dir: PathBuf,
    port: u16,
    log: PathBuf,
    host_pub: String,
    child: Option<Child>,
}

impl Sshd {
    /// Start a server whose files (host key, config, authorized_keys, log, pid) live in `dir`.
    pub fn start_in(dir: impl AsRef<Path>) -> Sshd {
        require_openssh();
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(dir.join("srv")).expect("create the sshd dir");
        let host_key = keygen(&dir.join("ssh_host_ed25519_key"), "", "sqlgit-test-host");
        let host_pub = std::fs::read_to_string(pubkey(&host_key)).unwrap();
        let host_pub = host_pub.split_whitespace().take(2).collect::<Vec<_>>();
        std::fs::write(dir.join("authorized_keys"), "").unwrap();
        ensure_privsep_dir();
        let mut last = String::new();
        for _ in 0..5 {
            let mut sshd = Sshd {
                dir: dir.clone(),
                port: free_port(),
                log: dir.join("sshd.log"),
                host_pub: host_pub.join(" "),
                child: None,
            };
            match sshd.try_start(&host_key) {
                Ok(()) => return sshd,
                Err(e) => last = e,
            }
        }
        panic!("could not start sshd: {last}");
    }

    fn config(&self, host_key: &Path) -> String {
        let dir = self.dir.display();
        format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             HostKey {key}\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             StrictModes no\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PermitUserRC no\n\
             PermitUserEnvironment no\n\
             PidFile {dir}/sshd.pid\n\
             LogLevel VERBOSE\n\
             SetEnv GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1\n",
            port = self.port,
            key = host_key.display(),
        )
    }

    fn try_start(&mut self, host_key: &Path) -> Result<(), String> {
        let config = self.dir.join("sshd_config");
        std::fs::write(&config, self.config(host_key)).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the sshd log");
        let mut cmd = Command::new(SSHD);
        hermetic(&mut cmd, &self.dir);
        cmd.current_dir(&self.dir)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().map_err(|e| format!("cannot run {SSHD}: {e}"))?;
        self.child = Some(child);
        // Ready when *this* sshd says it listens (another process may have taken the port
        // between free_port() and sshd's bind, and would accept connections too).
        let listening = format!("Server listening on 127.0.0.1 port {}.", self.port);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let exited = self.child.as_mut().unwrap().try_wait();
            let pid = self.child.as_ref().unwrap().id();
            if matches!(exited, Ok(None))
                && self.log().contains(&listening)
                && super::listens(pid, self.port)
                && accepts(self.port)
            {
                return Ok(());
            }
            if let Ok(Some(status)) = exited {
                self.child = None;
                return Err(format!(
                    "sshd on port {} exited with {status}; log:\n{}",
                    self.port,
                    read_log(&self.log)
                ));
            }
            if Instant::now() > deadline {
                kill(&mut self.child);
                return Err(format!(
                    "sshd did not accept connections on 127.0.0.1:{} within {START_TIMEOUT:?}; \
                     log:\n{}",
                    self.port,
                    read_log(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user to log in as: the current one.
    pub fn user(&self) -> String {
        current_user()
    }

    /// Let the key whose public half is at `pubkey_path` log in.
    pub fn authorize(&self, pubkey_path: &Path) {
        let key = std::fs::read_to_string(pubkey_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", pubkey_path.display()));
        let path = self.dir.join("authorized_keys");
        let mut keys = std::fs::read_to_string(&path).unwrap_or_default();
        keys.push_str(key.trim());
        keys.push('\n');
        std::fs::write(&path, keys).unwrap();
    }

    /// The known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_pub)
    }

    /// `git init --bare -b main DIR/srv/NAME.git`; returns its (absolute) path.
    pub fn create_bare(&self, name: &str) -> PathBuf {
        init_bare(&self.dir.join("srv"), name)
    }

    /// Where `NAME.git` lives (absolute: the path part of its ssh URL).
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.dir.join("srv").join(format!("{name}.git"))
    }

    /// `ssh://[USER@]127.0.0.1:PORT/ABS/PATH/NAME.git`.
    pub fn url(&self, user: Option<&str>, name: &str) -> String {
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        format!(
            "ssh://{user}127.0.0.1:{}{}",
            self.port,
            self.repo_path(name).display()
        )
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        read_log(&self.log)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// sshd (privilege separation) needs /run/sshd; as root, create it when it is missing.
fn ensure_privsep_dir() {
    let privsep = Path::new("/run/sshd");
    if !privsep.is_dir() && id("-u") == "0" {
        std::fs::create_dir_all(privsep).expect("create /run/sshd for sshd");
        chmod(privsep, 0o755);
    }
}

// ------------------------------------------------------------------------------------------------

/// A home directory that OpenSSH really uses as `~` (via nss_wrapper), for commands run with
/// `vars()`. Files are written with the modes ssh insists on (dirs 0700, files 0600).
pub struct SshHome {
    home: PathBuf,
    vars: Vec<(String, String)>,
}

impl SshHome {
    /// The test's HOME as ssh's `~`: the TestEnv already runs every command under nss_wrapper
    /// with HOME as the user's home directory; the SSH tests cannot work without it.
    pub fn new(env: &crate::env::TestEnv) -> SshHome {
        let vars = env.nss_vars().unwrap_or_else(|| {
            panic!(
                "nss_wrapper (libnss_wrapper.so) is required by the SSH remote tests, so that \
                 ssh reads a temporary ~/.ssh: apt-get install libnss-wrapper"
            )
        });
        let home = env.home().to_path_buf();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        chmod(&home, 0o700);
        chmod(&home.join(".ssh"), 0o700);
        SshHome { home, vars }
    }

    /// `~`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `~/.ssh/NAME`.
    pub fn ssh_path(&self, name: &str) -> PathBuf {
        self.home.join(".ssh").join(name)
    }

    /// Write `~/.ssh/NAME` (mode 0600).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.ssh_path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chmod(&path, 0o600);
        path
    }

    /// Write `~/.ssh/config`.
    pub fn config(&self, text: &str) -> PathBuf {
        self.write("config", text)
    }

    /// Write `~/.ssh/known_hosts` (one line per entry).
    pub fn known_hosts(&self, lines: &[String]) -> PathBuf {
        let mut text = lines.join("\n");
        text.push('\n');
        self.write("known_hosts", &text)
    }

    /// A new ed25519 key at `~/.ssh/NAME` (unencrypted).
    pub fn keygen(&self, name: &str) -> PathBuf {
        keygen(&self.ssh_path(name), "", name)
    }

    /// The variables that make ssh (and git, and sqlgit) see this home through getpwuid().
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars.clone()
    }
}

// ------------------------------------------------------------------------------------------------

/// `ssh-agent -D -a SOCK` (foreground), killed by PID on Drop.
pub struct SshAgent {
    sock: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl SshAgent {
    /// Start an agent listening on `DIR/agent.sock`.
    pub fn start_in(dir: &Path) -> SshAgent {
        require_openssh();
        std::fs::create_dir_all(dir).unwrap();
        let sock = dir.join("agent.sock");
        let _ = std::fs::remove_file(&sock);
        let child = tool("ssh-agent", dir)
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run ssh-agent: {e}"));
        let mut agent = SshAgent {
            sock,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        // The socket file appears at bind(), a moment before listen(): wait until it connects.
        let deadline = Instant::now() + START_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(&agent.sock).is_err() {
            if let Ok(Some(status)) = agent.child.as_mut().unwrap().try_wait() {
                panic!("ssh-agent exited with {status} before creating its socket");
            }
            if Instant::now() > deadline {
                kill(&mut agent.child);
                panic!(
                    "ssh-agent does not accept on {} in time",
                    agent.sock.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// `SSH_AUTH_SOCK` for commands that should use this agent.
    pub fn sock(&self) -> String {
        self.sock.display().to_string()
    }

    /// `ssh-add KEY` (the key file must not be encrypted at this point).
    pub fn add(&self, key: &Path) {
        let mut cmd = tool("ssh-add", &self.dir);
        cmd.env("SSH_AUTH_SOCK", &self.sock).arg("-q").arg(key);
        run_ok(cmd);
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
