use super::*;
use crate::store::pack::{Compressor, Kind, PackWriter, object_id, read_index};
use crate::store::packread::PackReader;

/// A pack of `blobs` written by [`PackWriter`] into a fresh object directory.
fn tiny_pack(blobs: &[&[u8]]) -> (tempfile::TempDir, Vec<Oid>) {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("objects");
    let mut out = PackWriter::new(&objects).unwrap();
    let mut z = Compressor::default();
    let ids: Vec<Oid> = blobs
        .iter()
        .map(|data| {
            let id = object_id(Kind::Blob, data);
            out.append(id, &z.entry(Kind::Blob, data, false).unwrap())
                .unwrap();
            id
        })
        .collect();
    out.finish().unwrap();
    (dir, ids)
}

fn only(dir: &Path, ext: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// Flip one bit of `path` at `at`.
fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_bit_names_its_entry_and_only_it() {
    let blobs: [&[u8]; 3] = [b"first blob", &[7u8; 5000], b"third blob, the last entry"];
    let (dir, ids) = tiny_pack(&blobs);
    let objects = dir.path().join("objects");
    assert!(damaged(&objects).unwrap().packs.is_empty());

    let pack = only(dir.path(), "pack");
    let offsets = read_index(&only(dir.path(), "idx")).unwrap();
    let at = |id: Oid| offsets.iter().find(|(i, _)| *i == id).unwrap().1 as usize;
    flip(&pack, at(ids[1]) + 3);
    let damage = damaged(&objects).unwrap();
    assert_eq!(damage.packs.len(), 1);
    assert_eq!(damage.packs[0].ids, [ids[1]]);
    assert!(!damage.packs[0].framing);

    // The last entry ends at the trailer.
    let len = std::fs::metadata(&pack).unwrap().len() as usize;
    flip(&pack, len - 21);
    let mut found = damaged(&objects).unwrap().packs.remove(0).ids;
    found.sort();
    let mut want = vec![ids[1], ids[2]];
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn a_damaged_index_of_a_whole_pack_is_rebuilt_from_it() {
    let (dir, ids) = tiny_pack(&[b"one", b"two", b"three"]);
    let objects = dir.path().join("objects");
    let idx = only(dir.path(), "idx");
    let intact = std::fs::read(&idx).unwrap();
    flip(&idx, HEADER as usize + 5);
    let damaged_bytes = std::fs::read(&idx).unwrap();
    let damage = damaged(&objects).unwrap();
    assert!(damage.packs.is_empty(), "{:?}", damage.packs);
    assert_eq!(damage.rebuilt, vec![idx.clone()]);
    assert_eq!(std::fs::read(&idx).unwrap(), intact);
    let kept = dir
        .path()
        .join("sqlgit-damaged")
        .join(idx.file_name().unwrap());
    assert_eq!(std::fs::read(kept).unwrap(), damaged_bytes);
    assert_eq!(read_index(&idx).unwrap().len(), ids.len());
    // Nothing else is left in the pack folder.
    assert_eq!(std::fs::read_dir(objects.join("pack")).unwrap().count(), 2);
}

#[test]
fn a_truncated_pack_or_a_damaged_trailer_is_found() {
    let (dir, ids) = tiny_pack(&[b"one", b"two", b"three"]);
    let objects = dir.path().join("objects");
    let pack = only(dir.path(), "pack");
    let len = std::fs::metadata(&pack).unwrap().len() as usize;
    flip(&pack, len - 1);
    let damage = damaged(&objects).unwrap();
    assert!(damage.packs[0].framing && damage.packs[0].ids.is_empty());

    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..len - 30]).unwrap();
    let damage = damaged(&objects).unwrap();
    assert!(damage.packs[0].framing);
    assert!(!damage.packs[0].ids.is_empty() && damage.packs[0].ids.len() <= ids.len());

    // A damaged index is not trusted to judge its pack.
    flip(&only(dir.path(), "idx"), HEADER as usize + 5);
    let e = format!("{:#}", damaged(&objects).unwrap_err());
    assert!(
        e.contains("checksum") && e.contains("rebuild it: git index-pack"),
        "{e}"
    );
}

#[test]
fn a_pack_or_index_that_cannot_be_read_is_an_error_not_damage() {
    let (dir, _) = tiny_pack(&[b"one", b"two", b"three"]);
    let objects = dir.path().join("objects");
    let (pack, idx) = (only(dir.path(), "pack"), only(dir.path(), "idx"));
    let intact = std::fs::read(&pack).unwrap();
    // Opened, but every read fails (EISDIR).
    std::fs::remove_file(&pack).unwrap();
    std::fs::create_dir(&pack).unwrap();
    let e = format!("{:#}", damaged(&objects).unwrap_err());
    assert!(e.contains("read ") && e.contains("directory"), "{e}");
    // Cannot be opened (ELOOP stands in for EACCES, which root never gets).
    std::fs::remove_dir(&pack).unwrap();
    std::os::unix::fs::symlink(&pack, &pack).unwrap();
    let e = format!("{:#}", damaged(&objects).unwrap_err());
    assert!(e.contains("cannot open"), "{e}");
    std::fs::remove_file(&pack).unwrap();
    std::fs::write(&pack, &intact).unwrap();
    // An index that cannot be opened is not rebuilt, nor kept as damaged.
    let index = std::fs::read(&idx).unwrap();
    std::fs::remove_file(&idx).unwrap();
    std::os::unix::fs::symlink(&idx, &idx).unwrap();
    assert!(damaged(&objects).is_err());
    assert!(!dir.path().join("sqlgit-damaged").exists());
    std::fs::remove_file(&idx).unwrap();
    std::fs::write(&idx, index).unwrap();
    assert!(damaged(&objects).unwrap().packs.is_empty());
    assert_eq!(std::fs::read_dir(objects.join("pack")).unwrap().count(), 2);
}

#[test]
fn excluded_entries_are_not_found_and_others_are() {
    let (dir, ids) = tiny_pack(&[b"kept", b"damaged"]);
    let damage = Damage {
        packs: vec![DamagedPack {
            idx: only(dir.path(), "idx"),
            ids: vec![ids[1]],
            dependents: Vec::new(),
            framing: false,
        }],
        rebuilt: Vec::new(),
    };
    let packs = PackReader::open(&dir.path().join("objects")).excluding(&damage);
    assert!(packs.contains(ids[0]).unwrap());
    assert!(!packs.contains(ids[1]).unwrap());
    assert_eq!(packs.whole_blob(ids[1]).unwrap(), None);
}
