//! Files (issue 9) through the C ABI against the simulator: a 9101 upload and its
//! 9102 download round trip, the 100,000-row catalogue of a 1301 query downloaded
//! with bounded memory, zips with `..` entries and a zip bomb refused with nothing
//! left behind, and a download that breaks off halfway resent and complete.

mod common;

use common::*;
use mi_sdk::ffi::*;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// Everything under a folder, as relative names.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = files_under(dir)
        .into_iter()
        .map(|(p, _)| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The journal's record of a request: state and attempts.
fn journaled(env: &Env, id: i64) -> (String, i64, String) {
    journaled_at(&env.journal_path(), id)
}

#[test]
fn upload_then_download_round_trip_through_the_c_abi() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({})), MI_OK);
    let work = tempfile::tempdir().unwrap();
    // A document with a Chinese name and bytes of every value.
    let original: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let doc = work.path().join("结算清单-20261127.pdf");
    std::fs::write(&doc, &original).unwrap();
    let (rc, up) = upload_file(&doc);
    assert_eq!(rc, MI_OK, "{up} {}", last_error());
    let up_id = mi_last_request_id();
    let no = up["output"]["file_qury_no"].as_str().unwrap().to_string();
    assert_eq!(up["output"]["filename"], "结算清单-20261127.pdf");
    // The journal keeps the request, not the file: the path, size and digest.
    let (state, attempts, envelope) = journaled(&env, up_id);
    assert_eq!((state.as_str(), attempts), ("succeeded", 1));
    assert!(envelope.contains("\"bytes\":300000") && envelope.len() < 2000, "{envelope}");

    let dest = work.path().join("downloads");
    let (rc, down) = download_file(&no, "结算清单-20261127.pdf", &dest);
    assert_eq!(rc, MI_OK, "{down} {}", last_error());
    let files = down["output"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{down}");
    assert_eq!((files[0]["name"].as_str(), files[0]["bytes"].as_u64()), (Some("结算清单-20261127.pdf"), Some(300_000)));
    assert_eq!(std::fs::read(files[0]["path"].as_str().unwrap()).unwrap(), original);
    assert_eq!(listing(&dest), vec!["结算清单-20261127.pdf"], "no temporary file is left");
    assert_eq!(journaled(&env, mi_last_request_id()).0, "succeeded");

    // Refusals: an unknown file is the platform's business error; a missing file or
    // an empty query number is refused before anything is journaled; and the
    // transactions are not for mi_call_sync.
    let (rc, out) = download_file("F-NOPE", "x.zip", &dest);
    assert_eq!(rc, MI_E_BUSINESS, "{out}");
    assert!(last_error().contains("不存在"), "{}", last_error());
    assert_eq!(upload_file(&work.path().join("missing.pdf")).0, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("cannot be read"), "{}", last_error());
    assert_eq!(download_file("", "x.zip", &dest).0, MI_E_INVALID_ARGUMENT);
    let (rc, _) = call("9102", json!({"fsDownloadIn": {"file_qury_no": no, "filename": "x"}}));
    assert_eq!(rc, MI_E_INVALID_ARGUMENT);
    assert!(last_error().contains("mi_download_file"), "{}", last_error());
    assert_eq!(env.ledger()["rejected"], 0, "{}", env.ledger()["rejections"]);
    mi_shutdown(1000);
}

/// Resident memory of this process (VmRSS), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The highest resident memory seen while `f` runs (sampled every 2 ms), in KiB.
fn peak_rss_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = rss_kib();
        while !d.load(std::sync::atomic::Ordering::Acquire) {
            peak = peak.max(rss_kib());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        peak.max(rss_kib())
    });
    let r = f();
    done.store(true, std::sync::atomic::Ordering::Release);
    (r, sampler.join().unwrap())
}

#[test]
fn a_hundred_thousand_row_catalogue_downloads_with_bounded_memory_and_survives_a_broken_line() {
    let _g = serial();
    // The simulator in its own process, so this process's memory is the SDK's.
    let sim = SimProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let config = sim.config(json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "files", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "journal": {"path": work.path().join("j.db").to_string_lossy()},
        "log": {"dir": work.path().join("logs").to_string_lossy()},
        "retry": {"base_delay_ms": 50, "max_delay_ms": 200}
    }));
    assert_eq!(init_text(&config.to_string()), MI_OK, "{}", last_error());
    let (rc, q) = call("1301", json!({"data": {"ver": "0"}}));
    assert_eq!(rc, MI_OK, "{q}");
    let (no, name) = (q["output"]["file_qury_no"].as_str().unwrap(), q["output"]["filename"].as_str().unwrap());
    assert_eq!(q["output"]["data_cnt"], 100_000);

    // The line breaks after 1 MB of the zip, once: the download is resent.
    sim.fault(json!({"cut_download_once_after": 1 << 20}));
    let before = rss_kib();
    let dest = work.path().join("catalogue");
    let ((rc, down), peak) = peak_rss_during(|| download_file(no, name, &dest));
    assert_eq!(rc, MI_OK, "{down} {}", last_error());
    let grew = peak.saturating_sub(before);
    let id = mi_last_request_id();
    let (state, attempts, _) = journaled_at(&work.path().join("j.db"), id);
    assert_eq!((state.as_str(), attempts), ("succeeded", 2), "the broken download was resent once");

    let files = down["output"]["files"].as_array().unwrap();
    let zip_bytes = down["output"]["zip_bytes"].as_u64().unwrap();
    let txt = files[0]["path"].as_str().unwrap();
    let text = std::fs::read_to_string(txt).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 100_000, "every row, once");
    assert!(rows.iter().all(|r| r.split('\t').count() == 92), "every row whole, in the real 1301 layout");
    assert!(rows[99_999].starts_with("XA") && rows[99_999].contains("国药准字H20099999"), "{}", rows[99_999]);
    assert_eq!(listing(&dest), vec![Path::new(txt).file_name().unwrap().to_string_lossy().into_owned()]);
    eprintln!(
        "catalogue: {} rows, zip {} KiB, text {} KiB; RSS {before} KiB before, peak {peak} KiB during the download (+{grew} KiB)",
        rows.len(),
        zip_bytes >> 10,
        text.len() >> 10
    );
    // Bounded: the file never sits in memory, zipped or not.
    assert!(grew * 1024 < text.len() as u64 / 2, "peak RSS grew by {grew} KiB for a {} KiB file", text.len() >> 10);
    mi_shutdown(1000);
}

fn journaled_at(journal: &Path, id: i64) -> (String, i64, String) {
    let r = open_journal(journal).request(id).unwrap().expect("the request is journaled");
    (r.state.as_str().to_string(), r.attempts, r.envelope)
}

/// A zip of (name, bytes) entries, names as given.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zips_that_escape_or_explode_are_refused_and_leave_nothing() {
    let _g = serial();
    let env = Env::plain();
    assert_eq!(env.init(json!({"files": {"max_unpacked_mb": 20, "max_entries": 50}})), MI_OK);
    let work = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 24 << 20];
    let many: Vec<(String, Vec<u8>)> = (0..60).map(|i| (format!("f{i}.txt"), vec![b'x'; 10])).collect();
    let many_refs: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("parent.zip", zip_of(&[("ok.txt", b"fine"), ("../escaped.txt", b"evil")]), "'..'"),
        ("deep.zip", zip_of(&[("a/../../escaped.txt", b"evil")]), "'..'"),
        ("absolute.zip", zip_of(&[("/tmp/escaped.txt", b"evil")]), "absolute"),
        ("backslash.zip", zip_of(&[("..\\escaped.txt", b"evil")]), "'..'"),
        ("drive.zip", zip_of(&[("C:\\escaped.txt", b"evil")]), "drive"),
        ("bomb.zip", zip_of(&[("ok.txt", b"fine"), ("zeros.bin", &zeros)]), "zip bomb"),
        ("many.zip", zip_of(&many_refs), "max_entries"),
    ];
    for (name, bytes, why) in cases {
        let zip_path = work.path().join(name);
        std::fs::write(&zip_path, &bytes).unwrap();
        let (rc, up) = upload_file(&zip_path);
        assert_eq!(rc, MI_OK, "{name}: {up}");
        let dest = work.path().join("out").join(name);
        let (rc, out) = download_file(up["output"]["file_qury_no"].as_str().unwrap(), name, &dest);
        assert_eq!(rc, MI_E_PROTOCOL, "{name}: {out}");
        let err = last_error();
        assert!(err.contains(why) && err.contains("refused"), "{name}: {err}");
        assert!(listing(&dest).is_empty(), "{name}: nothing left in the destination: {:?}", listing(&dest));
        assert_eq!(journaled(&env, mi_last_request_id()).0, "failed", "{name}: not resent, failed");
    }
    assert!(!work.path().join("escaped.txt").exists() && !work.path().join("out/escaped.txt").exists());
    assert!(!Path::new("/tmp/escaped.txt").exists());
    mi_shutdown(1000);
}
