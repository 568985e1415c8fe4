//! Compiles `tests/c/abi_test.c` with `gcc -std=c99 -Wall -Wextra -Werror` against
//! the committed header, links it to the built `libmi_sdk.so`, and runs it against
//! `mi-sim --profile tif`. Also checks the header in C++ and pedantic C, and runs
//! the C programs under AddressSanitizer and Valgrind memcheck and for 100,000
//! calls to show memory stays flat (issue 8).

mod common;

use common::{require_tool, shared_library, Env, SimProcess};
use std::path::Path;
use std::process::Command;

fn require_gcc() -> bool {
    require_tool("gcc", &["--version"])
}

/// Builds a C program against the committed header and the shared library in
/// `lib_dir`, with every warning an error.
fn build_c(src: &Path, exe: &Path, lib_dir: &Path) {
    build_c_with(src, exe, lib_dir, &[]);
}

#[test]
fn c99_program_against_the_shared_library_and_tif_simulator() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let so = shared_library();
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("abi_test");
    build_c(&root.join("tests/c/abi_test.c"), &exe, so.parent().unwrap());

    let sim = SimProcess::national(&["--profile", "tif", "--paas-id", "c-test", "--paas-token", "c-test-token"]);
    let run = Command::new(&exe)
        .arg(&sim.url)
        .arg(work.path())
        .arg("c-test")
        .arg("c-test-token")
        .env("LD_LIBRARY_PATH", so.parent().unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "C program failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let ledger = sim.ledger();
    assert_eq!(ledger["rejected"], 0, "the simulator rejected an envelope: {}", ledger["rejections"]);
    assert!(ledger["by_infno"]["1101"].as_u64().unwrap() >= 4);
}

#[test]
fn config_beside_the_library_file() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let so = shared_library();
    // A HIS folder: the library, its mi_sdk.json, and the program, nothing else.
    let his = tempfile::tempdir().unwrap();
    std::fs::copy(&so, his.path().join("libmi_sdk.so")).unwrap();
    let sim = SimProcess::start(&[]);
    let config = sim.config(serde_json::json!({
        "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "beside", "mdtrtarea_admvs": "440300",
                        "opter": "0001", "opter_name": "cashier"},
        "journal": {"path": "data/mi_journal.db"}
    }));
    std::fs::write(his.path().join("mi_sdk.json"), config.to_string()).unwrap();
    let exe = his.path().join("beside");
    build_c(&root.join("tests/c/beside.c"), &exe, his.path());
    // Run from an unrelated working folder, with no MI_SDK_CONFIG.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = Command::new(&exe)
        .arg(his.path().join("data/mi_journal.db"))
        .current_dir(elsewhere.path())
        .env("LD_LIBRARY_PATH", his.path())
        .env_remove("MI_SDK_CONFIG")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(his.path().join("logs/mi_sdk.log").is_file(), "logs resolve beside the config too");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing written to the working folder");
    assert_eq!(sim.ledger()["by_infno"]["1101"], 1);
}

#[test]
fn header_compiles_as_pedantic_c_and_as_cpp() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("h.c");
    std::fs::write(
        &src,
        "#include \"mi_sdk.h\"\nint main(void) { return mi_abi_version() == MI_ABI_VERSION ? 0 : 1; }\n",
    )
    .unwrap();
    for (compiler, std) in [("gcc", "-std=c99"), ("gcc", "-std=c11"), ("g++", "-std=c++11")] {
        let lang = if compiler == "g++" { "c++" } else { "c" };
        let out = Command::new(compiler)
            .args([std, "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", lang, "-I"])
            .arg(root.join("include"))
            .arg(&src)
            .output()
            .unwrap();
        assert!(out.status.success(), "{compiler} {std}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `examples/c/basic.c`, `batch.c` and `inpatient.c`, built with -Wall -Wextra
/// -Werror and run against the simulator with a config file, as a HIS engineer
/// would copy them.
#[test]
fn c_examples_build_and_run() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let so = shared_library();
    let work = tempfile::tempdir().unwrap();
    // The platform of the region MI_SIM_VARIANT names, and a config for it.
    let sim = Env::plain();
    let config = work.path().join("mi_sdk.json");
    let cfg = sim.config(serde_json::json!({"institution": {"fixmedins_name": "examples", "opter_name": "cashier"}}));
    std::fs::write(&config, cfg.to_string()).unwrap();
    for (example, args) in [("basic", vec![]), ("batch", vec!["150"]), ("inpatient", vec!["ZY-C-1"])] {
        let exe = work.path().join(example);
        build_c(&root.join(format!("examples/c/{example}.c")), &exe, so.parent().unwrap());
        let run =
            Command::new(&exe).arg(&config).args(&args).env("LD_LIBRARY_PATH", so.parent().unwrap()).output().unwrap();
        assert!(
            run.status.success(),
            "{example}:\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let ledger = sim.ledger();
    assert_eq!(ledger["by_infno"]["1101"], 151);
    // The inpatient stay: six fee lines over three days, one settlement, discharged.
    let stay = ledger["visits"].as_array().unwrap().iter().find(|v| v["ipt_otp_no"] == "ZY-C-1").unwrap().clone();
    assert_eq!(
        (stay["kind"].as_str(), stay["fees"].as_u64(), stay["discharged"].as_bool()),
        (Some("inpatient"), Some(6), Some(true))
    );
    let settled: Vec<&serde_json::Value> =
        ledger["settlements"].as_array().unwrap().iter().filter(|s| s["mdtrt_id"] == stay["mdtrt_id"]).collect();
    assert_eq!((settled.len(), settled[0]["medfee_sumamt"].as_f64()), (1, Some(366.6)));
    assert_eq!(ledger["rejected"], 0, "{}", ledger["rejections"]);
}

/// `build_c` with extra compiler flags (sanitizers, optimisation), and debug
/// information for the sanitizers' and Valgrind's reports.
fn build_c_with(src: &Path, exe: &Path, lib_dir: &Path, flags: &[&str]) {
    let gcc = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-D_POSIX_C_SOURCE=200809L", "-g"])
        .args(flags)
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(src)
        .arg("-o")
        .arg(exe)
        .arg("-L")
        .arg(lib_dir)
        .arg("-lmi_sdk")
        .output()
        .unwrap();
    assert!(gcc.status.success(), "gcc {}:\n{}", src.display(), String::from_utf8_lossy(&gcc.stderr));
}

/// Runs a built C program beside the shared library; its stdout and stderr.
fn run_c(wrapper: &[&str], exe: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let so = shared_library();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = cmd.args(args).env("LD_LIBRARY_PATH", so.parent().unwrap()).envs(env.iter().copied()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rss_kib <10%> ... <100%>` from mem_loop.
fn rss_of(stdout: &str) -> Vec<f64> {
    let line = stdout.lines().find(|l| l.starts_with("rss_kib ")).unwrap_or_else(|| panic!("no rss line: {stdout}"));
    line.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect()
}

/// Issue 8: 100,000 calls of a cashier's kinds (1,000 of them sent to the
/// platform) leave the resident set where it was after the first half: a leak grows
/// with the calls, while SQLite's page cache (2 MiB by default) fills and stops.
#[test]
fn a_hundred_thousand_calls_keep_memory_flat() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("mem_loop");
    build_c_with(&root.join("tests/c/mem_loop.c"), &exe, shared_library().parent().unwrap(), &["-O1"]);
    let sim = SimProcess::national(&[]);
    let t0 = std::time::Instant::now();
    let (ok, stdout, stderr) = run_c(&[], &exe, &[&sim.url, work.path().to_str().unwrap(), "100000"], &[]);
    assert!(ok, "{stdout}\n{stderr}");
    let rss = rss_of(&stdout);
    eprintln!("RSS in KiB after each 10,000 calls: {rss:?} ({:?})", t0.elapsed());
    // A leak of 20 bytes a call would add 1 MiB over the second half.
    assert!(rss[9] - rss[4] <= 1024.0, "memory grew from {} KiB at 50,000 calls to {} KiB at 100,000", rss[4], rss[9]);
    assert!(rss[9] <= rss[0] * 1.25, "memory grew from {} KiB at 10,000 calls to {} KiB", rss[0], rss[9]);
    // Every call journaled; each sent once, except an async one still queued when
    // mi_shutdown stopped taking work, which stays in the journal for the next
    // mi_init (docs/api_reference.md, mi_shutdown) — on a busy machine the last one
    // can be.
    let db = rusqlite::Connection::open(work.path().join("mem_journal.db")).unwrap();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM mi_request WHERE infno = '1101'"), 2001, "1 + 1,000 sync + 1,000 async");
    let left = count("SELECT COUNT(*) FROM mi_request WHERE infno = '1101' AND state = 'queued' AND attempts = 0");
    let sent = sim.ledger()["by_infno"]["1101"].as_i64().unwrap();
    assert_eq!(sent + left, 2001, "{sent} sent and {left} left queued");
}

/// Issue 8: the C programs built with AddressSanitizer (and UBSan): no invalid
/// access and, at exit, no leak (LeakSanitizer).
#[test]
fn c_programs_under_address_sanitizer() {
    if !require_gcc() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = shared_library();
    let work = tempfile::tempdir().unwrap();
    let asan = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"];
    let options =
        [("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0"), ("UBSAN_OPTIONS", "print_stacktrace=1")];
    let abi = work.path().join("abi_test_asan");
    build_c_with(&root.join("tests/c/abi_test.c"), &abi, lib.parent().unwrap(), &asan);
    let sim = SimProcess::national(&["--profile", "tif", "--paas-id", "c-test", "--paas-token", "c-test-token"]);
    let (ok, stdout, stderr) =
        run_c(&[], &abi, &[&sim.url, work.path().to_str().unwrap(), "c-test", "c-test-token"], &options);
    assert!(ok && stdout.contains(" passed, 0 failed"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("Sanitizer"), "{stderr}");

    let mem = work.path().join("mem_loop_asan");
    build_c_with(&root.join("tests/c/mem_loop.c"), &mem, lib.parent().unwrap(), &asan);
    let plain = SimProcess::national(&[]);
    let (ok, stdout, stderr) = run_c(&[], &mem, &[&plain.url, work.path().to_str().unwrap(), "5000"], &options);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(!stderr.contains("Sanitizer"), "{stderr}");
}

/// Issue 8: the C programs under Valgrind memcheck: zero errors, zero definite leaks.
#[test]
fn c_programs_under_valgrind_memcheck() {
    if !require_gcc() || !require_tool("valgrind", &["--version"]) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = shared_library();
    let work = tempfile::tempdir().unwrap();
    let memcheck = [
        "valgrind",
        "--tool=memcheck",
        "--error-exitcode=99",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
    ];
    let abi = work.path().join("abi_test");
    build_c(&root.join("tests/c/abi_test.c"), &abi, lib.parent().unwrap());
    let sim = SimProcess::national(&["--profile", "tif", "--paas-id", "c-test", "--paas-token", "c-test-token"]);
    let (ok, stdout, stderr) =
        run_c(&memcheck, &abi, &[&sim.url, work.path().to_str().unwrap(), "c-test", "c-test-token"], &[]);
    assert!(ok && stdout.contains(" passed, 0 failed"), "{stdout}\n{stderr}");
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");

    let mem = work.path().join("mem_loop");
    build_c_with(&root.join("tests/c/mem_loop.c"), &mem, lib.parent().unwrap(), &[]);
    let plain = SimProcess::national(&[]);
    let (ok, stdout, stderr) = run_c(&memcheck, &mem, &[&plain.url, work.path().to_str().unwrap(), "1000"], &[]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
}
