//! Files named after another file: a journal's WAL (`-wal`), its key (`.key`) and
//! a rotation's new key (`.new`), its owners' folder (`-owners`), a file while it
//! is written (`.part`).

use std::path::{Path, PathBuf};

/// `path` with `suffix` added to its whole name (`j.db` → `j.db-wal`), where
/// `Path::with_extension` would replace the `.db`.
pub fn appended(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_suffix_is_added_to_the_whole_name() {
        let p = std::path::Path::new("data/mi_journal.db");
        assert_eq!(super::appended(p, "-wal"), std::path::Path::new("data/mi_journal.db-wal"));
        assert_eq!(super::appended(p, ".key"), std::path::Path::new("data/mi_journal.db.key"));
    }
}
