//! The real Windows DLLs (built by scripts/build-windows.sh into target/windows/):
//! the 64-bit one loaded by a mingw-built C program with LoadLibraryA under wine64,
//! running an outpatient visit against the simulator on loopback; the 32-bit one
//! checked statically (plain export names, __stdcall epilogues, Windows 7 imports),
//! since 32-bit Wine cannot be installed here.

mod common;

use common::require_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The exports and their __stdcall argument bytes on i686.
const EXPORTS: [(&str, u32); 18] = [
    ("mi_init", 4),
    ("mi_call_sync", 16),
    ("mi_call_async", 16),
    ("mi_get_result", 16),
    ("mi_get_request", 16),
    ("mi_reverse", 16),
    ("mi_upload_file", 12),
    ("mi_download_file", 20),
    ("mi_get_status", 8),
    ("mi_last_error", 8),
    ("mi_last_request_id", 0),
    ("mi_shutdown", 4),
    ("mi_version", 0),
    ("mi_abi_version", 0),
    ("mi_code_name", 4),
    ("mi_sm3_hex", 12),
    ("mi_sm4_encrypt_hex", 24),
    ("mi_sm4_decrypt_hex", 24),
];

/// What Windows 7 has (and Wine 8): no bcryptprimitives.dll (ProcessPrng).
const WIN7_DLLS: [&str; 8] = [
    "kernel32.dll",
    "advapi32.dll",
    "bcrypt.dll",
    "msvcrt.dll",
    "ntdll.dll",
    "userenv.dll",
    "ws2_32.dll",
    "api-ms-win-core-synch-l1-2-0.dll",
];

/// The DLL for `arch` ("x64" or "x86"), or a loud skip when it was not built.
fn dll(arch: &str) -> Option<PathBuf> {
    let p = root().join("target/windows").join(arch).join("mi_sdk.dll");
    if p.is_file() {
        let built = std::fs::metadata(&p).unwrap().modified().unwrap();
        let (newest, source) = newest_under(&root().join("src"));
        assert!(built >= newest, "{} is older than {}: run scripts/build-windows.sh", p.display(), source.display());
        return Some(p);
    }
    if std::env::var("MI_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!(
            "{} is missing and MI_REQUIRE_ALL=1: scripts/test.sh builds it with scripts/build-windows.sh",
            p.display()
        );
    }
    let msg = format!("SKIPPED: {} not built (scripts/build-windows.sh)", p.display());
    eprintln!("{msg}");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    let old = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::write(&log, format!("{old}{msg}\n"));
    None
}

/// The most recently changed file under `dir`, and when.
fn newest_under(dir: &Path) -> (std::time::SystemTime, PathBuf) {
    let mut newest = (std::time::SystemTime::UNIX_EPOCH, dir.to_path_buf());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let found = if p.is_dir() { newest_under(&p) } else { (e.metadata().unwrap().modified().unwrap(), p) };
        newest = newest.max(found);
    }
    newest
}

fn objdump(tool: &str, args: &[&str], dll: &Path) -> String {
    let out = Command::new(tool).args(args).arg(dll).output().unwrap();
    assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn exported_names(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| {
            let l = l.trim();
            l.starts_with('[').then(|| l.rsplit(' ').next().unwrap().to_string()).filter(|n| n.starts_with("mi_"))
        })
        .collect()
}

fn imported_dlls(dump: &str) -> Vec<String> {
    dump.lines().filter_map(|l| l.trim().strip_prefix("DLL Name: ").map(|n| n.to_ascii_lowercase())).collect()
}

/// Every ABI function is exported under its plain name (not `_mi_init@4`), and every
/// imported DLL exists on Windows 7.
fn exports_and_imports(objdump_tool: &str, dll: &Path, arch: &str) {
    let dump = objdump(objdump_tool, &["-p"], dll);
    let mut names = exported_names(&dump);
    names.sort();
    let mut want: Vec<String> = EXPORTS.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "{arch}: plain export names");
    for d in imported_dlls(&dump) {
        assert!(WIN7_DLLS.contains(&d.as_str()), "{arch} imports {d}, which Windows 7 lacks");
    }
}

#[test]
fn x64_dll_runs_an_outpatient_visit_under_wine() {
    let wine =
        ["/usr/lib/wine/wine64", "wine64"].into_iter().find(|w| Command::new(w).arg("--version").output().is_ok());
    let Some(dll) = dll("x64") else { return };
    if !require_tool("x86_64-w64-mingw32-gcc", &["--version"]) {
        return;
    }
    let Some(wine) = wine else {
        assert!(require_tool("wine64", &["--version"]), "wine64 missing");
        return;
    };
    exports_and_imports("x86_64-w64-mingw32-objdump", &dll, "x64");
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("win_loader.exe");
    let gcc = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(root().join("tests/c/win_loader.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(gcc.status.success(), "{}", String::from_utf8_lossy(&gcc.stderr));
    std::fs::copy(&dll, work.path().join("mi_sdk.dll")).unwrap();
    let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
    let cfg = serde_json::json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "Windows", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "gateway": {"url": sim.service_url()},
        "journal": {"path": "mi_journal.db"},
        "log": {"dir": "logs"}
    });
    std::fs::write(work.path().join("mi_sdk.json"), cfg.to_string()).unwrap();
    // Wine maps the Linux root to Z:.
    let win_path = format!("Z:{}", work.path().join("mi_sdk.json").display()).replace('/', "\\");
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wineprefix");
    // The program holds its last request at the gate "win" across mi_shutdown and
    // FreeLibrary; the platform answers once the library is unloaded.
    let freed = work.path().join("freed.txt");
    let run = std::thread::scope(|s| {
        s.spawn(|| {
            if common::wait_until(|| freed.exists()) {
                sim.open_gate("win");
            }
        });
        Command::new(wine)
            .arg(&exe)
            .arg(&win_path)
            .arg(std::process::id().to_string())
            .current_dir(work.path())
            .env("WINEPREFIX", &prefix)
            .env("WINEDEBUG", "-all")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ledger = sim.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["settlements"].as_array().unwrap().len(), 1);
    assert!(work.path().join("mi_journal.db").is_file(), "the journal sits beside the config");
}

#[test]
fn x86_dll_exports_plain_stdcall_names_and_loads_on_windows_7() {
    let Some(dll) = dll("x86") else { return };
    if !require_tool("i686-w64-mingw32-objdump", &["--version"]) {
        return;
    }
    exports_and_imports("i686-w64-mingw32-objdump", &dll, "x86");
    // __stdcall: the callee pops its arguments, so every return of an export with
    // arguments is `ret $N` with N the bytes of its parameters, and a plain `ret`
    // for those without.
    for (name, bytes) in EXPORTS {
        // The symbol table carries the stdcall-decorated name; the export table the plain one.
        let asm = objdump("i686-w64-mingw32-objdump", &["-d", &format!("--disassemble=_{name}@{bytes}")], &dll);
        let rets: Vec<&str> = asm.lines().filter(|l| l.contains("\tret")).collect();
        assert!(!rets.is_empty(), "{name}: no ret found");
        for r in rets {
            if bytes == 0 {
                assert!(!r.contains("ret    $"), "{name}: {r}");
            } else {
                assert!(r.contains(&format!("ret    $0x{bytes:x}")), "{name}: {r} (want ret ${bytes})");
            }
        }
    }
    // The import library for linking C clients carries the decorated names.
    let def = std::fs::read_to_string(dll.parent().unwrap().join("mi_sdk.def")).unwrap();
    for (name, bytes) in EXPORTS {
        assert!(def.contains(&format!("{name}@{bytes}")), "{name}@{bytes} missing from mi_sdk.def");
    }
}
