//! An ssh remote's host as OpenSSH reaches it. `~/.ssh/config` may make a name an alias
//! (`Host backup` with `HostName`, `User`, `Port`), so two spellings can name one repository
//! (`backup:/p` and `ssh://root@10.0.0.5:2222/p`) and one spelling two (`ssh://backup:22/p`
//! overrides the alias's port). `ssh -G` prints what ssh would use, run as git runs ssh (the
//! user's GIT_SSH_COMMAND, core.sshCommand or GIT_SSH when it is OpenSSH's `ssh`); when it
//! cannot be asked, the URL is compared as written. Each spelling is asked once per run.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::RemoteParts;

/// How long `ssh -G` may take (it runs `Match exec` commands).
const LIMIT: Duration = Duration::from_secs(5);

/// Replace the remote's user, host and port with the ones ssh would use; left as they are when
/// ssh cannot be asked.
/// `repo_dir`: the repository whose `core.sshCommand` counts.
pub(super) fn resolve(parts: &mut RemoteParts, repo_dir: &Path) {
    let host = parts.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.starts_with('-') {
        return;
    }
    let user = parts.user.as_deref().filter(|u| !u.is_empty());
    let asked = [
        repo_dir.display().to_string(),
        parts.port.clone().unwrap_or_default(),
        user.unwrap_or_default().to_string(),
        host.to_string(),
    ];
    static SAID: Mutex<Option<HashMap<[String; 4], Option<Said>>>> = Mutex::new(None);
    let known = SAID
        .lock()
        .ok()
        .and_then(|s| s.as_ref()?.get(&asked).cloned());
    let said = known.unwrap_or_else(|| {
        let said = ask(repo_dir, parts.port.as_deref(), user, host);
        if let Ok(mut s) = SAID.lock() {
            s.get_or_insert_with(HashMap::new)
                .insert(asked, said.clone());
        }
        said
    });
    let Some((user, hostname, port)) = said else {
        return;
    };
    parts.user = Some(user);
    parts.host = match hostname.contains(':') {
        true => format!("[{}]", hostname.to_ascii_lowercase()),
        false => hostname.to_ascii_lowercase(),
    };
    parts.port = Some(port.trim_start_matches('0').to_string()).filter(|p| !p.is_empty());
}

/// What `ssh -G` says: user, host name, port.
type Said = (String, String, String);

/// Ask `ssh -G` what it would use for `host`; None when it cannot be asked.
fn ask(repo_dir: &Path, port: Option<&str>, user: Option<&str>, host: &str) -> Option<Said> {
    let mut cmd = ssh_command(repo_dir)?;
    cmd.arg("-G");
    if let Some(port) = port {
        cmd.args(["-p", port]);
    }
    if let Some(user) = user {
        cmd.args(["-l", user]);
    }
    cmd.arg("--").arg(host);
    let said = run_bounded(cmd)?;
    let field = |name: &str| {
        said.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Some((field("user")?, field("hostname")?, field("port")?))
}

/// The ssh git would run, ready for `-G`: None when it is not OpenSSH's `ssh`.
fn ssh_command(repo_dir: &Path) -> Option<Command> {
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let is_ssh = |program: &str| program == "ssh" || program.ends_with("/ssh");
    let command = set(std::env::var("GIT_SSH_COMMAND").ok()).or_else(|| core_ssh_command(repo_dir));
    if let Some(command) = command {
        if !is_ssh(command.split_whitespace().next()?) {
            return None;
        }
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{command} \"$@\""))
            .arg("sqlgit-ssh");
        return Some(cmd);
    }
    match set(std::env::var("GIT_SSH").ok()) {
        Some(program) if is_ssh(&program) => Some(Command::new(program)),
        Some(_) => None,
        None => Some(Command::new("ssh")),
    }
}

/// `core.sshCommand` as git reads it for the repository (its config, the user's, the system's).
fn core_ssh_command(repo_dir: &Path) -> Option<String> {
    let git = crate::remote::cli::git_program()?;
    let mut cmd = Command::new(git);
    cmd.arg("-C")
        .arg(repo_dir)
        .args(["config", "--get", "core.sshCommand"]);
    run_bounded(cmd).map(|s| s.trim().to_string())
}

/// `cmd`'s stdout when it succeeds within [`LIMIT`]; killed past it.
fn run_bounded(mut cmd: Command) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
