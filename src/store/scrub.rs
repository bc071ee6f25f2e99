//! The scrub: finds pack entries that bit rot damaged, so that a run reading the databases whole
//! stores those objects again, and then removes the damaged copies.
//!
//! The object writer skips every object whose id a pack already lists (that is what makes an
//! unchanged chunk free), so without this a damaged stored copy would be reused by every later
//! snapshot, forever, while every run reported success. A run that reads everything (`--full`,
//! the daily check) first checks each entry of each pack against the CRC-32 its `.idx` records:
//! one sequential read of every pack through a 1 MiB buffer, 16 bytes of memory an entry of the
//! pack being read. Its writers then leave the damaged entries out of what they trust
//! ([`PackReader::excluding`]) and write fresh copies of every damaged object the databases still
//! produce. After the commit, each damaged pack is rewritten without its damaged entries:
//! libgit2 reads the first pack that lists an id, so the damaged copy must go for the fresh one
//! to be read. A damaged object no database produces any more (only older snapshots used it) is
//! lost locally; the run reports it and fails.

mod check;
mod deltas;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{Oid, Repository};

use super::Store;
use super::copy::PackCopy;
use super::garbage::remove_pack;
use super::pack::{self, read_index};
use super::packread::PackReader;
use crate::error::error_line;
pub use check::damaged;
use check::{BLOCK, check_pack};

/// The damaged entries of a repository's packs.
#[derive(Debug, Default)]
pub struct Damage {
    pub packs: Vec<DamagedPack>,
    /// Indexes that could not be trusted and were rebuilt from their packs.
    pub rebuilt: Vec<PathBuf>,
}

/// One pack with damage.
#[derive(Debug)]
pub struct DamagedPack {
    /// The pack's index (`objects/pack/pack-….idx`).
    pub idx: PathBuf,
    /// Objects whose entries are damaged or cannot be read (or are deltas of such a one).
    pub ids: Vec<Oid>,
    /// Those of `ids` whose own bytes are intact: deltas of a damaged base, rebuilt once the
    /// base is stored again (see `deltas`).
    pub dependents: Vec<Oid>,
    /// The pack's header or trailer is damaged: git cannot open the pack at all, although its
    /// other entries are intact.
    pub framing: bool,
}

/// A run's scrub: what it found before writing, what it did after.
#[derive(Default)]
pub struct Scrub {
    damage: Damage,
    problems: Vec<String>,
}

/// What a run's scrub means for its report.
#[derive(Debug, Default)]
pub struct Findings {
    /// What was repaired (warnings).
    pub repaired: Vec<String>,
    /// Damaged objects no database produced again: gone from this repository.
    pub lost: usize,
    /// What could not be checked or repaired (failures).
    pub problems: Vec<String>,
    /// Packs were rewritten, removed or replaced: a repository opened before may still read
    /// the damaged ones.
    pub packs_changed: bool,
}

impl Scrub {
    /// Scrub the packs under `objects_dir`. A failure to check is kept for the report: the
    /// snapshot is still taken.
    pub fn packs(objects_dir: &Path) -> Scrub {
        match damaged(objects_dir) {
            Ok(damage) => Scrub {
                damage,
                problems: Vec::new(),
            },
            Err(e) => Scrub {
                damage: Damage::default(),
                problems: vec![format!("scrub: {}", error_line(&e))],
            },
        }
    }

    /// What was found damaged.
    pub fn damage(&self) -> &Damage {
        &self.damage
    }

    /// After the run's objects are written: count the damaged objects written again, and
    /// rewrite the damaged packs without their damaged entries.
    pub fn repair(self, store: &Store) -> Findings {
        let mut findings = Findings {
            problems: self.problems,
            ..Findings::default()
        };
        for idx in &self.damage.rebuilt {
            let name = idx.file_stem().unwrap_or_default().to_string_lossy();
            findings.repaired.push(format!(
                "rebuilt the index of pack {name} from the pack: it was damaged (kept in {}/)",
                super::headrepair::DAMAGED_DIR
            ));
        }
        if self.damage.packs.is_empty() {
            return findings;
        }
        // A pack this run wrote has a damaged pack's name when it holds the same objects in
        // the same order: it replaced the damaged one, which is then whole again.
        let mut buf = vec![0u8; BLOCK];
        let mut whole = Vec::new();
        for pack in &self.damage.packs {
            match check_pack(&pack.idx, &mut buf) {
                Ok(none) => whole.push(none.is_none()),
                // Not read again: nothing is rewritten on the strength of a read that failed.
                Err(e) => {
                    let line = format!("repair damaged packs: {}", error_line(&e));
                    findings.problems.push(line);
                    return findings;
                }
            }
        }
        let mut whole = whole.into_iter();
        let (replaced, damaged): (Vec<_>, Vec<_>) =
            (self.damage.packs.into_iter()).partition(|_| whole.next().unwrap_or(false));
        let damage = Damage {
            packs: damaged,
            rebuilt: Vec::new(),
        };
        let objects = store.objects_dir();
        let now = PackReader::open(&objects).excluding(&damage);
        let mut again = Vec::new();
        let mut missing = Vec::new();
        for pack in &damage.packs {
            let n = pack
                .ids
                .iter()
                .filter(|id| stored(&now, &objects, **id))
                .count();
            missing.push(pack.ids.len() - n);
            again.push(n);
        }
        findings.packs_changed = true;
        let rebuilt = match rewrite(&store.repo, &objects, &damage.packs, &now) {
            Ok(rebuilt) => rebuilt,
            Err(e) => {
                let line = format!("repair damaged packs: {}", error_line(&e));
                findings.problems.push(line);
                return findings;
            }
        };
        drop(now);
        for (i, n) in rebuilt.into_iter().enumerate() {
            findings.lost += missing[i] - n;
            again[i] += n;
        }
        again.extend(replaced.iter().map(|p| p.ids.len()));
        for (pack, n) in damage.packs.iter().chain(&replaced).zip(again) {
            let name = pack.idx.file_stem().unwrap_or_default().to_string_lossy();
            if n > 0 {
                findings.repaired.push(format!(
                    "repaired {n} damaged object{} in pack {name} (written again from the \
                     database, or rebuilt from their intact deltas)",
                    if n == 1 { "" } else { "s" }
                ));
            }
            if pack.framing {
                findings.repaired.push(format!(
                    "rewrote pack {name}: its header or trailer was damaged (git could not open it)"
                ));
            }
        }
        findings
    }
}

/// Check every pack and rewrite the damaged ones without their damaged entries, before a run
/// (see `headrepair`): returns the ids left out. Objects a database still produces are written
/// again by the run that follows, which reads every database whole.
pub fn leave_out_damaged(store: &Store) -> Result<Vec<Oid>> {
    let damage = damaged(&store.objects_dir())?;
    if damage.packs.is_empty() {
        return Ok(Vec::new());
    }
    let objects = store.objects_dir();
    let now = PackReader::open(&objects).excluding(&damage);
    rewrite(&store.repo, &objects, &damage.packs, &now)?;
    Ok(damage.packs.iter().flat_map(|p| p.ids.clone()).collect())
}

/// Whether the run stored `id` again: in a pack `fresh` reads (the damaged entries left out), or
/// loose.
fn stored(fresh: &PackReader, objects: &Path, id: Oid) -> bool {
    fresh.contains(id).unwrap_or(false) || super::loose_path(objects, id).exists()
}

/// Copy every entry of `packs` but the damaged ones into one new pack, with the deltas of
/// damaged bases that the run stored again rebuilt whole; then delete them. Returns how many
/// were rebuilt, per pack.
fn rewrite(
    repo: &Repository,
    objects: &Path,
    packs: &[DamagedPack],
    fresh: &PackReader,
) -> Result<Vec<usize>> {
    // Every object is checked against copying it twice (these packs are few and small).
    let mut every = HashSet::new();
    for pack in packs {
        every.extend(
            read_index(&pack.idx)
                .unwrap_or_default()
                .into_iter()
                .map(|(id, _)| id),
        );
        every.extend(pack.dependents.iter().copied());
    }
    let mut out = PackCopy::new(repo, objects, Vec::new(), every)?;
    let mut rebuilt = Vec::new();
    for pack in packs {
        let damaged: HashSet<Oid> = pack.ids.iter().copied().collect();
        let copy = read_index(&pack.idx).and_then(|index| {
            if index.iter().all(|(id, _)| damaged.contains(id)) {
                return Ok(()); // nothing left to copy (the pack may be gone)
            }
            let pack_path = pack.idx.with_extension("pack");
            out.pack(&pack_path, index, &|id: &Oid| !damaged.contains(id))
        });
        let again = copy.and_then(|()| rebuild_dependents(pack, objects, fresh, &mut out));
        match again {
            Ok(n) => rebuilt.push(n),
            Err(e) => {
                out.discard();
                return Err(e);
            }
        }
    }
    let (_, name) = out.finish().context("write pack")?;
    for pack in packs {
        // A copy of all of a pack (its header or trailer was damaged) has its name.
        if name.as_deref() != pack.idx.file_stem().and_then(|s| s.to_str()) {
            remove_pack(&pack.idx)?;
        }
    }
    Ok(rebuilt)
}

/// Rebuild whole, into `out`, the intact deltas of `pack` whose damaged base the run stored
/// again (a delta that cannot be rebuilt stays lost). Returns how many.
fn rebuild_dependents(
    pack: &DamagedPack,
    objects: &Path,
    fresh: &PackReader,
    out: &mut PackCopy,
) -> Result<usize> {
    let todo: Vec<Oid> = (pack.dependents.iter().copied())
        .filter(|id| !stored(fresh, objects, *id) && !out.holds(id))
        .collect();
    if todo.is_empty() {
        return Ok(0);
    }
    let dependents: HashSet<Oid> = pack.dependents.iter().copied().collect();
    let damaged = |id: Oid| pack.ids.contains(&id) && !dependents.contains(&id);
    let delta_pack = deltas::DeltaPack::open(&pack.idx)?;
    let mut n = 0;
    for id in todo {
        let rebuilt = match delta_pack.rebuild(id, &damaged, fresh) {
            // A read that failed is not a delta that cannot be rebuilt: stop, remove nothing.
            Err(e) if !check::is_damage(&e) => return Err(e.context("rebuild a delta")),
            rebuilt => rebuilt,
        };
        if let Ok((kind, data)) = rebuilt
            && pack::object_id(kind, &data) == id
        {
            out.add(id, kind, &data)?;
            n += 1;
        }
    }
    Ok(n)
}
