//! WHEN expressions: which snapshot a command means. A commit id or git revision (`HEAD~3`), an
//! RFC 3339 time (`2026-11-24T10:00:00Z`, `…+02:00`, or a local `2026-11-24 10:00`; checked in
//! `stamp`), or a duration meaning "that long ago" (`2h`, `1day 3h`, `2 hours ago`), or `now`. A
//! time selects the latest snapshot at or before it. An error tells a malformed WHEN (the forms it
//! can take) from a valid one that names no snapshot here (with what pruning explains).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use git2::{Commit, ErrorCode, Oid, Repository};

use crate::store::BRANCH;

mod dated;
mod stamp;

use dated::dated_chain;

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
        let older = spec.is_some_and(may_be_older) && !e.is::<Ambiguous>();
        if older && repo.path().join("shallow").exists() {
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

/// The forms a WHEN takes, for error messages.
const FORMS: &str = "give a commit id, HEAD~N, an RFC 3339 time like 2026-11-24T10:00:00Z, a \
                     local time like 2026-11-24 10:00, a duration ago like 2h or \"2 hours ago\", \
                     or now";

/// A commit-id prefix that several snapshots start with: an error that reaching further back
/// cannot mend.
#[derive(Debug)]
pub struct Ambiguous(String);

impl std::fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Ambiguous {}

/// A time before the oldest snapshot here (`oldest`, Unix seconds): `history --since` takes it
/// as "from the first snapshot on".
#[derive(Debug)]
pub struct BeforeOldest {
    pub message: String,
    pub oldest: i64,
}

impl std::fmt::Display for BeforeOldest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BeforeOldest {}

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
    if spec.trim().is_empty() {
        bail!("empty WHEN ({FORMS})");
    }
    let hint = || hint.map(pruned_hint).unwrap_or_default();
    let rev = revision(repo, &head, spec);
    // One clock reading for the WHEN and for what counts as now.
    let now = unix_now();
    let secs = match parse_time_at(spec, now) {
        Ok(Some(secs)) => secs,
        // Not a valid time (`2026-release`): a revision if it names one.
        Err(e) => return rev.ok().flatten().ok_or(e),
        Ok(None) => match rev? {
            Some(commit) => return Ok(commit),
            None if compact_date(spec) => bail!(
                "unknown revision {spec:?}: for a date, write it as {}-{}-{} ({FORMS})",
                &spec[..4],
                &spec[4..6],
                &spec[6..8]
            ),
            None if may_be_older(spec) => bail!("unknown revision {spec:?} ({FORMS}){}", hint()),
            // Another git revision (`main~2`, `X^{tree}`) naming no snapshot commit here:
            // not a form pruning explains.
            None if is_revision(spec) => bail!("not a snapshot: {spec:?} ({FORMS})"),
            None => bail!("not a valid WHEN: {spec:?} ({FORMS})"),
        },
    };
    // A time is a time; a revision it also spells (`674d`, a commit id; a tag `2026-11-24`) is
    // never taken instead: naming another snapshot, it makes the WHEN ambiguous.
    // `now` (or `0s` ago) is the latest snapshot, even one a fast clock dated ahead of it. Other
    // times, one second ago too, keep the snapshots' own dates (they may all be ahead).
    let by_time = if secs == now {
        Ok(head)
    } else {
        at_time(repo, head, secs, hint)
    };
    match rev {
        Ok(None) => by_time,
        Ok(Some(c)) if by_time.as_ref().is_ok_and(|t| t.id() == c.id()) => Ok(c),
        rev => Err(two_readings(repo, spec, secs, &by_time, rev).into()),
    }
}

/// The latest snapshot from `head` back taken at or before `secs`; a [`BeforeOldest`] error.
fn at_time<'r>(
    repo: &'r Repository,
    head: Commit<'r>,
    secs: i64,
    hint: impl Fn() -> String,
) -> Result<Commit<'r>> {
    let chain = dated_chain(head);
    if let Some(i) = chain.iter().position(|d| d.time <= secs) {
        dated::warn_if_misdated(&chain, i, secs);
        return Ok(repo.find_commit(chain[i].id)?);
    }
    let oldest = chain.last().map_or(secs, |d| d.time);
    Err(BeforeOldest {
        message: format!(
            "no snapshot at or before {} (the oldest here is {}){}",
            show(at(secs)),
            show(at(oldest)),
            hint()
        ),
        oldest,
    }
    .into())
}

/// The error for a WHEN that is a time and also a revision naming another snapshot: both
/// readings, and how to write each so that it reads one way only.
fn two_readings(
    repo: &Repository,
    spec: &str,
    secs: i64,
    by_time: &Result<Commit<'_>>,
    rev: Result<Option<Commit<'_>>>,
) -> Ambiguous {
    let snapshot = |c: &Commit<'_>| {
        let id = crate::store::short_id(c.id());
        format!("snapshot {id} ({})", show(at(c.time().seconds())))
    };
    let as_time = match by_time {
        Ok(c) => format!("as the time {}, {}", show(at(secs)), snapshot(c)),
        Err(e) => format!("as the time {}, no snapshot ({e})", show(at(secs))),
    };
    let as_rev = match rev {
        Ok(Some(c)) => format!("as a revision, {}", snapshot(&c)),
        Ok(None) => "as a revision".to_string(),
        Err(e) => format!("as a commit id ({e})"),
    };
    let time_form = if spec.trim().eq_ignore_ascii_case("now") {
        "\"0s ago\"".to_string()
    } else if stamp::looks_like(spec) {
        format!(
            "{:?}",
            format!(
                "{} 00:00{}",
                &spec[..10.min(spec.len())],
                &spec[10.min(spec.len())..]
            )
        )
    } else {
        format!("{:?}", format!("{} ago", spec.trim()))
    };
    let rev_form = match repo.resolve_reference_from_short_name(spec) {
        Ok(r) if !is_hex(spec) => format!("{:?}", r.name().unwrap_or(spec)),
        _ => "more digits of the commit id".to_string(),
    };
    Ambiguous(format!(
        "WHEN {spec:?} reads two ways: {as_time}; {as_rev}: write {time_form} for the time, or \
         {rev_form} for the revision"
    ))
}

/// Whether `spec` is a time that resolved from `head` back to `picked` only through the oldest
/// snapshot's own date: `picked` is that snapshot, or counts as taken at its date (a newer one
/// dated before it). Where history was cut at that snapshot, its parent (dated after it, by a
/// slow clock) may move it later and change the answer. `now` is always `head`.
pub fn time_rests_on_oldest(head: Commit<'_>, spec: &str, picked: Oid) -> bool {
    let now = unix_now();
    let Ok(Some(secs)) = parse_time_at(spec, now) else {
        return false;
    };
    if secs == now {
        return false;
    }
    let chain = dated_chain(head);
    let Some(oldest) = chain.last().map(|d| d.time) else {
        return false;
    };
    chain.iter().any(|d| d.id == picked && d.time == oldest)
}

/// Whether `spec` is an abbreviated commit id (4 to 39 hex digits).
pub fn is_short_id(spec: &str) -> bool {
    is_hex(spec) && spec.len() < 40
}

/// The commit `spec` names as a git revision (`HEAD` being `head`), if any. A commit-id prefix
/// that other objects (chunks, folders) share too names the one snapshot that starts with it.
fn revision<'r>(repo: &'r Repository, head: &Commit<'r>, spec: &str) -> Result<Option<Commit<'r>>> {
    // HEAD means the latest snapshot, also in a plain clone whose HEAD names another branch,
    // and in the history cache, whose main is the remote's.
    let revision = match spec.strip_prefix("HEAD") {
        Some(rest) => format!("{}{rest}", head.id()),
        None => spec.to_string(),
    };
    match repo.revparse_single(&revision) {
        Ok(obj) => Ok(obj.peel_to_commit().ok()),
        Err(e) if e.code() == ErrorCode::Ambiguous && is_hex(spec) => by_prefix(head, spec),
        Err(_) => Ok(None),
    }
}

/// The snapshot from `head` back whose id starts with `prefix`; an [`Ambiguous`] error naming
/// them when several do.
fn by_prefix<'r>(head: &Commit<'r>, prefix: &str) -> Result<Option<Commit<'r>>> {
    let prefix = prefix.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut next = Some(head.clone());
    while let Some(commit) = next {
        if commit.id().to_string().starts_with(&prefix) {
            found.push(commit.clone());
        }
        next = commit.parent(0).ok();
    }
    if found.len() < 2 {
        return Ok(found.pop());
    }
    let digits = (prefix.len() + 4).clamp(12, 40);
    let mut shown: Vec<String> = found
        .iter()
        .take(10)
        .map(|c| {
            let time = show(at(c.time().seconds()));
            format!("{} ({time})", &c.id().to_string()[..digits])
        })
        .collect();
    if found.len() > 10 {
        shown.push(format!("and {} more", found.len() - 10));
    }
    Err(Ambiguous(format!(
        "ambiguous commit id {prefix:?}: {} snapshots start with it: {}; give more digits",
        found.len(),
        shown.join(", ")
    ))
    .into())
}

fn is_hex(spec: &str) -> bool {
    (4..=40).contains(&spec.len()) && spec.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `spec` looks like a compact date (`20261124`), which WHEN does not take (eight
/// digits can be a commit id).
fn compact_date(spec: &str) -> bool {
    let b = spec.as_bytes();
    b.len() == 8
        && b.iter().all(u8::is_ascii_digit)
        && matches!(b[0], b'1' | b'2')
        && matches!(spec[4..6].parse::<u32>(), Ok(1..=12))
        && matches!(spec[6..8].parse::<u32>(), Ok(1..=31))
}

/// Whether `spec` has the form of a revision (a commit id, `HEAD~N`, `X~N`, `X^`).
fn is_revision(spec: &str) -> bool {
    is_hex(spec) || spec.starts_with("HEAD") || spec.contains(['~', '^'])
}

/// Whether `spec` could name a snapshot older than local history: a time, `HEAD~N` (also
/// `HEAD^`, `HEAD~2^`: steps back from the latest), or a (possibly abbreviated) commit id.
/// Anything else fails the same way everywhere.
pub fn may_be_older(spec: &str) -> bool {
    is_hex(spec) || is_head_back(spec) || matches!(parse_time(spec), Ok(Some(_)))
}

/// Whether `spec` is `HEAD` followed by steps back only (`~`, `~N`, `^`, `^N`).
fn is_head_back(spec: &str) -> bool {
    let Some(steps) = spec.strip_prefix("HEAD") else {
        return false;
    };
    let mut bytes = steps.bytes().peekable();
    while let Some(b) = bytes.next() {
        if b != b'~' && b != b'^' {
            return false;
        }
        while bytes.next_if(u8::is_ascii_digit).is_some() {}
    }
    true
}

/// Unix seconds as a [`SystemTime`].
fn at(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
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

/// Unix seconds of a time: RFC 3339 or local (see [`stamp`]), a duration ago (`2h`, `2 hours
/// ago`), or `now`. `None`: not a time at all; an error: a timestamp that is malformed, or a
/// local time daylight saving time skips or repeats.
pub fn parse_time(spec: &str) -> Result<Option<i64>> {
    parse_time_at(spec, unix_now())
}

/// [`parse_time`] with the clock reading `now` (Unix seconds): `now` is exactly it, `2h` is
/// two hours before it.
fn parse_time_at(spec: &str, now: i64) -> Result<Option<i64>> {
    let s = spec.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(Some(now));
    }
    let ago = s.len() > 4
        && s.get(s.len() - 4..)
            .is_some_and(|t| t.eq_ignore_ascii_case(" ago"));
    let duration = if ago { s[..s.len() - 4].trim_end() } else { s };
    if let Ok(d) = humantime::parse_duration(&units_lowered(duration)) {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        return Ok(Some(now.saturating_sub(secs)));
    }
    if stamp::looks_like(s) {
        return stamp::parse(s).map(Some);
    }
    Ok(None)
}

/// `duration` with each unit in lower case (`2H`, `2 Hours Ago`), except that `M` alone is
/// months (`m` minutes), whatever case the other units are in.
fn units_lowered(duration: &str) -> String {
    let mut out = String::with_capacity(duration.len());
    let mut unit = String::new();
    for c in duration.chars().chain(['\0']) {
        if c.is_alphabetic() {
            unit.push(c);
            continue;
        }
        if unit == "M" {
            out.push('M');
        } else {
            out.push_str(&unit.to_lowercase());
        }
        unit.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(spec: &str) -> i64 {
        parse_time(spec).unwrap().unwrap()
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(unix("2026-11-24T10:00:00Z"), 1_795_514_400);
        assert_eq!(unix("2026-11-24T12:00:00+02:00"), 1_795_514_400);
        assert_eq!(unix("2026-11-24T05:30:00-04:30"), 1_795_514_400);
        assert!(parse_time("yesterday-ish").unwrap().is_none());
        assert!(parse_time("2026-13-45T10:00:00Z").is_err());
    }

    #[test]
    fn natural_forms() {
        assert_eq!(unix("2026-11-24t10:00:00z"), 1_795_514_400);
        let now = unix_now();
        assert_eq!(unix("2 hours ago"), now - 7200);
        assert_eq!(unix("2h AGO"), now - 7200);
        assert_eq!(unix("2H"), now - 7200);
        assert_eq!(unix("2 Hours Ago"), now - 7200);
        assert_eq!(unix("1Day 3H"), now - 97_200);
        assert_eq!(unix("2m"), now - 120);
        // `M` is months whatever case the other units are in; other units in any case.
        let month = 2_630_016;
        for (spec, secs) in [
            ("1M", month),
            ("1M 2h", month + 7200),
            ("1M 2H", month + 7200),
            ("2H 1M", month + 7200),
            ("1000H 1M", month + 3_600_000),
            ("1M 2H AGO", month + 7200),
            ("1Min 2H", 7260),
            ("1MIN", 60),
            ("2M 3m", 2 * month + 180),
            ("1 Month 1S", month + 1),
            ("1MONTHS", month),
            ("1Y 1M", 31_557_600 + month),
            ("1W 1D 1M", 8 * 86_400 + month),
            ("1MS", 0),
        ] {
            assert_eq!(unix(spec), now - secs, "{spec}");
        }
        assert!(compact_date("20261124") && !compact_date("2026112a") && !compact_date("20261324"));
        assert_eq!(unix("1day 3h ago"), now - 97_200);
        assert!(parse_time("ago").unwrap().is_none());
        assert!(parse_time("2 hours ago ago").unwrap().is_none());
    }

    #[test]
    fn malformed_times_are_errors_not_other_times() {
        for bad in [
            "2026-02-30T10:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-11-24T10:00:00+25:00",
            "2026-11-24T10:00:00+05:75",
            "2026-11-24T10:00:00Z garbage",
            "2026-11-24 10:00 garbage",
        ] {
            let e = parse_time(bad).unwrap_err().to_string();
            assert!(e.starts_with("not a valid time"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_steps_back_from_head_and_commit_ids_may_name_pruned_snapshots() {
        for spec in [
            "HEAD", "HEAD~", "HEAD~12", "HEAD^", "HEAD^1~3", "87df7fdc", "2h",
        ] {
            assert!(may_be_older(spec), "{spec}");
        }
        for spec in [
            "main~2",
            "87df7fdc3ca4^{tree}",
            "HEAD^{tree}",
            "HEAD:x",
            "HEAD@{1}",
        ] {
            assert!(!may_be_older(spec), "{spec}");
        }
    }
}
