//! The two sides' `0-header.sql` as a diff compares them: only the lines that say what the
//! database is (its pragmas: encoding, page size, auto_vacuum, user_version, application_id),
//! without what one side did not record. Everything else in a header is how a restore is run
//! (the format mark, `.dbconfig` lines, `foreign_keys`, `ignore_check_constraints`, `BEGIN`,
//! the view that makes SQLite write the encoding), and sqlgit has added such lines over time: a
//! header an older sqlgit wrote without them is no change of the database. An older sqlgit (format 1) wrote no
//! `PRAGMA page_size` or `auto_vacuum` line whatever the database used, so in a format-1 header
//! a missing line is "not recorded", not SQLite's default: a diff with such a snapshot leaves
//! that pragma out rather than report a change nobody made. An SQL patch, though, applies to
//! what a restore gives, and a restore of such a header has SQLite's defaults: [`layout`] reads
//! a header that way.

use crate::dump::stmt::Encoding;
use crate::dump::{DEFAULT_PAGE_SIZE, Format};

/// The pragmas an older sqlgit did not record.
const NOT_ALWAYS_RECORDED: [&str; 2] = ["page_size", "auto_vacuum"];

/// The pragmas a snapshot's `0-header.sql` holds (a line left out is SQLite's default).
pub const PRAGMAS: [&str; 5] = [
    "encoding",
    "page_size",
    "auto_vacuum",
    "user_version",
    "application_id",
];

/// Headers `a` and `b` (as stored) as they compare, when they differ: their [`PRAGMAS`] lines.
pub fn compared(a: &[u8], b: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (fa, fb) = (Format::of_header(a), Format::of_header(b));
    let (mut a, mut b) = (pragmas_only(a), pragmas_only(b));
    for name in NOT_ALWAYS_RECORDED {
        let (in_a, in_b) = (has(&a, name), has(&b, name));
        if in_a && !in_b && fb == Format::V1 {
            a = without(&a, name);
        } else if in_b && !in_a && fa == Format::V1 {
            b = without(&b, name);
        }
    }
    (a != b).then_some((a, b))
}

/// What a restore of a side has that only a new file (or a VACUUM) changes.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// The `PRAGMA encoding=…` line (none: UTF-8).
    pub encoding: Option<Vec<u8>>,
    pub page_size: i64,
    pub auto_vacuum: i64,
    /// A pragma the header leaves out was not recorded (format 1): the restore took SQLite's
    /// default, whatever the database had.
    pub unrecorded: bool,
}

/// The layout a restore of `header` (as stored) gives: a line left out is SQLite's default,
/// whatever the format, since that is what the restore sets.
pub fn layout(header: &[u8]) -> Layout {
    let value = |name: &str| {
        let line = super::plan::pragma_line(header, name)?;
        let v = line.strip_prefix(format!("PRAGMA {name}=").as_bytes())?;
        let v = String::from_utf8_lossy(v.strip_suffix(b";").unwrap_or(v)).to_lowercase();
        Some(match v.as_str() {
            "none" => 0,
            "full" => 1,
            "incremental" => 2,
            // Unreadable: unlike any real value, so a patch refuses rather than guesses.
            _ => v.parse().unwrap_or(-1),
        })
    };
    let v1 = Format::of_header(header) == Format::V1;
    Layout {
        encoding: super::plan::pragma_line(header, "encoding").map(<[u8]>::to_vec),
        page_size: value("page_size").unwrap_or(DEFAULT_PAGE_SIZE),
        auto_vacuum: value("auto_vacuum").unwrap_or(0),
        unrecorded: v1 && NOT_ALWAYS_RECORDED.iter().any(|n| !has(header, n)),
    }
}

/// The text encoding a snapshot's `0-header.sql` records (none: UTF-8), which says what the
/// bytes of a `CAST(X'..' AS TEXT)` value are.
pub fn encoding(header: &[u8]) -> Encoding {
    let line = super::plan::pragma_line(header, "encoding").unwrap_or_default();
    match line.to_ascii_lowercase().as_slice() {
        b"pragma encoding='utf-16le';" => Encoding::Utf16Le,
        b"pragma encoding='utf-16be';" => Encoding::Utf16Be,
        _ => Encoding::Utf8,
    }
}

/// The lines of `header` that set one of [`PRAGMAS`], in its order.
fn pragmas_only(header: &[u8]) -> Vec<u8> {
    let starts: Vec<String> = PRAGMAS.iter().map(|p| format!("PRAGMA {p}=")).collect();
    header
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| starts.iter().any(|s| l.starts_with(s.as_bytes())))
        .flatten()
        .copied()
        .collect()
}

fn has(header: &[u8], name: &str) -> bool {
    super::plan::pragma_line(header, name).is_some()
}

/// `header` without its `PRAGMA name=…` line.
fn without(header: &[u8], name: &str) -> Vec<u8> {
    let start = format!("PRAGMA {name}=");
    header
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.starts_with(start.as_bytes()))
        .flatten()
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{compared, layout};

    const OLD: &[u8] = b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nPRAGMA user_version=0;\n";
    const NEW: &[u8] = b"-- sqlgit snapshot format 2\nPRAGMA foreign_keys=OFF;\n\
        PRAGMA page_size=8192;\nPRAGMA auto_vacuum=1;\nBEGIN TRANSACTION;\nPRAGMA user_version=0;\n";

    #[test]
    fn a_pragma_a_format_1_header_lacks_was_not_recorded() {
        assert_eq!(compared(OLD, NEW), None);
        assert_eq!(compared(NEW, OLD), None);
        // A format-1 header written with the line (by a newer sqlgit) is compared as ever.
        let old_with = b"PRAGMA foreign_keys=OFF;\nPRAGMA page_size=4096;\nPRAGMA auto_vacuum=1;\n\
            BEGIN TRANSACTION;\nPRAGMA user_version=0;\n";
        let (a, b) = compared(old_with, NEW).expect("a page size change");
        assert!(a.windows(14).any(|w| w == b"page_size=4096"));
        assert!(b.windows(14).any(|w| w == b"page_size=8192"));
        // Other changes still show, the unrecorded pragma left out on both sides.
        let (a, b) = compared(OLD, &[NEW, b"PRAGMA application_id=5;\n"].concat()).unwrap();
        assert!(!b.windows(9).any(|w| w == b"page_size"), "{b:?}");
        assert_ne!(a, b);
    }

    #[test]
    fn a_restore_of_a_missing_line_has_the_default() {
        let (old, new) = (layout(OLD), layout(NEW));
        assert_eq!(
            (old.page_size, old.auto_vacuum, old.unrecorded),
            (4096, 0, true)
        );
        assert_eq!(
            (new.page_size, new.auto_vacuum, new.unrecorded),
            (8192, 1, false)
        );
        let named = layout(b"PRAGMA page_size=1024;\nPRAGMA auto_vacuum=incremental;\n");
        assert_eq!((named.page_size, named.auto_vacuum), (1024, 2));
    }

    #[test]
    fn a_format_2_header_without_the_line_means_the_default() {
        let new_default = b"-- sqlgit snapshot format 2\nPRAGMA foreign_keys=OFF;\n\
            BEGIN TRANSACTION;\nPRAGMA user_version=0;\n";
        assert!(compared(new_default, NEW).is_some());
    }

    /// Lines sqlgit added to headers over time that only say how to restore (a `.dbconfig`
    /// line, `ignore_check_constraints`, the encoding view) are no change of the database.
    #[test]
    fn restore_steps_an_older_header_lacks_are_no_change() {
        let older = b"PRAGMA foreign_keys=OFF;\nPRAGMA encoding='UTF-16be';\nBEGIN TRANSACTION;\n\
            PRAGMA user_version=7;\nPRAGMA application_id=0;\n";
        let now = b"-- sqlgit snapshot format 2\n.dbconfig dqs_ddl on\nPRAGMA foreign_keys=OFF;\n\
            PRAGMA ignore_check_constraints=ON;\nPRAGMA encoding='UTF-16be';\nBEGIN TRANSACTION;\n\
            PRAGMA user_version=7;\nPRAGMA application_id=0;\n\
            CREATE VIEW sqlgit_encoding AS SELECT 1;\nDROP VIEW sqlgit_encoding;\n";
        assert_eq!(compared(older, now), None);
        assert_eq!(compared(now, older), None);
        let other = String::from_utf8_lossy(now).replace("user_version=7", "user_version=8");
        let (a, b) = compared(older, other.as_bytes()).expect("user_version differs");
        let only = |v: u8| {
            format!(
                "PRAGMA encoding='UTF-16be';\nPRAGMA user_version={v};\nPRAGMA application_id=0;\n"
            )
        };
        assert_eq!((a, b), (only(7).into_bytes(), only(8).into_bytes()));
    }
}
