//! Generates `include/mi_sdk.h` from `src/ffi.rs` with cbindgen.
//!
//! cbindgen skips `extern "system"` functions, so it is given a view of ffi.rs in
//! which they read `extern "C"`; the real convention is carried by the `MI_CALL`
//! macro (`__stdcall` on 32-bit Windows). The header is always generated into
//! OUT_DIR (the header test compares it with the committed file); outside CI it is
//! also written to `include/` so a developer's build keeps it current.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/version_resource.rs");
    println!("cargo:rerun-if-env-changed=CI");

    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let ffi = std::fs::read_to_string(root.join("src/ffi.rs")).expect("src/ffi.rs");
    let view = out.join("ffi_view.rs");
    std::fs::write(&view, ffi.replace("extern \"system\"", "extern \"C\"")).unwrap();

    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let v = |k: &str| std::env::var(k).unwrap();
    config.after_includes = Some(format!(
        "{}\n#define MI_SDK_VERSION_MAJOR {}\n#define MI_SDK_VERSION_MINOR {}\n#define MI_SDK_VERSION_PATCH {}\n#define MI_SDK_VERSION \"{}\"\n#define MI_ABI_VERSION 1\n",
        config.after_includes.clone().unwrap_or_default(),
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
        v("CARGO_PKG_VERSION"),
    ));
    let generated = out.join("mi_sdk.h");
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(&view)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&generated);

    version_resource(FileType::Dll("mi_sdk: client library for the national medical-insurance platform"));
    version_resource(FileType::App("mi-sdk: the operators' command of mi_sdk"));

    if std::env::var_os("CI").is_none() {
        let committed = root.join("include/mi_sdk.h");
        let fresh = std::fs::read(&generated).unwrap();
        if std::fs::read(&committed).ok().as_deref() != Some(fresh.as_slice()) {
            std::fs::create_dir_all(root.join("include")).unwrap();
            std::fs::write(&committed, fresh).unwrap();
        }
    }
}

include!("build/version_resource.rs");
