//! The one integration-test binary of sqlgit (`cargo test --test it`).
//!
//! All integration tests live in this single binary so that cargo links once and the tests share
//! one set of helpers: `env` (a hermetic temp dir that runs the real `sqlgit` binary and the real
//! `sqlite3` CLI, plus the value-by-value database comparison) and one module per command under test.
//! New commands get a new module here (snapshot, remotes, ...) that builds on `env`.

mod badinput;
mod diff;
mod dump;
mod env;
mod job;
mod ops;
mod oracle;
mod prune;
mod remotes;
mod servers;
mod snapshot;
mod torture;
mod verify;
