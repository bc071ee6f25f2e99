//! Which server a remote URL reaches, in the one place that decides it for both checks that must
//! see two spellings of one server as one: the role check (one repository as both remotes,
//! [`super::check_roles`]) and the run's time budget per server (`remote::budget`). An ssh
//! host alias is resolved first, as ssh resolves it ([`super::alias`]); then, for ssh and
//! `git://`, two host names that resolve to a common address, with the same port, are one server
//! (`localhost` and `127.0.0.1`, two DNS names of one machine). Not for http(s): one address
//! serves many sites (virtual hosts), which the name tells apart. A name is looked up once per
//! run, for at most [`LOOKUP_LIMIT`] (never hanging the run); one that does not resolve in
//! time is compared as written.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs as _};
use std::path::Path;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use super::{RemoteParts, local_dir, local_path, normal_host, repository_named, resolved_parts};

/// How long a host name's lookup may take.
const LOOKUP_LIMIT: Duration = Duration::from_secs(2);

/// A server as a remote URL reaches it (see the module documentation); compare with
/// [`Server::same`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Server {
    /// `local` for every local path.
    scheme: String,
    /// The port reached (a default one too).
    port: String,
    /// As [`normal_host`] spells it.
    host: String,
}

impl Server {
    fn of(parts: &RemoteParts) -> Server {
        Server {
            scheme: parts.scheme.clone(),
            port: parts.port_reached().to_string(),
            host: normal_host(&parts.host),
        }
    }

    /// Whether the two are one server: the same scheme and port, and the same host, or (ssh and
    /// `git://`) hosts with an address in common.
    pub(crate) fn same(&self, other: &Server) -> bool {
        if self.scheme != other.scheme || self.port != other.port {
            return false;
        }
        if self.host == other.host {
            return true;
        }
        if !matches!(self.scheme.as_str(), "ssh" | "git") {
            return false;
        }
        let mine = addresses(&self.host);
        !mine.is_empty() && addresses(&other.host).iter().any(|a| mine.contains(a))
    }
}

/// The server `url` reaches; every local path is the one server `local`. `ssh_config`: as for
/// [`repository_named`].
pub(crate) fn server_of(url: &str, ssh_config: Option<&Path>) -> Server {
    if url.starts_with("file://") || local_path(url).is_some() {
        return Server {
            scheme: "local".to_string(),
            port: String::new(),
            host: String::new(),
        };
    }
    Server::of(&resolved_parts(url, ssh_config))
}

/// Whether two remote URLs name one repository: their [`repository_named`] texts are equal,
/// or they are network remotes at the same place (path, and the user of a path in a home) on
/// one [`Server`].
pub(super) fn same_repository(a: &str, b: &str, ssh_config: Option<&Path>) -> bool {
    if repository_named(a, ssh_config) == repository_named(b, ssh_config) {
        return true;
    }
    let local = |u: &str| u.starts_with("file://") || local_dir(u).is_some();
    if local(a) || local(b) {
        return false;
    }
    let (a, b) = (resolved_parts(a, ssh_config), resolved_parts(b, ssh_config));
    a.place() == b.place() && Server::of(&a).same(&Server::of(&b))
}

/// The addresses `host` resolves to (an address: itself); none when it does not resolve within
/// [`LOOKUP_LIMIT`]. Looked up once per process.
fn addresses(host: &str) -> Vec<IpAddr> {
    static FOUND: Mutex<Option<HashMap<String, Vec<IpAddr>>>> = Mutex::new(None);
    let name = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = name.parse::<IpAddr>() {
        return vec![ip];
    }
    if let Some(found) = FOUND
        .lock()
        .ok()
        .and_then(|f| f.as_ref()?.get(name).cloned())
    {
        return found;
    }
    let found = look_up(name);
    if let Ok(mut f) = FOUND.lock() {
        f.get_or_insert_with(HashMap::new)
            .insert(name.to_string(), found.clone());
    }
    found
}

/// Ask the resolver in a thread of its own, left behind past [`LOOKUP_LIMIT`] (a lookup cannot
/// be interrupted).
fn look_up(name: &str) -> Vec<IpAddr> {
    if name.is_empty() || name.starts_with('-') {
        return Vec::new();
    }
    let (tx, rx) = mpsc::channel();
    let asked = name.to_string();
    let spawned = std::thread::Builder::new()
        .name("sqlgit-lookup".into())
        .spawn(move || {
            let found: Vec<IpAddr> = (asked.as_str(), 0)
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default();
            let _ = tx.send(found);
        });
    match spawned {
        Ok(_) => rx.recv_timeout(LOOKUP_LIMIT).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_and_git_hosts_with_a_common_address_are_one_server_http_hosts_are_not() {
        for (a, b) in [
            (
                "ssh://localhost:2222/srv/p.git",
                "ssh://127.0.0.1:2222/srv/p",
            ),
            ("localhost:/srv/p.git", "ssh://u@127.0.0.1/srv/p.git"),
            ("git://LocalHost/p.git", "git://127.0.0.1:9418/p"),
        ] {
            assert!(same_repository(a, b, None), "{a} {b}");
            assert!(server_of(a, None).same(&server_of(b, None)), "{a} {b}");
        }
        for (a, b) in [
            // Virtual hosts: one address, many sites.
            ("http://localhost:9/p.git", "http://127.0.0.1:9/p.git"),
            ("https://localhost/p.git", "https://127.0.0.1/p.git"),
            // Another port, path, scheme or home.
            ("ssh://localhost:2222/srv/p", "ssh://127.0.0.1:2223/srv/p"),
            ("ssh://localhost/srv/p", "ssh://127.0.0.1/srv/q"),
            ("git://localhost/p", "ssh://127.0.0.1:9418/p"),
            ("a@localhost:p.git", "b@127.0.0.1:p.git"),
        ] {
            assert!(!same_repository(a, b, None), "{a} {b}");
        }
        assert!(
            !server_of("http://localhost:9/a", None).same(&server_of("http://127.0.0.1:9/b", None))
        );
        assert!(server_of("/srv/a", None).same(&server_of("file:///srv/b", None)));
    }

    #[test]
    fn a_name_that_does_not_resolve_is_compared_as_written_at_once() {
        let start = std::time::Instant::now();
        let (a, b) = ("ssh://no-such-host.invalid/p", "ssh://127.0.0.1/p");
        assert!(!same_repository(a, b, None));
        assert!(server_of(a, None).same(&server_of("no-such-host.INVALID:/p", None)));
        assert!(start.elapsed() <= LOOKUP_LIMIT + Duration::from_millis(500));
    }
}
