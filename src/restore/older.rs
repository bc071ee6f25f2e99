//! Snapshots an older sqlgit wrote, read as the current sqlgit writes them. The header of a
//! database with no table or view names its encoding (`PRAGMA encoding='UTF-16be'`), but SQLite
//! writes the encoding into the file only with the first table or view: before sqlgit ended
//! such a header with [`ENCODING_VIEW`], every restore of it gave a UTF-8 database. The lines
//! are added after the header as it is read (`cat`, `restore`, `query` and `verify` alike), so
//! each gives back the encoding the header names. Plain git (`git archive`) cannot add them:
//! such an old snapshot restores exactly only through sqlgit.

use git2::Tree;

use crate::dump::ENCODING_VIEW;

/// The name of a database folder's header file.
pub const HEADER: &str = "0-header.sql";

/// What to run after `header`, the `0-header.sql` of the database folder `tree`: the lines an
/// older sqlgit left out, or nothing.
pub fn after_header(tree: &Tree, header: &[u8]) -> &'static [u8] {
    // Anything but the header and the COMMIT creates a table or view (which writes the
    // encoding), or rows of one.
    let no_objects = tree
        .iter()
        .all(|e| matches!(e.name_bytes(), b"0-header.sql" | b"9-commit.sql"));
    if no_objects && needs_encoding_view(header) {
        ENCODING_VIEW.as_bytes()
    } else {
        b""
    }
}

/// Whether `header` names another encoding than UTF-8 and does not make SQLite write it.
fn needs_encoding_view(header: &[u8]) -> bool {
    let text = String::from_utf8_lossy(header);
    let other_encoding = text.lines().any(|line| {
        let line = line.trim().to_ascii_lowercase();
        line.starts_with("pragma encoding=") && !line.contains("utf-8") && !line.contains("utf8")
    });
    other_encoding && !text.contains(ENCODING_VIEW)
}

#[cfg(test)]
mod tests {
    use super::needs_encoding_view;

    #[test]
    fn only_a_header_naming_another_encoding_without_the_view_needs_it() {
        let old = b"PRAGMA foreign_keys=OFF;\nPRAGMA encoding='UTF-16be';\nBEGIN TRANSACTION;\n\
                    PRAGMA user_version=7;\n";
        assert!(needs_encoding_view(old));
        let mut new = old.to_vec();
        new.extend_from_slice(crate::dump::ENCODING_VIEW.as_bytes());
        assert!(!needs_encoding_view(&new));
        assert!(!needs_encoding_view(
            b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nPRAGMA user_version=7;\n"
        ));
        assert!(!needs_encoding_view(b"PRAGMA encoding='UTF-8';\n"));
    }
}
