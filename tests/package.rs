//! The Linux package (`scripts/package.sh`: dist/mi_sdk-<version>-linux-x86_64.tar.gz)
//! unpacked into an empty folder and used from there, as a hospital's IT would: every
//! file matches its SHA256SUMS, the example config (pointed at the package's own
//! simulator) passes `mi-sdk check --sign-in`, and the example C program, built
//! against the packaged header and library, makes a call. The Windows packages are
//! unpacked and run the same way under Wine (tests/windows.rs).

mod common;

use std::process::Command;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_linux_package_works_unpacked_into_an_empty_folder() {
    let Some(archive) = common::package("linux-x86_64", "tar.gz") else { return };
    let empty = tempfile::tempdir().unwrap();
    let dir = common::unpack(&archive, empty.path());
    let own = ["libmi_sdk.so", "libmi_sdk.a", "mi-sdk", "mi-sim", "examples/c/basic.c"];
    for f in own.iter().chain(&common::PACKAGE_FILES) {
        assert!(dir.join(f).is_file(), "{} has no {f}", archive.display());
    }
    // Shipped stripped: no symbol table in the programs and the shared library.
    for f in ["libmi_sdk.so", "mi-sdk", "mi-sim"] {
        let out = Command::new("nm").arg(dir.join(f)).output().unwrap();
        assert!(text(&out.stderr).contains("no symbols"), "{f} keeps its symbols");
    }
    // The package's own simulator, and the example config pointed at it, put beside
    // mi-sdk where the command finds it without --config.
    let sim = common::SimProcess::from_exe(&dir.join("mi-sim"));
    let example = std::fs::read(dir.join("examples/mi_sdk.example.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_slice(&example).unwrap();
    cfg["gateway"]["url"] = sim.url.clone().into();
    std::fs::write(dir.join("mi_sdk.json"), cfg.to_string()).unwrap();
    let mi_sdk = |args: &[&str]| {
        let mut c = Command::new(dir.join("mi-sdk"));
        c.args(args).current_dir(empty.path()).env_remove("MI_SDK_CONFIG").output().unwrap()
    };
    let out = mi_sdk(&["check", "--sign-in"]);
    assert!(out.status.success(), "check:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("OK   sign-in"), "{}", text(&out.stdout));
    // The example C program, against the packaged header and library only.
    let exe = dir.join("basic");
    let built = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Werror", "-Iinclude", "examples/c/basic.c", "-L.", "-lmi_sdk", "-o"])
        .arg(&exe)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built.stderr));
    let ran = Command::new(&exe).arg(dir.join("mi_sdk.json")).env("LD_LIBRARY_PATH", &dir).output().unwrap();
    assert!(ran.status.success(), "basic:\n{}\n{}", text(&ran.stdout), text(&ran.stderr));
    assert!(text(&ran.stdout).starts_with("rc=0 "), "{}", text(&ran.stdout));
    let out = mi_sdk(&["status"]);
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    // The journal beside the config, as the example config has it.
    let journal = dir.join("mi_journal.db");
    assert!(journal.is_file() && text(&out.stdout).contains(&journal.display().to_string()), "{}", text(&out.stdout));
}
