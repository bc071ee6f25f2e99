use super::index::lower_bound;
use super::*;

#[test]
fn lower_bound_agrees_with_a_binary_search() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in [0usize, 1, 2, 3, 31, 32, 33, 100, 5000] {
        let mut prefixes: Vec<u32> = (0..n).map(|_| next() as u32).collect();
        // Skewed and repeated values too.
        if n > 10 {
            prefixes[..n / 3].iter_mut().for_each(|p| *p %= 1000);
            prefixes[n / 2] = prefixes[n / 2 + 1];
        }
        prefixes.sort_unstable();
        let mut probes: Vec<u32> = prefixes.clone();
        probes.extend([0, 1, u32::MAX, u32::MAX - 1, 999, 1000]);
        probes.extend((0..200).map(|_| next() as u32));
        for p in probes {
            let want = prefixes.partition_point(|&v| v < p);
            assert_eq!(lower_bound(&prefixes, p), want, "n={n} p={p}");
        }
    }
}

/// `git pack-objects` of `ids` into `dir`'s object directory (deltas between similar ones,
/// naming their bases by id).
fn pack(dir: &Path, ids: &[Oid]) {
    pack_with(dir, ids, &[]);
}

/// [`pack`] with more arguments to `git pack-objects`.
fn pack_with(dir: &Path, ids: &[Oid], args: &[&str]) {
    use std::io::Write as _;
    let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
    let mut child = std::process::Command::new("git")
        .args(["pack-objects", "-q"])
        .args(args)
        .arg("objects/pack/pack")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(list.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// `count` blobs of a text that grows by `line(i)` each time (git stores most as deltas),
/// and the whole text.
fn growing_blobs(
    repo: &git2::Repository,
    count: usize,
    line: impl Fn(usize) -> String,
) -> (Vec<Oid>, String) {
    let mut text = String::new();
    let ids = (0..count)
        .map(|i| {
            text.push_str(&line(i));
            repo.blob(text.as_bytes()).unwrap()
        })
        .collect();
    (ids, text)
}

/// Objects of two packs, deltas among them, have the sizes libgit2 reads.
#[test]
fn sizes_match_libgit2_with_and_without_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let (mut ids, _) = growing_blobs(&repo, 400, |i| {
        format!("line {i} of a file that changes a little\n")
    });
    ids.push(repo.blob(&vec![7u8; 100_000]).unwrap());
    pack(dir.path(), &ids);
    // A second, smaller pack: its objects are found after a miss in the first.
    let more: Vec<Oid> = (0..50)
        .map(|i| repo.blob(format!("other {i}").as_bytes()).unwrap())
        .collect();
    pack(dir.path(), &more);
    let sizes = PackReader::open(&dir.path().join("objects"));
    assert_eq!(sizes.packs.len(), 2);
    let big = &sizes.packs[0];
    let deltas = ids
        .iter()
        .filter(|id| {
            let offset = big.offset(big.find(**id).unwrap().unwrap()).unwrap();
            let mut head = [0u8; 16];
            read_some_at(&big.pack, &mut head, offset).unwrap();
            entry_header(&head).unwrap().0 >= 6
        })
        .count();
    assert!(
        deltas > 100,
        "only {deltas} deltas: the test checks too little"
    );
    let odb = repo.odb().unwrap();
    for id in ids.iter().chain(&more) {
        let (want, _) = odb.read_header(*id).unwrap();
        assert_eq!(sizes.sizes(&[*id]).unwrap(), [Some(want as u64)], "{id}");
    }
    let absent = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
    assert_eq!(sizes.sizes(&[absent]).unwrap(), [None]);
    assert_eq!(sizes.whole_tree(absent).unwrap(), None);
    // All at once: the same, in the order asked, absent ones None.
    let mut asked: Vec<Oid> = more.iter().chain(&ids).copied().collect();
    asked.insert(3, absent);
    let together = sizes.sizes(&asked).unwrap();
    for (id, size) in asked.iter().zip(together) {
        assert_eq!([size], *sizes.sizes(&[*id]).unwrap(), "{id}");
    }
}

/// Trees packed whole read back as libgit2 reads them; a tree stored as a delta is None.
#[test]
fn whole_trees_match_libgit2() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let mut trees = Vec::new();
    let mut builder = repo.treebuilder(None).unwrap();
    for i in 0..60 {
        let blob = repo.blob(format!("chunk {i}").as_bytes()).unwrap();
        builder
            .insert(format!("{i:016x}.sql"), blob, 0o100644)
            .unwrap();
        trees.push(builder.write().unwrap());
    }
    // A tree bigger than the first read of an entry (ids do not compress).
    for i in 60..1000 {
        let blob = repo.blob(format!("chunk {i}").as_bytes()).unwrap();
        builder
            .insert(format!("{i:016x}.sql"), blob, 0o100644)
            .unwrap();
    }
    let big = builder.write().unwrap();
    pack(dir.path(), &trees);
    pack(dir.path(), &[big]); // alone in its pack: stored whole
    let packs = PackReader::open(&dir.path().join("objects"));
    let whole = read_as_libgit2(&repo, &trees, |id| packs.whole_tree(id).unwrap());
    assert!(
        whole > 0 && whole < trees.len(),
        "{whole} of {} whole",
        trees.len()
    );
}

/// Chains of offset deltas (what merging packs writes, and `git repack`) are followed to
/// their whole base: every blob and tree reads as libgit2 reads it.
#[test]
fn offset_delta_chains_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let (mut ids, _) = growing_blobs(&repo, 300, |i| format!("(row {i}, 'v'),\n"));
    let mut builder = repo.treebuilder(None).unwrap();
    for (i, &blob) in ids.clone().iter().enumerate().take(120) {
        builder
            .insert(format!("{i:05}.sql"), blob, 0o100644)
            .unwrap();
        ids.push(builder.write().unwrap());
    }
    pack_with(dir.path(), &ids, &["--delta-base-offset", "--depth=40"]);
    let packs = PackReader::open(&dir.path().join("objects"));
    let blobs = read_as_libgit2(&repo, &ids[..300], |id| packs.whole_blob(id).unwrap());
    let trees = read_as_libgit2(&repo, &ids[300..], |id| packs.whole_tree(id).unwrap());
    assert_eq!((blobs, trees), (300, 120));
    let sizes = packs.sizes(&ids).unwrap();
    assert!(sizes.iter().all(Option::is_some));
}

/// How many of `ids` `read` gives, each the content libgit2 reads.
fn read_as_libgit2(
    repo: &git2::Repository,
    ids: &[Oid],
    read: impl Fn(Oid) -> Option<Vec<u8>>,
) -> usize {
    let odb = repo.odb().unwrap();
    let read_whole = ids.iter().filter_map(|&id| Some((id, read(id)?)));
    read_whole
        .inspect(|(id, data)| assert_eq!(data, odb.read(*id).unwrap().data(), "{id}"))
        .count()
}

/// Blobs read whole (and as `None` when stored as deltas) are what libgit2 reads: growing
/// texts (deltas among them), an empty blob, random bytes (zlib stores them) and a blob of a
/// few MiB; a damaged entry is not passed off as content.
#[test]
fn whole_blobs_match_libgit2() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path()).unwrap();
    let (mut ids, text) = growing_blobs(&repo, 300, |i| {
        format!("(row {i}, 'value {}'),\n", i * 7919 % 1000)
    });
    ids.push(repo.blob(b"").unwrap());
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let noise_id = repo.blob(&noise).unwrap();
    ids.push(noise_id);
    ids.push(repo.blob(&text.repeat(300).into_bytes()).unwrap());
    pack(dir.path(), &ids);
    let packs = PackReader::open(&dir.path().join("objects"));
    let whole = read_as_libgit2(&repo, &ids, |id| packs.whole_blob(id).unwrap());
    assert!(
        whole >= 3 && whole < ids.len(),
        "{whole} of {} read whole",
        ids.len()
    );
    assert!(packs.whole_blob(noise_id).unwrap().is_some());
    let absent = Oid::from_str("0123456789012345678901234567890123456789").unwrap();
    assert_eq!(packs.whole_blob(absent).unwrap(), None);

    // Flip a byte inside the random blob's entry: never its content.
    let pack_path = std::fs::read_dir(dir.path().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    let mut bytes = std::fs::read(&pack_path).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &noise[1000..1064])
        .unwrap();
    bytes[at + 10] ^= 0x55;
    std::fs::write(&pack_path, &bytes).unwrap();
    let packs = PackReader::open(&dir.path().join("objects"));
    assert!(matches!(packs.whole_blob(noise_id), Ok(None) | Err(_)));
}
