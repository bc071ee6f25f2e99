//! WHEN expressions: which snapshot a command means. A commit id or git revision (`HEAD~3`), an
//! RFC 3339 time (`2026-11-24T10:00:00Z`, `…+02:00`, or a local `2026-11-24 10:00`), or a
//! duration meaning "that long ago" (`2h`, `1day 3h`), or `now`. A time selects the latest
//! snapshot at or before it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use git2::{Commit, Repository};

use crate::store::BRANCH;

/// "Now" for snapshots and relative times; `SQLGIT_NOW` (Unix seconds) pins it, for tests.
pub fn now() -> SystemTime {
    std::env::var("SQLGIT_NOW")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now)
}

/// [`now`] in Unix seconds.
pub fn unix_now() -> i64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Resolve `spec` (None: the latest snapshot) to a snapshot commit of local history.
pub fn resolve<'r>(repo: &'r Repository, spec: Option<&str>) -> Result<Commit<'r>> {
    resolve_at(repo, latest(repo)?, spec, Some(repo))
}

/// [`resolve`] for a command that reads local snapshots only (an error does not suggest
/// reaching pruned ones).
pub fn resolve_local<'r>(repo: &'r Repository, spec: Option<&str>) -> Result<Commit<'r>> {
    resolve_at(repo, latest(repo)?, spec, None).map_err(|e| {
        if repo.path().join("shallow").exists() {
            anyhow::anyhow!("{e}; older snapshots were pruned here, and this reads local ones only")
        } else {
            e
        }
    })
}

fn latest(repo: &Repository) -> Result<Commit<'_>> {
    match repo.find_reference(BRANCH) {
        Ok(r) => Ok(r.peel_to_commit()?),
        Err(_) => bail!("the repository has no snapshots yet"),
    }
}

/// Resolve `spec` with `head` as the latest snapshot (`HEAD~N` counts from it, times are looked
/// up from it back). `hint`: the repository whose pruning an error explains, if any.
pub fn resolve_at<'r>(
    repo: &'r Repository,
    head: Commit<'r>,
    spec: Option<&str>,
    hint: Option<&Repository>,
) -> Result<Commit<'r>> {
    let Some(spec) = spec else {
        return Ok(head);
    };
    let hint = || hint.map(pruned_hint).unwrap_or_default();
    // HEAD means the latest snapshot, also in a plain clone whose HEAD names another branch,
    // and in the history cache, whose main is the remote's.
    let revision = match spec.strip_prefix("HEAD") {
        Some(rest) => format!("{}{rest}", head.id()),
        None => spec.to_string(),
    };
    if let Ok(obj) = repo.revparse_single(&revision)
        && let Ok(commit) = obj.peel_to_commit()
    {
        return Ok(commit);
    }
    let Some(time) = parse_time(spec) else {
        bail!(
            "unknown revision or time {spec:?} (give a commit id, HEAD~N, an RFC 3339 time like \
             2026-11-24T10:00:00Z, or a duration ago like 2h){}",
            hint()
        );
    };
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    };
    let mut commit = head;
    loop {
        if commit.time().seconds() <= secs {
            return Ok(commit);
        }
        match commit.parent(0) {
            Ok(p) => commit = p,
            Err(_) => break,
        }
    }
    let oldest = commit;
    bail!(
        "no snapshot at or before {} (the oldest here is {}){}",
        show(time),
        show(UNIX_EPOCH + Duration::from_secs(oldest.time().seconds().max(0) as u64)),
        hint()
    )
}

/// Whether `spec` could name a snapshot older than local history: a time, `HEAD~N`, or a
/// (possibly abbreviated) commit id. Anything else fails the same way everywhere.
pub fn may_be_older(spec: &str) -> bool {
    let hex = spec.len() >= 4 && spec.len() <= 40 && spec.bytes().all(|b| b.is_ascii_hexdigit());
    hex || spec.starts_with("HEAD") || parse_time(spec).is_some()
}

/// RFC 3339 for times humantime can show (from 1970 on).
pub fn show(t: SystemTime) -> String {
    if t < UNIX_EPOCH {
        return "a time before 1970".to_string();
    }
    humantime::format_rfc3339_seconds(t).to_string()
}

/// When local history was pruned, say how to reach the older snapshots.
fn pruned_hint(repo: &Repository) -> String {
    if !repo.path().join("shallow").exists() {
        return String::new();
    }
    let remote = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("sqlgit.historyRemote").ok())
        .filter(|u| !u.is_empty());
    match remote {
        Some(_) => "; older snapshots were pruned here: a time, HEAD~N or a commit id fetches \
                    them from the history remote"
            .to_string(),
        None => "; older snapshots were pruned from this repository".to_string(),
    }
}

/// A point in time from an RFC 3339 / local time, a duration ago, or `now`.
pub fn parse_time(spec: &str) -> Option<SystemTime> {
    let s = spec.trim();
    if s.eq_ignore_ascii_case("now") {
        return Some(now());
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Some(
            now()
                .checked_sub(d)
                .unwrap_or(UNIX_EPOCH - Duration::from_secs(1)),
        );
    }
    // Years before 1970 (humantime reads none): earlier than any snapshot.
    if s.len() >= 10
        && s.as_bytes()[4] == b'-'
        && let Ok(year) = s[..4].parse::<u32>()
        && year < 1970
        && (s.len() == 10 || humantime::parse_rfc3339_weak(&format!("1970{}", &s[4..])).is_ok())
    {
        return Some(UNIX_EPOCH - Duration::from_secs(1));
    }
    if s.ends_with('Z') || s.ends_with('z') {
        return humantime::parse_rfc3339_weak(&s[..s.len() - 1]).ok();
    }
    // A numeric offset: ±HH:MM or ±HHMM after the time.
    if s.len() > 16 {
        let (base, tail) = s.split_at(s.len() - 6);
        if let Some(offset) = parse_offset(tail) {
            let utc = humantime::parse_rfc3339_weak(base).ok()?;
            return shift(utc, -offset);
        }
        let (base, tail) = s.split_at(s.len() - 5);
        if let Some(offset) = parse_offset(tail) {
            let utc = humantime::parse_rfc3339_weak(base).ok()?;
            return shift(utc, -offset);
        }
    }
    // No zone: local time. Date only means midnight; minutes without seconds are fine.
    let full = match s.len() {
        10 => format!("{s} 00:00:00"),
        16 => format!("{s}:00"),
        _ => s.to_string(),
    };
    let as_utc = humantime::parse_rfc3339_weak(&full).ok()?;
    shift(as_utc, -local_offset(as_utc))
}

fn parse_offset(tail: &str) -> Option<i64> {
    let sign = match tail.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = tail[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 3600 + m * 60))
}

fn shift(t: SystemTime, secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        t.checked_add(Duration::from_secs(secs as u64))
    } else {
        t.checked_sub(Duration::from_secs((-secs) as u64))
    }
}

/// The local zone's offset from UTC (seconds east) around time `t`.
fn local_offset(t: SystemTime) -> i64 {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return 0;
    }
    tm.tm_gmtoff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(spec: &str) -> i64 {
        parse_time(spec)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(unix("2026-11-24T10:00:00Z"), 1_795_514_400);
        assert_eq!(unix("2026-11-24T12:00:00+02:00"), 1_795_514_400);
        assert_eq!(unix("2026-11-24T05:30:00-04:30"), 1_795_514_400);
        assert!(parse_time("yesterday-ish").is_none());
        assert!(parse_time("2026-13-45T10:00:00Z").is_none());
    }
}
