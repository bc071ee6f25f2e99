//! The ssh side of the `git` transport: the ssh command git is given (never prompting, with
//! `--ssh-key`), and which key ssh would offer for a host, to say when a refused login is a
//! key that needs a passphrase.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::GitCli;

impl GitCli {
    /// The ssh command to set in GIT_SSH_COMMAND, or None to leave git's choice alone.
    /// Default `ssh -o BatchMode=yes` (never prompt); the user's own command (GIT_SSH_COMMAND,
    /// core.sshCommand, GIT_SSH) is kept as it is — with `-i KEY` added for `--ssh-key`.
    pub(super) fn ssh_command(&self) -> Result<Option<String>> {
        let key = self.key_option();
        Ok(match self.user_ssh()? {
            UserSsh::Command(user) => key.map(|k| format!("{user}{k}")),
            UserSsh::Program(_) if key.is_none() => None,
            UserSsh::Program(program) => {
                Some(program_with_key(&program, &key.unwrap_or_default())?)
            }
            UserSsh::Default => Some(format!("ssh -o BatchMode=yes{}", key.unwrap_or_default())),
        })
    }

    /// ` -o IdentitiesOnly=yes -i 'KEY'` for `--ssh-key`: the named key is the one offered
    /// (ssh offers an agent's keys before `-i`'s, and a server closes the login after
    /// MaxAuthTries, 6 by default); an agent's other keys are not, and ~/.ssh/config's
    /// IdentityFile entries for the host still are. An agent holding the named key is used.
    fn key_option(&self) -> Option<String> {
        self.ssh_key.as_ref().map(|k| {
            format!(
                " -o IdentitiesOnly=yes -i {}",
                shell_quote(&k.display().to_string())
            )
        })
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
        if let Some(program) = set(std::env::var_os("GIT_SSH")) {
            return Ok(UserSsh::Program(program.to_string_lossy().into_owned()));
        }
        Ok(UserSsh::Default)
    }
    /// A key ssh would offer for `url` that is encrypted (and so useless without an agent
    /// holding it): `--ssh-key`, the IdentityFile entries ssh resolves for that host, or the
    /// default key names when ssh cannot be asked.
    pub(super) fn passphrase_key(&self, url: &str) -> Option<PathBuf> {
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
            UserSsh::Program(_) => return None,
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
    /// GIT_SSH: a program git runs with its own arguments; left alone (but for `--ssh-key`,
    /// see [`program_with_key`]).
    Program(String),
    /// Nothing: sqlgit's `ssh -o BatchMode=yes`.
    Default,
}

/// `--ssh-key` with GIT_SSH: OpenSSH itself (a program named `ssh`) is given the key as a
/// command would be; another program (a wrapper, plink) takes arguments sqlgit cannot know,
/// and silently dropping the key would blame the server: refused, naming both.
fn program_with_key(program: &str, key: &str) -> Result<String> {
    let name = Path::new(program).file_name().and_then(|n| n.to_str());
    if name == Some("ssh") {
        return Ok(format!("{}{key}", crate::shellword::quote(program)));
    }
    anyhow::bail!(
        "GIT_SSH names {program}, a program sqlgit cannot give the --ssh-key key to \
         (sqlgit.sshKey): set the key in that program's own settings and drop --ssh-key, or \
         give GIT_SSH_COMMAND=\"{program} -i KEY\" instead"
    )
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
    let dir = passwd_field(|pwd| pwd.pw_dir)?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(&dir)))
}

/// The user name OpenSSH logs in as when the URL names none: getpwuid(getuid()), then `$USER`.
pub(in crate::remote) fn local_user() -> Option<String> {
    passwd_field(|pwd| pwd.pw_name)
        .and_then(|name| String::from_utf8(name).ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|name| !name.is_empty())
}

/// One non-empty string field of the current user's passwd entry.
fn passwd_field(pick: fn(&libc::passwd) -> *mut libc::c_char) -> Option<Vec<u8>> {
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
    let field = pick(&pwd);
    if rc != 0 || found.is_null() || field.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so the field is a NUL-terminated string inside buf.
    let bytes = unsafe { std::ffi::CStr::from_ptr(field) }
        .to_bytes()
        .to_vec();
    (!bytes.is_empty()).then_some(bytes)
}

/// An IdentityFile as ssh -G prints it, with `~` and `%d` (the home directory) expanded.
pub(super) fn expand_home(file: &str, home: Option<&PathBuf>) -> PathBuf {
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
pub(in crate::remote) fn ssh_destination(
    url: &str,
) -> Option<(Option<String>, String, Option<String>)> {
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

pub(super) fn is_ssh(url: &str) -> bool {
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

#[cfg(test)]
mod key_tests {
    /// GIT_SSH naming OpenSSH gets the key; another program is refused naming both, never
    /// left to run without it.
    #[test]
    fn a_git_ssh_program_gets_the_key_or_is_refused_naming_it() {
        let key = " -o IdentitiesOnly=yes -i '/k/deploy'";
        assert_eq!(
            super::program_with_key("/usr/bin/ssh", key).unwrap(),
            "/usr/bin/ssh -o IdentitiesOnly=yes -i '/k/deploy'"
        );
        assert_eq!(
            super::program_with_key("/opt/my tools/ssh", key).unwrap(),
            "'/opt/my tools/ssh' -o IdentitiesOnly=yes -i '/k/deploy'"
        );
        let e = super::program_with_key("/usr/bin/plink", key)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GIT_SSH") && e.contains("--ssh-key") && e.contains("plink"),
            "{e}"
        );
    }
}
