//! The demos a newcomer runs first (`cargo run --release --example his_demo`,
//! `… inpatient_demo`): each must finish every step against its in-process
//! simulator. Run here from the binaries `cargo test` builds beside the tests.

mod common;

use std::process::Command;

fn run_demo(name: &str) -> String {
    let exe = common::target_dir().join("examples").join(name);
    assert!(exe.is_file(), "{} is built by cargo test", exe.display());
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(&exe).current_dir(work.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("All steps passed."),
        "{name}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Into a pipe (a log, CI) the demo writes lines, not a redrawn progress bar.
    assert!(!stdout.contains('\r'), "{name} wrote carriage returns into a pipe");
    stdout.into_owned()
}

#[test]
fn the_outpatient_demo_runs() {
    let out = run_demo("his_demo");
    // The patient is identified through the stand-in e-voucher reader (built by the C
    // compiler cargo links with), and the visit goes on under that voucher.
    assert!(out.contains("identify (e-voucher QR code) ... ok, \"ecard\""), "{out}");
}

#[test]
fn the_inpatient_demo_runs() {
    run_demo("inpatient_demo");
}
