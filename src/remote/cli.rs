//! The `git` transport: network operations through the installed `git` program, as jj and cargo
//! (`net.git-fetch-with-cli`) do, so `~/.ssh/config`, `GIT_SSH_COMMAND` / `core.sshCommand`,
//! ssh-agent, OpenSSH's known_hosts, credential helpers, HTTP proxies and thin packs behave
//! exactly as with `git push`.
//!
//! Nothing may wait for a person (sqlgit runs from cron): stdin is null, the process runs in a
//! session of its own (no controlling terminal, so neither git nor ssh can open `/dev/tty`),
//! `GIT_TERMINAL_PROMPT=0`, no askpass program, and ssh gets `-o BatchMode=yes` unless the user
//! chose their own ssh command. Each subprocess is bounded by the push's deadline: past it, its
//! whole process group (git, ssh, git-remote-https) is ended: SIGTERM, then SIGKILL.
//!
//! Credentials given to sqlgit (a password or token in the URL, `SQLGIT_HTTPS_TOKEN` for the host
//! it is for) reach git through a credential helper given with `-c` for that URL's scheme, host
//! and port only; the helper reads them from its environment, so no secret is ever on a command
//! line or in a file. Other hosts keep the user's own credential helpers.
//!
//! Here: the `GitCli` client itself (what it runs for each network operation) and the push's
//! temporary git directory. How a subprocess is run within the deadline is in `run`, the ssh
//! side in `ssh`, the credential helper and URLs git is given in `credentials`, and what a
//! failed run's stderr means in `diagnose`.

mod credentials;
mod diagnose;
mod run;
mod ssh;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use git2::Oid;

use super::{Client, TOKEN_ENV, TOKEN_USER_ENV, redact};
use credentials::{CRED_PASSWORD_ENV, CRED_USER_ENV, HELPER, http_credentials, remote_url};
pub(super) use diagnose::untrusted_certificate;
use diagnose::{last_meaningful, porcelain_status, refusal};
use run::Finished;
use ssh::is_ssh;
pub(super) use ssh::{key_is_encrypted, local_user, ssh_destination};

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
    /// The `scheme://host[:port]` that `SQLGIT_HTTPS_TOKEN` is for (see `token.rs`).
    token_scope: Option<String>,
    /// One deadline for everything this push runs.
    deadline: Instant,
}

impl GitCli {
    pub fn new(
        program: PathBuf,
        git_dir: PathBuf,
        ssh_key: Option<PathBuf>,
        timeout: Duration,
        token_scope: Option<String>,
    ) -> GitCli {
        GitCli {
            program,
            git_dir,
            ssh_key,
            timeout,
            token_scope,
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
        if let Some((base, user, password)) = http_credentials(url, self.token_scope.as_deref()) {
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
    /// Run `git ARGS` for `url` within the deadline.
    fn git(&self, url: &str, args: &[&str]) -> Result<Finished> {
        let mut cmd = self.command(url, args)?;
        self.run_bounded(&mut cmd)
    }
}

impl Client for GitCli {
    fn remote_main(&self, url: &str) -> Result<Option<Oid>> {
        let bare = remote_url(url, self.token_scope.as_deref());
        let done = self.git(url, &["ls-remote", "--", &bare, "refs/heads/main"])?;
        if !done.success {
            let e = self.failure("ls-remote", url, &done.stderr);
            return Err(super::local::explained(url, e));
        }
        let mut listed = None;
        for line in done.stdout.lines() {
            if let Some((id, name)) = line.split_once('\t')
                && name.trim() == "refs/heads/main"
            {
                listed = Some(
                    Oid::from_str(id.trim())
                        .map_err(|_| anyhow!("git ls-remote: bad line {line:?}"))?,
                );
                break;
            }
        }
        super::local::checked_main(url, listed)
    }

    fn default_branch(&self, url: &str) -> Option<Option<String>> {
        let bare = remote_url(url, self.token_scope.as_deref());
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

    fn send(
        &self,
        url: &str,
        src: &str,
        force: bool,
        unrelated: Option<Oid>,
        lease: Option<Oid>,
    ) -> Result<()> {
        let bare = remote_url(url, self.token_scope.as_deref());
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
        let lease = lease.map(|old| format!("--force-with-lease=refs/heads/main:{old}"));
        // Only this ref, plainly: no pre-push hook (--no-verify), and none of the user's push.*
        // defaults that could add refs, prompt (gpg) or fail (signing, submodules, push options
        // a plain server refuses, a force that must include a fetched ref).
        let args = [
            "-c",
            "advice.graftFileDeprecated=false",
            "-c",
            "push.pushOption=",
            "-c",
            "push.useForceIfIncludes=false",
            "push",
            "--porcelain",
            // Progress meters on stderr tell a slow transfer from a silent remote.
            "--progress",
            "--no-verify",
            "--no-signed",
            "--no-follow-tags",
            "--no-recurse-submodules",
            lease.as_deref().unwrap_or("--no-force-with-lease"),
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
        if let Some(mask) = super::local::push_umask(url) {
            // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        let meter = crate::progress::Progress::spinner(&format!("pushing to {}", redact(url)));
        let done = self.run_bounded(&mut cmd);
        meter.finish();
        drop(view);
        let done = done?;
        let refused = matches!(porcelain_status(&done.stdout), Some(('!', _)));
        if (refused || !done.success)
            && let Some(e) = super::leftlock::left_lock(url, &done.stderr, "git")
        {
            return Err(e);
        }
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
        let bare = remote_url(url, self.token_scope.as_deref());
        let refspec = format!("+refs/heads/main:{dst}");
        let mut args = vec![
            "-c",
            "fetch.writeCommitGraph=false",
            "-c",
            "gc.auto=0",
            "-c",
            "maintenance.auto=false",
            "-c",
            "fetch.prune=false",
            "-c",
            "fetch.pruneTags=false",
            "fetch",
            "--quiet",
            // Progress meters on stderr tell a slow transfer from a silent remote.
            "--progress",
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
            // A whole history is fetched into the history cache only, whose lock the caller
            // holds: what git left of it goes before the failure says what room is free.
            if !shallow {
                crate::store::cache::remove_partial_fetch(&self.git_dir);
            }
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
mod tests;
