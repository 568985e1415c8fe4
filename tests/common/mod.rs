//! Helpers for tests that go through the exported C functions against a real
//! simulator on loopback and a real journal file in a temp folder.
#![allow(dead_code)]

pub mod browser;
pub mod databases;
pub mod served;

use mi_sdk::ffi::*;
use mi_sim::variants::{SignIn, Urls, Variant};
use mi_sim::{Profile, Sim, SimConfig};
use serde_json::{json, Value};
use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The SDK is one per process: tests that init it take turns.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    mi_shutdown(5000);
    g
}

pub const TIF_TOKEN: &str = "tif-SECRET-token-7d1f";
pub const CSB_SECRET: &str = "csb-SECRET-key-93ac";

pub struct Env {
    pub sim: Sim,
    pub dir: tempfile::TempDir,
    pub profile: Profile,
    /// The province variant the simulator is and the SDK is configured for.
    pub region: Region,
}

/// A province variant, set on both sides: the simulator's rules and the SDK's
/// region preset (docs/regions/).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    National,
    Guangzhou,
    Hebei,
    /// Jilin: the platform seals its answers (Base64 SM4 `output`, SM2 `cainfo`).
    Jilin,
    /// A tif gateway that wraps every answer in its own `{code, type, message, data}`.
    Wrapped,
}

/// The Guangzhou login account both sides are given.
pub const GZ_USERID: &str = "gz-user-01";
pub const GZ_PASSWORD: &str = "gz-SECRET-pass-5e2b";

impl Region {
    /// The variant the tests face: `MI_SIM_VARIANT` (national, guangzhou, hebei,
    /// jilin, wrapped; unset: national). Read here only, so every test that builds its `Env` the
    /// usual way runs against it without knowing which one it faces.
    pub fn from_env() -> Region {
        match std::env::var("MI_SIM_VARIANT").as_deref() {
            Err(_) | Ok("") | Ok("national") => Region::National,
            Ok("guangzhou") => Region::Guangzhou,
            Ok("hebei") => Region::Hebei,
            Ok("jilin") => Region::Jilin,
            Ok("wrapped") => Region::Wrapped,
            Ok(other) => panic!("MI_SIM_VARIANT={other}: national, guangzhou, hebei, jilin or wrapped"),
        }
    }

    /// The simulator's rules for this region.
    pub fn sim_variant(self) -> Variant {
        match self {
            Region::National => Variant::default(),
            Region::Guangzhou => Variant {
                urls: Urls::AppendInfno,
                sign_in: SignIn::Guangzhou,
                userid: GZ_USERID.into(),
                password: GZ_PASSWORD.into(),
                required_fields: vec!["recer_admdvs".into()],
                sm3_cainfo: true,
            },
            Region::Hebei => Variant { urls: Urls::PerInfno(hebei_paths()), ..Variant::default() },
            Region::Jilin | Region::Wrapped => Variant::default(),
        }
    }

    /// The `mi-sim` flags for this region's platform (the same rules as
    /// [`Region::sim_variant`]), and the path-table file they name, if any.
    pub fn sim_args(self) -> (Vec<String>, Option<tempfile::NamedTempFile>) {
        let v = self.sim_variant();
        let mut args: Vec<String> = Vec::new();
        let mut file = None;
        match &v.urls {
            Urls::Single => {}
            Urls::AppendInfno => args.extend(["--url-style".into(), "append_infno".into()]),
            Urls::PerInfno(paths) => {
                let f = tempfile::NamedTempFile::new().unwrap();
                std::fs::write(f.path(), serde_json::to_string(paths).unwrap()).unwrap();
                args.extend(["--url-style".into(), "per_infno".into(), "--paths".into()]);
                args.push(f.path().to_string_lossy().into_owned());
                file = Some(f);
            }
        }
        if v.sign_in == SignIn::Guangzhou {
            args.extend(["--sign-in".into(), "guangzhou".into(), "--sign-in-userid".into(), v.userid.clone()]);
            args.extend(["--sign-in-password".into(), v.password.clone()]);
        }
        for field in &v.required_fields {
            args.extend(["--require-field".into(), field.clone()]);
        }
        if v.sm3_cainfo {
            args.push("--sm3-cainfo".into());
        }
        match self {
            Region::Jilin => args.push("--encrypt-answers".into()),
            Region::Wrapped => args.push("--wrap-answers".into()),
            _ => {}
        }
        (args, file)
    }

    /// The SDK's config keys for this region facing simulator `sim`: its preset,
    /// and the account or keys a preset cannot carry.
    pub fn sdk_keys(self, sim: &SimConfig) -> Value {
        match self {
            Region::Jilin => {
                json!({"region": "jilin", "gateway": {"platform_public_key": sim.answer_public_key()},
                                    "mobile_pay": {"app_id": sim.mp_app_id, "app_secret": sim.mp_app_secret}})
            }
            // Nothing to configure: the SDK opens a wrapper wherever it meets one.
            Region::Wrapped => json!({}),
            Region::National => json!({}),
            Region::Guangzhou => {
                json!({"region": "guangzhou", "sign_in": {"userid": GZ_USERID, "password": GZ_PASSWORD}})
            }
            Region::Hebei => json!({"region": "hebei", "gateway": {"paths": hebei_extra_paths()}}),
        }
    }
}

/// The `gateway.paths` of a shipped preset: the simulator serves exactly the URLs
/// the SDK's preset names.
pub fn preset_paths(name: &str) -> std::collections::BTreeMap<String, String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/regions/{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    v["gateway"]["paths"].as_object().unwrap().iter().map(|(k, p)| (k.clone(), p.as_str().unwrap().into())).collect()
}

/// The transactions the suite runs that the Hebei preset's table (taken from the
/// public source) has no path for: pharmacy 2101-2103 and some queries.
const HEBEI_UNLISTED: [&str; 10] = ["2101", "2102", "2103", "5103", "5104", "5201", "5202", "5205", "5302", "5304"];

/// What a Hebei hospital that also runs those transactions adds to `gateway.paths`
/// in its own config, as docs/regions/hebei.md says: a path each.
pub fn hebei_extra_paths() -> Value {
    HEBEI_UNLISTED.iter().map(|i| (i.to_string(), Value::String(format!("/fsi/api/hospitalService/tx{i}")))).collect()
}

/// Every path a Hebei platform serves: the preset's and the hospital's additions.
fn hebei_paths() -> std::collections::BTreeMap<String, String> {
    let mut paths = preset_paths("hebei");
    for (i, p) in hebei_extra_paths().as_object().unwrap() {
        paths.insert(i.clone(), p.as_str().unwrap().into());
    }
    paths
}

impl Env {
    pub fn new(profile: Profile) -> Env {
        Env::variant(profile, |_| {})
    }

    /// A simulator of `profile` with a real deployment's variant set by `vary`
    /// (a wrapping gateway, ...), in the region `MI_SIM_VARIANT` names.
    pub fn variant(profile: Profile, vary: impl FnOnce(&mut SimConfig)) -> Env {
        Env::in_region(Region::from_env(), profile, vary)
    }

    /// For a test that seals the platform's answers itself (`encrypt_answers`, or
    /// the hex output of `encrypt_input`): the region `MI_SIM_VARIANT` names, except
    /// Jilin, whose variant is that sealing, which the test then sets up itself on a
    /// national platform.
    pub fn sealing(profile: Profile, vary: impl FnOnce(&mut SimConfig)) -> Env {
        let region = match Region::from_env() {
            Region::Jilin => Region::National,
            other => other,
        };
        Env::in_region(region, profile, vary)
    }

    /// As [`Env::variant`], in a region chosen by the test.
    pub fn in_region(region: Region, profile: Profile, vary: impl FnOnce(&mut SimConfig)) -> Env {
        let mut cfg = SimConfig {
            profile,
            paas_token: TIF_TOKEN.into(),
            secret_key: CSB_SECRET.into(),
            variant: region.sim_variant(),
            encrypt_answers: region == Region::Jilin,
            wrap_answers: region == Region::Wrapped,
            ..SimConfig::default()
        };
        vary(&mut cfg);
        let sim = Sim::start(cfg, "127.0.0.1:0").expect("simulator starts");
        Env { sim, dir: tempfile::tempdir().unwrap(), profile, region }
    }

    /// `gateway.url` for this simulator: its service URL, or, with one path per
    /// transaction, the base the paths go under.
    pub fn gateway_url(&self) -> String {
        match self.region {
            Region::Hebei => self.sim.base_url(),
            _ => self.sim.service_url(),
        }
    }

    pub fn plain() -> Env {
        Env::new(Profile::Plain)
    }

    /// A complete config for this simulator, with `patch` merged in (objects merge).
    pub fn config(&self, patch: Value) -> Value {
        let s = self.sim.config();
        let mut gateway = json!({"url": self.gateway_url(), "connect_timeout_ms": 2000, "timeout_ms": 5000});
        match self.profile {
            Profile::Plain => {}
            Profile::Tif => {
                merge(&mut gateway, json!({"profile": "tif", "paas_id": s.paas_id, "paas_token": s.paas_token}))
            }
            Profile::Csb => merge(
                &mut gateway,
                json!({"profile": "csb", "api_name": s.api_name, "access_key": s.access_key, "secret_key": s.secret_key}),
            ),
        }
        let mut c = json!({
            "institution": {"fixmedins_code": "H44030000001", "fixmedins_name": "深圳市示例医院", "mdtrtarea_admvs": "440300",
                            "insuplc_admdvs": "", "opter": "0001", "opter_name": "收费员甲"},
            "gateway": gateway,
            "node_id": 7,
            "journal": {"path": self.dir.path().join("journal/mi_journal.db").to_string_lossy()},
            "log": {"dir": self.dir.path().join("logs").to_string_lossy(), "level": "debug"},
            "workers": 4
        });
        merge(&mut c, self.region.sdk_keys(s));
        merge(&mut c, patch);
        c
    }

    pub fn init(&self, patch: Value) -> i32 {
        init_text(&self.config(patch).to_string())
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.path().join("journal/mi_journal.db")
    }

    pub fn ledger(&self) -> Value {
        self.sim.ledger()
    }
}

pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

pub fn init_text(config: &str) -> i32 {
    let c = CString::new(config).unwrap();
    // SAFETY: a valid NUL-terminated string.
    unsafe { mi_init(c.as_ptr()) }
}

/// A sync call with raw bytes in and out (any charset).
pub fn call_bytes(infno: &[u8], input: &[u8], cap: i32) -> (i32, Vec<u8>, i32) {
    let infno = CString::new(infno).unwrap();
    let input = CString::new(input).unwrap();
    let mut buf = vec![0x55u8; cap.max(0) as usize];
    let mut len = cap;
    let ptr = if cap == 0 { std::ptr::null_mut() } else { buf.as_mut_ptr() as *mut c_char };
    // SAFETY: valid strings; buf has `cap` bytes.
    let rc = unsafe { mi_call_sync(infno.as_ptr(), input.as_ptr(), ptr, &mut len) };
    let text = if rc != MI_E_BUFFER_TOO_SMALL && len >= 0 && (len as usize) < buf.len() {
        buf[..len as usize].to_vec()
    } else {
        buf.clone()
    };
    (rc, text, len)
}

/// A sync call in UTF-8 with a roomy buffer; the output parsed.
pub fn call(infno: &str, input: Value) -> (i32, Value) {
    let (rc, out, _) = call_bytes(infno.as_bytes(), input.to_string().as_bytes(), 1 << 20);
    let v = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("output of {infno} is not JSON ({e}): {}", String::from_utf8_lossy(&out)));
    (rc, v)
}

pub fn call_async(infno: &str, input: Value, priority: i32) -> (i32, i64) {
    let infno = CString::new(infno).unwrap();
    let input = CString::new(input.to_string()).unwrap();
    let mut id = -1i64;
    // SAFETY: valid strings and out-pointer.
    let rc = unsafe { mi_call_async(infno.as_ptr(), input.as_ptr(), priority, &mut id) };
    (rc, id)
}

type TextFn = unsafe extern "system" fn(i64, *mut c_char, *mut i32) -> i32;

fn text_of(f: TextFn, id: i64) -> (i32, String) {
    let mut buf = vec![0u8; 1 << 20];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { f(id, buf.as_mut_ptr() as *mut c_char, &mut len) };
    let s = if rc == MI_E_BUFFER_TOO_SMALL || len < 0 {
        String::new()
    } else {
        String::from_utf8_lossy(&buf[..len as usize]).into_owned()
    };
    (rc, s)
}

pub fn get_result(id: i64) -> (i32, String) {
    text_of(mi_get_result, id)
}

pub fn get_request(id: i64) -> (i32, Value) {
    let (rc, s) = text_of(mi_get_request, id);
    (rc, serde_json::from_str(&s).unwrap_or(Value::Null))
}

/// Waits until `cond` holds (a condition, never a guess of time), up to 20 s;
/// returns whether it did.
pub fn wait_until(cond: impl Fn() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

/// A count read from the journal file by a connection of its own (`sql` selects one
/// integer).
pub fn journal_count(env: &Env, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(env.journal_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Waits until a request is finished; returns its code and output.
pub fn wait_result(id: i64, secs: u64) -> (i32, Value) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let (rc, s) = get_result(id);
        if rc != MI_PENDING || std::time::Instant::now() > until {
            return (rc, serde_json::from_str(&s).unwrap_or(Value::Null));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

pub fn status() -> (i32, Value) {
    let mut buf = vec![0u8; 1 << 16];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { mi_get_status(buf.as_mut_ptr() as *mut c_char, &mut len) };
    if rc != MI_OK {
        return (rc, Value::Null);
    }
    (rc, serde_json::from_slice(&buf[..len as usize]).unwrap())
}

pub fn last_error_bytes() -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let mut len = buf.len() as i32;
    // SAFETY: buf has len bytes.
    let rc = unsafe { mi_last_error(buf.as_mut_ptr() as *mut c_char, &mut len) };
    assert_eq!(rc, MI_OK);
    buf[..len as usize].to_vec()
}

pub fn last_error() -> String {
    String::from_utf8_lossy(&last_error_bytes()).into_owned()
}

/// 1101 input for the registry's first person (张三).
pub fn q1101(certno: &str) -> Value {
    json!({"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": certno, "card_sn": "", "begntime": "", "psn_cert_type": "01", "certno": certno, "psn_name": ""}})
}

pub const ZHANG_CERTNO: &str = "440301199001011234";

/// Every file under a folder, read as bytes.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Registers a visit of `psn_no` with one fee line of `amount` yuan through the SDK
/// (sync 2201 and 2204); returns the 2207 input that settles it.
pub fn visit(psn_no: &str, otp_no: &str, amount: f64) -> Value {
    let per_call = |input: Value| json!({"input": input, "insuplc_admdvs": "440300"});
    let (rc, r) = call("2201", per_call(json!({"data": {"psn_no": psn_no, "insutype": "310", "ipt_otp_no": otp_no}})));
    assert_eq!(rc, MI_OK, "{r}");
    let mdtrt_id = r["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let fee = json!({"feedetail": [{"feedetl_sn": "1", "mdtrt_id": mdtrt_id, "psn_no": psn_no, "chrg_bchno": "B",
        "med_list_codg": "X1", "det_item_fee_sumamt": amount, "cnt": 1, "pric": amount}]});
    assert_eq!(call("2204", per_call(fee)).0, MI_OK);
    json!({"data": {"psn_no": psn_no, "mdtrt_id": mdtrt_id, "medfee_sumamt": amount, "acct_used_flag": "1", "med_type": "11"}})
}

/// Whether a toolchain a test needs runs (`tool args`). When it does not, the test
/// says SKIPPED loudly and records it for scripts/test.sh; with MI_REQUIRE_ALL=1
/// (CI) a missing toolchain fails the test instead.
pub fn require_tool(tool: &str, args: &[&str]) -> bool {
    let runs = std::process::Command::new(tool).args(args).output().is_ok_and(|o| o.status.success());
    require(runs, &format!("{tool} not found"))
}

/// [`require_tool`] for any precondition: `missing` says what is not there.
pub fn require(present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var("MI_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("{missing}, and MI_REQUIRE_ALL=1");
    }
    let msg = format!("SKIPPED: {missing}; the tests that need it did not run");
    eprintln!("{msg}");
    // Test output is captured; scripts/test.sh prints this file so a skip is seen.
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt");
    // Appended in one write: test processes run side by side.
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
    let _ = file.and_then(|mut f| std::io::Write::write_all(&mut f, format!("{msg}\n").as_bytes()));
    false
}

/// The most recently changed file under `dir`, and when.
pub fn newest_under(dir: &Path) -> (std::time::SystemTime, std::path::PathBuf) {
    let mut newest = (std::time::SystemTime::UNIX_EPOCH, dir.to_path_buf());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let found = if p.is_dir() { newest_under(&p) } else { (e.metadata().unwrap().modified().unwrap(), p) };
        newest = newest.max(found);
    }
    newest
}

/// The release package `dist/mi_sdk-<version>-<platform>.<ext>` that
/// scripts/package.sh made (`platform` e.g. "windows-x86", "linux-x86_64"), or a
/// loud skip when it was not made. One older than what it is made from fails.
pub fn package(platform: &str, ext: &str) -> Option<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = root.join("dist").join(format!("mi_sdk-{}-{platform}.{ext}", env!("CARGO_PKG_VERSION")));
    if !require(p.is_file(), &format!("no package {} (scripts/package.sh makes it)", p.display())) {
        return None;
    }
    let made = std::fs::metadata(&p).unwrap().modified().unwrap();
    // Everything a package is made from.
    for from in ["src", "sim/src", "build", "include", "bindings", "docs", "examples/c"] {
        let (newest, source) = newest_under(&root.join(from));
        assert!(made >= newest, "{} is older than {}: run scripts/package.sh", p.display(), source.display());
    }
    Some(p)
}

/// What every package holds besides its platform's libraries and programs.
pub const PACKAGE_FILES: [&str; 9] = [
    "include/mi_sdk.h",
    "bindings/delphi/MiSdk.pas",
    "bindings/csharp/MiSdk.cs",
    "bindings/python/mi_sdk.py",
    "bindings/powerbuilder/n_mi_sdk.sru",
    "examples/mi_sdk.example.json",
    "docs/installation.md",
    "sql/bridge/postgres/install.sql",
    "README.md",
];

/// Unpacks a package into the empty folder `into` with the tools a hospital's IT
/// would use (unzip, tar), checks every file against its SHA256SUMS (with
/// sha256sum) and that the sums name every file; the package's folder.
pub fn unpack(archive: &Path, into: &Path) -> std::path::PathBuf {
    let name = archive.file_name().unwrap().to_str().unwrap();
    let out = if name.ends_with(".zip") {
        std::process::Command::new("unzip").arg("-q").arg(archive).arg("-d").arg(into).output().unwrap()
    } else {
        std::process::Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(into).output().unwrap()
    };
    assert!(out.status.success(), "unpacking {name}: {}", String::from_utf8_lossy(&out.stderr));
    let stem = name.trim_end_matches(".zip").trim_end_matches(".tar.gz");
    let dir = into.join(stem);
    assert!(dir.is_dir(), "{name} holds no folder {stem}");
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{name}: {}", String::from_utf8_lossy(&check.stdout));
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let listed: std::collections::BTreeSet<&str> =
        sums.lines().filter_map(|l| l.split_once("  ").map(|(_, f)| f)).collect();
    let mut files = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path().strip_prefix(&dir).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    for f in files.iter().filter(|f| *f != "SHA256SUMS") {
        assert!(listed.contains(f.as_str()), "{name}: {f} is not in SHA256SUMS");
    }
    dir
}

/// Runs the operators' command `mi-sdk --config CONFIG ARGS...`: (exit code,
/// stdout, stderr).
pub fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let exe = target_dir().join("mi-sdk");
    assert!(exe.is_file(), "{} missing: cargo build first (scripts/test.sh does)", exe.display());
    let out = std::process::Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MI_SDK_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `target/<profile>`, where cargo put the shared library and mi-sim.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The built `libmi_sdk.so`, checked to be as new as the library build.
pub fn shared_library() -> PathBuf {
    let dir = target_dir();
    let so = dir.join("libmi_sdk.so");
    let rlib = dir.join("libmi_sdk.rlib");
    assert!(so.is_file(), "{} is missing: run `cargo build` before the tests (scripts/test.sh does)", so.display());
    let age = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).unwrap();
    if rlib.is_file() {
        let behind = age(&rlib).duration_since(age(&so)).unwrap_or_default();
        assert!(
            behind.as_secs() < 120,
            "{} is older than the library source build: run `cargo build` first",
            so.display()
        );
    }
    so
}

/// The `mi-sim` binary, as an operator would run it, on a free port: a simulator
/// outside the test process (its memory and threads are not the SDK's).
pub struct SimProcess {
    child: std::process::Child,
    /// The service URL.
    pub url: String,
    /// The platform variant the process was started as.
    pub region: Region,
    /// The Hebei path table the process serves, kept while it runs.
    _paths: Option<tempfile::NamedTempFile>,
}

impl SimProcess {
    /// A simulator process in the region `MI_SIM_VARIANT` names, with `args` added:
    /// for tests that write their config with [`SimProcess::config`].
    pub fn start(args: &[&str]) -> SimProcess {
        SimProcess::in_region(Region::from_env(), args)
    }

    /// A national simulator process, for a C program that builds its config inside
    /// itself from the URL, where no region's keys can reach.
    pub fn national(args: &[&str]) -> SimProcess {
        SimProcess::in_region(Region::National, args)
    }

    /// A national simulator run from `exe` (a package's own `mi-sim`).
    pub fn from_exe(exe: &Path) -> SimProcess {
        SimProcess::spawn(exe, Region::National, &[])
    }

    fn in_region(region: Region, args: &[&str]) -> SimProcess {
        let exe = target_dir().join("mi-sim");
        assert!(
            exe.is_file(),
            "{} is missing: run `cargo build --workspace` first (scripts/test.sh does)",
            exe.display()
        );
        SimProcess::spawn(&exe, region, args)
    }

    fn spawn(exe: &Path, region: Region, args: &[&str]) -> SimProcess {
        let (region_args, paths) = region.sim_args();
        let mut child = std::process::Command::new(exe)
            .args(["--addr", "127.0.0.1:0"])
            .args(region_args)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let url =
            line.split_whitespace().find(|w| w.starts_with("http://")).expect("mi-sim prints its URL").to_string();
        // It prints more (the keys it seals with, ...): read on, or its next line
        // meets a closed pipe and it dies.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        SimProcess { child, url, region, _paths: paths }
    }

    /// `base` (a config without its gateway URL) completed for this simulator:
    /// `gateway.url`, and the region's preset and keys.
    pub fn config(&self, base: Value) -> Value {
        let url = match self.region {
            Region::Hebei => self.base().to_string(),
            _ => self.url.clone(),
        };
        let mut c = base;
        merge(&mut c, json!({"gateway": {"url": url}}));
        merge(&mut c, self.region.sdk_keys(&SimConfig::default()));
        c
    }

    fn base(&self) -> &str {
        self.url.split("/fsi/").next().unwrap()
    }

    pub fn ledger(&self) -> Value {
        let mut r = ureq::get(format!("{}/sim/ledger", self.base())).call().unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// `POST /sim/faults`.
    pub fn fault(&self, f: Value) {
        ureq::post(format!("{}/sim/faults", self.base())).send(f.to_string()).unwrap();
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs 1101 -> 2201 -> 2203 -> 2204 -> 2206 -> 2207 and returns the 2207 output.
pub fn outpatient_visit(otp_no: &str) -> Value {
    let (rc, p) = call("1101", q1101(ZHANG_CERTNO));
    assert_eq!(rc, MI_OK, "{p}");
    let psn_no = p["output"]["baseinfo"]["psn_no"].as_str().unwrap().to_string();
    let insuplc = p["output"]["insuinfo"][0]["insuplc_admdvs"].as_str().unwrap().to_string();
    let per_call = |input: Value| json!({"input": input, "insuplc_admdvs": insuplc});
    let (rc, r) = call(
        "2201",
        per_call(json!({"data": {"psn_no": psn_no, "insutype": "310", "begntime": "2026-11-27 09:00:00",
        "mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO, "ipt_otp_no": otp_no, "atddr_no": "D001", "dr_name": "李医生",
        "dept_code": "A03", "dept_name": "内科", "caty": "A03"}})),
    );
    assert_eq!(rc, MI_OK, "{r}");
    let mdtrt_id = r["output"]["data"]["mdtrt_id"].as_str().unwrap().to_string();
    let (rc, r) = call(
        "2203",
        per_call(json!({"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11",
        "begntime": "2026-11-27 09:00:00", "main_cond_dscr": "", "dise_codg": "J06.900", "dise_name": "急性上呼吸道感染"}, "diseinfo": []})),
    );
    assert_eq!(rc, MI_OK, "{r}");
    let fee = |sn: &str, codg: &str, cnt: f64, pric: f64| {
        json!({"feedetl_sn": sn, "mdtrt_id": mdtrt_id, "psn_no": psn_no,
        "chrg_bchno": "B1", "fee_ocur_time": "2026-11-27 09:10:00", "med_list_codg": codg, "medins_list_codg": codg,
        "det_item_fee_sumamt": cnt * pric, "cnt": cnt, "pric": pric, "bilg_dept_codg": "A03", "bilg_dept_name": "内科",
        "bilg_dr_codg": "D001", "bilg_dr_name": "李医生", "hosp_appr_flag": "1"})
    };
    let (rc, r) = call(
        "2204",
        per_call(
            json!({"feedetail": [fee("F1", "XJ01CAA040A001010104463", 2.0, 25.5), fee("F2", "001102000010000", 1.0, 30.0)]}),
        ),
    );
    assert_eq!(rc, MI_OK, "{r}");
    assert_eq!(r["output"]["result"].as_array().unwrap().len(), 2);
    let settle = json!({"data": {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": ZHANG_CERTNO, "med_type": "11",
        "medfee_sumamt": 81.0, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "B1", "insutype": "310", "acct_used_flag": "1"}});
    let (rc, r) = call("2206", per_call(settle.clone()));
    assert_eq!(rc, MI_OK, "{r}");
    assert!(r["output"]["setlinfo"]["setl_id"].is_null());
    let (rc, r) = call("2207", per_call(settle));
    assert_eq!(rc, MI_OK, "{r}");
    r
}

fn c_string(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// `mi_upload_file`: the code and the output.
pub fn upload_file(path: &Path) -> (i32, Value) {
    let p = c_string(path.to_str().unwrap());
    let mut buf = vec![0u8; 1 << 16];
    let mut len = buf.len() as i32;
    // SAFETY: valid strings; buf has len bytes.
    let rc = unsafe { mi_upload_file(p.as_ptr(), buf.as_mut_ptr() as *mut c_char, &mut len) };
    (rc, serde_json::from_slice(&buf[..len.max(0) as usize]).unwrap_or(Value::Null))
}

/// `mi_download_file`: the code and the output.
pub fn download_file(file_qury_no: &str, filename: &str, dest: &Path) -> (i32, Value) {
    let (q, f, d) = (c_string(file_qury_no), c_string(filename), c_string(dest.to_str().unwrap()));
    let mut buf = vec![0u8; 1 << 16];
    let mut len = buf.len() as i32;
    // SAFETY: valid strings; buf has len bytes.
    let rc = unsafe { mi_download_file(q.as_ptr(), f.as_ptr(), d.as_ptr(), buf.as_mut_ptr() as *mut c_char, &mut len) };
    (rc, serde_json::from_slice(&buf[..len.max(0) as usize]).unwrap_or(Value::Null))
}

/// The stand-in card and e-voucher reader (sim/readers/fake_reader.c), built by gcc
/// once per test binary (tests run side by side: a library rebuilt under another
/// test's feet would not load); `None`, said loudly, without gcc.
pub fn fake_reader() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_fake_reader("fake_reader", &[])).clone()
}

/// The stand-in built as SSCard.dll (`Init(url, user)`, sized `ReadCardBas` and
/// `ReadSFZ`), as [`fake_reader`].
pub fn fake_sscard_reader() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| build_fake_reader("fake_sscard", &["-DSSCARD_DLL"])).clone()
}

fn build_fake_reader(name: &str, defines: &[&str]) -> Option<PathBuf> {
    if !require_tool("gcc", &["--version"]) {
        return None;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lib{name}-{}.so", std::process::id()));
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sim/readers/fake_reader.c");
    let ok = std::process::Command::new("gcc")
        .args(defines)
        .args(["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "the stand-in reader did not build");
    Some(out)
}

/// The journal at `path` opened as the SDK opens it: its sealed values are read
/// with the key file beside it (issue 22). Safe beside a running SDK.
pub fn open_journal(path: &Path) -> mi_sdk::internals::Journal {
    let opts = mi_sdk::internals::Options::beside_key("H44030000001");
    mi_sdk::internals::Journal::open(path, opts).expect("the journal opens with its key")
}

/// The envelope, as sent, of the first request of `infno` in the journal at `path`.
pub fn journaled_envelope_of(path: &Path, infno: &str) -> String {
    let all = mi_sdk::Filter { infno: Some(infno.into()), limit: 1000, ..Default::default() };
    let rows = open_journal(path).find(&all).expect("the journal is read");
    rows.last().unwrap_or_else(|| panic!("no {infno} in the journal")).envelope.clone()
}
