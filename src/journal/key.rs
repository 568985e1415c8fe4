//! The journal's sealing key, in a file of its own beside the journal (or where
//! the hospital keeps it): made once, at first use, and read by every process that
//! opens that journal. On Windows the key is protected with DPAPI in machine scope:
//! the file opens only on the PC that made it, for any program there (a service and
//! the HIS share it). Elsewhere the file is readable by its owner only. The key is
//! never written anywhere else: not the config, a log, the status or an error text.
//!
//! The file is text: a first line naming the format, then the key, `dpapi:` and
//! the base64 of DPAPI's blob, or `raw:` and the base64 of the key itself.

use crate::crypto::seal::SealKey;
use crate::error::{Code, Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::Write;
use std::path::Path;

const FIRST_LINE: &str = "mi_sdk journal key 1";

/// The key in `path`, made and written there first if there is none. Two
/// processes that start together agree on one key: the file is made whole under
/// another name and linked into place, and the loser reads the winner's.
pub fn load_or_create(path: &Path) -> Result<SealKey> {
    if path.exists() {
        return load(path);
    }
    let key = SealKey::generate()?;
    let text = file_text(&key)?;
    let tmp = path.with_extension(format!("key-new-{}", crate::crypto::nonce()));
    let written = write_private(&tmp, text.as_bytes());
    let linked = written.and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(trouble(path, &format!("cannot be written: {e}"))),
    }
}

/// The file a rotation writes its new key to before the journal is re-sealed
/// with it: `<key file>.new`, moved over the key file once the journal is.
pub fn pending(path: &Path) -> std::path::PathBuf {
    crate::paths::appended(path, ".new")
}

/// A new key, written to [`pending`] (replacing what an interrupted rotation
/// left there).
pub fn create_pending(path: &Path) -> Result<SealKey> {
    let new = pending(path);
    let key = SealKey::generate()?;
    let text = file_text(&key)?;
    let _ = std::fs::remove_file(&new);
    write_private(&new, text.as_bytes()).map_err(|e| trouble(&new, &format!("cannot be written: {e}")))?;
    Ok(key)
}

/// Puts the pending key in the key file's place (the journal is sealed with it).
pub fn promote(path: &Path) -> Result<()> {
    std::fs::rename(pending(path), path)
        .map_err(|e| trouble(path, &format!("cannot be replaced by the new key: {e}")))?;
    // The rename itself on disk (the folder's entry), where the OS lets a folder
    // be flushed.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// The key in `path`; `MI_E_JOURNAL` naming the file when it is missing, broken,
/// or from another PC.
pub fn load(path: &Path) -> Result<SealKey> {
    let text = std::fs::read_to_string(path).map_err(|e| trouble(path, &format!("cannot be read: {e}")))?;
    let mut lines = text.lines();
    if lines.next() != Some(FIRST_LINE) {
        return Err(trouble(path, "is not a journal key file"));
    }
    let bytes = unprotect(lines.next().unwrap_or("")).map_err(|why| trouble(path, &why))?;
    let b: [u8; 16] = bytes.try_into().map_err(|_| trouble(path, "does not hold a 128-bit key"))?;
    Ok(SealKey::from_bytes(b))
}

/// What a key file holds for `key`.
fn file_text(key: &SealKey) -> Result<String> {
    Ok(format!("{FIRST_LINE}\n{}\n", protect(key.bytes())?))
}

fn trouble(path: &Path, what: &str) -> Error {
    Error::new(Code::Journal, format!("the journal's key file {} {what}", path.display()))
}

/// Writes a new file readable by its owner only (on Unix; on Windows the key in
/// it is protected by DPAPI instead), to disk before it is used.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// One of DPAPI's two calls (protect, open).
#[cfg(windows)]
pub type DpapiCall = fn(&[u8]) -> std::io::Result<Vec<u8>>;

/// DPAPI's calls are Win32 foreign calls and live with the rest of the FFI
/// (src/ffi.rs), above the journal: ffi.rs hands them in here as the library is
/// loaded (before any code of a program that uses it runs), so the journal needs no
/// arrow up to it.
#[cfg(windows)]
static DPAPI: std::sync::OnceLock<(DpapiCall, DpapiCall)> = std::sync::OnceLock::new();

#[cfg(windows)]
pub fn use_dpapi(protect: DpapiCall, unprotect: DpapiCall) {
    let _ = DPAPI.set((protect, unprotect));
}

#[cfg(windows)]
fn dpapi() -> std::io::Result<(DpapiCall, DpapiCall)> {
    DPAPI
        .get()
        .copied()
        .ok_or_else(|| std::io::Error::other("DPAPI was not handed to the journal as the library loaded"))
}

#[cfg(windows)]
fn protect(key: &[u8]) -> Result<String> {
    let blob = dpapi()
        .and_then(|(protect, _)| protect(key))
        .map_err(|e| Error::new(Code::Journal, format!("the journal's key cannot be protected by DPAPI: {e}")))?;
    Ok(format!("dpapi:{}", B64.encode(blob)))
}

#[cfg(not(windows))]
fn protect(key: &[u8]) -> Result<String> {
    Ok(format!("raw:{}", B64.encode(key)))
}

fn unprotect(line: &str) -> std::result::Result<Vec<u8>, String> {
    let decode = |b: &str| B64.decode(b.trim()).map_err(|_| "is damaged (not base64)".to_string());
    if let Some(b) = line.strip_prefix("raw:") {
        return decode(b);
    }
    if let Some(b) = line.strip_prefix("dpapi:") {
        let blob = decode(b)?;
        #[cfg(windows)]
        return dpapi()
            .and_then(|(_, open)| open(&blob))
            .map_err(|e| format!("does not open on this PC (DPAPI: {e}); it was made on another, or damaged"));
        #[cfg(not(windows))]
        return Err(format!("holds a key protected by Windows ({} bytes), which opens only there", blob.len()));
    }
    Err("holds no key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mi_journal.key");
        let made = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap().bytes(), made.bytes());
        assert_eq!(load(&path).unwrap().bytes(), made.bytes());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(FIRST_LINE));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        #[cfg(windows)]
        assert!(text.contains("\ndpapi:") && !text.contains(&B64.encode(made.bytes())), "{text}");
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_or_broken_key_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let e = load(&path).unwrap_err();
        assert_eq!(e.code, Code::Journal);
        assert!(e.message.contains("k.key"), "{}", e.message);
        for bad in
            ["", "something else\nraw:AAAA\n", "mi_sdk journal key 1\nraw:@@@\n", "mi_sdk journal key 1\nraw:AAAA\n"]
        {
            std::fs::write(&path, bad).unwrap();
            let e = load(&path).unwrap_err();
            assert!(e.code == Code::Journal && e.message.contains("k.key"), "{bad:?}: {}", e.message);
        }
    }

    #[test]
    fn processes_starting_together_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("together.key");
        let keys: Vec<[u8; 16]> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| *load_or_create(&path).unwrap().bytes())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
    }
}
