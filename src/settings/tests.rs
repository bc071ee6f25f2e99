use super::*;

#[test]
fn remembered_paths_do_not_depend_on_the_folder_the_command_ran_from() {
    let dir = std::env::temp_dir().join(format!("sqlgit-abs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let base = dir.canonicalize().unwrap();
    let through_sub = base.join("sub").join("..").join("app.db");
    assert_eq!(
        absolute(&through_sub),
        base.join("app.db").display().to_string()
    );
    // A symlink after the last `..` stays a symlink.
    std::os::unix::fs::symlink(base.join("sub"), base.join("current")).unwrap();
    let linked = base.join("sub/../current/app.db");
    assert_eq!(
        absolute(&linked),
        base.join("current/app.db").display().to_string()
    );
    // A folder that does not exist (yet) is left as given.
    let missing = base.join("gone/../x.db");
    assert_eq!(absolute(&missing), missing.display().to_string());
    std::fs::remove_dir_all(&dir).unwrap();
}
