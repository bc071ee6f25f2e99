//! Snapshots an older sqlgit wrote, read as the current sqlgit writes them: the lines its
//! header lacked are put where today's header has them (`cat`, `restore`, `query` and `verify`
//! alike), so each restore gives back what the header asks for, and `verify` dumps the restore
//! back to the very text it read. Two such lines:
//!
//! - `PRAGMA ignore_check_constraints=ON` (after `PRAGMA foreign_keys=OFF`): rows that break
//!   their table's CHECK constraint (written with that pragma, or before the CHECK was added)
//!   restore too; before sqlgit wrote it, every restore of such a row failed.
//! - [`ENCODING_VIEW`] (at the end): the header of a database with no table or view names its
//!   encoding (`PRAGMA encoding='UTF-16be'`), but SQLite writes the encoding into the file only
//!   with the first table or view: before sqlgit ended such a header with the view, every
//!   restore of it gave a UTF-8 database.
//!
//! Plain git (`git archive`) cannot add them: such an old snapshot restores exactly only
//! through sqlgit (or `sqlgit cat`).

use git2::Tree;

use crate::dump::ENCODING_VIEW;

/// The name of a database folder's header file.
pub const HEADER: &str = "0-header.sql";

/// Today's header line that lets rows breaking a CHECK constraint restore.
const IGNORE_CHECKS: &[u8] = b"PRAGMA ignore_check_constraints=ON;\n";
/// The header line today's [`IGNORE_CHECKS`] follows.
const FOREIGN_KEYS: &[u8] = b"PRAGMA foreign_keys=OFF;\n";

/// `header`, the `0-header.sql` of the database folder `tree`, with the lines an older sqlgit
/// left out put where the current sqlgit writes them; None when it lacks none.
pub fn header_as_current(tree: &Tree, header: &[u8]) -> Option<Vec<u8>> {
    // Anything but the header and the COMMIT creates a table or view (which writes the
    // encoding), or rows of one.
    let no_objects = tree
        .iter()
        .all(|e| matches!(e.name_bytes(), b"0-header.sql" | b"9-commit.sql"));
    let view = no_objects && needs_encoding_view(header);
    let mut out = with_ignore_checks(header);
    if view {
        out.get_or_insert_with(|| header.to_vec())
            .extend_from_slice(ENCODING_VIEW.as_bytes());
    }
    out
}

/// `header` with [`IGNORE_CHECKS`] right after its `PRAGMA foreign_keys=OFF` line (at the
/// start without one), when it has no such line.
fn with_ignore_checks(header: &[u8]) -> Option<Vec<u8>> {
    let mut lines = header.split_inclusive(|&b| b == b'\n');
    if lines.any(|l| l == IGNORE_CHECKS) {
        return None;
    }
    let at = header
        .windows(FOREIGN_KEYS.len())
        .enumerate()
        .find(|&(i, w)| w == FOREIGN_KEYS && (i == 0 || header[i - 1] == b'\n'))
        .map_or(0, |(i, _)| i + FOREIGN_KEYS.len());
    Some([&header[..at], IGNORE_CHECKS, &header[at..]].concat())
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
    use super::{needs_encoding_view, with_ignore_checks};

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

    /// An older header gets the line where today's header has it; a current one is left as is.
    #[test]
    fn a_header_without_ignore_check_constraints_gets_it_after_foreign_keys() {
        let old = b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nPRAGMA user_version=7;\n";
        let now = b"PRAGMA foreign_keys=OFF;\nPRAGMA ignore_check_constraints=ON;\n\
                    BEGIN TRANSACTION;\nPRAGMA user_version=7;\n";
        assert_eq!(with_ignore_checks(old).as_deref(), Some(&now[..]));
        assert_eq!(with_ignore_checks(now), None);
        assert_eq!(
            with_ignore_checks(b"BEGIN;\n").as_deref(),
            Some(&b"PRAGMA ignore_check_constraints=ON;\nBEGIN;\n"[..])
        );
    }
}
