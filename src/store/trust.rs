//! Opening a repository another user owns as git would: trusted by `safe.directory` in the
//! config files git reads (`GIT_CONFIG_GLOBAL` and the rest), which libgit2 alone does not.

use std::path::Path;

use git2::{Repository, RepositoryOpenFlags};

/// Environment variables that, for a repository opened with libgit2's `FROM_ENV`, would point
/// it at other objects, an index or a namespace (set when sqlgit runs from a git hook).
const REDIRECTING_VARS: [&str; 6] = [
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_INDEX_FILE",
    "GIT_WORK_TREE",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// Open the git directory `dir` (no search upwards). One owned by another user is trusted as git
/// trusts it: libgit2 reads `safe.directory` from `~/.gitconfig` and the system file only, so
/// when that refuses it, it is opened again reading git's config files as git does
/// (`GIT_CONFIG_GLOBAL`, `GIT_CONFIG_SYSTEM`, `GIT_CONFIG_NOSYSTEM`), where `git config --global
/// --add safe.directory DIR` writes. Not when a variable would point that open elsewhere.
pub(crate) fn open_git_dir(dir: &Path) -> std::result::Result<Repository, git2::Error> {
    let plain = Repository::open_ext(dir, RepositoryOpenFlags::NO_SEARCH, &[] as &[&str]);
    match plain {
        Err(e)
            if e.code() == git2::ErrorCode::Owner
                && REDIRECTING_VARS
                    .iter()
                    .all(|v| std::env::var_os(v).is_none()) =>
        {
            let flags = RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::FROM_ENV;
            Repository::open_ext(dir, flags, &[] as &[&str]).map_err(|_| e)
        }
        other => other,
    }
}

/// The file git's `GIT_CONFIG_GLOBAL` names, which libgit2 does not read (it reads
/// `~/.gitconfig`): where `git config --global` writes when it is set.
pub(crate) fn global_git_config() -> Option<git2::Config> {
    let global = std::env::var_os("GIT_CONFIG_GLOBAL")?;
    git2::Config::open(Path::new(&global)).ok()
}
