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

    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        version_resource(&out, &v);
    }

    if std::env::var_os("CI").is_none() {
        let committed = root.join("include/mi_sdk.h");
        let fresh = std::fs::read(&generated).unwrap();
        if std::fs::read(&committed).ok().as_deref() != Some(fresh.as_slice()) {
            std::fs::create_dir_all(root.join("include")).unwrap();
            std::fs::write(&committed, fresh).unwrap();
        }
    }
}

/// A VERSIONINFO resource for the Windows DLL and programs: the "Details" tab of a
/// file's properties is how a hospital's IT checks what is installed. Compiled by
/// mingw's windres and linked into every binary the package builds.
fn version_resource(out: &std::path::Path, v: &dyn Fn(&str) -> String) {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap();
    let windres = format!("{}-w64-mingw32-windres", if arch == "x86" { "i686" } else { arch.as_str() });
    let (major, minor, patch) =
        (v("CARGO_PKG_VERSION_MAJOR"), v("CARGO_PKG_VERSION_MINOR"), v("CARGO_PKG_VERSION_PATCH"));
    let version = v("CARGO_PKG_VERSION");
    let rc = format!(
        r#"1 VERSIONINFO
FILEVERSION {major},{minor},{patch},0
PRODUCTVERSION {major},{minor},{patch},0
FILEFLAGSMASK 0x3f
FILEFLAGS 0
FILEOS 0x40004
FILETYPE 2
FILESUBTYPE 0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "mi_sdk"
      VALUE "FileDescription", "mi_sdk: client library for the national medical-insurance platform"
      VALUE "FileVersion", "{version}"
      VALUE "ProductName", "mi_sdk"
      VALUE "ProductVersion", "{version}"
      VALUE "LegalCopyright", "MIT OR Apache-2.0"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"#
    );
    let rc_file = out.join("version.rc");
    let obj = out.join("version.o");
    std::fs::write(&rc_file, rc).unwrap();
    let status = std::process::Command::new(&windres)
        .args(["-O", "coff", "-i"])
        .arg(&rc_file)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| panic!("{windres}: {e} (install mingw-w64)"));
    assert!(status.success(), "{windres} failed on {}", rc_file.display());
    println!("cargo:rustc-link-arg-cdylib={}", obj.display());
    println!("cargo:rustc-link-arg-bins={}", obj.display());
}
