//! The language bindings in `bindings/`, each run by its real toolchain against the
//! simulator and the built shared library: Python (ctypes), C# (mono), Delphi
//! (fpc -Mdelphi), and the PowerBuilder declarations checked against the header.

mod common;

use common::{fake_reader, require_tool, shared_library};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a binding's test program and asserts it printed "N passed, 0 failed".
fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed") || stderr.contains("\nOK"), "{what}:\n{stdout}\n{stderr}");
}

fn sim() -> mi_sim::Sim {
    mi_sim::Sim::start(mi_sim::SimConfig::default(), "127.0.0.1:0").unwrap()
}

/// The stand-in e-voucher reader every binding identifies its patient through.
fn reader() -> PathBuf {
    fake_reader().expect("gcc builds the stand-in reader (scripts/test.sh installs it)")
}

fn lib_dir() -> PathBuf {
    shared_library().parent().unwrap().to_path_buf()
}

#[test]
fn python_binding() {
    if !require_tool("python3", &["--version"]) {
        return;
    }
    let sim = sim();
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "unittest", "-v", "test_mi_sdk"])
        .current_dir(root().join("bindings/python"))
        .env("MI_SDK_LIB", shared_library())
        .env("MI_SIM_URL", sim.service_url())
        .env("MI_WORK", work.path())
        .env("MI_FAKE_READER_LIB", reader())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run(cmd, "python3 -m unittest test_mi_sdk");
    assert_eq!(sim.ledger()["rejected"], 0, "{}", sim.ledger()["rejections"]);
}

#[test]
fn csharp_binding_under_mono() {
    if !require_tool("mcs", &["--version"]) || !require_tool("mono", &["--version"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("MiSdkTest.exe");
    let b = root().join("bindings/csharp");
    let out = Command::new("mcs")
        .arg(format!("-out:{}", exe.display()))
        .arg(b.join("MiSdk.cs"))
        .arg(b.join("MiSdkTest.cs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mcs:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sim = sim();
    let mut cmd = Command::new("mono");
    cmd.arg(&exe).arg(sim.service_url()).arg(work.path()).arg(reader()).env("LD_LIBRARY_PATH", lib_dir());
    run(cmd, "mono MiSdkTest.exe");
    assert_eq!(sim.ledger()["rejected"], 0, "{}", sim.ledger()["rejections"]);
}

#[test]
fn delphi_binding_with_free_pascal() {
    if !require_tool("fpc", &["-iV"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let b = root().join("bindings/delphi");
    let out = Command::new("fpc")
        .arg("-Mdelphi")
        .arg(format!("-FE{}", work.path().display()))
        .arg(format!("-Fu{}", b.display()))
        .arg(format!("-Fl{}", lib_dir().display()))
        .arg(b.join("MiSdkTest.dpr"))
        .output()
        .unwrap();
    assert!(out.status.success(), "fpc:\n{}", String::from_utf8_lossy(&out.stdout));
    let sim = sim();
    let mut cmd = Command::new(work.path().join("MiSdkTest"));
    cmd.arg(sim.service_url()).arg(work.path()).arg(reader()).env("LD_LIBRARY_PATH", lib_dir());
    run(cmd, "MiSdkTest (Free Pascal)");
    assert_eq!(sim.ledger()["rejected"], 0, "{}", sim.ledger()["rejections"]);
}

/// One C prototype from the header: name, return type, parameter types.
fn header_functions() -> Vec<(String, String, Vec<String>)> {
    let h = std::fs::read_to_string(root().join("include/mi_sdk.h")).unwrap();
    h.lines()
        .filter_map(|l| l.strip_prefix("MI_CALL "))
        .map(|l| {
            let (head, params) = l.split_once('(').unwrap();
            let name = head.rsplit([' ', '*']).next().unwrap().to_string();
            let ret = head[..head.len() - name.len()].trim().to_string();
            let params = params.trim_end_matches(");");
            let params: Vec<String> = if params == "void" {
                vec![]
            } else {
                params.split(", ").map(|p| p[..p.rfind([' ', '*']).unwrap() + 1].trim().to_string()).collect()
            };
            (name, ret, params)
        })
        .collect()
}

/// What PowerBuilder type a C type must be declared as.
fn pb_type(c: &str) -> &'static str {
    match c {
        "int32_t" => "long",
        "int64_t" => "longlong",
        "const char *" | "const char*" => "string",
        "char *" | "char*" => "ref string",
        "int32_t *" | "int32_t*" => "ref long",
        "int64_t *" | "int64_t*" => "ref longlong",
        other => panic!("no PowerBuilder mapping for {other}"),
    }
}

#[test]
fn powerbuilder_declarations_match_the_header() {
    let header = header_functions();
    assert!(header.len() >= 15, "{header:?}");
    for (file, ansi) in [("n_mi_sdk.sru", true), ("mi_sdk_pb9.txt", false)] {
        let text = std::fs::read_to_string(root().join("bindings/powerbuilder").join(file)).unwrap();
        let decls: Vec<&str> = text.lines().filter(|l| l.starts_with("FUNCTION ")).collect();
        assert_eq!(decls.len(), header.len(), "{file}: one declaration per export");
        for (name, ret, params) in &header {
            let d = decls
                .iter()
                .find(|d| d.contains(&format!(" {name}(")))
                .unwrap_or_else(|| panic!("{file}: {name} is not declared"));
            let (head, rest) = d.trim_start_matches("FUNCTION ").split_once('(').unwrap();
            let want_ret = if ret == "const char *" { "string" } else { pb_type(ret) };
            assert_eq!(head, format!("{want_ret} {name}"), "{file}: return type of {name}");
            let (args, tail) = rest.split_once(')').unwrap();
            let args: Vec<&str> = if args.is_empty() { vec![] } else { args.split(", ").collect() };
            assert_eq!(args.len(), params.len(), "{file}: parameter count of {name}");
            for (a, p) in args.iter().zip(params) {
                let ty = a.rsplit_once(' ').unwrap().0;
                assert_eq!(ty, pb_type(p), "{file}: {name}: {a} for C {p}");
            }
            assert!(tail.contains("LIBRARY \"mi_sdk.dll\""), "{file}: {name} library");
            let has_text = args.iter().any(|a| a.contains("string")) || want_ret == "string";
            if ansi && has_text {
                assert!(tail.contains(&format!("ALIAS FOR \"{name};Ansi\"")), "{file}: {name} needs its ;Ansi alias");
            }
            if !ansi {
                assert!(!tail.contains("ALIAS"), "{file}: PB 9 has no ;Ansi");
            }
        }
    }
}
