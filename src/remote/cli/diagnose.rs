//! What a failed git run means: its stderr and `--porcelain` status turned into one line that
//! says why (credentials, host keys, a refused push, a full disk) with git's own last words.

use anyhow::anyhow;

use super::super::{DIVERGED, TOKEN_ENV, redact};
use super::GitCli;

impl GitCli {
    /// A failed git run as one line: what it means, with git's last meaningful words.
    pub(super) fn failure(&self, what: &str, url: &str, stderr: &str) -> anyhow::Error {
        let said = last_meaningful(stderr);
        let lower = stderr.to_ascii_lowercase();
        let with = |cause: &str| match &said {
            Some(said) => anyhow!("{cause} (git: {said})"),
            None => anyhow!("{cause}"),
        };
        if let Some(line) = local_disk_full(stderr) {
            return anyhow!("{} (git: {line})", self.no_room(what));
        }
        if lower.contains("terminal prompts disabled")
            || lower.contains("could not read username")
            || lower.contains("could not read password")
        {
            if let Some(other) = asked_elsewhere(url, stderr) {
                return with(&format!(
                    "the remote {} redirected to {other}, another host: sqlgit sends no \
                     credentials there (by design, a token is for its own host only); give the \
                     remote's new URL on {other} as the remote",
                    redact(url)
                ));
            }
            return with(&format!(
                "authentication required and no credentials available: sqlgit never prompts \
                 (set {TOKEN_ENV}, put them in the URL, or configure a git credential helper)"
            ));
        }
        if lower.contains("server certificate verification failed")
            || lower.contains("ssl certificate problem")
            || lower.contains("self-signed certificate")
            || lower.contains("self signed certificate")
            // curl's words for a certificate naming another host.
            || lower.contains("match target host name")
        {
            return with(&untrusted_certificate(false));
        }
        if lower.contains("authentication failed")
            || lower.contains("http 401")
            || lower.contains("http 403")
        {
            return with("authentication failed: the remote refused the credentials");
        }
        if let Some(status) = http_error(stderr).filter(|s| s.contains("HTTP 413")) {
            // git's line is the reason quoted: not again as git's last words.
            return anyhow!("{}", too_large(&status, true));
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
        if lower.contains("too many authentication failures") {
            return with(
                "authentication failed: ssh offered more keys than the SSH server allows \
                 (MaxAuthTries) before the right one; name the key with --ssh-key FILE (sqlgit \
                 then offers only it), or give the host IdentityFile and IdentitiesOnly yes in \
                 ~/.ssh/config",
            );
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
            if !super::is_ssh(url) {
                return with(
                    "the server answered with something that is not git's protocol: check the \
                     URL's host, port and scheme (another service, a proxy or a load balancer on \
                     that port)",
                );
            }
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
}

impl GitCli {
    /// That git could not write in the repository (the history cache, for a fetch) for a full
    /// disk, with what is free there: git's own last words blame the transfer (`fetch-pack:
    /// invalid index-pack output`).
    fn no_room(&self, what: &str) -> String {
        let free = crate::room::free_room(&self.git_dir)
            .map(|r| format!(" ({} free)", crate::output::human_bytes(r.bytes)))
            .unwrap_or_default();
        format!(
            "the local disk is full: git {what} could not write in {}{free}",
            self.git_dir.display()
        )
    }
}

/// git's line saying that a write here failed for a full disk (`fatal: write error: No space
/// left on device`, which index-pack says before fetch-pack's last words); not the remote's
/// (`remote: …`, `remote unpack failed`), which is the server's disk.
fn local_disk_full(stderr: &str) -> Option<String> {
    let line = stderr
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.starts_with("remote:") && !l.contains("remote unpack failed"))
        .find(|l| l.contains(crate::error::DISK_FULL))?;
    let line = line
        .strip_prefix("fatal: ")
        .or_else(|| line.strip_prefix("error: "))
        .unwrap_or(line);
    Some(crate::error::one_line(line).chars().take(400).collect())
}

/// The origin (`scheme://host[:port]`) git asked credentials for, when it is not the remote's
/// own: the remote redirected there.
/// What to do about a server certificate that was not accepted, for both transports (libgit2
/// also reads `SSL_CERT_FILE`, `with_ssl_cert_file`).
pub(in crate::remote) fn untrusted_certificate(with_ssl_cert_file: bool) -> String {
    let settings = match with_ssl_cert_file {
        true => {
            "GIT_SSL_CAINFO=FILE in the job's environment, git config --global \
                 http.sslCAInfo FILE, or SSL_CERT_FILE"
        }
        false => {
            "GIT_SSL_CAINFO=FILE in the job's environment, or git config --global \
                  http.sslCAInfo FILE"
        }
    };
    format!(
        "the server's TLS certificate was not accepted: for a private CA give git its \
         certificate ({settings}); also check that the certificate has not expired and names the \
         URL's host"
    )
}

fn asked_elsewhere(url: &str, stderr: &str) -> Option<String> {
    let asked = stderr
        .lines()
        .filter_map(|l| l.split_once(" for '")?.1.split_once('\'').map(|(u, _)| u))
        .next_back()?;
    let origin = crate::remote::token::http_base;
    (origin(url)? != origin(asked)?).then(|| redact(asked))
}

/// `--porcelain` output: the flag and summary of the line for `refs/heads/main`.
pub(super) fn porcelain_status(stdout: &str) -> Option<(char, String)> {
    stdout.lines().find_map(|line| {
        let mut fields = line.splitn(3, '\t');
        let flag = fields.next()?.chars().next()?;
        let refs = fields.next()?;
        let summary = fields.next().unwrap_or_default();
        (refs.rsplit(':').next()? == "refs/heads/main").then(|| (flag, summary.trim().to_string()))
    })
}

/// Why the push of `refs/heads/main` was refused (`summary`: its `--porcelain` summary).
pub(super) fn refusal(summary: &str, stderr: &str, force: bool) -> anyhow::Error {
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
    if let Some(cause) = fsck_refusal(stderr) {
        return anyhow!(
            "the remote's object check (receive.fsckObjects) refused what was pushed: {cause} \
             (run git fsck --strict in the sqlgit repository) (git: {summary})"
        );
    }
    if let Some(said) = over_size_limit(stderr) {
        return anyhow!("{} (git: {summary})", too_large(&said, false));
    }
    if let Some(cause) = unpack_failure(stderr) {
        // The server's own reason first, when it gave one.
        let cause = match remote_fatal(stderr) {
            Some(fatal) => format!("{fatal} ({cause})"),
            None => cause,
        };
        return anyhow!(
            "the remote could not store what was pushed: {cause} (check the remote \
             repository's permissions and free space) (git: {summary})"
        );
    }
    if checked_out(stderr) {
        return anyhow!(
            "the remote is a repository with a work tree that has main checked out, which git \
             refuses to update: give a bare repository (git init --bare, or git clone --bare \
             of that one), or, to keep that work tree, run in it: git config \
             receive.denyCurrentBranch updateInstead (git: {summary})"
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

/// A push the remote refused for its size (`said`: its words): where such a limit is set. Over
/// HTTP it is the web server's or proxy's limit on a request's body (HTTP 413); else git's
/// `receive.maxInputSize`, or a host's limit.
fn too_large(said: &str, over_http: bool) -> String {
    let limit = match over_http {
        true => {
            "the request size limit of the web server or proxy in front of it: nginx \
             client_max_body_size, Apache LimitRequestBody, lighttpd server.max-request-size"
        }
        false => "git config receive.maxInputSize in the remote repository",
    };
    format!(
        "the remote refuses a push this large (it said: {said}): a push carries what the remote \
         lacks, the whole database for its first snapshot; raise the limit on a server of your \
         own ({limit}), or use a host whose limit is larger (GitHub takes at most 2 GB a push: \
         see the README's host limits)"
    )
}

/// git's own line for an HTTP request that failed mid-way (`error: RPC failed; HTTP 413 curl 22
/// The requested URL returned error: 413`, `error: RPC failed; curl 56 Recv failure: …`),
/// without its `error: ` prefix: the cause of the disconnect git reports after it.
pub(super) fn http_error(stderr: &str) -> Option<String> {
    stderr
        .split(['\r', '\n'])
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("error: "))
        .filter(|l| l.starts_with("RPC failed;"))
        .map(crate::error::one_line)
        .next_back()
}

/// Why the remote's `receive-pack` failed to store the pack (`error: remote unpack failed: …`).
pub(super) fn unpack_failure(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.split_once("remote unpack failed:"))
        .map(|(_, cause)| crate::error::one_line(cause.trim()))
        .filter(|cause| !cause.is_empty())
}

/// The server's `remote: fatal: …` line, without its prefix.
fn remote_fatal(stderr: &str) -> Option<String> {
    stderr
        .split(['\r', '\n'])
        .filter_map(|l| l.trim_start().strip_prefix("remote:"))
        .map(str::trim)
        .find(|l| l.starts_with("fatal:"))
        .map(crate::error::one_line)
}

/// The server's words when it refused the push for its size (`receive.maxInputSize`; GitHub's
/// 2 GB: `remote: fatal: pack exceeds maximum allowed size (2.00 GiB)`).
pub(super) fn over_size_limit(stderr: &str) -> Option<String> {
    remote_fatal(stderr)
        .filter(|l| l.contains("exceeds maximum allowed size"))
        .map(|l| l.trim_start_matches("fatal:").trim().to_string())
}

/// What the remote's fsck refused (`remote: error: object …: hasDotgit: …`), when that is why
/// it could not store the pack: not a matter of permissions or free space.
pub(super) fn fsck_refusal(stderr: &str) -> Option<String> {
    fn said(l: &str) -> Option<&str> {
        l.trim_start().strip_prefix("remote:").map(str::trim)
    }
    let refused = stderr
        .lines()
        .filter_map(said)
        .any(|l| l.contains("fsck error"));
    refused.then(|| {
        stderr
            .lines()
            .filter_map(said)
            .find(|l| l.starts_with("error: object "))
            .or_else(|| {
                stderr
                    .lines()
                    .filter_map(said)
                    .find(|l| l.contains("fsck error"))
            })
            .map(crate::error::one_line)
            .unwrap_or_default()
    })
}

/// What the remote itself said (`remote: …` lines), one line, without progress meters: whole
/// (a hook's reason can be long), up to a bound that only a runaway hook reaches.
fn remote_said(stderr: &str) -> String {
    let said: Vec<&str> = stderr
        .split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_progress(l))
        .collect();
    let said = crate::error::one_line(&said.join(" "));
    said.chars().take(4000).collect()
}

/// Whether a line of git's stderr is a progress meter or transfer summary
/// (`Writing objects:  45% (9/20), 1.10 MiB | 250.00 KiB/s`, `Total 3 (delta 0), …`), not
/// words: a hook's reason may well hold a `%` ("100% of 1 GiB used").
pub(super) fn is_progress(line: &str) -> bool {
    const METERS: &[&str] = &[
        "Enumerating objects:",
        "Counting objects:",
        "Compressing objects:",
        "Writing objects:",
        "Receiving objects:",
        "Resolving deltas:",
        "Unpacking objects:",
        "Delta compression using",
        "Total ",
        "Checking connectivity",
        "Finding sources:",
        "Pushing to ",
        "POST git-receive-pack",
    ];
    // The remote's own meters come with git's prefix.
    let line = line.strip_prefix("remote: ").unwrap_or(line).trim_start();
    if METERS.iter().any(|m| line.starts_with(m)) {
        return true;
    }
    // Any other meter: `TITLE: NN% (N/M)`.
    line.split_once(": ").is_some_and(|(_, rest)| {
        let rest = rest.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("% (")
    })
}

/// A push to a non-bare remote whose checked-out branch is `main`: git's long advice, replaced
/// by the fix.
fn checked_out(stderr: &str) -> bool {
    stderr.contains("refusing to update checked out branch")
}

/// git's last line that says something (not a hint, progress meter or blank); for a
/// repository another user owns, git's reason with the command it gives last; for an HTTP
/// request that failed, git's line naming its status (the disconnect git reports after it
/// says less).
pub(super) fn last_meaningful(stderr: &str) -> Option<String> {
    if let Some(status) = http_error(stderr) {
        return Some(status.chars().take(400).collect());
    }
    let reason = stderr
        .lines()
        .map(|l| l.trim_start_matches("remote:").trim())
        .find_map(|l| {
            l.strip_prefix("fatal: ")
                .filter(|r| r.contains("dubious ownership"))
        });
    let line = stderr
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("hint:")
                && !is_progress(l.strip_prefix("remote:").unwrap_or(l).trim())
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
                // ssh's last words after the server's reason (`Received disconnect …: Too
                // many authentication failures`).
                "Disconnected from",
            ]
            .iter()
            .any(|generic| l.starts_with(generic))
        })?;
    let line: String = match reason.filter(|&r| r != line) {
        Some(reason) => format!("{reason}: {}", crate::error::one_line(line)),
        None => crate::error::one_line(line),
    };
    Some(line.chars().take(400).collect())
}

#[cfg(test)]
mod tests {
    use super::asked_elsewhere;

    #[test]
    fn a_full_local_disk_is_told_from_the_remotes() {
        use super::local_disk_full;
        let fetch = "Receiving objects:  40% (80/200)\rfatal: write error: No space left on \
                     device\nfatal: fetch-pack: invalid index-pack output\n";
        assert_eq!(
            local_disk_full(fetch).as_deref(),
            Some("write error: No space left on device")
        );
        let remote = "remote: fatal: write error: No space left on device\n\
                      error: remote unpack failed: No space left on device\n";
        assert_eq!(local_disk_full(remote), None);
    }

    #[test]
    fn credentials_asked_for_another_host_are_a_redirect() {
        let said = "fatal: could not read Username for 'http://localhost:8081': terminal \
                    prompts disabled";
        let url = "http://127.0.0.1:8080/h.git";
        assert_eq!(
            asked_elsewhere(url, said).as_deref(),
            Some("http://localhost:8081")
        );
        let own = "fatal: could not read Username for 'http://127.0.0.1:8080': terminal prompts \
                   disabled";
        assert_eq!(asked_elsewhere(url, own), None);
        let default_port = "could not read Username for 'https://forge': terminal prompts disabled";
        assert_eq!(
            asked_elsewhere("https://forge:443/x.git", default_port),
            None
        );
    }
}
