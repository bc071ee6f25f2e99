//! Names in the snapshot tree: table folders and chunk files.
//!
//! Table names become safe, readable, unique folder names (no `/`, no leading `.`, so `../x`,
//! `a/b` and `.git` stay inside the tree, and none that git's fsck takes for `.git`). Chunk names
//! sort in dump order, because concatenating the files in path order must give back exactly the
//! dump.

/// Longest folder name we produce, in bytes; longer names are cut and end in `~` + a hash.
const MAX_NAME: usize = 180;

/// The folder name of a table: kept characters as they are, everything else `%XX`-encoded.
pub fn table_dir(name: &str) -> String {
    if name.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(name.len());
    let last = name.chars().count() - 1;
    for (i, c) in name.chars().enumerate() {
        let keep = c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-')
            || (matches!(c, '.' | ' ') && i != 0 && i != last)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace() && c != '\u{feff}');
        if keep {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    if git_rejects(&out) {
        // A name git's fsck refuses (`\u{200c}.git` is `.git` on HFS+): its first character and
        // every character HFS+ ignores escaped too. Only such names: other folders keep their names.
        let kept = out;
        out = String::with_capacity(kept.len() + 8);
        for (i, c) in kept.chars().enumerate() {
            if i == 0 || hfs_ignored(c) {
                push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
        }
    }
    if out.len() > MAX_NAME {
        let mut cut = MAX_NAME - 17;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], hash_bytes(name.as_bytes()));
    }
    out
}

/// What a table folder is matched by across snapshots: the folder name as today's
/// [`table_dir`] writes the name it stands for, its ASCII letters in lower case (SQLite folds
/// A-Z only: `é` and `É` are two tables). An older sqlgit kept some names that are escaped now
/// (`\u{200c}.git`), so one table's folder can change its name at an upgrade; both names give
/// the same key.
pub fn folder_key(folder: &str) -> String {
    match (folder, decode_folder(folder)) {
        ("%", _) | (_, None) => folder.to_ascii_lowercase(),
        (_, Some(name)) => table_dir(&name).to_ascii_lowercase(),
    }
}

/// A folder name with its `%XX` escapes decoded (None when that is not UTF-8).
pub fn decode_folder(folder: &str) -> Option<String> {
    let bytes = folder.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                decoded.push(b);
                i += 3;
            }
            (b, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// `c` as `%XX` escapes of its UTF-8 bytes.
fn push_escaped(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Code points HFS+ ignores in names (git's `is_hfs_dotgit`): `\u{200c}.git` is `.git` there.
fn hfs_ignored(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

/// The special files git's fsck guards in trees (`is_hfs_dot*`).
const GUARDED: [&str; 5] = [
    ".git",
    ".gitmodules",
    ".gitattributes",
    ".gitignore",
    ".mailmap",
];

/// Whether git's fsck takes `name` for `.git` or one of its special files on HFS+, so a tree
/// holding it is refused by servers that check objects. (The NTFS forms, `git~1` and other
/// short names, cannot arise: `~` is always escaped; a trailing `.` or space too.)
fn git_rejects(name: &str) -> bool {
    let hfs: String = name.chars().filter(|c| !hfs_ignored(*c)).collect();
    GUARDED.iter().any(|g| hfs.eq_ignore_ascii_case(g))
}

/// Chunk file name for a chunk whose first row has this rowid: sorts in rowid order.
pub fn rowid_chunk_name(rowid: i64) -> String {
    format!("{:016x}.sql", (rowid as u64) ^ (1 << 63))
}

/// Chunk file name for the n-th chunk of a table without usable rowids (WITHOUT ROWID tables).
pub fn ordinal_chunk_name(n: u64) -> String {
    format!("{n:016x}.sql")
}

/// A fixed, platform-independent 64-bit mix (splitmix64's finalizer): never change it, or every
/// chunk boundary in every repository moves once.
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over bytes, then [`mix64`].
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_dirs_are_safe() {
        assert_eq!(table_dir("users"), "users");
        assert_eq!(table_dir("../../x"), "%2E.%2F..%2Fx");
        assert_eq!(table_dir("a/b"), "a%2Fb");
        assert_eq!(table_dir(".git"), "%2Egit");
        assert_eq!(table_dir("a\nb"), "a%0Ab");
        assert_eq!(table_dir("my table"), "my table");
        assert_eq!(table_dir(" "), "%20");
        assert_eq!(table_dir("100%"), "100%25");
        assert_eq!(table_dir("café"), "café");
        assert_eq!(table_dir(""), "%");
        // Names git's fsck takes for `.git` or its special files (HFS+, NTFS); others unchanged.
        assert_eq!(table_dir("\u{200c}.git"), "%E2%80%8C.git");
        // An older sqlgit's raw folder and today's escaped one are one table.
        assert_eq!(folder_key("\u{200c}.git"), folder_key("%E2%80%8C.git"));
        assert_eq!(folder_key("Users"), folder_key("users"));
        assert_ne!(folder_key("a%2541"), folder_key("a%41"));
        assert_eq!(folder_key("%"), "%");
        assert_eq!(table_dir("\u{200c}.Git\u{206a}"), "%E2%80%8C.Git%E2%81%AA");
        assert_eq!(table_dir("\u{200d}.GITMODULES"), "%E2%80%8D.GITMODULES");
        assert_eq!(table_dir("git~1"), "git%7E1");
        assert_eq!(table_dir("gi7eba~1 "), "gi7eba%7E1%20");
        assert_eq!(table_dir("a\u{200c}.git"), "a\u{200c}.git");
        assert_eq!(table_dir("\u{200c}x"), "\u{200c}x");
        for name in [
            "\u{200c}.git",
            "git~1",
            "\u{200d}.gitmodules",
            "gitmod~1",
            "gi7d29~1",
        ] {
            assert!(!git_rejects(&table_dir(name)), "{name:?}");
        }
        let long = "x".repeat(400);
        assert!(table_dir(&long).len() <= MAX_NAME);
        assert_ne!(table_dir(&long), table_dir(&"x".repeat(401)));
    }

    #[test]
    fn rowid_names_sort_numerically() {
        let ids = [i64::MIN, -5, -1, 0, 1, 9, 10, 255, i64::MAX];
        let names: Vec<_> = ids.iter().map(|&i| rowid_chunk_name(i)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
