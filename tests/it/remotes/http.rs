//! Pushing over HTTP to real web servers and a second git server implementation.

use super::*;
use crate::servers::web::{CredLogger, DulwichHttp, Lighttpd};

#[test]
fn smoke_lighttpd() {
    let fx = Fx::new();
    let web = Lighttpd::start_in(fx.env.path("web"), HTTP_USER, HTTP_PASS);
    let history = web.create_bare("history");
    let latest = web.create_bare("latest");
    let (h_url, l_url) = (web.url("history"), web.url("latest"));
    let token = [("SQLGIT_HTTPS_TOKEN", HTTP_PASS), ("SQLGIT_HTTPS_USER", HTTP_USER)];
    let (run, _) = snapshot_with(&fx, &["--history-remote", &h_url, "--latest-remote", &l_url], &token);
    run.success().assert_quiet();
    fx.assert_history(&history, 1);
    fx.assert_latest(&latest);
    eprintln!("{}", web.logs());
    let _ = (DulwichHttp::start_in(fx.env.path("dul")), CredLogger::start());
}
