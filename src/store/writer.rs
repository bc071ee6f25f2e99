//! Turns a dump into git objects on a second thread: the dumping thread reads SQLite and
//! formats SQL while this one hashes, compresses and packs — both cores busy. Only objects the
//! repository does not already have are compressed and written.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};
use git2::{Odb, Oid, Repository};

use super::pack::{Compressor, Kind, PackWriter, object_id};
use super::packindex::PackIndex;
use super::packread::PackReader;
use super::tree::{ObjectStore, TreeBuilder};
use crate::bounded::{self, Receiver, Sender};
use crate::dump::{Sink, buffers};

/// Files travel in batches: one channel hand-over per ~256 KiB, not per ~4 KiB chunk.
const BATCH_BYTES: usize = 256 << 10;
/// What may wait for the writer thread: 8 batches, and 2 MiB unless one batch alone (a big
/// row's file) is bigger — a run of big rows then queues one, not 8.
const QUEUED_BATCHES: usize = 8;
const QUEUED_BYTES: usize = 2 << 20;

/// What goes at a path: new file content, or an object the repository already has.
enum Payload {
    Data(Vec<u8>),
    Blob(Oid),
    Dir(Oid),
}

/// Files for the writer thread, handed over together: their paths (names joined by NUL, which
/// no tree entry name holds) all in one string, so a batch of a thousand paths is two
/// allocations, not a thousand freed by another thread.
#[derive(Default)]
struct Batch {
    paths: String,
    /// Each file's path's end in `paths`, and what it holds.
    files: Vec<(usize, Payload)>,
}

impl Batch {
    fn push(&mut self, path: &[&str], payload: Payload) {
        for (i, part) in path.iter().enumerate() {
            if i > 0 {
                self.paths.push('\0');
            }
            self.paths.push_str(part);
        }
        self.files.push((self.paths.len(), payload));
    }

    /// An empty batch with room for one like this.
    fn like(&self) -> Batch {
        Batch {
            paths: String::with_capacity(self.paths.len()),
            files: Vec::with_capacity(self.files.len()),
        }
    }
}

enum Msg {
    Files(Batch),
    Finish {
        folder: String,
        parent_tree: Option<Oid>,
    },
}

/// What the writer produced.
pub struct Written {
    /// The new root tree: the parent's other folders plus this database's folder.
    pub root_tree: Oid,
    /// Size of the pack added to the repository (0: nothing new).
    pub pack_bytes: u64,
    pub new_objects: usize,
}

/// A [`Sink`] that feeds the writer thread.
pub struct SnapshotWriter {
    tx: Option<Sender<Msg>>,
    batch: Batch,
    batch_bytes: usize,
    handle: Option<JoinHandle<Result<Written>>>,
}

impl SnapshotWriter {
    /// Start the writer thread on the repository at `git_dir`.
    /// A writer into the repository at `git_dir`; `packs`: its packs, to skip what they hold
    /// (None: ask libgit2, loose objects included).
    pub fn start(git_dir: &Path, packs: Option<Arc<PackReader>>) -> SnapshotWriter {
        let (tx, rx) = bounded::channel(QUEUED_BATCHES, QUEUED_BYTES);
        let dir = git_dir.to_path_buf();
        crate::failpoint::panic_at("spawn-writer");
        let handle = std::thread::spawn(move || write_objects(dir, packs, rx));
        SnapshotWriter {
            tx: Some(tx),
            batch: Batch::default(),
            batch_bytes: 0,
            handle: Some(handle),
        }
    }

    /// Write the remaining trees and seal the pack.
    pub fn finish(mut self, folder: &str, parent_tree: Option<Oid>) -> Result<Written> {
        self.send_batch()?;
        let msg = Msg::Finish {
            folder: folder.to_string(),
            parent_tree,
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(msg, 0);
        }
        self.join()
    }

    fn join(&mut self) -> Result<Written> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|payload| crate::panics::joined("object writer", payload))?,
            None => Err(anyhow!("object writer already finished")),
        }
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Without a Finish message the writer discards its pack.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl SnapshotWriter {
    fn send_batch(&mut self) -> Result<()> {
        if self.batch.files.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.batch_bytes);
        let next = self.batch.like();
        let msg = Msg::Files(std::mem::replace(&mut self.batch, next));
        let sent = self.tx.as_ref().map(|tx| tx.send(msg, bytes).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The writer stopped early: its error is the one to report.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(anyhow!("internal error: object writer stopped")),
        }
    }
}

impl Sink for SnapshotWriter {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        self.batch_bytes += data.len();
        self.batch.push(path, Payload::Data(data));
        if self.batch_bytes >= BATCH_BYTES {
            self.send_batch()?;
        }
        Ok(())
    }

    fn reuse(&mut self, path: &[&str], oid: Oid, dir: bool, _bytes: u64) -> Result<()> {
        // A batch of ~1,000 paths: what waits in the channel stays a few MiB.
        self.batch_bytes += 256;
        let payload = if dir {
            Payload::Dir(oid)
        } else {
            Payload::Blob(oid)
        };
        self.batch.push(path, payload);
        if self.batch_bytes >= BATCH_BYTES {
            self.send_batch()?;
        }
        Ok(())
    }
}

/// Hashes objects, skips those already stored, and hands new ones to the compressors.
struct Objects<'a> {
    odb: Odb<'a>,
    /// The packs that were there when the run began (an object also stored loose is written
    /// again: two copies, no harm).
    packs: Option<Arc<PackReader>>,
    /// The objects of the pack being written (shared with the pack writer).
    index: Arc<Mutex<PackIndex>>,
    pool: Option<CompressPool>,
}

impl ObjectStore for Objects<'_> {
    fn put(&mut self, kind: Kind, data: Vec<u8>) -> Result<Oid> {
        let oid = object_id(kind, &data);
        let known = self.index.lock().expect("pack index").contains(oid)?
            || match &self.packs {
                Some(packs) => packs.contains(oid)?,
                None => self.odb.exists_ext(oid, git2::OdbLookupFlags::NO_REFRESH),
            };
        if !known {
            self.index.lock().expect("pack index").reserve(oid)?;
            self.pool
                .as_mut()
                .expect("pool open")
                .send(kind, oid, data)?;
        } else {
            buffers::give(data);
        }
        Ok(oid)
    }
}

/// Objects handed to the compressors together (one hand-over, one pack lock per batch).
type Job = Vec<(Kind, Oid, Vec<u8>)>;
/// A job ends at 64 objects or 1 MiB, whichever comes first: a worker holds a job's objects
/// and their compressed entries together, so a job of big rows holds one or two of them.
const JOB_OBJECTS: usize = 64;
const JOB_BYTES: usize = 1 << 20;
/// Jobs waiting for a worker: 4, and 2 MiB unless one job alone is bigger.
const QUEUED_JOBS: usize = 4;
const QUEUED_JOB_BYTES: usize = 2 << 20;

/// Compression threads: the dump keeps one core busy, compressing a big first snapshot needs
/// more than the other one.
struct CompressPool {
    tx: Option<Sender<Job>>,
    batch: Job,
    batch_bytes: usize,
    workers: Vec<JoinHandle<()>>,
    pack: Arc<Mutex<PackWriter>>,
    error: Arc<Mutex<Option<anyhow::Error>>>,
}

impl CompressPool {
    fn new(pack: PackWriter, threads: usize) -> CompressPool {
        let (tx, rx) = bounded::channel::<Job>(QUEUED_JOBS, QUEUED_JOB_BYTES);
        let rx = Arc::new(Mutex::new(rx));
        let pack = Arc::new(Mutex::new(pack));
        let error: Arc<Mutex<Option<anyhow::Error>>> = Arc::new(Mutex::new(None));
        let workers = (0..threads)
            .map(|_| {
                let (rx, pack, error) = (rx.clone(), pack.clone(), error.clone());
                std::thread::spawn(move || {
                    let mut z = Compressor::default();
                    loop {
                        let job = rx.lock().expect("queue").recv();
                        let Ok(job) = job else { break };
                        let result = compress_job(&mut z, job, &pack);
                        if let Err(e) = result {
                            error.lock().expect("error").get_or_insert(e);
                            break;
                        }
                    }
                })
            })
            .collect();
        CompressPool {
            tx: Some(tx),
            batch: Vec::with_capacity(JOB_OBJECTS),
            batch_bytes: 0,
            workers,
            pack,
            error,
        }
    }

    fn send(&mut self, kind: Kind, oid: Oid, data: Vec<u8>) -> Result<()> {
        self.batch_bytes += data.len();
        self.batch.push((kind, oid, data));
        if self.batch.len() >= JOB_OBJECTS || self.batch_bytes >= JOB_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.batch_bytes);
        let job = std::mem::replace(&mut self.batch, Vec::with_capacity(JOB_OBJECTS));
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(job, bytes).is_ok());
        if !sent {
            if let Some(e) = self.error.lock().expect("error").take() {
                return Err(e);
            }
            return Err(anyhow!("internal error: compressors stopped"));
        }
        Ok(())
    }

    /// Wait for the compressors; the pack, unless one failed.
    fn finish(mut self) -> Result<PackWriter> {
        let flushed = self.flush();
        let CompressPool {
            tx,
            workers,
            pack,
            error,
            ..
        } = self;
        drop(tx);
        for w in workers {
            let _ = w.join();
        }
        let pack = Arc::try_unwrap(pack)
            .map_err(|_| anyhow!("internal error: pack still shared"))?
            .into_inner()
            .expect("pack");
        let failed = error.lock().expect("error").take();
        if let Some(e) = failed.or(flushed.err()) {
            pack.discard();
            return Err(e);
        }
        Ok(pack)
    }
}

/// Compress a batch of objects, then append them to the pack under one lock.
fn compress_job(z: &mut Compressor, job: Job, pack: &Mutex<PackWriter>) -> Result<()> {
    let mut entries = Vec::with_capacity(job.len());
    let mut used = Vec::with_capacity(job.len());
    // The fast level throughout: measured on scattered-change runs, level 6 saved under 1% of
    // the repository's growth (tree entries are object ids) for 4% of the run's time.
    for (kind, oid, data) in job {
        entries.push((oid, z.entry(kind, &data, true)?));
        used.push(data);
    }
    buffers::give_all(used);
    let mut pack = pack.lock().expect("pack");
    for (oid, entry) in entries {
        pack.append(oid, &entry)?;
    }
    Ok(())
}

fn write_objects(
    git_dir: PathBuf,
    packs: Option<Arc<PackReader>>,
    rx: Receiver<Msg>,
) -> Result<Written> {
    let repo = Repository::open_bare(&git_dir).context("open repository")?;
    let pack = PackWriter::new(&git_dir.join("objects"))?;
    let mut objects = Objects {
        odb: repo.odb()?,
        packs,
        index: pack.index(),
        pool: Some(CompressPool::new(pack, 2)),
    };
    let mut tree = TreeBuilder::new();
    while let Ok(msg) = rx.recv() {
        let result = match msg {
            Msg::Files(Batch { paths, files }) => {
                let (mut start, mut path) = (0, Vec::with_capacity(12));
                files.into_iter().try_for_each(|(end, payload)| {
                    path.clear();
                    path.extend(paths[start..end].split('\0'));
                    start = end;
                    match payload {
                        Payload::Data(data) => {
                            let oid = objects.put(Kind::Blob, data)?;
                            tree.add_file(&mut objects, &path, oid)
                        }
                        Payload::Blob(oid) => tree.add_file(&mut objects, &path, oid),
                        Payload::Dir(oid) => tree.add_dir(&mut objects, &path, oid),
                    }
                })
            }
            Msg::Finish {
                folder,
                parent_tree,
            } => {
                let root = finish(&repo, &mut objects, tree, &folder, parent_tree);
                let pack = objects.pool.take().expect("pool open").finish()?;
                drop(objects); // the pack index is the pack's alone again
                let new_objects = pack.len();
                return match root {
                    Ok(root_tree) => Ok(Written {
                        root_tree,
                        pack_bytes: pack.finish().context("write pack")?,
                        new_objects,
                    }),
                    Err(e) => {
                        pack.discard();
                        Err(e)
                    }
                };
            }
        };
        if let Err(e) = result {
            if let Ok(pack) = objects.pool.take().expect("pool open").finish() {
                pack.discard();
            }
            return Err(e.context("write snapshot objects"));
        }
    }
    if let Ok(pack) = objects.pool.take().expect("pool open").finish() {
        pack.discard();
    }
    Err(anyhow!("snapshot abandoned"))
}

/// Close the database's folder and build the root: the parent's other entries plus it.
fn finish(
    repo: &Repository,
    objects: &mut Objects,
    tree: TreeBuilder,
    folder: &str,
    parent_tree: Option<Oid>,
) -> Result<Oid> {
    let db_tree = tree.finish(objects)?;
    let mut entries: Vec<(String, Oid)> = vec![(folder.to_string(), db_tree)];
    if let Some(parent) = parent_tree {
        for e in repo.find_tree(parent)?.iter() {
            let name = e.name().unwrap_or_default().to_string();
            if name != folder && e.kind() == Some(git2::ObjectType::Tree) {
                entries.push((name, e.id()));
            }
        }
    }
    entries.sort_by(|a, b| format!("{}/", a.0).cmp(&format!("{}/", b.0)));
    let mut root = TreeBuilder::new();
    for (name, oid) in entries {
        root.add_root_tree(objects, &name, oid)?;
    }
    root.finish(objects)
}
