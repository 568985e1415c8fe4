//! Unpacking a downloaded zip safely: every entry's name is checked before a byte is
//! written (no absolute paths, no `..`, no drive letters, no links), the bytes
//! written are counted against a limit whatever the zip claims (a zip bomb stops
//! at the limit), and everything is unpacked into a staging folder first, so a
//! refused zip leaves nothing behind.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// What a zip may unpack to.
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// A file written from the zip.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpacked {
    /// Its name in the zip (folders with `/`).
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Unpacks `zip` into `dest`. `Err` says why the zip was refused; nothing of it is
/// then left in `dest`.
pub fn unpack(zip: &Path, dest: &Path, limits: &Limits) -> Result<Vec<Unpacked>, String> {
    let file = std::fs::File::open(zip).map_err(|e| format!("cannot open the downloaded zip: {e}"))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("the download is not a valid zip: {e}"))?;
    if archive.len() as u64 > limits.max_entries {
        return Err(format!(
            "the zip holds {} entries, more than files.max_entries ({}); refused",
            archive.len(),
            limits.max_entries
        ));
    }
    let staging = dest.join(format!(".mi_unpack_{}", crate::crypto::nonce()));
    let done = unpack_into(&mut archive, &staging, limits).and_then(|files| publish(files, &staging, dest));
    let _ = std::fs::remove_dir_all(&staging);
    done
}

fn unpack_into(
    archive: &mut zip::ZipArchive<std::fs::File>,
    staging: &Path,
    limits: &Limits,
) -> Result<Vec<(String, PathBuf, u64)>, String> {
    std::fs::create_dir_all(staging).map_err(|e| format!("cannot write into the destination folder: {e}"))?;
    let mut total = 0u64;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("zip entry {i} cannot be read: {e}"))?;
        let name = entry_name(entry.name_raw());
        let relative = safe_relative(&name)?;
        if entry.is_symlink() {
            return Err(format!("zip entry {name:?} is a link; links are refused"));
        }
        let target = staging.join(&relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let left = limits.max_bytes - total;
        if entry.size() > left {
            return Err(bomb(&name, limits));
        }
        let mut out = std::fs::File::create(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        // One byte more than is left: reading it proves the entry is larger than it said.
        let written = copy(&mut (&mut entry).take(left + 1), &mut out)
            .map_err(|e| format!("zip entry {name:?} cannot be unpacked: {e}"))?;
        if written > left {
            return Err(bomb(&name, limits));
        }
        total += written;
        files.push((name, relative, written));
    }
    Ok(files)
}

fn bomb(name: &str, limits: &Limits) -> String {
    format!(
        "the zip unpacks to more than files.max_unpacked_mb ({} MB) at entry {name:?}; refused as a zip bomb",
        limits.max_bytes >> 20
    )
}

/// Copies through a fixed buffer (never the whole entry in memory).
fn copy(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        w.write_all(&buf[..got])?;
        n += got as u64;
    }
}

/// Moves the staged files into `dest`, replacing files of the same name (a newer
/// copy of the same catalogue).
fn publish(files: Vec<(String, PathBuf, u64)>, staging: &Path, dest: &Path) -> Result<Vec<Unpacked>, String> {
    let mut out = Vec::with_capacity(files.len());
    for (name, relative, bytes) in files {
        let path = dest.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::rename(staging.join(&relative), &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.push(Unpacked { name, path, bytes });
    }
    Ok(out)
}

/// An entry's name: UTF-8, or else GBK (zips made on Chinese Windows).
fn entry_name(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => {
            crate::charset::Charset::Gbk.decode(raw, "name").unwrap_or_else(|_| String::from_utf8_lossy(raw).into())
        }
    }
}

/// The path an entry name may be written to under the destination: relative,
/// normal components only, under either separator.
pub fn safe_relative(name: &str) -> Result<PathBuf, String> {
    let refuse =
        |why: &str| Err(format!("zip entry {name:?} {why}; refused (it would be written outside the destination)"));
    if name.is_empty() || name.contains('\0') {
        return refuse("has no usable name");
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return refuse("is an absolute path");
    }
    if unified.as_bytes().get(1) == Some(&b':') || unified.contains(':') {
        return refuse("names a drive or a stream (':')");
    }
    let mut out = PathBuf::new();
    for part in unified.split('/') {
        match part {
            "" | "." => continue,
            ".." => return refuse("climbs out with '..'"),
            p => match Path::new(p).components().next() {
                Some(Component::Normal(_)) => out.push(p),
                _ => return refuse("has a component that is not a plain name"),
            },
        }
    }
    if out.as_os_str().is_empty() {
        return refuse("has no usable name");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in
            ["../x", "a/../../x", "/etc/passwd", "\\\\server\\share", "..\\x", "C:\\x", "c:x", "a/b:ads", "", "a/\0"]
        {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
        assert_eq!(safe_relative("a/b.txt").unwrap(), PathBuf::from("a").join("b.txt"));
        assert_eq!(safe_relative("./1301.txt").unwrap(), PathBuf::from("1301.txt"));
        assert_eq!(safe_relative("目录\\药品.txt").unwrap(), PathBuf::from("目录").join("药品.txt"));
    }
}
