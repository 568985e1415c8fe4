//! The simulator's Windows program carries a version resource like the SDK's files.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build/version_resource.rs");
    version_resource(FileType::App("mi-sim: a simulator of the national medical-insurance platform"));
}

include!("../build/version_resource.rs");
