// A VERSIONINFO resource for the Windows DLL and programs, shared by the build
// scripts of both packages (`include!`d): the "Details" tab of a file's properties
// is how a hospital's IT checks what is installed. Compiled by mingw's windres.

/// What a file says it is: `VFT_DLL` or `VFT_APP`, and its description.
#[allow(dead_code)]
enum FileType {
    Dll(&'static str),
    App(&'static str),
}

/// Compiles the resource for `what` and links it into the package's cdylib (a DLL)
/// or its programs (an app). Only when building for Windows.
fn version_resource(what: FileType) {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let v = |k: &str| std::env::var(k).unwrap();
    let out = std::path::PathBuf::from(v("OUT_DIR"));
    let arch = v("CARGO_CFG_TARGET_ARCH");
    let windres = format!("{}-w64-mingw32-windres", if arch == "x86" { "i686" } else { arch.as_str() });
    let (major, minor, patch) =
        (v("CARGO_PKG_VERSION_MAJOR"), v("CARGO_PKG_VERSION_MINOR"), v("CARGO_PKG_VERSION_PATCH"));
    let version = v("CARGO_PKG_VERSION");
    let (file_type, description, kind, stem) = match what {
        FileType::Dll(d) => (2, d, "cdylib", "version-dll"),
        FileType::App(d) => (1, d, "bins", "version-app"),
    };
    let rc = format!(
        r#"1 VERSIONINFO
FILEVERSION {major},{minor},{patch},0
PRODUCTVERSION {major},{minor},{patch},0
FILEFLAGSMASK 0x3f
FILEFLAGS 0
FILEOS 0x40004
FILETYPE {file_type}
FILESUBTYPE 0
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "mi_sdk"
      VALUE "FileDescription", "{description}"
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
    let rc_file = out.join(format!("{stem}.rc"));
    let obj = out.join(format!("{stem}.o"));
    std::fs::write(&rc_file, rc).unwrap();
    let status = std::process::Command::new(&windres)
        .args(["-O", "coff", "-i"])
        .arg(&rc_file)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| panic!("{windres}: {e} (install mingw-w64)"));
    assert!(status.success(), "{windres} failed on {}", rc_file.display());
    println!("cargo:rustc-link-arg-{kind}={}", obj.display());
}
