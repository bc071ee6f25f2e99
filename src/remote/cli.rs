//! The `git` transport: network operations through the installed `git` program, as jj and cargo
//! (`net.git-fetch-with-cli`) do, so `~/.ssh/config`, `GIT_SSH_COMMAND` / `core.sshCommand`,
//! ssh-agent, OpenSSH's known_hosts, credential helpers, HTTP proxies and thin packs behave
//! exactly as with `git push`.
//!
//! Nothing may wait for a person (sqlgit runs from cron): stdin is null, the process runs in a
//! session of its own (no controlling terminal, so neither git nor ssh can open `/dev/tty`),
//! `GIT_TERMINAL_PROMPT=0`, no askpass program, and ssh gets `-o BatchMode=yes` unless the user
//! chose their own ssh command. Each subprocess is bounded by the push's deadline: past it, its
//! whole process group (git, ssh, git-remote-https) is killed.
//!
//! Credentials given to sqlgit (a password in the URL, `SQLGIT_HTTPS_TOKEN`) reach git through a
//! credential helper given with `-c` for that URL's scheme, host and port only; the helper reads
//! them from its environment, so no secret is ever on a command line or in a file.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use git2::Oid;

use super::{Client, DIVERGED, TOKEN_ENV, TOKEN_USER_ENV, redact, url_user};

/// Private variables through which the credential helper gets what sqlgit was given.
const CRED_USER_ENV: &str = "SQLGIT_GIT_CREDENTIAL_USER";
const CRED_PASSWORD_ENV: &str = "SQLGIT_GIT_CREDENTIAL_PASSWORD";
/// The helper: answers `get` with the user and password from its environment, ignores
/// `store` and `erase`.
const HELPER: &str = "!f() { test \"$1\" = get || return 0; \
     printf 'username=%s\\npassword=%s\\n' \"$SQLGIT_GIT_CREDENTIAL_USER\" \"$SQLGIT_GIT_CREDENTIAL_PASSWORD\"; }; f";
/// Environment variables that would point git at another repository than the one given.
const REPO_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
];

/// The `git` program on PATH, if there is one.
pub fn git_program() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("git"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

pub struct GitCli {
    program: PathBuf,
    git_dir: PathBuf,
    ssh_key: Option<PathBuf>,
    timeout: Duration,
    /// One deadline for everything this push runs.
    deadline: Instant,
}

/// What a finished git run left.
struct Finished {
    success: bool,
    stdout: String,
    stderr: String,
}

impl GitCli {
    pub fn new(
        program: PathBuf,
        git_dir: PathBuf,
        ssh_key: Option<PathBuf>,
        timeout: Duration,
    ) -> GitCli {
        GitCli {
            program,
            git_dir,
            ssh_key,
            timeout,
            deadline: Instant::now() + timeout,
        }
    }

    /// `git --git-dir DIR [-c …] ARGS` with the non-interactive environment.
    fn command(&self, url: &str, args: &[&str]) -> Result<Command> {
        self.command_in(&self.git_dir, url, args)
    }

    /// [`GitCli::command`] with another `--git-dir` (a [`PushView`]).
    fn command_in(&self, git_dir: &Path, url: &str, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--git-dir").arg(git_dir);
        for var in REPO_VARS {
            cmd.env_remove(var);
        }
        cmd.env("LC_ALL", "C")
            .env_remove("LANGUAGE")
            .env("GIT_TERMINAL_PROMPT", "0")
            // Set but empty: git uses no askpass program (not even core.askPass/SSH_ASKPASS).
            .env("GIT_ASKPASS", "")
            .env_remove("SSH_ASKPASS")
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env("GCM_INTERACTIVE", "never")
            .env_remove(CRED_USER_ENV)
            .env_remove(CRED_PASSWORD_ENV)
            // The token reaches only our credential helper, for the remote's own host (below):
            // not a local remote's hooks, not ssh or its ProxyCommand.
            .env_remove(TOKEN_ENV)
            .env_remove(TOKEN_USER_ENV);
        if is_ssh(url)
            && let Some(ssh) = self.ssh_command()?
        {
            cmd.env("GIT_SSH_COMMAND", ssh);
        }
        if let Some((base, user, password)) = http_credentials(url) {
            // An empty helper first: only ours answers for this host (and a refused password
            // is not erased from, or stored into, the user's helpers).
            cmd.arg("-c")
                .arg(format!("credential.{base}.helper="))
                .arg("-c")
                .arg(format!("credential.{base}.helper={HELPER}"))
                .env(CRED_USER_ENV, user)
                .env(CRED_PASSWORD_ENV, password);
        }
        cmd.args(args);
        Ok(cmd)
    }

    /// The ssh command to set in GIT_SSH_COMMAND, or None to leave git's choice alone.
    /// Default `ssh -o BatchMode=yes` (never prompt); the user's own command (GIT_SSH_COMMAND,
    /// core.sshCommand, GIT_SSH) is kept as it is — with `-i KEY` added for `--ssh-key`.
    fn ssh_command(&self) -> Result<Option<String>> {
        let key = self.key_option();
        Ok(match self.user_ssh()? {
            UserSsh::Command(user) => key.map(|k| format!("{user}{k}")),
            UserSsh::Program => None,
            UserSsh::Default => Some(format!("ssh -o BatchMode=yes{}", key.unwrap_or_default())),
        })
    }

    /// ` -i 'KEY'` for `--ssh-key`.
    fn key_option(&self) -> Option<String> {
        self.ssh_key
            .as_ref()
            .map(|k| format!(" -i {}", shell_quote(&k.display().to_string())))
    }

    /// What the user chose for ssh, in git's order: GIT_SSH_COMMAND, core.sshCommand, GIT_SSH.
    fn user_ssh(&self) -> Result<UserSsh> {
        let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
        if let Some(user) = set(std::env::var_os("GIT_SSH_COMMAND")) {
            return Ok(UserSsh::Command(user.to_string_lossy().into_owned()));
        }
        let configured = self.run_bounded(
            Command::new(&self.program)
                .arg("--git-dir")
                .arg(&self.git_dir)
                .args(["config", "--get", "core.sshCommand"]),
        )?;
        let configured = configured.stdout.trim().to_string();
        if !configured.is_empty() {
            return Ok(UserSsh::Command(configured));
        }
        if set(std::env::var_os("GIT_SSH")).is_some() {
            return Ok(UserSsh::Program);
        }
        Ok(UserSsh::Default)
    }

    /// Run `git ARGS` for `url` within the deadline.
    fn git(&self, url: &str, args: &[&str]) -> Result<Finished> {
        let mut cmd = self.command(url, args)?;
        self.run_bounded(&mut cmd)
    }

    /// Run a command in a session of its own, stdin null, output collected; kill its process
    /// group at the deadline.
    fn run_bounded(&self, cmd: &mut Command) -> Result<Finished> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid, prctl and getppid are async-signal-safe; nothing else runs between
        // fork and exec.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // A sqlgit killed mid-push takes its git with it: a push left running outside
                // the repository lock would race the next run's push to the same ref.
                #[cfg(target_os = "linux")]
                {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        return Err(std::io::Error::other("sqlgit exited"));
                    }
                }
                #[cfg(not(target_os = "linux"))]
                let _ = parent;
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot run {}: {e}", self.program.display()))?;
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = mpsc::channel();
        for (which, stream) in [
            (
                0,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
            (
                1,
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = stream.by_ref().take(1 << 20).read_to_end(&mut buf);
                // Drain the rest unread, so the writer never blocks on a full pipe.
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
                let _ = tx.send((which, buf));
            });
        }
        drop(tx);
        let status = loop {
            match child.try_wait()? {
                Some(status) => break status,
                None if Instant::now() >= self.deadline => {
                    // SAFETY: plain syscalls on the group this child leads.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the remote did not answer within {} (--push-timeout): gave up and \
                         stopped git",
                        humantime::format_duration(self.timeout)
                    );
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        // Output: whatever arrived; a grandchild that outlived git (an ssh control master)
        // may hold the pipes open, so do not wait for it long.
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let grace = Instant::now() + Duration::from_secs(2);
        for _ in 0..2 {
            let left = grace.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((0, b)) => stdout = b,
                Ok((_, b)) => stderr = b,
                Err(_) => break,
            }
        }
        Ok(Finished {
            success: status.success(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// A failed git run as one line: what it means, with git's last meaningful words.
    fn failure(&self, what: &str, url: &str, stderr: &str) -> anyhow::Error {
        let said = last_meaningful(stderr);
        let lower = stderr.to_ascii_lowercase();
        let with = |cause: &str| match &said {
            Some(said) => anyhow!("{cause} (git: {said})"),
            None => anyhow!("{cause}"),
        };
        if lower.contains("terminal prompts disabled")
            || lower.contains("could not read username")
            || lower.contains("could not read password")
        {
            return with(&format!(
                "authentication required and no credentials available: sqlgit never prompts \
                 (set {TOKEN_ENV}, put them in the URL, or configure a git credential helper)"
            ));
        }
        if lower.contains("authentication failed")
            || lower.contains("http 401")
            || lower.contains("http 403")
        {
            return with("authentication failed: the remote refused the credentials");
        }
        if lower.contains("permission denied (publickey")
            || lower.contains("permission denied, please try again")
        {
            if let Some(key) = self.passphrase_key(url) {
                return with(&format!(
                    "authentication failed: the SSH key {} needs a passphrase, and sqlgit never \
                     prompts for one: load it into ssh-agent (ssh-add) and give the job \
                     SSH_AUTH_SOCK, or use a key without a passphrase",
                    key.display()
                ));
            }
            return with("authentication failed: the SSH server refused every key offered");
        }
        if lower.contains("remote host identification has changed") {
            return with(
                "the SSH host key has CHANGED since it was put in known_hosts: the server was \
                 rebuilt, or someone is in the middle; check the new key's fingerprint with the \
                 server's administrator before replacing the old one (ssh-keygen -R HOST)",
            );
        }
        if lower.contains("host key verification failed") {
            return with(
                "the SSH host key is not in known_hosts (sqlgit never asks: check its \
                 fingerprint, then add it with one interactive ssh login)",
            );
        }
        if lower.contains("protocol error: bad line length character") {
            return with(
                "the server's side of the SSH connection printed text where git expected its \
                 protocol: the account's login shell refuses commands (nologin: \"This account is \
                 currently not available\") or prints a message (a profile that echoes); it needs \
                 a shell that runs git quietly (e.g. git-shell)",
            );
        }
        match said {
            Some(said) => anyhow!("git {what} failed: {said}"),
            None => anyhow!("git {what} failed for {}", redact(url)),
        }
    }

    /// A key ssh would offer for `url` that is encrypted (and so useless without an agent
    /// holding it): `--ssh-key`, the IdentityFile entries ssh resolves for that host, or the
    /// default key names when ssh cannot be asked.
    fn passphrase_key(&self, url: &str) -> Option<PathBuf> {
        let mut keys: Vec<PathBuf> = self.ssh_key.iter().cloned().collect();
        let homes: Vec<PathBuf> = [passwd_home(), std::env::var_os("HOME").map(PathBuf::from)]
            .into_iter()
            .flatten()
            .collect();
        match self.ssh_identity_files(url) {
            Some(files) => {
                let home = homes.first();
                keys.extend(files.iter().map(|f| expand_home(f, home)));
            }
            None => {
                for home in &homes {
                    let ssh = home.join(".ssh");
                    for name in DEFAULT_KEYS {
                        keys.push(ssh.join(name));
                    }
                }
            }
        }
        keys.into_iter().find(|k| key_is_encrypted(k))
    }

    /// The `identityfile` lines of `ssh -G HOST` (unexpanded), run as git would run ssh: the
    /// same environment and the same ssh command (so `-F FILE` and `-i KEY` count). None when
    /// the command is not OpenSSH's `ssh` (GIT_SSH, a wrapper) or ssh -G fails.
    fn ssh_identity_files(&self, url: &str) -> Option<Vec<String>> {
        let key = self.key_option().unwrap_or_default();
        let command = match self.user_ssh().ok()? {
            UserSsh::Command(user) => format!("{user}{key}"),
            UserSsh::Program => return None,
            UserSsh::Default => format!("ssh -o BatchMode=yes{key}"),
        };
        let program = command.split_whitespace().next()?;
        if program != "ssh" && !program.ends_with("/ssh") {
            return None;
        }
        let (user, host, port) = ssh_destination(url)?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{command} \"$@\""))
            .arg("sqlgit-ssh")
            .arg("-G");
        if let Some(port) = port {
            cmd.args(["-p", &port]);
        }
        if let Some(user) = user {
            cmd.args(["-l", &user]);
        }
        cmd.arg("--").arg(host);
        let done = self.run_bounded(&mut cmd).ok()?;
        if !done.success {
            return None;
        }
        let files = done
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("identityfile "))
            .map(|f| f.trim().to_string())
            .collect();
        Some(files)
    }
}

/// What the user chose for ssh (see `GitCli::user_ssh`).
enum UserSsh {
    /// GIT_SSH_COMMAND or core.sshCommand, as given (run by git through the shell).
    Command(String),
    /// GIT_SSH: a program git runs with its own arguments; left alone.
    Program,
    /// Nothing: sqlgit's `ssh -o BatchMode=yes`.
    Default,
}

/// The key names OpenSSH tries in `~/.ssh` when nothing else is configured.
const DEFAULT_KEYS: [&str; 5] = [
    "id_rsa",
    "id_ecdsa",
    "id_ecdsa_sk",
    "id_ed25519",
    "id_ed25519_sk",
];

/// The current user's home as OpenSSH sees it: getpwuid(getuid()), not `$HOME`.
fn passwd_home() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter; buf outlives its use below.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the sizes given.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_dir is a NUL-terminated string inside buf.
    let dir = unsafe { std::ffi::CStr::from_ptr(pwd.pw_dir) };
    let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// An IdentityFile as ssh -G prints it, with `~` and `%d` (the home directory) expanded.
fn expand_home(file: &str, home: Option<&PathBuf>) -> PathBuf {
    let Some(home) = home else {
        return PathBuf::from(file);
    };
    if let Some(rest) = file.strip_prefix("~/") {
        return home.join(rest);
    }
    let home = home.display().to_string();
    PathBuf::from(file.replace("%d", &home))
}

/// (user, host, port) of an ssh URL (`ssh://[user@]host[:port]/path` or `[user@]host:path`).
fn ssh_destination(url: &str) -> Option<(Option<String>, String, Option<String>)> {
    let authority = match url.find("://") {
        Some(end) => {
            let rest = &url[end + 3..];
            &rest[..rest.find('/').unwrap_or(rest.len())]
        }
        None => &url[..url.find(':')?],
    };
    let (user, host_port) = match authority.rfind('@') {
        Some(at) => (Some(authority[..at].to_string()), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else if url.contains("://") {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    } else {
        (host_port, None)
    };
    let port = port.filter(|p| !p.is_empty()).map(str::to_string);
    (!host.is_empty() && !host.starts_with('-')).then(|| (user, host.to_string(), port))
}

impl Client for GitCli {
    fn remote_main(&self, url: &str) -> Result<Option<Oid>> {
        let bare = remote_url(url);
        let done = self.git(url, &["ls-remote", "--", &bare, "refs/heads/main"])?;
        if !done.success {
            return Err(self.failure("ls-remote", url, &done.stderr));
        }
        for line in done.stdout.lines() {
            if let Some((id, name)) = line.split_once('\t')
                && name.trim() == "refs/heads/main"
            {
                return Ok(Some(
                    Oid::from_str(id.trim())
                        .map_err(|_| anyhow!("git ls-remote: bad line {line:?}"))?,
                ));
            }
        }
        Ok(None)
    }

    fn default_branch(&self, url: &str) -> Option<Option<String>> {
        let bare = remote_url(url);
        let done = self
            .git(url, &["ls-remote", "--symref", "--", &bare, "HEAD"])
            .ok()?;
        if !done.success {
            return None;
        }
        Some(done.stdout.lines().find_map(|line| {
            let (target, name) = line.strip_prefix("ref: ")?.split_once('\t')?;
            (name.trim() == "HEAD").then(|| target.trim().to_string())
        }))
    }

    fn fetch_main(&self, url: &str, dst: &str) -> Result<Oid> {
        self.fetch_main_into(url, dst)
    }

    fn send(&self, url: &str, src: &str, force: bool, unrelated: Option<Oid>) -> Result<()> {
        let bare = remote_url(url);
        let id = git2::Repository::open_bare(&self.git_dir)?
            .revparse_single(src)?
            .peel_to_commit()?
            .id();
        // Where pruning cut history (the `shallow` file) the cut commits become parentless
        // grafts of a view that has no `shallow` file: a push from a shallow repository sends
        // `shallow` lines, which dulwich's receive-pack rejects ("Invalid ref update line"),
        // and the commits sent are the same either way.
        let mut grafts = std::fs::read_to_string(self.git_dir.join("shallow")).unwrap_or_default();
        // git leaves out only the objects of the remote's commits that are parents of what it
        // sends, so a parentless commit replacing another would carry its whole tree. A graft
        // that gives the new commit the remote's as parent, for this push only, makes the
        // remote's tree the base of a thin pack; the commit sent is still the parentless one
        // (a pack carries objects as stored). GIT_GRAFT_FILE reaches the send-pack that an
        // HTTP push runs under a remote helper (`--shallow-file` does not), and unlike marking
        // the remote's commit shallow it sends no `shallow` lines.
        if let Some(base) = unrelated {
            grafts.push_str(&format!("{id} {base}\n"));
        }
        let view = if grafts.trim().is_empty() {
            None
        } else {
            Some(PushView::create(&self.git_dir, &grafts)?)
        };
        let refspec = format!("{}{id}:refs/heads/main", if force { "+" } else { "" });
        // Only this ref, plainly: no pre-push hook (--no-verify), and none of the user's push.*
        // defaults that could add refs, prompt (gpg) or fail (signing, submodules).
        let args = [
            "-c",
            "advice.graftFileDeprecated=false",
            "push",
            "--porcelain",
            "--no-verify",
            "--no-signed",
            "--no-follow-tags",
            "--no-recurse-submodules",
            "--",
            &bare,
            &refspec,
        ];
        let mut cmd = match &view {
            Some(view) => {
                let mut cmd = self.command_in(&view.dir, url, &args)?;
                let objects = std::path::absolute(self.git_dir.join("objects"))?;
                cmd.env("GIT_OBJECT_DIRECTORY", objects)
                    .env("GIT_GRAFT_FILE", view.dir.join("grafts"));
                cmd
            }
            None => self.command(url, &args)?,
        };
        let meter = crate::progress::Progress::spinner(&format!("pushing to {}", redact(url)));
        let done = self.run_bounded(&mut cmd);
        meter.finish();
        drop(view);
        let done = done?;
        match porcelain_status(&done.stdout) {
            Some(('!', summary)) => Err(refusal(&summary, &done.stderr, force)),
            Some(_) if done.success => Ok(()),
            _ if !done.success => Err(self.failure("push", url, &done.stderr)),
            _ => bail!(
                "git push reported no status for refs/heads/main{}",
                last_meaningful(&done.stderr)
                    .map(|s| format!(" (git: {s})"))
                    .unwrap_or_default()
            ),
        }
    }
}

impl GitCli {
    /// `git fetch URL +refs/heads/main:refs/heads/main`, whole history (incremental: what the
    /// repository already has is not sent again), then the fetched id. Plain protocol only (no
    /// `--filter`, no fetch by id), so it works against any server.
    pub fn fetch_history(&self, url: &str) -> Result<Oid> {
        self.fetch_main(url, "refs/heads/main", false)?;
        let repo = git2::Repository::open_bare(&self.git_dir)?;
        repo.refname_to_id("refs/heads/main")
            .map_err(|_| anyhow!("the history remote has no main branch"))
    }

    /// `git fetch [--depth=1] URL +refs/heads/main:DST`: no tags, no FETCH_HEAD, no commit
    /// graph or gc in the repository.
    fn fetch_main(&self, url: &str, dst: &str, shallow: bool) -> Result<()> {
        let bare = remote_url(url);
        let refspec = format!("+refs/heads/main:{dst}");
        let mut args = vec![
            "-c",
            "fetch.writeCommitGraph=false",
            "-c",
            "gc.auto=0",
            "fetch",
            "--quiet",
        ];
        if shallow {
            args.push("--depth=1");
        }
        args.extend([
            "--no-tags",
            "--no-recurse-submodules",
            "--no-write-fetch-head",
            "--",
            &bare,
            &refspec,
        ]);
        let done = self.git(url, &args)?;
        if !done.success {
            return Err(self.failure("fetch", url, &done.stderr));
        }
        Ok(())
    }

    /// `git fetch --depth 1 URL +refs/heads/main:DST`, then DST's id.
    fn fetch_main_into(&self, url: &str, dst: &str) -> Result<Oid> {
        self.fetch_main(url, dst, true)?;
        let shown = self.run_bounded(
            Command::new(&self.program)
                .arg("--git-dir")
                .arg(&self.git_dir)
                .args(["rev-parse", "--verify", "--quiet", dst]),
        )?;
        Oid::from_str(shown.stdout.trim()).map_err(|_| anyhow!("git fetch did not write {dst}"))
    }
}

/// The URL as git gets it: without a password (that goes through the credential helper), and
/// without the user too when sqlgit gives the credentials (`keep_user` false): the helper answers
/// with that user, while a user in the URL makes curl first send it with an empty password (one
/// failed login per git run, which lockouts such as fail2ban count).
fn git_url(url: &str, keep_user: bool) -> String {
    match super::Userinfo::of(url) {
        Some(u) => u.without_password(keep_user),
        None => url.to_string(),
    }
}

/// `git_url` for a remote: the user stays unless sqlgit supplies the credentials.
fn remote_url(url: &str) -> String {
    git_url(url, http_credentials(url).is_none())
}

fn is_ssh(url: &str) -> bool {
    if let Some(end) = url.find("://") {
        let scheme = &url[..end];
        return matches!(scheme, "ssh" | "git+ssh" | "ssh+git");
    }
    // scp-like `[user@]host:path` (a colon before any slash), not a local path.
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        _ => false,
    }
}

/// For an http(s) URL with credentials given to sqlgit (a password in the URL, or the token):
/// (`scheme://host[:port]`, user, password).
fn http_credentials(url: &str) -> Option<(String, String, String)> {
    // The credentials as `Userinfo` finds them (as they are redacted and kept out of the
    // config); the host from the URL without them.
    let info = super::Userinfo::of(url);
    let bare = info.as_ref().map(|u| u.without_password(false));
    let parsed = url::Url::parse(bare.as_deref().unwrap_or(url)).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let base = match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    };
    let decode = |s: &str| percent_decode(s);
    if let Some(info) = &info
        && let Some(password) = info.password.filter(|p| !p.is_empty())
    {
        return Some((base, decode(info.user), decode(password)));
    }
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())?;
    let user = std::env::var(TOKEN_USER_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| url_user(url).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "sqlgit".into());
    Some((base, user, token))
}

/// `%XX` escapes of a URL's userinfo decoded (`+` stays `+`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `--porcelain` output: the flag and summary of the line for `refs/heads/main`.
fn porcelain_status(stdout: &str) -> Option<(char, String)> {
    stdout.lines().find_map(|line| {
        let mut fields = line.splitn(3, '\t');
        let flag = fields.next()?.chars().next()?;
        let refs = fields.next()?;
        let summary = fields.next().unwrap_or_default();
        (refs.rsplit(':').next()? == "refs/heads/main").then(|| (flag, summary.trim().to_string()))
    })
}

/// Why the push of `refs/heads/main` was refused (`summary`: its `--porcelain` summary).
fn refusal(summary: &str, stderr: &str, force: bool) -> anyhow::Error {
    let by_server = summary.starts_with("[remote rejected]");
    if force && by_server && summary.contains("non-fast-forward") {
        return anyhow!(
            "the remote refuses forced pushes to main (receive.denyNonFastForwards, or a \
             protected branch), and the latest remote is replaced by one new commit each run: \
             allow force pushes to main there (in the remote repository: git config \
             receive.denyNonFastForwards false) (git: {summary})"
        );
    }
    if summary.contains("fetch first") || summary.contains("non-fast-forward") {
        return anyhow!("{DIVERGED} (git: {summary})");
    }
    if let Some(cause) = unpack_failure(stderr) {
        return anyhow!(
            "the remote could not store what was pushed: {cause} (check the remote \
             repository's permissions and free space) (git: {summary})"
        );
    }
    match remote_said(stderr) {
        said if said.is_empty() => {
            anyhow!("push rejected by the remote (refs/heads/main: {summary})")
        }
        said => anyhow!(
            "push rejected by the remote (refs/heads/main: {summary}; the remote said: {said})"
        ),
    }
}

/// Why the remote's `receive-pack` failed to store the pack (`error: remote unpack failed: …`).
fn unpack_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.split_once("remote unpack failed:"))
        .map(|(_, cause)| crate::error::one_line(cause.trim()))
        .filter(|cause| !cause.is_empty())
}

/// What the remote itself said (`remote: …` lines), one line, without progress meters.
fn remote_said(stderr: &str) -> String {
    let said: Vec<&str> = stderr
        .split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('%'))
        .collect();
    let said = crate::error::one_line(&said.join(" "));
    said.chars().take(300).collect()
}

/// git's last line that says something (not a hint, progress meter or blank).
fn last_meaningful(stderr: &str) -> Option<String> {
    let line = stderr
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("hint:")
                && !l.contains('%')
                && !l.starts_with("To ")
                && *l != "Done"
        })
        .map(|l| {
            l.strip_prefix("fatal: ")
                .or_else(|| l.strip_prefix("error: "))
                .unwrap_or(l)
        })
        .rfind(|l| {
            // Generic closing lines say less than the one before them.
            ![
                "Could not read from remote repository",
                "Please make sure you have the correct access rights",
                "and the repository exists",
                "the remote end hung up unexpectedly",
                "failed to push some refs",
            ]
            .iter()
            .any(|generic| l.starts_with(generic))
        })?;
    let line: String = crate::error::one_line(line).chars().take(300).collect();
    Some(line)
}

/// `'…'` for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether a private key file is protected by a passphrase (PEM `ENCRYPTED`, or an OpenSSH key
/// whose cipher is not `none`).
pub(crate) fn key_is_encrypted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.contains("ENCRYPTED") {
        return true;
    }
    let Some(body) = text
        .split("-----BEGIN OPENSSH PRIVATE KEY-----")
        .nth(1)
        .and_then(|b| b.split("-----END").next())
    else {
        return false;
    };
    let Some(bytes) = base64_decode(body) else {
        return false;
    };
    let magic = b"openssh-key-v1\0";
    if !bytes.starts_with(magic) || bytes.len() < magic.len() + 4 {
        return false;
    }
    let at = magic.len();
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    match bytes.get(at + 4..at + 4 + len) {
        Some(cipher) => cipher != b"none",
        None => false,
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
            b' ' | b'\n' | b'\r' | b'\t' => continue,
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

/// A git directory for one push that sees the repository's objects (`GIT_OBJECT_DIRECTORY`)
/// and its config, but not its `shallow` file: grafts (`GIT_GRAFT_FILE`) cut history there
/// instead. Removed when dropped; pushes run under the repository lock, so one name serves.
struct PushView {
    dir: PathBuf,
}

impl PushView {
    fn create(git_dir: &Path, grafts: &str) -> Result<PushView> {
        let dir = std::path::absolute(git_dir.join("sqlgit-push.git"))?;
        let _ = std::fs::remove_dir_all(&dir);
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(dir.join("refs"))?;
            std::fs::create_dir_all(dir.join("objects"))?;
            std::fs::write(dir.join("HEAD"), "ref: refs/heads/main\n")?;
            std::fs::copy(git_dir.join("config"), dir.join("config"))?;
            std::fs::write(dir.join("grafts"), grafts)
        })();
        let view = PushView { dir };
        made.with_context(|| format!("prepare {}", view.dir.display()))?;
        Ok(view)
    }
}

impl Drop for PushView {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_lines() {
        let out =
            "To git://h/x\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone\n";
        assert_eq!(
            porcelain_status(out),
            Some(('!', "[rejected] (fetch first)".into()))
        );
        let out = "To git://h/x\n*\trefs/sqlgit/latest:refs/heads/main\t[new branch]\nDone\n";
        assert_eq!(porcelain_status(out).unwrap().0, '*');
    }

    #[test]
    fn why_the_remote_could_not_store_a_push() {
        let stderr = "error: remote unpack failed: unable to create temporary object directory\n\
                      To /srv/h.git\n";
        assert_eq!(
            unpack_failure(stderr).as_deref(),
            Some("unable to create temporary object directory")
        );
        assert_eq!(unpack_failure("To /srv/h.git\n"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(git_url("https://u:p@h:1/x", true), "https://u@h:1/x");
        assert_eq!(git_url("https://u:p@h:1/x", false), "https://h:1/x");
        assert_eq!(git_url("https://u@h/x", false), "https://h/x");
        assert_eq!(git_url("https://u@h/x", true), "https://u@h/x");
        assert_eq!(git_url("https://:p@h/x", true), "https://h/x");
        assert_eq!(git_url("https://h/a:b@c", false), "https://h/a:b@c");
        assert_eq!(git_url("ssh://u:p@h/x", true), "ssh://u@h/x");
        assert!(is_ssh("git@host:repo.git"));
        assert!(is_ssh("ssh://host/x"));
        assert!(!is_ssh("/srv/x.git"));
        assert!(!is_ssh("git://h/x"));
        assert_eq!(percent_decode("a%2Bb+c%40"), "a+b+c@");
    }

    #[test]
    fn ssh_destinations() {
        let d = |u: &str| ssh_destination(u);
        let s = |v: &str| Some(v.to_string());
        assert_eq!(d("backup:/srv/h.git"), Some((None, "backup".into(), None)));
        assert_eq!(
            d("git@host:repo.git"),
            Some((s("git"), "host".into(), None))
        );
        assert_eq!(
            d("ssh://u@127.0.0.1:2222/abs/x.git"),
            Some((s("u"), "127.0.0.1".into(), s("2222")))
        );
        assert_eq!(d("ssh://backup/x"), Some((None, "backup".into(), None)));
        assert_eq!(d("ssh://[::1]:22/x"), Some((None, "::1".into(), s("22"))));
        assert_eq!(d("ssh://-oProxyCommand=x/y"), None);
        let home = PathBuf::from("/h");
        assert_eq!(
            expand_home("~/.ssh/k", Some(&home)),
            PathBuf::from("/h/.ssh/k")
        );
        assert_eq!(expand_home("%d/k", Some(&home)), PathBuf::from("/h/k"));
        assert_eq!(expand_home("/abs/k", Some(&home)), PathBuf::from("/abs/k"));
    }

    #[test]
    fn meaningful_line() {
        let err = "fatal: remote error: access denied\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(last_meaningful(err).unwrap(), "remote error: access denied");
    }
}
