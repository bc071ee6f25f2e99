//! Web servers on 127.0.0.1 for the HTTP remote tests: `git http-backend` behind lighttpd with
//! Basic auth, dulwich's HTTP server (a second git implementation), and a logging server that
//! records what credentials clients send.
