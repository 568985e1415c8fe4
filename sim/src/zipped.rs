//! One file zipped in memory, as the platform serves a 9102 download.

use std::io::Write;

/// A zip holding `bytes` under `name`, deflated.
pub fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, opts).expect("a zip in memory");
    w.write_all(bytes).expect("a zip in memory");
    w.finish().expect("a zip in memory").into_inner()
}
