//! The one integration-test binary of sqlgit (`cargo test --test it`).
//!
//! All integration tests live in this single binary so that cargo links once and the tests share
//! one set of helpers, `env`: `TestEnv` (a hermetic temp dir that runs the real `sqlgit` binary
//! and the real `sqlite3` CLI), the value-by-value database comparison, and the small helpers
//! every file needs (`env/util.rs`). Where to find the test for a behaviour:
//!
//! - `dump` (+ `dump/`): `sqlgit dump` — fixtures, real-world schemas, adversarial property tests,
//!   consistency under writers, bad input;
//! - `snapshot` (+ `snapshot/`: `fixtures`, `commits`, `when_restore`, `badinput`, `lock`,
//!   `kills`, `big`): snapshots, `log`, `cat`, `restore`, WHEN, chunk stability, kills;
//! - `job`: the cron job — overlapping runs, failure hooks for every failure, unfinished runs;
//! - `ops/`: cron operations by concern — `init`, `cli` (quiet, exit codes, completions,
//!   progress), `status`, `monitoring` (metrics, hooks), `restore`, `filters`;
//! - `format`: snapshot formats 1 and 2 side by side in one repository; `upgrade`: what an
//!   older sqlgit left behind (its state file, format-1 headers it wrote without newer lines);
//! - `restore`: `restore --to`'s fast path (rows bound, not parsed) against the sqlite3 CLI on
//!   statement forms it does not know, both row formats, UTF-16 text (`restore_keys`: an index
//!   the bundled SQLite keys otherwise); `unchanged`: runs that read no page still see every write;
//! - `verify`: the restore drill (`vtab_checks`: virtual tables' own integrity findings); `diff` (+ `diff/`): `sqlgit diff` and its SQL patches, and
//!   `diff --live` (`diff/live.rs`); `query`: `sqlgit query` at past snapshots;
//! - `remotes` (+ `remotes/`: `pushes`, `urls`, `auth`, `bad_remotes`, `transports`, `ssh`,
//!   `http`, `recovery`, `older_copy`), `prune`: pushing, recovery and pruning
//!   (loopback servers in `servers/`: git daemon, smart HTTP, lighttpd, dulwich, sshd);
//! - `history`: points beyond local history (fetched from the history remote into the cache),
//!   `log --all`, `sqlgit history` of one row; `pruned_when`: WHEN in a pruned repository gives
//!   the full history's answer (misdated oldest kept snapshot, prefixes of pruned ids);
//! - `when`: WHEN edge cases (daylight saving time, malformed timestamps, natural forms, errors
//!   in pruned repositories, ambiguous commit-id prefixes);
//! - `badinput` (+ `badinput/`), `torture` (+ `torture/`), `oracle`: hostile input, the torture run, the oracle's own tests.

mod badinput;
mod diff;
mod dump;
mod env;
mod format;
mod history;
mod honest;
mod incremental;
mod incremental_edges;
mod incremental_keyed;
mod job;
mod json;
mod memory;
mod ops;
mod oracle;
mod prune;
mod pruned_when;
mod query;
mod remotes;
mod restore;
mod restore_keys;
mod schema_order;
mod servers;
mod snapshot;
mod stopped_pushes;
mod torture;
mod unchanged;
mod upgrade;
mod verify;
mod vtab_checks;
mod when;
