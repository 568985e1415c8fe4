//! Who is alive among the processes that claim the journal's requests. Each
//! process holds an exclusive lock on a file of its own beside the journal
//! (`<journal>-owners/<owner>.lock`) for as long as it lives; the OS releases it
//! when the process ends, however it ends. A watcher that can take that lock knows
//! the owner is gone; one that cannot knows it is alive, whatever its heartbeat or
//! any wall clock says. (An owner with no lock file, from an older version of the
//! library, is judged by its heartbeat alone: see the maintenance thread.)

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The folder of the owners' lock files of the journal at `journal`.
fn folder(journal: &Path) -> PathBuf {
    crate::paths::appended(journal, "-owners")
}

/// An owner's lock file. Owner names are a pid and random hex: safe as file names.
fn lock_path(journal: &Path, owner: &str) -> PathBuf {
    folder(journal).join(format!("{owner}.lock"))
}

/// This process's lock: held while it lives, released (and its file removed) when
/// dropped.
#[derive(Debug)]
pub struct OwnerLock {
    file: Option<File>,
    path: PathBuf,
}

impl OwnerLock {
    /// Takes `owner`'s lock for the journal at `journal`.
    pub fn take(journal: &Path, owner: &str) -> Result<OwnerLock> {
        let path = lock_path(journal, owner);
        let fail =
            |e: std::io::Error| Error::journal(format!("cannot hold this process's lock file {}: {e}", path.display()));
        std::fs::create_dir_all(folder(journal)).map_err(fail)?;
        // Another process's sweep may remove the file between its creation and its
        // locking (to that sweep it looked like a dead owner's): then it is made anew.
        for _ in 0..3 {
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(fail)?;
            fs4::FileExt::try_lock(&file).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
            if path.exists() {
                return Ok(OwnerLock { file: Some(file), path });
            }
        }
        Err(fail(std::io::Error::other("it keeps being removed")))
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Unlocked before removal: on Windows an open file cannot be deleted.
        drop(self.file.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What an owner's lock file says about it.
#[derive(Debug)]
pub enum Liveness {
    /// Its lock is held: the process is alive.
    Alive,
    /// Its lock could be taken: the process is gone. The lock is held by the
    /// watcher until this is dropped, so no second watcher acts on it meanwhile.
    Gone(OwnerLock),
    /// It has no lock file (an older library, or the file was removed).
    Unknown,
}

/// Looks at `owner`'s lock file without waiting.
pub fn liveness(journal: &Path, owner: &str) -> Liveness {
    let path = lock_path(journal, owner);
    let Ok(file) = OpenOptions::new().write(true).open(&path) else { return Liveness::Unknown };
    // fs4's lock, named in full: std's inherent `File::try_lock` is newer than
    // rust-version. Both are flock on Unix and LockFileEx on Windows.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Liveness::Gone(OwnerLock { file: Some(file), path }),
        // Held, or a lock that cannot be judged: alive is the safe answer.
        Err(_) => Liveness::Alive,
    }
}

/// Removes the lock files of owners that are gone (a process that died leaves its
/// file behind); `me`'s and live ones stay.
pub fn sweep(journal: &Path, me: &str) {
    let Ok(entries) = std::fs::read_dir(folder(journal)) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(owner) = name.strip_suffix(".lock").filter(|o| *o != me) {
            // Gone: dropping the lock taken removes the file.
            drop(liveness(journal, owner));
        }
    }
}

/// The owners whose lock files are held now: the processes using the journal.
pub fn alive(journal: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder(journal)) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".lock").map(str::to_owned))
        .filter(|owner| matches!(liveness(journal, owner), Liveness::Alive))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_means_alive_and_a_released_one_gone() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("j.db");
        let mine = OwnerLock::take(&j, "1-aaaa").unwrap();
        assert!(matches!(liveness(&j, "1-aaaa"), Liveness::Alive));
        assert!(matches!(liveness(&j, "2-bbbb"), Liveness::Unknown));
        drop(mine);
        assert!(matches!(liveness(&j, "1-aaaa"), Liveness::Unknown), "a clean end removes the file");
        // A process that died leaves its file, unlocked.
        let path = lock_path(&j, "3-cccc");
        std::fs::write(&path, b"").unwrap();
        match liveness(&j, "3-cccc") {
            Liveness::Gone(held) => {
                assert!(matches!(liveness(&j, "3-cccc"), Liveness::Alive), "the watcher holds it meanwhile");
                drop(held);
            }
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
    }
}
