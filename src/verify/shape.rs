//! The shape of a snapshot's tree as sqlgit writes it: at the top only database folders (each
//! with its `0-header.sql`), below them only folders (mode 040000) and `.sql` files (mode
//! 100644). An entry of any other kind comes from a commit made by plain git, and makes plain
//! git read other content than sqlgit: `git archive main | tar -xO` (the documented restore)
//! feeds a file at the top to sqlite3 where sqlgit never reads it, writes a symbolic link where
//! sqlgit reads its blob as SQL, honours a `.gitattributes`. [`root_problems`] checks the top
//! (what `status` reads too), [`entry_problem`] each entry below it (`verify`'s walk).

use git2::{ObjectType, Repository, Tree, TreeEntry};

/// The file every database folder holds.
const HEADER: &str = "0-header.sql";

/// The command that writes a snapshot's tree anew (a run that reads everything), for the
/// repository `repo`.
pub fn fix(repo: &Repository) -> String {
    let dir = repo.workdir().unwrap_or(repo.path());
    let dir: std::path::PathBuf = dir.components().collect();
    format!(
        "take a snapshot that writes its tree anew (it reads everything): run `sqlgit snapshot \
         --repo {} --full`",
        crate::shellword::repo(&dir)
    )
}

/// The top-level entries of the snapshot tree `tree` that are no database folder sqlgit wrote,
/// one line each.
pub fn root_problems(repo: &Repository, tree: &Tree) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in tree.iter() {
        let name = entry.name().unwrap_or("?");
        if entry.filemode() != 0o040000 {
            lines.push(format!(
                "{name} is {}, outside every database folder: `git archive main | tar -xO` \
                 (the documented restore) feeds it to sqlite3 with the database's SQL, sqlgit \
                 never reads it",
                kind_of(&entry)
            ));
            continue;
        }
        let has_header = repo.find_tree(entry.id()).is_ok_and(|t| {
            t.get_name(HEADER)
                .is_some_and(|h| h.kind() == Some(ObjectType::Blob))
        });
        if !has_header {
            lines.push(format!(
                "{name}/ holds no {HEADER}: no database folder sqlgit wrote, but `git archive \
                 main | tar -xO` (the documented restore) feeds its files to sqlite3 with the \
                 database's SQL"
            ));
        }
    }
    lines
}

/// What is wrong with `entry`, in the folder `dir` (`a/b/`) below a database folder: a kind or
/// a name sqlgit never writes.
pub fn entry_problem(dir: &str, entry: &TreeEntry) -> Option<String> {
    let name = entry.name().unwrap_or("?");
    let path = format!("{dir}{name}");
    let mode = entry.filemode();
    let what = match mode {
        0o040000 => return None,
        0o100644 if name.ends_with(".sql") => return None,
        0o100644 if name == ".gitattributes" => {
            "a .gitattributes file: git archive (the documented restore) honours its attributes \
             (export-ignore leaves files out, text, eol and filter convert them), sqlgit does not"
                .to_string()
        }
        0o100644 => {
            "a file whose name does not end in .sql: both sqlgit and git archive (the documented \
             restore) feed it to sqlite3"
                .to_string()
        }
        0o120000 => "a symbolic link: sqlgit reads its blob as SQL, git archive (the documented \
                     restore) writes a link, which `tar -xO` leaves out"
            .to_string(),
        _ => format!("{}, which sqlgit never writes", kind_of(entry)),
    };
    Some(format!("{path} is {what}"))
}

/// An entry's kind, in words.
fn kind_of(entry: &TreeEntry) -> String {
    match entry.filemode() {
        0o040000 => "a folder".to_string(),
        0o100644 => "a file".to_string(),
        0o100755 => "an executable file (mode 100755)".to_string(),
        0o120000 => "a symbolic link".to_string(),
        0o160000 => "a submodule (gitlink, mode 160000)".to_string(),
        mode => format!("an entry of mode {mode:o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of the entries (mode, name), each a blob or an empty tree.
    fn tree_of(repo: &Repository, entries: &[(i32, &str)]) -> git2::Oid {
        let blob = repo.blob(b"SELECT 1;\n").unwrap();
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let mut b = repo.treebuilder(None).unwrap();
        for (mode, name) in entries {
            let id = if *mode == 0o040000 { empty } else { blob };
            b.insert(name, id, *mode).unwrap();
        }
        b.write().unwrap()
    }

    #[test]
    fn only_sql_files_and_folders_pass() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let id = tree_of(
            &repo,
            &[
                (0o100644, "1.sql"),
                (0o040000, "d"),
                (0o100755, "2.sql"),
                (0o120000, "3.sql"),
                (0o100644, "notes.txt"),
                (0o100644, ".gitattributes"),
            ],
        );
        let tree = repo.find_tree(id).unwrap();
        let found: Vec<Option<String>> = tree.iter().map(|e| entry_problem("a/", &e)).collect();
        let names: Vec<String> = tree.iter().map(|e| e.name().unwrap().to_string()).collect();
        for (name, problem) in names.iter().zip(&found) {
            let ok = matches!(name.as_str(), "1.sql" | "d");
            assert_eq!(problem.is_none(), ok, "{name}: {problem:?}");
        }
        let text = format!("{found:?}");
        assert!(text.contains("a/3.sql is a symbolic link"), "{text}");
        assert!(text.contains("a/2.sql is an executable file"), "{text}");
        assert!(
            text.contains("a/.gitattributes is a .gitattributes file"),
            "{text}"
        );
    }

    #[test]
    fn the_top_holds_only_database_folders() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let db = tree_of(&repo, &[(0o100644, HEADER)]);
        let mut b = repo.treebuilder(None).unwrap();
        b.insert("app.db", db, 0o040000).unwrap();
        b.insert("docs", tree_of(&repo, &[(0o100644, "a.sql")]), 0o040000)
            .unwrap();
        b.insert("zz.sql", repo.blob(b"DELETE FROM t;\n").unwrap(), 0o100644)
            .unwrap();
        let tree = repo.find_tree(b.write().unwrap()).unwrap();
        let lines = root_problems(&repo, &tree);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("docs/ holds no 0-header.sql"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("zz.sql is a file, outside"),
            "{lines:?}"
        );
    }
}
