//! The real Windows builds (scripts/build-windows.sh, into target/windows/): each DLL
//! loaded by a mingw-built C program with LoadLibraryA running an outpatient visit
//! against the simulator on loopback, FreeLibrary after mi_shutdown included; the
//! 64-bit one under wine64, the 32-bit one under 32-bit Wine in an i386 root
//! (scripts/win32-root.sh), and there also as Chinese Windows (code page 936) given a
//! GBK config path and file. mi-sdk.exe and mi-sim.exe of both bitnesses run under
//! Wine (check, status, the drop-box service). The 32-bit DLL is also checked
//! statically (plain export names, __stdcall epilogues, Windows 7 imports), and both
//! for their version resource and stripped symbols.

mod common;

use common::require_tool;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The exports and their __stdcall argument bytes on i686.
const EXPORTS: [(&str, u32); 20] = [
    ("mi_init", 4),
    ("mi_call_sync", 16),
    ("mi_call_async", 16),
    ("mi_get_result", 16),
    ("mi_get_request", 16),
    ("mi_reverse", 16),
    ("mi_upload_file", 12),
    ("mi_download_file", 20),
    ("mi_reconcile", 12),
    ("mi_identify", 12),
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
const WIN7_DLLS: [&str; 9] = [
    "kernel32.dll",
    "advapi32.dll",
    "bcrypt.dll",
    // DPAPI (CryptProtectData) for the journal's key file: in Windows since XP.
    "crypt32.dll",
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
        let (newest, source) = common::newest_under(&root().join("src"));
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

/// One Wine prefix per bitness serves the tests, and the tests that leave programs
/// running end them all (`wineserver -k`): they take turns per bitness.
fn wine_turn(arch: &str) -> std::sync::MutexGuard<'static, ()> {
    static TURNS: [std::sync::Mutex<()>; 2] = [std::sync::Mutex::new(()), std::sync::Mutex::new(())];
    TURNS[usize::from(arch == "x86")].lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a Windows program of one bitness runs here.
enum Wine {
    /// Debian's wine64, for 64-bit programs.
    Wine64(&'static str),
    /// 32-bit Wine inside the i386 root of scripts/win32-root.sh, whose `/` is
    /// Wine's `Z:`; the programs and their files must sit inside it.
    Win32Root(PathBuf),
}

impl Wine {
    fn for_arch(arch: &str) -> Option<Wine> {
        if arch == "x64" {
            let found = ["/usr/lib/wine/wine64", "wine64"]
                .into_iter()
                .find(|w| Command::new(w).arg("--version").output().is_ok_and(|o| o.status.success()));
            return match found {
                Some(w) => Some(Wine::Wine64(w)),
                None => require_tool("wine64", &["--version"]).then_some(Wine::Wine64("wine64")),
            };
        }
        let root = std::env::var_os("MI_WIN32_ROOT").map_or_else(|| root().join("target/i386-root"), PathBuf::from);
        let ready = root.join(".mi-ready").is_file();
        common::require(ready, &format!("no 32-bit Wine root at {} (scripts/win32-root.sh makes it)", root.display()))
            .then_some(Wine::Win32Root(root))
    }

    /// A fresh folder the Windows program can reach.
    fn work_dir(&self) -> tempfile::TempDir {
        match self {
            Wine::Wine64(_) => tempfile::tempdir().unwrap(),
            Wine::Win32Root(root) => tempfile::tempdir_in(root.join("work")).unwrap(),
        }
    }

    /// `path` as the Windows program sees it.
    fn win_path(&self, path: &Path) -> String {
        let inside = match self {
            Wine::Wine64(_) => path.to_path_buf(),
            Wine::Win32Root(root) => Path::new("/").join(path.strip_prefix(root).unwrap()),
        };
        format!("Z:{}", inside.display()).replace('/', "\\")
    }

    /// Ends every Windows program this Wine runs.
    fn kill_all(&self) {
        let _ = match self {
            Wine::Wine64(_) => Command::new("wineserver")
                .arg("-k")
                .env("WINEPREFIX", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wineprefix"))
                .output(),
            Wine::Win32Root(i386) => {
                Command::new(root().join("scripts/win32-root.sh")).arg("--kill").arg(i386).output()
            }
        };
    }

    /// Starts `exe` with `args` in `dir` and leaves it running; stdout piped.
    fn spawn(&self, exe: &Path, args: &[String], dir: &Path) -> std::process::Child {
        let mut cmd = self.command(exe, dir, "C.UTF-8");
        cmd.args(args)
            .env("WINEDEBUG", "-all")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        cmd.spawn().unwrap()
    }

    /// Runs `exe` with `args` in `dir` (both reachable from Windows).
    fn run(&self, exe: &Path, args: &[String], dir: &Path) -> std::process::Output {
        self.run_as(exe, args, dir, "C.UTF-8")
    }

    /// [`Wine::run`] in a locale: `zh_CN.UTF-8` makes the 32-bit Wine Chinese Windows
    /// (ANSI code page 936).
    fn run_as(&self, exe: &Path, args: &[String], dir: &Path, lang: &str) -> std::process::Output {
        self.command(exe, dir, lang).args(args).env("WINEDEBUG", "-all").output().unwrap()
    }

    fn command(&self, exe: &Path, dir: &Path, lang: &str) -> Command {
        match self {
            Wine::Wine64(wine) => {
                let mut c = Command::new(wine);
                c.arg(exe).current_dir(dir);
                c.env("WINEPREFIX", Path::new(env!("CARGO_TARGET_TMPDIR")).join("wineprefix"));
                c
            }
            Wine::Win32Root(i386) => {
                let mut c = Command::new(root().join("scripts/win32-root.sh"));
                let inside = |p: &Path| Path::new("/").join(p.strip_prefix(i386).unwrap());
                c.arg("--run").arg(i386).arg(inside(dir)).arg(inside(exe)).env("LANG_IN_ROOT", lang);
                c
            }
        }
    }
}

/// The mingw C compiler for `arch`.
fn mingw_gcc(arch: &str) -> &'static str {
    if arch == "x64" {
        "x86_64-w64-mingw32-gcc"
    } else {
        "i686-w64-mingw32-gcc"
    }
}

/// tests/c/win_loader.c built for `arch` into `dir`, with the DLL beside it, as a HIS
/// is installed; the program's path.
fn install_loader(arch: &str, dll: &Path, dir: &Path) -> PathBuf {
    let exe = dir.join("win_loader.exe");
    let built = Command::new(mingw_gcc(arch))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root().join("include"))
        .arg(root().join("tests/c/win_loader.c"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    std::fs::copy(dll, dir.join("mi_sdk.dll")).unwrap();
    exe
}

/// The HIS-style loader (tests/c/win_loader.c: LoadLibraryA, GetProcAddress, the
/// patient identified through stand-in reader DLLs of the same bitness, an
/// outpatient visit, async, status, then mi_shutdown with a send in flight and
/// FreeLibrary) built for `arch` and run under that bitness's Wine against the
/// simulator on loopback.
fn loader_runs_an_outpatient_visit(arch: &str) {
    let _turn = wine_turn(arch);
    let Some(dll) = dll(arch) else { return };
    let gcc = mingw_gcc(arch);
    if !require_tool(gcc, &["--version"]) {
        return;
    }
    let Some(wine) = Wine::for_arch(arch) else { return };
    exports_and_imports(&gcc.replace("gcc", "objdump"), &dll, arch);
    let work = wine.work_dir();
    let exe = install_loader(arch, &dll, work.path());
    let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
    let mut cfg = serde_json::json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "Windows", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "gateway": {"url": sim.service_url(), "timeout_ms": 4000},
        "journal": {},
        "log": {"dir": "logs"}
    });
    let config = work.path().join("mi_sdk.json");
    // The program holds its last request at the gate "win<visit>" across mi_shutdown
    // and FreeLibrary; the platform answers once the library is unloaded.
    let freed = work.path().join("freed.txt");
    // Each run with a journal of its own: the first's held request does not carry over.
    let visit = |n: u32, cfg: &serde_json::Value| {
        let mut cfg = cfg.clone();
        cfg["journal"]["path"] = format!("mi_journal{n}.db").into();
        std::fs::write(&config, cfg.to_string()).unwrap();
        let _ = std::fs::remove_file(&freed);
        let visit = format!("{}{arch}{n}", std::process::id());
        let run = std::thread::scope(|s| {
            s.spawn(|| {
                if common::wait_until(|| freed.exists()) {
                    sim.open_gate(&format!("win{visit}"));
                }
            });
            wine.run(&exe, &[wine.win_path(&config), visit.clone()], work.path())
        });
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success() && stdout.contains(" passed, 0 failed"),
            "{arch}: {stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        stdout
    };
    // First without readers: mi_identify says none is configured, and FreeLibrary
    // unloads the library with nothing of it left running.
    let stdout = visit(1, &cfg);
    // Then with the readers beside it, as a province installs them: the stand-in
    // built by mingw, __stdcall with plain names as the real ones export them;
    // SSCard.dll is the same source with its own Init and sized reads, whose four
    // stdcall arguments 32-bit Windows must get exactly right.
    for (name, defines) in
        [("NationECCode.dll", &[][..]), ("HeaSecReadInfo.dll", &[]), ("SSCard.dll", &["-DSSCARD_DLL"])]
    {
        let built = Command::new(gcc)
            .args(defines)
            .args(["-Wall", "-Wextra", "-Werror", "-shared", "-Wl,--kill-at", "-o"])
            .arg(work.path().join(name))
            .arg(root().join("sim/readers/fake_reader.c"))
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    }
    cfg["readers"] = serde_json::json!({
        "ecard": {"library": "NationECCode.dll", "url": "http://127.0.0.1:9/localcfc/api/hsecfc/localQrCodeQuery"},
        "sscard": {"library": "SSCard.dll", "api": "sscard", "init": {"url": "http://127.0.0.1:9/card", "user": "440300"}},
        "idcard": {"library": "HeaSecReadInfo.dll", "api": "heasec", "init": {"IP": "127.0.0.1", "PORT": 8080}},
        "timeout_ms": 1000
    });
    visit(2, &cfg);
    let ledger = sim.ledger();
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
    assert_eq!(ledger["settlements"].as_array().unwrap().len(), 2);
    assert!(work.path().join("mi_journal1.db").is_file(), "the journal sits beside the config");
    // On Windows a read blocked on the gateway is not woken when another thread shuts
    // its socket down: mi_shutdown(300) returns when that send times out
    // (gateway.timeout_ms, 4 s here), not later (docs/api_reference.md, mi_shutdown).
    let took: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("mi_shutdown(300) took ")?.strip_suffix(" ms")?.parse().ok())
        .unwrap_or_else(|| panic!("{arch}: no shutdown time in {stdout}"));
    assert!(took < 8000, "{arch}: mi_shutdown(300) took {took} ms, beyond gateway.timeout_ms");
}

#[test]
fn x64_dll_runs_an_outpatient_visit_under_wine() {
    loader_runs_an_outpatient_visit("x64");
}

/// The bitness most HIS are (PowerBuilder, Delphi 7, x86 .NET): the 32-bit DLL
/// under 32-bit Wine, __stdcall through function pointers, FreeLibrary included.
#[test]
fn x86_dll_runs_an_outpatient_visit_under_32_bit_wine() {
    loader_runs_an_outpatient_visit("x86");
}

/// Chinese Windows as hospitals have it (code page 936): the HIS is installed under a
/// Chinese folder and passes that path to `mi_init` as its ANSI (GBK) string; the
/// config there was saved by Notepad as "ANSI" (GBK) with Chinese names. mi_sdk reads
/// both in the system code page and the visit goes through with the names intact.
#[test]
fn x86_dll_reads_a_gbk_config_path_and_file_on_chinese_windows() {
    let Some(dll) = dll("x86") else { return };
    if !require_tool("i686-w64-mingw32-gcc", &["--version"]) {
        return;
    }
    let Some(wine) = Wine::for_arch("x86") else { return };
    let work = wine.work_dir();
    let his = work.path().join("医院HIS");
    std::fs::create_dir_all(&his).unwrap();
    let exe = install_loader("x86", &dll, &his);
    let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
    // The journal in clear (`seal` false): this test reads the envelope as sent from
    // Linux, where the key Wine's DPAPI protected does not open. The other visits
    // under Wine keep their journals sealed.
    let cfg = format!(
        "{{\"institution\": {{\"fixmedins_code\": \"H44030000001\", \"fixmedins_name\": \"深圳市第一人民医院\",\r\n\
         \"mdtrtarea_admvs\": \"440300\", \"opter\": \"0001\", \"opter_name\": \"收费员乙\"}},\r\n\
         \"gateway\": {{\"url\": \"{}\", \"timeout_ms\": 4000}}, \"journal\": {{\"path\": \"mi_journal.db\", \"seal\": false}}, \"log\": {{\"dir\": \"logs\"}}}}\r\n",
        sim.service_url()
    );
    let (gbk, _, _) = encoding_rs::GBK.encode(&cfg);
    std::fs::write(his.join("mi_sdk.json"), &gbk).unwrap();
    let freed = his.join("freed.txt");
    let arg = format!("@{}", wine.win_path(&his.join("mi_sdk.json")));
    let run = std::thread::scope(|s| {
        s.spawn(|| {
            if common::wait_until(|| freed.exists()) {
                sim.open_gate(&format!("win{}gbk", std::process::id()));
            }
        });
        wine.run_as(&exe, &[arg, format!("{}gbk", std::process::id())], &his, "zh_CN.UTF-8")
    });
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("code page 936"), "Wine is not Chinese Windows here: {stdout}");
    let log = std::fs::read_to_string(his.join("logs/mi_sdk.log")).unwrap();
    assert!(log.contains("read as GBK (code page 936)"), "{log}");
    let signins = sim.ledger()["signins"].clone();
    assert_eq!(sim.ledger()["settlements"].as_array().unwrap().len(), 1, "{signins}");
    let db = rusqlite::Connection::open(his.join("mi_journal.db")).unwrap();
    let envelope: String =
        db.query_row("SELECT envelope FROM mi_request WHERE infno = '2207'", [], |r| r.get(0)).unwrap();
    assert!(envelope.contains("深圳市第一人民医院") && envelope.contains("收费员乙"), "{envelope}");
}

/// The Delphi binding's test (bindings/delphi/MiSdkTest.dpr, Delphi dialect) built
/// by Free Pascal as the 32-bit Windows program a Delphi 7 HIS is (the binding's
/// `stdcall` declarations, `PAnsiChar` buffers, static import of `mi_sdk.dll`), and
/// run under 32-bit Wine against the simulator. The cross compiler is made by
/// scripts/fpc-win32.sh (scripts/test.sh makes it while the DLLs build).
#[test]
fn x86_delphi_binding_built_for_win32_runs_under_32_bit_wine() {
    let _turn = wine_turn("x86");
    let Some(dll) = dll("x86") else { return };
    let fpc = std::env::var_os("MI_FPC_WIN32").map_or_else(|| root().join("target/fpc-win32"), PathBuf::from);
    let ready = fpc.join(".mi-ready").is_file();
    if !common::require(
        ready,
        &format!("no Free Pascal cross compiler for win32 at {} (scripts/fpc-win32.sh)", fpc.display()),
    ) {
        return;
    }
    let Some(wine) = Wine::for_arch("x86") else { return };
    let work = wine.work_dir();
    let b = root().join("bindings/delphi");
    let out = Command::new(fpc.join("ppcross386"))
        .args(["-Twin32", "-Pi386", "-n", "-Mdelphi"])
        .arg(format!("-Fu{}", fpc.join("units").display()))
        .arg(format!("-Fu{}", b.display()))
        .arg(format!("-FE{}", work.path().display()))
        .arg(format!("-FU{}", work.path().display()))
        .arg(b.join("MiSdkTest.dpr"))
        .output()
        .unwrap();
    let exe = work.path().join("MiSdkTest.exe");
    assert!(out.status.success() && exe.is_file(), "ppcross386:\n{}", String::from_utf8_lossy(&out.stdout));
    // A 32-bit Windows program that imports mi_sdk.dll by name.
    let dump = objdump("i686-w64-mingw32-objdump", &["-p"], &exe);
    assert!(dump.contains("file format pei-i386"), "{dump}");
    assert!(imported_dlls(&dump).iter().any(|d| d.eq_ignore_ascii_case("mi_sdk.dll")), "{dump}");
    std::fs::copy(&dll, work.path().join("mi_sdk.dll")).unwrap();
    let sim = mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap();
    // The program writes its journal path into JSON: forward slashes need no escape.
    let dir = wine.win_path(work.path()).replace('\\', "/");
    let run = wine.run(&exe, &[sim.service_url(), dir], work.path());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let passed: u32 = stdout.split(" passed").next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(passed >= 20, "{stdout}");
    assert_eq!(sim.ledger()["rejected"], 0, "{}", sim.ledger()["rejections"]);
    assert!(work.path().join("pas_journal.db").is_file(), "the journal is where the program put it");
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
    // The shipped DLL is stripped; the build's own copy keeps the symbol table, which
    // carries the stdcall-decorated names (the export table has the plain ones).
    let built = root().join("target/win/i686-win7-windows-gnu/release/mi_sdk.dll");
    for (name, bytes) in EXPORTS {
        let asm = objdump("i686-w64-mingw32-objdump", &["-d", &format!("--disassemble=_{name}@{bytes}")], &built);
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

/// UTF-16LE, as a version resource stores its keys and values.
fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// What a hospital's IT sees in the file's "Details" tab, and files shipped without
/// their symbol table: the DLL and both programs of each bitness.
#[test]
fn every_shipped_file_carries_a_version_resource_and_no_symbols() {
    for arch in ["x64", "x86"] {
        let Some(dll) = dll(arch) else { continue };
        let tool = format!("{}-w64-mingw32-objdump", if arch == "x64" { "x86_64" } else { "i686" });
        if !require_tool(&tool, &["--version"]) {
            continue;
        }
        // VFT_DLL for the library, VFT_APP for the programs.
        for (file, file_type, says) in
            [("mi_sdk.dll", 2, "client library"), ("mi-sdk.exe", 1, "operators"), ("mi-sim.exe", 1, "simulator")]
        {
            let path = dll.with_file_name(file);
            let bytes = std::fs::read(&path).unwrap();
            let has = |s: &str| common::contains(&bytes, &utf16(s));
            assert!(
                has("VS_VERSION_INFO") && has("ProductName") && has("FileDescription"),
                "{arch} {file}: no version resource"
            );
            assert!(
                has(env!("CARGO_PKG_VERSION")) && has("mi_sdk") && has(says),
                "{arch} {file}: version, product, description"
            );
            // VS_FIXEDFILEINFO: its signature, then eight fields before dwFileType;
            // the file version's high word is major << 16 | minor.
            let key = common::find(&bytes, &utf16("VS_VERSION_INFO")).unwrap();
            let sig =
                key + bytes[key..].windows(4).position(|w| w == [0xBD, 0x04, 0xEF, 0xFE]).expect("VS_FIXEDFILEINFO");
            let field = |i: usize| u32::from_le_bytes(bytes[sig + 4 * i..sig + 4 * i + 4].try_into().unwrap());
            let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
            let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
            assert_eq!(field(2), major << 16 | minor, "{arch} {file}: file version");
            assert_eq!(field(9), file_type, "{arch} {file}: file type");
            let symbols = objdump(&tool, &["-t"], &path);
            assert!(symbols.contains("no symbols"), "{arch} {file}: shipped with its symbol table");
        }
    }
}

/// Runs its closure when dropped, a failed assertion included.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The Windows package of `arch` unpacked into an empty folder and `mi-sdk.exe` and
/// `mi-sim.exe` run from there, as a hospital's IT would: the simulator under Wine answering on loopback, `mi-sdk check --sign-in` and `status`
/// against it, and the drop-box service turning a request file into a result file,
/// as a Windows service (installed, started, stopped, removed) and in a console.
fn exes_run_under_wine(arch: &str) {
    let _turn = wine_turn(arch);
    let Some(dll) = dll(arch) else { return };
    let Some(wine) = Wine::for_arch(arch) else { return };
    let Some(zip) = common::package(&format!("windows-{arch}"), "zip") else { return };
    let unpacked = wine.work_dir();
    // Unpacked into an empty folder, as a hospital's IT would, and run from there.
    let work = common::unpack(&zip, unpacked.path());
    let own = ["mi-sdk.exe", "mi-sim.exe", "mi_sdk.dll", "mi_sdk.def", "libmi_sdk.a"];
    for f in own.iter().chain(&common::PACKAGE_FILES) {
        assert!(work.join(f).is_file(), "{arch}: {} has no {f}", zip.display());
    }
    // The packaged DLL is the one built.
    assert_eq!(std::fs::read(work.join("mi_sdk.dll")).unwrap(), std::fs::read(&dll).unwrap(), "{arch}");
    // The simulator, a Windows program here, on a port of its own.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut sim = wine.spawn(
        &work.join("mi-sim.exe"),
        &["--addr".into(), format!("127.0.0.1:{port}"), "--profile".into(), "tif".into()],
        &work,
    );
    let mut said = std::io::BufReader::new(sim.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut said, &mut first).unwrap();
    // It prints more (the credentials it expects): read on, or it meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut said, &mut std::io::sink()));
    assert!(first.starts_with("mi-sim listening on http://127.0.0.1:"), "{arch}: {first}");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    // Whatever fails below, the Windows programs left running are ended.
    let _end = OnDrop(|| wine.kill_all());
    let cfg = serde_json::json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "Windows", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "gateway": {"url": url, "profile": "tif", "paas_id": "mi_sdk_test", "paas_token": "tif-token-for-tests"},
        "journal": {"path": "mi_journal.db"},
        "log": {"dir": "logs"},
        "http": {"token": WINE_HTTP_TOKEN}
    });
    std::fs::write(work.join("mi_sdk.json"), cfg.to_string()).unwrap();
    let sdk = work.join("mi-sdk.exe");
    let config = wine.win_path(&work.join("mi_sdk.json"));
    let run = |args: &[&str]| {
        let mut all = vec!["--config".to_string(), config.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        let out = wine.run(&sdk, &all, &work);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["check", "--sign-in"]);
    assert_eq!(code, Some(0), "{arch} check:\n{out}\n{err}");
    assert!(out.contains("OK   gateway") && out.contains("OK   sign-in"), "{arch}: {out}");
    let (code, out, err) = run(&["status"]);
    assert_eq!(code, Some(0), "{arch} status:\n{out}\n{err}");
    assert!(out.contains("mi_journal.db"), "{arch}: {out}");
    service_runs_under_wine(arch, &wine, &work, &run);
    http_service_runs_under_wine(arch, &run);
    // Wine's ODBC hands calls to the host's unixODBC and its drivers: the 64-bit
    // program's bridge runs against a real PostgreSQL. (The i386 root has no 32-bit
    // unixODBC or drivers.)
    if arch == "x64" {
        bridge_service_runs_under_wine(&work, &cfg, &run);
    }
    // The drop-box service in a console: a request file in, its result file out.
    let drop = work.join("dropbox");
    std::fs::create_dir_all(&drop).unwrap();
    let mut serve = wine.spawn(
        &sdk,
        &["--config".into(), config.clone(), "serve".into(), "--watch".into(), wine.win_path(&drop)],
        &work,
    );
    let res = drop_box_round_trip(&drop, "q1");
    wine.kill_all();
    for child in [&mut sim, &mut serve] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let res = res.unwrap_or_else(|| panic!("{arch}: no result file in {}", drop.display()));
    assert_eq!(res["result"]["output"]["baseinfo"]["psn_name"], "张三", "{arch}: {res}");
}

const WINE_HTTP_TOKEN: &str = "wine-HTTP-token-0123456789";

/// The local HTTP API as a Windows service under Wine's Service Control Manager:
/// installed on a loopback port (a remote address refused), started, called from
/// this side over a real socket (status, and a 1101 that reaches the simulator),
/// stopped and removed.
fn http_service_runs_under_wine(arch: &str, run: &dyn Fn(&[&str]) -> Ran) {
    let name = "mi-sdk-http";
    let _ = run(&["service", "uninstall", "--name", name]);
    let _uninstall = OnDrop(|| drop(run(&["service", "uninstall", "--name", name])));
    let (code, out, err) = run(&["service", "install", "--name", name, "--http", "0.0.0.0:8765"]);
    assert_eq!(code, Some(1), "{arch} install on a remote address:\n{out}\n{err}");
    assert!(err.contains("loopback"), "{arch}: {err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let (code, out, err) = run(&["service", "install", "--name", name, "--http", &addr]);
    assert_eq!(code, Some(0), "{arch} install --http:\n{out}\n{err}");
    let (code, out, err) = run(&["service", "start", "--name", name]);
    assert_eq!(code, Some(0), "{arch} start --http:\n{out}\n{err}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let ask = |method: &str, path: &str, body: &str, token: &str| {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .body(body.to_string())
            .unwrap();
        let mut resp = agent.run(req).unwrap();
        let status = resp.status().as_u16();
        let v: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        (status, v)
    };
    let (status, v) = ask("GET", "/v1/status", "", WINE_HTTP_TOKEN);
    assert_eq!((status, v["output"]["fixmedins_code"].as_str()), (200, Some("H44030000001")), "{arch}: {v}");
    let (status, _) = ask("GET", "/v1/status", "", "wine-HTTP-token-012345678X");
    assert_eq!(status, 401, "{arch}");
    let q = serde_json::json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}});
    let (status, v) = ask("POST", "/v1/call/1101", &q.to_string(), WINE_HTTP_TOKEN);
    assert_eq!((status, v["mi_code"].as_i64()), (200, Some(0)), "{arch}: {v}");
    assert_eq!(v["output"]["output"]["baseinfo"]["psn_name"], "张三", "{arch}: {v}");
    let (code, out, err) = run(&["service", "stop", "--name", name]);
    assert_eq!(code, Some(0), "{arch} stop --http:\n{out}\n{err}");
    let (code, out, err) = run(&["service", "uninstall", "--name", name]);
    assert_eq!(code, Some(0), "{arch} uninstall --http:\n{out}\n{err}");
}

/// How a program ended: exit code, stdout, stderr.
type Ran = (Option<i32>, String, String);

/// A request file dropped into `dir`, and the result the drop-box service wrote for
/// it (None when none came).
fn drop_box_round_trip(dir: &Path, name: &str) -> Option<serde_json::Value> {
    let req = serde_json::json!({"infno": "1101", "input": {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234"}}});
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, req.to_string()).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.req.json"))).unwrap();
    let res = dir.join(format!("{name}.res.json"));
    common::wait_until(|| res.is_file()).then(|| serde_json::from_slice(&std::fs::read(&res).unwrap()).unwrap())
}

/// `mi-sdk service` under Wine's Service Control Manager: install (refusing a folder
/// that does not exist), start, a drop-box round trip through the running service,
/// stop (logged), a start that fails for a folder gone since install (explained by
/// its exit code), uninstall. `run` runs mi-sdk.exe with the config.
fn service_runs_under_wine(arch: &str, wine: &Wine, work: &Path, run: &dyn Fn(&[&str]) -> Ran) {
    // A service left by an earlier run that failed half-way (the Wine prefix keeps it),
    // and none left by this one, however it ends.
    let _ = run(&["service", "uninstall"]);
    let _uninstall = OnDrop(|| drop(run(&["service", "uninstall"])));
    let svcbox = work.join("svcbox");
    std::fs::create_dir_all(&svcbox).unwrap();
    let watch = wine.win_path(&svcbox);
    let missing = wine.win_path(&work.join("no-such-folder"));
    let (code, out, err) = run(&["service", "install", "--watch", &missing]);
    assert_eq!(code, Some(1), "{arch} install on a missing folder:\n{out}\n{err}");
    assert!(err.contains("no-such-folder"), "{arch}: {err}");
    let (code, out, err) = run(&["service", "install", "--watch", &watch]);
    assert_eq!(code, Some(0), "{arch} service install:\n{out}\n{err}");
    assert!(out.contains("installed the service mi-sdk"), "{arch}: {out}");
    let (code, out, err) = run(&["service", "install", "--watch", &watch, "--name", "mi-sdk"]);
    assert_eq!(code, Some(1), "{arch} second install:\n{out}\n{err}");
    let (code, out, err) = run(&["service", "start"]);
    assert_eq!(code, Some(0), "{arch} service start:\n{out}\n{err}");
    assert!(out.contains("the service mi-sdk is running"), "{arch}: {out}");
    let res = drop_box_round_trip(&svcbox, "s1");
    let (code, out, err) = run(&["service", "stop"]);
    assert_eq!(code, Some(0), "{arch} service stop:\n{out}\n{err}");
    assert!(out.contains("the service mi-sdk stopped"), "{arch}: {out}");
    let res = res.unwrap_or_else(|| panic!("{arch}: the running service wrote no result in {}", svcbox.display()));
    assert_eq!(res["result"]["output"]["baseinfo"]["psn_name"], "张三", "{arch}: {res}");
    let logs: String = std::fs::read_dir(work.join("logs"))
        .unwrap()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f.unwrap().path()).unwrap()).into_owned())
        .collect();
    assert!(logs.contains("service mi-sdk started by Windows"), "{arch}: {logs}");
    assert!(logs.contains("service mi-sdk stopped by Windows"), "{arch}: {logs}");
    // Installed, then its folder removed: the start fails, and says why.
    std::fs::remove_dir_all(&svcbox).unwrap();
    let (code, out, err) = run(&["service", "start"]);
    assert_eq!(code, Some(1), "{arch} start without its folder:\n{out}\n{err}");
    assert!(err.contains("watched folder is missing") && err.contains("svcbox"), "{arch}: {err}");
    let (code, out, err) = run(&["service", "uninstall"]);
    assert_eq!(code, Some(0), "{arch} service uninstall:\n{out}\n{err}");
    assert!(out.contains("removed the service mi-sdk"), "{arch}: {out}");
    let (code, _, err) = run(&["service", "stop"]);
    assert_eq!(code, Some(1), "{arch} stop after uninstall: {err}");
    assert!(err.contains("no such service"), "{arch}: {err}");
}

/// The database bridge through Windows' ODBC API (UTF-16 text) and as a Windows
/// service: installed into PostgreSQL by `mi-sdk.exe bridge install`, a request
/// written by the HIS with psql, run by the bridge service under Wine's Service
/// Control Manager, its answer read back from the view.
fn bridge_service_runs_under_wine(work: &Path, cfg: &serde_json::Value, run: &dyn Fn(&[&str]) -> Ran) {
    use common::databases::*;
    let Some(pg) = postgres() else { return };
    let mut cfg = cfg.clone();
    cfg["bridge"] = serde_json::json!({"dsn": pg.dsn(), "poll_ms": 20});
    std::fs::write(work.join("mi_sdk.json"), cfg.to_string()).unwrap();
    let (code, out, err) = run(&["bridge", "install"]);
    assert_eq!(code, Some(0), "bridge install:\n{out}\n{err}");
    assert!(out.contains("installed (postgres)"), "{out}");
    let input = serde_json::json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "440301199001011234",
                                            "psn_name": "张三"}});
    let id = pg.sql(&format!("CALL sp_mi_call('1101', '{input}', 0, NULL)")).trim().to_string();
    let _ = run(&["service", "uninstall", "--name", "mi-bridge"]);
    let _uninstall = OnDrop(|| drop(run(&["service", "uninstall", "--name", "mi-bridge"])));
    let (code, out, err) = run(&["service", "install", "--bridge", "--name", "mi-bridge"]);
    assert_eq!(code, Some(0), "service install --bridge:\n{out}\n{err}");
    assert!(out.contains("database bridge"), "{out}");
    let (code, out, err) = run(&["service", "start", "--name", "mi-bridge"]);
    assert_eq!(code, Some(0), "service start:\n{out}\n{err}");
    let state = || pg.sql(&format!("SELECT state FROM v_mi_result WHERE request_id = {id}")).trim().to_string();
    let done = common::wait_until(|| state() == "succeeded");
    let (code, out, err) = run(&["service", "stop", "--name", "mi-bridge"]);
    assert_eq!(code, Some(0), "service stop:\n{out}\n{err}");
    assert!(done, "the bridge service did not run the row: {}", state());
    let output = pg.sql(&format!("SELECT output_json FROM v_mi_result WHERE request_id = {id}"));
    let output: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(output["output"]["baseinfo"]["psn_name"], "张三", "{output}");
    println!("bridge service under Wine: row {id} succeeded");
    let (code, _, _) = run(&["service", "uninstall", "--name", "mi-bridge"]);
    assert_eq!(code, Some(0));
    // A config whose database has no bridge installed is refused at install time.
    assert_eq!(run(&["bridge", "uninstall"]).0, Some(0));
    let (code, out, err) = run(&["service", "install", "--bridge", "--name", "mi-bridge"]);
    assert_eq!(code, Some(1), "install --bridge without the bridge installed:\n{out}\n{err}");
    assert!(err.contains("not installed") && !err.contains("Pwd="), "{err}");
}

#[test]
fn x64_exes_run_under_wine() {
    exes_run_under_wine("x64");
}

#[test]
fn x86_exes_run_under_32_bit_wine() {
    exes_run_under_wine("x86");
}
