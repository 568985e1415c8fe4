//! The JSON configuration (docs/configuration.md): serde structs with defaults,
//! choices as enums, strict validation that names the offending key, and path
//! resolution.

use crate::charset::Charset;
use crate::error::{Error, Result};
use crate::variant;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value (token, key). Its `Debug` never shows it, so a config dumped into a
/// log or an error text cannot leak it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub institution: Institution,
    #[serde(default)]
    pub gateway: Gateway,
    #[serde(default)]
    pub mobile_pay: MobilePay,
    #[serde(default)]
    pub sign_in: SignIn,
    /// The workstation's msgid node (0-99). Absent: the journal's own, chosen at
    /// random when it is created and kept in it, so a config copied to every
    /// workstation does not give them all the same msgids.
    #[serde(default)]
    pub node_id: Option<u32>,
    #[serde(default)]
    pub charset: Charset,
    #[serde(default)]
    pub journal: Journal,
    #[serde(default = "d_workers")]
    pub workers: u32,
    #[serde(default = "d_queue_capacity")]
    pub queue_capacity: u64,
    #[serde(default = "d_max_input_bytes")]
    pub max_input_bytes: u64,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub files: Files,
    /// The database bridge (`mi-sdk bridge run`, its Windows service; docs/bridge.md).
    #[serde(default)]
    pub bridge: Bridge,
    /// The card and e-voucher readers `mi_identify` uses (docs/readers.md).
    #[serde(default)]
    pub readers: crate::readers::settings::Readers,
    /// The local HTTP API (`mi-sdk serve --http`; docs/http.md).
    #[serde(default)]
    pub http: Http,
    /// Province variants of the envelope (docs/configuration.md, `envelope`).
    #[serde(default)]
    pub envelope: crate::variant::Envelope,
    /// The region preset applied under the keys given (docs/regions/); empty: none.
    #[serde(default)]
    pub region: String,
    /// Where relative paths were resolved from; not a JSON key.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// How the config's text was read (UTF-8, or the ANSI code page), for the log.
    #[serde(skip)]
    pub read_as: ReadAs,
}

/// How a config's text was read, for the log. Not part of what the config *is*: the
/// same file reached by another spelling of its path (relative or absolute, UTF-8 or
/// GBK, through `MI_SDK_CONFIG`) is the same config to `mi_init`.
#[derive(Debug, Clone, Default)]
pub struct ReadAs(pub String);

impl PartialEq for ReadAs {
    fn eq(&self, _: &ReadAs) -> bool {
        true
    }
}

impl std::fmt::Display for ReadAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub fixmedins_code: String,
    pub fixmedins_name: String,
    pub mdtrtarea_admvs: String,
    #[serde(default)]
    pub insuplc_admdvs: String,
    #[serde(default = "d_recer")]
    pub recer_sys_code: String,
    #[serde(default = "d_infver")]
    pub infver: String,
    #[serde(default = "d_opter_type")]
    pub opter_type: String,
    pub opter: String,
    pub opter_name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub ip: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gateway {
    pub url: String,
    pub profile: Profile,
    /// Kept as another name for `url_style: "append_infno"`.
    pub append_infno: bool,
    pub url_style: crate::variant::UrlStyle,
    /// `per_infno`: transaction (or `*`) -> path under `url`, or a whole URL.
    pub paths: std::collections::BTreeMap<String, String>,
    pub paas_id: String,
    pub paas_token: Secret,
    pub api_name: String,
    pub api_version: String,
    pub access_key: String,
    pub secret_key: Secret,
    /// csb: send a fresh `_api_nonce` with every request, signed (gateways with
    /// replay protection on want it).
    pub csb_nonce: bool,
    pub encrypt_input: bool,
    /// Jilin-style answers: `output` is Base64 SM4 ciphertext under the data key of
    /// `mobile_pay.app_id`/`app_secret`, and `cainfo` the platform's SM2 signature
    /// over it, checked with `platform_public_key` and `sm2_user_id`.
    pub decrypt_answers: bool,
    /// The platform's SM2 public key: Base64 of the 65-byte uncompressed point.
    pub platform_public_key: String,
    pub sm2_user_id: String,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub tls_verify: bool,
    /// PEM file of the CA certificates that sign the gateway's certificate, trusted
    /// instead of the built-in Mozilla roots (private-network gateways). Empty: the
    /// Mozilla roots.
    pub ca_file: String,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            url: "http://127.0.0.1:8080/fsi/api/rsfComIfsService/callService".into(),
            profile: Profile::Plain,
            append_infno: false,
            url_style: Default::default(),
            paths: Default::default(),
            paas_id: String::new(),
            paas_token: Secret::default(),
            api_name: String::new(),
            api_version: "1.0.0".into(),
            access_key: String::new(),
            secret_key: Secret::default(),
            csb_nonce: false,
            encrypt_input: false,
            decrypt_answers: false,
            platform_public_key: String::new(),
            // The GM/T 0009 default id, which the platform's signing libraries use
            // unless told otherwise.
            sm2_user_id: DEFAULT_SM2_USER_ID.into(),
            connect_timeout_ms: 5000,
            timeout_ms: 60000,
            tls_verify: true,
            ca_file: String::new(),
        }
    }
}

pub const DEFAULT_SM2_USER_ID: &str = "1234567812345678";

/// The kind of gateway in front of the platform: which headers sign a request
/// (docs/protocol.md, "Gateway profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// No extra headers.
    #[default]
    Plain,
    /// The Tencent-style government gateway: `x-tif-*` headers, SHA-256 signature.
    Tif,
    /// The Alibaba-style service bus: `_api_*` headers, HMAC-SHA1 signature.
    Csb,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::Tif => "tif",
            Profile::Csb => "csb",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MobilePay {
    pub url: String,
    pub app_id: String,
    pub app_secret: Secret,
    pub private_key: Secret,
    pub platform_public_key: String,
    pub version: String,
}

impl Default for MobilePay {
    fn default() -> Self {
        MobilePay {
            url: String::new(),
            app_id: String::new(),
            app_secret: Secret::default(),
            private_key: Secret::default(),
            platform_public_key: String::new(),
            version: "2.0.1".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignIn {
    pub auto: bool,
    /// The shape of the 9001 input and answer.
    pub style: crate::variant::SignInStyle,
    /// `guangzhou`: the login account (`userid`) and its password.
    pub userid: String,
    pub password: Secret,
}

impl Default for SignIn {
    fn default() -> Self {
        SignIn { auto: true, style: Default::default(), userid: String::new(), password: Secret::default() }
    }
}

/// The local HTTP API's settings (`mi-sdk serve --http ADDR`; docs/http.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Every request carries it (`Authorization: Bearer …`); at least 16 characters.
    /// Empty: the API does not start.
    pub token: Secret,
    /// Origins (`http://his.example:8080`) whose browser pages may call the API;
    /// empty: none (a browser page needs its origin listed).
    pub allowed_origins: Vec<String>,
    /// The largest request body taken, in KiB.
    pub max_body_kb: u64,
    /// Requests handled at once; more are refused with 429 (`MI_E_BUSY`).
    pub max_concurrent: u32,
    /// Whether an address other than loopback may be listened on.
    pub allow_remote: bool,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            token: Secret::default(),
            allowed_origins: Vec::new(),
            max_body_kb: 1024,
            max_concurrent: 16,
            allow_remote: false,
        }
    }
}

/// The database bridge's defaults (`mi-sdk bridge` options override them). The
/// dialect and prefix are checked when a bridge starts.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bridge {
    /// The ODBC connection string; a secret when it holds a password.
    pub dsn: String,
    /// `postgres`, `mysql`, `sqlserver`, `oracle`; empty: as the driver says.
    pub dialect: String,
    pub prefix: String,
    pub workers: u32,
    pub lease_s: u32,
    pub poll_ms: u64,
    /// This node's name; empty: the computer's.
    pub node: String,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge {
            dsn: String::new(),
            dialect: String::new(),
            prefix: "mi".into(),
            workers: 4,
            lease_s: 30,
            poll_ms: 100,
            node: String::new(),
        }
    }
}

/// Never prints the connection string's password.
impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("dsn", &safe_dsn(&self.dsn))
            .field("dialect", &self.dialect)
            .field("prefix", &self.prefix)
            .field("workers", &self.workers)
            .field("lease_s", &self.lease_s)
            .field("poll_ms", &self.poll_ms)
            .field("node", &self.node)
            .finish()
    }
}

/// An ODBC connection string as it may be shown: its password replaced. A value in
/// braces may hold `;` (and `}}` for a brace): it is one value.
pub fn safe_dsn(dsn: &str) -> String {
    let mut out = String::new();
    let mut rest = dsn;
    while !rest.is_empty() {
        let (key, after) = match rest.split_once('=') {
            Some(kv) => kv,
            None => {
                out.push_str(rest);
                break;
            }
        };
        // The value runs to the next `;`, or, braced, to its closing brace.
        let end = if after.trim_start().starts_with('{') {
            let open = after.find('{').unwrap_or(0);
            let mut i = open + 1;
            let b = after.as_bytes();
            loop {
                match b.get(i) {
                    None => break after.len(),
                    Some(b'}') if b.get(i + 1) == Some(&b'}') => i += 2,
                    Some(b'}') => break after[i + 1..].find(';').map_or(after.len(), |j| i + 1 + j),
                    Some(_) => i += 1,
                }
            }
        } else {
            after.find(';').unwrap_or(after.len())
        };
        // Empty or valueless attributes before it (`;;PWD=`, `Trusted_Connection;PWD=`)
        // end up in `key`: the attribute is what follows the last `;`.
        let name = key.rsplit(';').next().unwrap_or(key);
        let secret = ["pwd", "password"].contains(&name.trim().to_ascii_lowercase().as_str());
        out.push_str(key);
        out.push('=');
        out.push_str(if secret { "***" } else { &after[..end] });
        rest = &after[end..];
        if let Some(r) = rest.strip_prefix(';') {
            out.push(';');
            rest = r;
        }
    }
    out
}

/// File transfer (9101, 9102): where, and how much is accepted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Files {
    /// Empty: `/fsi/api/fileupload/upload` beside `gateway.url`.
    pub upload_url: String,
    /// Empty: `/fsi/api/fileupload/download` beside `gateway.url`.
    pub download_url: String,
    /// The largest file `mi_upload_file` sends.
    pub max_upload_mb: u32,
    /// The largest zip `mi_download_file` takes.
    pub max_download_mb: u32,
    /// The most a zip may unpack to, in all: past it the zip is refused as a bomb.
    pub max_unpacked_mb: u32,
    /// The most entries a zip may hold.
    pub max_entries: u32,
    /// How long one transfer may take, start to end.
    pub timeout_ms: u64,
    /// The `fsDownloadIn.fixmedins_code` of a catalogue file's 9102: the platform
    /// files catalogues (1301–1319) under the literal `plc`, not the institution.
    pub catalog_fixmedins_code: String,
    /// A folder of `<infno>.columns` files naming catalogue layouts the SDK does not
    /// ship (or that changed); they take precedence. Empty: only the built-in ones.
    pub catalog_layouts: String,
    /// Records per page of the paged catalogues (1304, 1312, 1316–1319).
    pub catalog_page_size: u32,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            upload_url: String::new(),
            download_url: String::new(),
            max_upload_mb: 50,
            max_download_mb: 1024,
            max_unpacked_mb: 4096,
            max_entries: 10_000,
            timeout_ms: 600_000,
            catalog_fixmedins_code: "plc".into(),
            catalog_layouts: String::new(),
            catalog_page_size: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Journal {
    pub path: String,
    pub synchronous: Synchronous,
    pub retain_days: u32,
    /// How long a write waits for another program holding the journal's lock
    /// before the call fails with `MI_E_JOURNAL`.
    pub busy_timeout_ms: u32,
    /// Whether envelopes, answers and error texts are sealed (SM4-GCM) in the
    /// journal. On by default; an existing journal is sealed in place.
    pub seal: bool,
    /// The sealing key's file; empty: beside the journal, its name and `.key`.
    pub key_file: String,
}

impl Default for Journal {
    fn default() -> Self {
        Journal {
            path: "mi_journal.db".into(),
            synchronous: Synchronous::Full,
            retain_days: 180,
            busy_timeout_ms: 10_000,
            seal: true,
            key_file: String::new(),
        }
    }
}

/// SQLite's `PRAGMA synchronous` for the journal: how much of a commit is on disk
/// when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Off,
    Normal,
    #[default]
    Full,
    Extra,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "off",
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
            Synchronous::Extra => "extra",
        }
    }

    /// Whether a commit is on disk before it returns.
    pub fn is_durable(self) -> bool {
        matches!(self, Synchronous::Full | Synchronous::Extra)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub safe_infnos: Vec<String>,
    pub reversible_infnos: Vec<String>,
    pub uncertain_policy: UncertainPolicy,
}

/// What becomes of a reversible transaction left uncertain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UncertainPolicy {
    /// Wait for the HIS (or an operator) to reverse it or query it.
    #[default]
    Hold,
    /// Send the 2601 reversal at once.
    Reverse,
    /// Look for a settlement at once in the platform's detail of the day (the 3202
    /// chain, docs/operations.md "Day end"): found there under its msgid, the call
    /// succeeds with the platform's settlement; otherwise it is held.
    Query,
}

impl Default for Retry {
    fn default() -> Self {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Retry {
            max_attempts: 5,
            base_delay_ms: 1000,
            max_delay_ms: 60000,
            safe_infnos: v(&[
                "1101", "1201", "13*", "1901", "2001", "2206", "2303", "3101", "3102", "3201", "3202", "51*", "52*",
                "53*", "54*", "6301", "9102",
            ]),
            reversible_infnos: v(&["2102", "2103", "2207", "2208", "2304", "2305", "2401"]),
            uncertain_policy: UncertainPolicy::Hold,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub dir: String,
    pub level: LogLevel,
    pub max_file_mb: u64,
    pub keep_files: u32,
    pub mask_pii: bool,
    pub log4rs_file: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            dir: "logs".into(),
            level: LogLevel::Info,
            max_file_mb: 10,
            keep_files: 10,
            mask_pii: true,
            log4rs_file: String::new(),
        }
    }
}

/// How much the SDK logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

fn d_workers() -> u32 {
    4
}
fn d_queue_capacity() -> u64 {
    100_000
}
fn d_max_input_bytes() -> u64 {
    8 * 1024 * 1024
}
fn d_recer() -> String {
    "YBXT".into()
}
fn d_infver() -> String {
    "V1.0".into()
}
fn d_opter_type() -> String {
    "1".into()
}

/// The largest input the C ABI accepts whatever the config says: the platform caps
/// `input` at 40 000 characters for most transactions, uploads aside.
pub const MAX_INPUT_BYTES_LIMIT: u64 = 64 * 1024 * 1024;

/// Where a journal's key file is when nothing names it: beside the journal, its
/// name and `.key`.
pub fn key_beside(journal: &Path) -> PathBuf {
    crate::paths::appended(journal, ".key")
}

impl Config {
    /// Parses and validates JSON text; `base_dir` anchors relative paths.
    pub fn from_json(text: &str, base_dir: &Path) -> Result<Config> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::config(format!("config: {e}")))?;
        let value = crate::region::apply(value, base_dir)?;
        let mut cfg: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                Error::config(format!("config: {inner}"))
            } else {
                Error::config(format!("config key `{path}`: {inner}"))
            }
        })?;
        cfg.base_dir = base_dir.to_path_buf();
        cfg.read_as = ReadAs("given inline".into());
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads a config the way `mi_init` is given one: inline JSON (starts with `{`),
    /// a file path, or nothing (then `MI_SDK_CONFIG`, then `mi_sdk.json` beside the
    /// library, then in the working folder). `lib_dir` is the library file's folder.
    pub fn load(source: Option<&str>, lib_dir: &Path) -> Result<Config> {
        match source.map(str::trim_start) {
            Some(s) if s.starts_with('{') || s.starts_with('\u{feff}') => Config::from_json(s, lib_dir),
            _ => Config::from_file(&Config::file_for(source, lib_dir)?),
        }
    }

    /// The file [`Config::load`] reads when `source` is not JSON: `source` itself,
    /// else `$MI_SDK_CONFIG`, else `mi_sdk.json` beside the library (or program),
    /// else in the working folder.
    pub fn file_for(source: Option<&str>, lib_dir: &Path) -> Result<PathBuf> {
        if let Some(s) = source.map(str::trim).filter(|s| !s.is_empty()) {
            return Ok(PathBuf::from(s));
        }
        if let Ok(p) = std::env::var("MI_SDK_CONFIG") {
            if !p.is_empty() {
                return Ok(PathBuf::from(p));
            }
        }
        let beside = lib_dir.join("mi_sdk.json");
        if beside.is_file() {
            return Ok(beside);
        }
        let cwd = Path::new("mi_sdk.json");
        if cwd.is_file() {
            return Ok(cwd.to_path_buf());
        }
        Err(Error::config(format!(
            "no config given: pass JSON or a path to mi_init, set MI_SDK_CONFIG, or put mi_sdk.json in {}",
            lib_dir.display()
        )))
    }

    /// Loads the config `mi_init` names, from its argument's bytes as the HIS passed
    /// them (see [`crate::charset::decode_unconfigured`]); None as for [`Config::load`].
    pub fn load_arg(arg: Option<&[u8]>, lib_dir: &Path) -> Result<Config> {
        let Some(bytes) = arg else { return Config::load(None, lib_dir) };
        let (mut text, mut how) = crate::charset::decode_unconfigured(bytes, "mi_init's argument")?;
        let path = text.trim();
        if how == "UTF-8" && !path.starts_with('{') && !path.is_empty() && !Path::new(path).exists() {
            // GBK text can be valid UTF-8 too ("医院" is): a path that names nothing
            // read as UTF-8 is tried in the ANSI code page.
            if let Some((ansi, ansi_how)) = crate::charset::decode_ansi(bytes) {
                if Path::new(ansi.trim()).exists() {
                    (text, how) = (ansi, format!("{ansi_how}, since as UTF-8 it names no file"));
                }
            }
        }
        let mut cfg = Config::load(Some(&text), lib_dir)?;
        if how != "UTF-8" {
            cfg.read_as = ReadAs(format!("{}; mi_init's argument read as {how}", cfg.read_as));
        }
        Ok(cfg)
    }

    pub fn from_file(path: &Path) -> Result<Config> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::config(format!("config file {} cannot be read: {e}", path.display())))?;
        let (text, read_as) = crate::charset::decode_unconfigured(&bytes, &format!("config file {}", path.display()))?;
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Config::from_json(&text, &dir)?;
        cfg.read_as = ReadAs(format!("file {} read as {read_as}", path.display()));
        Ok(cfg)
    }

    /// The journal file, resolved against the config's folder.
    pub fn journal_path(&self) -> PathBuf {
        self.base_dir.join(&self.journal.path)
    }

    /// The journal's key file: `journal.key_file` resolved against the config's
    /// folder, or the journal's own name with `.key` added, beside it.
    pub fn journal_key_path(&self) -> PathBuf {
        if self.journal.key_file.trim().is_empty() {
            key_beside(&self.journal_path())
        } else {
            self.base_dir.join(self.journal.key_file.trim())
        }
    }

    /// Where 9101 uploads go: `files.upload_url`, or where the gateway's URL style
    /// puts 9101 (docs/protocol.md, "Files").
    pub fn upload_url(&self) -> String {
        self.file_url(&self.files.upload_url, crate::infno::FILE_UPLOAD, UPLOAD_PATH)
    }

    /// Where 9102 downloads come from: `files.download_url`, or where the URL style puts 9102.
    pub fn download_url(&self) -> String {
        self.file_url(&self.files.download_url, crate::infno::FILE_DOWNLOAD, DOWNLOAD_PATH)
    }

    fn file_url(&self, configured: &str, infno: &str, path: &str) -> String {
        if !configured.trim().is_empty() {
            return configured.trim().to_string();
        }
        self.gateway.file_url(infno, path)
    }
}

const UPLOAD_PATH: &str = "/fsi/api/fileupload/upload";
const DOWNLOAD_PATH: &str = "/fsi/api/fileupload/download";

impl Gateway {
    /// `http://gw:8080/fsi/api/rsfComIfsService/callService` -> `http://gw:8080<path>`;
    /// a gateway mounted under a prefix (`http://gw/hsa/fsi/api/...`) keeps it.
    pub fn beside(&self, path: &str) -> String {
        let url = self.url.trim();
        let base = match url.find("/fsi/") {
            Some(i) => &url[..i],
            None => {
                let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
                &url[..url[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(url.len())]
            }
        };
        format!("{base}{path}")
    }

    /// The URL a transaction is posted to; `Err` names what is missing.
    pub fn url_for(&self, infno: &str) -> std::result::Result<String, String> {
        let g = self;
        let base = g.url.trim();
        match g.style() {
            variant::UrlStyle::Single => Ok(base.to_string()),
            variant::UrlStyle::AppendInfno => Ok(join(base, &format!("/{infno}"))),
            variant::UrlStyle::PerInfno => match g.paths.get(infno).or_else(|| g.paths.get("*")) {
                Some(p) if p.starts_with('/') => Ok(join(base, p)),
                Some(url) => Ok(url.clone()),
                None => Err(format!(
                    "gateway.url_style is per_infno and gateway.paths has no path for {infno} (nor a \"*\" entry)"
                )),
            },
        }
    }

    /// Where a file transaction goes when `files.*_url` is not set: in the single
    /// style the platform's file path beside the service URL; otherwise where the
    /// style puts it, the file path under `gateway.url` when per_infno maps none.
    pub fn file_url(&self, infno: &str, path: &str) -> String {
        let g = self;
        match g.style() {
            variant::UrlStyle::Single => g.beside(path),
            variant::UrlStyle::AppendInfno => g.url_for(infno).unwrap_or_default(),
            variant::UrlStyle::PerInfno => {
                if g.paths.contains_key(infno) {
                    g.url_for(infno).unwrap_or_default()
                } else {
                    join(g.url.trim(), path)
                }
            }
        }
    }

    /// The URL style in force: `append_infno: true` is the older name of `append_infno`.
    pub fn style(&self) -> variant::UrlStyle {
        if self.append_infno {
            variant::UrlStyle::AppendInfno
        } else {
            self.url_style
        }
    }
}

/// `base` with `tail` added to its path; a query string of `base` (`?k=v`, which a
/// csb gateway signs) stays at the end.
fn join(base: &str, tail: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let mut url = format!("{}{tail}", path.trim_end_matches('/'));
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

impl Config {
    /// The folder of extra catalogue layouts, resolved against the config's folder.
    pub fn catalog_layouts_dir(&self) -> Option<PathBuf> {
        let f = self.files.catalog_layouts.trim();
        (!f.is_empty()).then(|| self.base_dir.join(f))
    }

    /// The gateway's CA file, resolved against the config's folder, when one is set.
    pub fn ca_path(&self) -> Option<PathBuf> {
        let f = self.gateway.ca_file.trim();
        (!f.is_empty()).then(|| self.base_dir.join(f))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.base_dir.join(&self.log.dir)
    }

    pub fn log4rs_file(&self) -> Option<PathBuf> {
        (!self.log.log4rs_file.is_empty()).then(|| self.base_dir.join(&self.log.log4rs_file))
    }

    /// Checks the variant keys (docs/regions/).
    fn validate_variants(&self) -> Result<()> {
        let cfg = self;
        let bad = |key: &str, why: String| Err(Error::config(format!("config key `{key}`: {why}")));
        for (name, value) in &cfg.envelope.extra {
            if let Some(why) = variant::extra_name_problem(name, cfg.gateway.encrypt_input) {
                return bad("envelope.extra", why);
            }
            if value.chars().count() > variant::MAX_EXTRA_VALUE {
                return bad(
                    &format!("envelope.extra.{name}"),
                    format!("is longer than {} characters", variant::MAX_EXTRA_VALUE),
                );
            }
            if let Some(f) = variant::copied_field(value) {
                if !variant::SDK_FIELDS.contains(&f) {
                    return bad(
                        &format!("envelope.extra.{name}"),
                        format!("\"{{{f}}}\" names no envelope field; use one of {}", variant::SDK_FIELDS.join(", ")),
                    );
                }
            }
        }
        let g = &cfg.gateway;
        if g.append_infno && g.url_style == variant::UrlStyle::PerInfno {
            return bad(
                "gateway.append_infno",
                "is true while gateway.url_style is per_infno; keep one (append_infno is url_style \"append_infno\")"
                    .into(),
            );
        }
        if g.url_style == variant::UrlStyle::PerInfno && g.paths.is_empty() {
            return bad(
                "gateway.paths",
                "is empty while gateway.url_style is per_infno: map each infno to its path".into(),
            );
        }
        for (infno, path) in &g.paths {
            if infno != "*" && !crate::infno::is_valid(infno) {
                return bad("gateway.paths", format!("\"{infno}\" is not a transaction code (or * for the others)"));
            }
            if !(path.starts_with('/') || path.starts_with("http://") || path.starts_with("https://")) {
                return bad(
                    &format!("gateway.paths.{infno}"),
                    "must be a path starting with / (joined to gateway.url) or a whole http(s):// URL".into(),
                );
            }
        }
        let s = &cfg.sign_in;
        if s.style == variant::SignInStyle::Guangzhou {
            if s.userid.is_empty() || s.userid.chars().count() > 30 {
                return bad(
                    "sign_in.userid",
                    "the guangzhou sign-in needs the login account (1 to 30 characters)".into(),
                );
            }
            if s.password.is_empty() {
                return bad("sign_in.password", "the guangzhou sign-in needs the login account's password".into());
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::config(format!("config key `{key}`: {why}")));
        let i = &self.institution;
        if i.fixmedins_code.len() != 12 || !i.fixmedins_code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad("institution.fixmedins_code", "must be the 12-character institution code, e.g. H44030000001");
        }
        if i.fixmedins_name.trim().is_empty() {
            return bad("institution.fixmedins_name", "must not be empty");
        }
        if !is_division(&i.mdtrtarea_admvs) {
            return bad("institution.mdtrtarea_admvs", "must be a 6-digit division code, e.g. 440300");
        }
        if !i.insuplc_admdvs.is_empty() && !is_division(&i.insuplc_admdvs) {
            return bad("institution.insuplc_admdvs", "must be empty or a 6-digit division code");
        }
        if i.opter.is_empty() || i.opter.chars().count() > 30 {
            return bad("institution.opter", "must be 1 to 30 characters");
        }
        if i.opter_name.is_empty() || i.opter_name.chars().count() > 50 {
            return bad("institution.opter_name", "must be 1 to 50 characters");
        }
        if !["1", "2", "3"].contains(&i.opter_type.as_str()) {
            return bad("institution.opter_type", "must be \"1\", \"2\" or \"3\"");
        }
        if i.recer_sys_code.is_empty() || i.recer_sys_code.len() > 10 {
            return bad("institution.recer_sys_code", "must be 1 to 10 characters, e.g. YBXT");
        }
        if i.infver.is_empty() || i.infver.len() > 6 {
            return bad("institution.infver", "must be 1 to 6 characters, e.g. V1.0");
        }
        let g = &self.gateway;
        if !(g.url.starts_with("http://") || g.url.starts_with("https://")) {
            return bad("gateway.url", "must start with http:// or https://");
        }
        match g.profile {
            Profile::Plain => {}
            Profile::Tif => {
                if g.paas_id.is_empty() {
                    return bad("gateway.paas_id", "is required by the tif profile");
                }
                if g.paas_token.is_empty() {
                    return bad("gateway.paas_token", "is required by the tif profile");
                }
            }
            Profile::Csb => {
                for (k, v) in [
                    ("gateway.api_name", g.api_name.is_empty()),
                    ("gateway.access_key", g.access_key.is_empty()),
                    ("gateway.secret_key", g.secret_key.is_empty()),
                    ("gateway.api_version", g.api_version.is_empty()),
                ] {
                    if v {
                        return bad(k, "is required by the csb profile");
                    }
                }
            }
        }
        let m = &self.mobile_pay;
        if g.encrypt_input || g.decrypt_answers || !m.url.is_empty() {
            let who = if g.encrypt_input {
                "gateway.encrypt_input"
            } else if g.decrypt_answers {
                "gateway.decrypt_answers"
            } else {
                "mobile_pay.url"
            };
            if m.app_id.chars().count() < 16 {
                return Err(Error::config(format!(
                    "config key `mobile_pay.app_id`: {who} needs the issued appId (at least 16 characters)"
                )));
            }
            if m.app_secret.is_empty() {
                return Err(Error::config(format!(
                    "config key `mobile_pay.app_secret`: {who} needs the issued appSecret"
                )));
            }
        }
        if g.decrypt_answers {
            if g.platform_public_key.trim().is_empty() {
                return bad(
                    "gateway.platform_public_key",
                    "gateway.decrypt_answers needs the platform's SM2 public key (Base64 of the 65-byte point)",
                );
            }
            if g.sm2_user_id.is_empty() {
                return bad("gateway.sm2_user_id", "must not be empty (the usual one is 1234567812345678)");
            }
            crate::crypto::sm::verifying_key(&g.platform_public_key, &g.sm2_user_id)
                .map_err(|e| Error::config(format!("config key `gateway.platform_public_key`: {}", e.message)))?;
        }
        if !m.url.is_empty() {
            if !(m.url.starts_with("http://") || m.url.starts_with("https://")) {
                return bad("mobile_pay.url", "must start with http:// or https://");
            }
            crate::crypto::sm::signing_key(m.private_key.expose(), m.app_secret.expose())
                .map_err(|e| Error::config(format!("config key `mobile_pay.private_key`: {}", e.message)))?;
            crate::crypto::sm::verifying_key(&m.platform_public_key, m.app_secret.expose())
                .map_err(|e| Error::config(format!("config key `mobile_pay.platform_public_key`: {}", e.message)))?;
        }
        if g.connect_timeout_ms == 0 || g.connect_timeout_ms > 600_000 {
            return bad("gateway.connect_timeout_ms", "must be 1 to 600000");
        }
        if g.timeout_ms == 0 || g.timeout_ms > 3_600_000 {
            return bad("gateway.timeout_ms", "must be 1 to 3600000");
        }
        if self.node_id.is_some_and(|n| n > 99) {
            return bad("node_id", "must be 0 to 99 (the first two digits of every msgid sequence)");
        }
        if !self.gateway.ca_file.trim().is_empty() && !self.gateway.tls_verify {
            return bad(
                "gateway.ca_file",
                "is set while gateway.tls_verify is false; a CA only matters when certificates are verified",
            );
        }
        for (key, v) in [
            ("files.max_upload_mb", self.files.max_upload_mb),
            ("files.max_download_mb", self.files.max_download_mb),
            ("files.max_unpacked_mb", self.files.max_unpacked_mb),
            ("files.max_entries", self.files.max_entries),
            ("files.catalog_page_size", self.files.catalog_page_size),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1");
            }
        }
        self.readers.validate()?;
        let h = &self.http;
        if !h.token.is_empty() && h.token.expose().chars().count() < 16 {
            return bad("http.token", "must be at least 16 characters (or empty: no HTTP API)");
        }
        if !(1..=256).contains(&h.max_concurrent) {
            return bad("http.max_concurrent", "must be 1 to 256");
        }
        if !(1..=65_536).contains(&h.max_body_kb) {
            return bad("http.max_body_kb", "must be 1 to 65536");
        }
        let b = &self.bridge;
        if !(1..=64).contains(&b.workers) {
            return bad("bridge.workers", "must be 1 to 64");
        }
        if !(10..=3600).contains(&b.lease_s) {
            return bad("bridge.lease_s", "must be 10 to 3600 seconds");
        }
        if !(10..=60_000).contains(&b.poll_ms) {
            return bad("bridge.poll_ms", "must be 10 to 60000");
        }
        if self.files.catalog_fixmedins_code.trim().is_empty() {
            return bad("files.catalog_fixmedins_code", "must not be empty (the platform's is \"plc\")");
        }
        if self.files.catalog_page_size > 10_000 {
            return bad("files.catalog_page_size", "must be at most 10000");
        }
        if self.journal.path.trim().is_empty() {
            return bad("journal.path", "must not be empty");
        }
        if self.journal.retain_days == 0 {
            return bad("journal.retain_days", "must be at least 1");
        }
        if self.workers == 0 || self.workers > 256 {
            return bad("workers", "must be 1 to 256");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be at least 1");
        }
        if self.max_input_bytes == 0 || self.max_input_bytes > MAX_INPUT_BYTES_LIMIT {
            return bad("max_input_bytes", "must be 1 to 67108864");
        }
        let r = &self.retry;
        if r.max_attempts == 0 || r.max_attempts > 100 {
            return bad("retry.max_attempts", "must be 1 to 100");
        }
        if r.base_delay_ms == 0 || r.base_delay_ms > r.max_delay_ms {
            return bad("retry.base_delay_ms", "must be at least 1 and not above retry.max_delay_ms");
        }
        for (key, list) in [("retry.safe_infnos", &r.safe_infnos), ("retry.reversible_infnos", &r.reversible_infnos)] {
            if let Some(p) = list.iter().find(|p| !crate::infno::is_valid_pattern(p)) {
                return Err(Error::config(format!(
                    "config key `{key}`: \"{p}\" is not a transaction code or a prefix ending in *"
                )));
            }
        }
        if let Some((p, infno)) =
            r.safe_infnos.iter().find_map(|p| crate::infno::never_resent_covered_by(p).map(|infno| (p, infno)))
        {
            return Err(Error::config(format!(
                "config key `retry.safe_infnos`: \"{p}\" covers {infno}, which moves money or state and must never be \
                 resent after it may have left; list queries and calculations only"
            )));
        }
        self.validate_variants()?;
        if self.log.max_file_mb == 0 {
            return bad("log.max_file_mb", "must be at least 1");
        }
        if self.log.keep_files == 0 || self.log.keep_files > 1000 {
            return bad("log.keep_files", "must be 1 to 1000");
        }
        Ok(())
    }
}

fn is_division(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn minimal() -> String {
        r#"{"institution":{"fixmedins_code":"H44030000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440300","opter":"0001","opter_name":"收费员"}}"#.to_string()
    }

    #[test]
    fn file_urls_sit_beside_the_gateway_unless_configured() {
        let mut c = Config::from_json(&minimal(), Path::new("/srv/his")).unwrap();
        for (gateway, upload) in [
            (
                "http://10.1.2.3:8080/fsi/api/rsfComIfsService/callService",
                "http://10.1.2.3:8080/fsi/api/fileupload/upload",
            ),
            (
                "https://gw.example/hsa/fsi/api/rsfComIfsService/callService",
                "https://gw.example/hsa/fsi/api/fileupload/upload",
            ),
            ("http://gw:9000/callService", "http://gw:9000/fsi/api/fileupload/upload"),
            ("http://gw:9000", "http://gw:9000/fsi/api/fileupload/upload"),
        ] {
            c.gateway.url = gateway.into();
            assert_eq!(c.upload_url(), upload, "{gateway}");
            assert_eq!(c.download_url(), upload.replace("upload/upload", "upload/download"));
        }
        c.files.download_url = " http://files.example/dl ".into();
        assert_eq!(c.download_url(), "http://files.example/dl");
    }

    #[test]
    fn defaults_fill_everything_but_identity() {
        let c = Config::from_json(&minimal(), Path::new("/srv/his")).unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!(c.gateway.timeout_ms, 60000);
        assert_eq!(c.retry.safe_infnos.len(), 17);
        assert_eq!(c.journal_path(), Path::new("/srv/his/mi_journal.db"));
        assert_eq!(c.log_dir(), Path::new("/srv/his/logs"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let t = minimal().replacen("{\"institution\"", "{\"gateway\":{\"urll\":\"x\"},\"institution\"", 1);
        let e = Config::from_json(&t, Path::new(".")).unwrap_err();
        assert!(e.message.contains("gateway") && e.message.contains("urll"), "{}", e.message);
        let t = minimal().replacen("{\"institution\"", "{\"wokers\":3,\"institution\"", 1);
        let e = Config::from_json(&t, Path::new(".")).unwrap_err();
        assert!(e.message.contains("wokers"), "{}", e.message);
    }

    #[test]
    fn bad_values_are_named() {
        for (patch, key) in [
            ("\"workers\":0,", "workers"),
            ("\"charset\":\"latin1\",", "charset"),
            ("\"journal\":{\"synchronous\":\"FULL!\"},", "journal.synchronous"),
            ("\"retry\":{\"uncertain_policy\":\"revers\"},", "retry.uncertain_policy"),
            ("\"log\":{\"level\":\"verbose\"},", "log.level"),
            ("\"gateway\":{\"profile\":\"tiff\"},", "gateway.profile"),
            ("\"node_id\":100,", "node_id"),
            ("\"gateway\":{\"profile\":\"tif\"},", "gateway.paas_id"),
            ("\"gateway\":{\"timeout_ms\":\"x\"},", "gateway.timeout_ms"),
            ("\"retry\":{\"safe_infnos\":[\"11a\"]},", "retry.safe_infnos"),
            ("\"files\":{\"catalog_fixmedins_code\":\" \"},", "files.catalog_fixmedins_code"),
            ("\"files\":{\"catalog_page_size\":0},", "files.catalog_page_size"),
            ("\"files\":{\"catalog_page_size\":10001},", "files.catalog_page_size"),
        ] {
            let t = minimal().replacen('{', &format!("{{{patch}"), 1);
            let e = Config::from_json(&t, Path::new(".")).unwrap_err();
            assert!(e.message.contains(key), "{patch}: {}", e.message);
        }
    }

    #[test]
    fn safe_infnos_that_would_resend_money_are_refused() {
        // A wildcard, a prefix or a code that covers a settlement or another
        // transaction that moves money or state would let a timeout resend it.
        for (pattern, covered) in [
            ("*", "2102"),
            ("2*", "2102"),
            ("22*", "2201"),
            ("2207", "2207"),
            ("2207A", "2207"),
            ("62*", "6201"),
            ("9*", "9101"),
        ] {
            let t = minimal().replacen('{', &format!("{{\"retry\":{{\"safe_infnos\":[\"1101\",\"{pattern}\"]}},"), 1);
            let e = Config::from_json(&t, Path::new(".")).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Config, "{pattern}");
            assert!(
                e.message.contains("retry.safe_infnos")
                    && e.message.contains(&format!("\"{pattern}\""))
                    && e.message.contains(covered),
                "{pattern}: {}",
                e.message
            );
        }
        // The defaults, and narrower prefixes of queries, are accepted.
        for ok in ["13*", "52*", "1*", "5*", "2206", "3202"] {
            let t = minimal().replacen('{', &format!("{{\"retry\":{{\"safe_infnos\":[\"{ok}\"]}},"), 1);
            assert!(Config::from_json(&t, Path::new(".")).is_ok(), "{ok}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let t = minimal().replacen(
            '{',
            "{\"gateway\":{\"profile\":\"tif\",\"paas_id\":\"p\",\"paas_token\":\"TOPSECRET\"},",
            1,
        );
        let c = Config::from_json(&t, Path::new(".")).unwrap();
        assert!(!format!("{c:?}").contains("TOPSECRET"));
        assert_eq!(c.gateway.paas_token.expose(), "TOPSECRET");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_shipped_example_is_complete_and_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mi_sdk.example.json");
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.institution.fixmedins_code, "H44030000001");
        // Complete: every key of the struct appears in the file.
        let text = std::fs::read_to_string(&path).unwrap();
        for key in [
            "append_infno",
            "url_style",
            "paths",
            "region",
            "style",
            "userid",
            "password",
            "extra",
            "cainfo",
            "encrypt_input",
            "csb_nonce",
            "decrypt_answers",
            "sm2_user_id",
            "tls_verify",
            "ca_file",
            "platform_public_key",
            "auto",
            "node_id",
            "synchronous",
            "retain_days",
            "busy_timeout_ms",
            "max_unpacked_mb",
            "download_url",
            "queue_capacity",
            "max_input_bytes",
            "uncertain_policy",
            "log4rs_file",
            "mask_pii",
            "keep_files",
        ] {
            assert!(text.contains(&format!("\"{key}\"")), "{key} missing from the example");
        }
    }
}

/// The province-variant keys (docs/regions/): URL styles, sign-in, extra fields.
#[cfg(test)]
mod variant_tests {
    use super::*;

    fn cfg(patch: &str) -> Result<Config> {
        let base = r#"{"institution":{"fixmedins_code":"H44030000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440300","opter":"0001","opter_name":"收费员"}"#;
        Config::from_json(&format!("{base}{patch}}}"), Path::new("."))
    }

    #[test]
    fn the_national_behaviour_is_the_default() {
        let c = cfg("").unwrap();
        assert_eq!(c.gateway.style(), variant::UrlStyle::Single);
        assert_eq!(c.sign_in.style, variant::SignInStyle::National);
        assert_eq!(c.envelope, variant::Envelope::default());
        assert_eq!(c.gateway.url_for("9001").unwrap(), c.gateway.url);
    }

    #[test]
    fn the_three_url_styles() {
        let c = cfg(r#","gateway":{"url":"http://gw/hsa/fsi/api/rsfComIfsService/callService","append_infno":true}"#)
            .unwrap();
        assert_eq!(c.gateway.url_for("1101").unwrap(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/1101");
        assert_eq!(c.upload_url(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/9101");
        assert_eq!(c.download_url(), "http://gw/hsa/fsi/api/rsfComIfsService/callService/9102");
        let c = cfg(r#","gateway":{"url":"http://gw/x/","url_style":"append_infno"}"#).unwrap();
        assert_eq!(c.gateway.url_for("2207").unwrap(), "http://gw/x/2207");
        // A query string of the URL (a csb gateway signs it) stays at the end.
        let c = cfg(r#","gateway":{"url":"http://gw/x?a=1&b=2","url_style":"append_infno"}"#).unwrap();
        assert_eq!(c.gateway.url_for("2207").unwrap(), "http://gw/x/2207?a=1&b=2");
        let c = cfg(r#","gateway":{"url":"http://gw?k=v","url_style":"per_infno","paths":{"*":"/svc"}}"#).unwrap();
        assert_eq!(c.gateway.url_for("1101").unwrap(), "http://gw/svc?k=v");

        let c = cfg(
            r#","gateway":{"url":"http://gw/ebus/rio_fsi","url_style":"per_infno","paths":{"1101":"/fsi/api/fsiPsnInfoService/queryPsnInfo","9102":"https://files.example/dl"}}"#,
        )
        .unwrap();
        assert_eq!(c.gateway.url_for("1101").unwrap(), "http://gw/ebus/rio_fsi/fsi/api/fsiPsnInfoService/queryPsnInfo");
        let e = c.gateway.url_for("2207").unwrap_err();
        assert!(e.contains("2207") && e.contains("gateway.paths"), "{e}");
        assert_eq!(c.download_url(), "https://files.example/dl");
        // Not mapped: the platform's file path under the base.
        assert_eq!(c.upload_url(), "http://gw/ebus/rio_fsi/fsi/api/fileupload/upload");
        let c = cfg(r#","gateway":{"url":"http://gw","url_style":"per_infno","paths":{"*":"/svc"}}"#).unwrap();
        assert_eq!(c.gateway.url_for("2207").unwrap(), "http://gw/svc");
        // A config that turns a per-path preset back to one URL keeps the preset's
        // table, unread: objects merge, so it could not empty it.
        let c = cfg(r#","region":"hebei","gateway":{"url":"http://gw/svc","url_style":"single"}"#).unwrap();
        assert_eq!(c.gateway.url_for("1101").unwrap(), "http://gw/svc");
    }

    #[test]
    fn bad_variant_keys_are_named() {
        for (patch, key) in [
            (r#","gateway":{"url_style":"per_infno"}"#, "gateway.paths"),
            (r#","gateway":{"url_style":"per_infno","paths":{"11x":"/x"}}"#, "gateway.paths"),
            (r#","gateway":{"url_style":"per_infno","paths":{"1101":"x"}}"#, "gateway.paths.1101"),
            (r#","gateway":{"url_style":"per_infno","append_infno":true,"paths":{"1101":"/x"}}"#, "append_infno"),
            (r#","gateway":{"url_style":"path"}"#, "gateway.url_style"),
            (r#","envelope":{"extra":{"msgid":"x"}}"#, "envelope.extra"),
            (r#","envelope":{"extra":{"Recer":"x"}}"#, "envelope.extra"),
            (r#","envelope":{"extra":{"recer_admdvs":"{nope}"}}"#, "envelope.extra.recer_admdvs"),
            (r#","envelope":{"extra":{"recer_admdvs":1}}"#, "envelope.extra.recer_admdvs"),
            (r#","envelope":{"cainfo":"md5"}"#, "envelope.cainfo"),
            (r#","sign_in":{"style":"guangzhou","password":"p"}"#, "sign_in.userid"),
            (r#","sign_in":{"style":"guangzhou","userid":"u"}"#, "sign_in.password"),
            (r#","sign_in":{"style":"gz"}"#, "sign_in.style"),
        ] {
            let e = cfg(patch).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Config, "{patch}");
            assert!(e.message.contains(key), "{patch}: {}", e.message);
        }
        let long = "x".repeat(variant::MAX_EXTRA_VALUE + 1);
        assert!(cfg(&format!(r#","envelope":{{"extra":{{"app_id":"{long}"}}}}"#)).is_err());
        assert!(cfg(r#","gateway":{"encrypt_input":false},"envelope":{"extra":{"app_id":"A","enc_type":"N"}}"#).is_ok());
    }
}

/// The region presets (docs/regions/) as the config loads them.
#[cfg(test)]
mod region_tests {
    use super::*;
    use crate::region::PRESETS;
    use crate::variant::{Cainfo, SignInStyle, UrlStyle};
    use serde_json::Value;

    const INST: &str = r#""institution":{"fixmedins_code":"H44010000001","fixmedins_name":"示例医院","mdtrtarea_admvs":"440100","opter":"0001","opter_name":"收费员"}"#;

    fn cfg(extra: &str) -> Result<Config> {
        Config::from_json(&format!("{{{INST}{extra}}}"), Path::new("."))
    }

    #[test]
    fn every_shipped_preset_loads_and_names_its_source() {
        for (name, text) in PRESETS {
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(v["_source"].as_str().is_some_and(|s| !s.trim().is_empty()), "{name} has no _source");
            // What each preset leaves to the site.
            let sim = mi_sim::SimConfig::default();
            let site = match *name {
                "guangzhou" => r#","sign_in":{"userid":"u1","password":"p"}"#.to_string(),
                "jilin" => format!(
                    r#","gateway":{{"platform_public_key":"{}"}},"mobile_pay":{{"app_id":"{}","app_secret":"{}"}}"#,
                    sim.answer_public_key(),
                    sim.mp_app_id,
                    sim.mp_app_secret
                ),
                _ => String::new(),
            };
            let c = cfg(&format!(r#","region":"{name}"{site}"#)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.region, *name);
        }
    }

    #[test]
    fn guangzhou_sets_its_keys_and_the_config_wins() {
        let c = cfg(r#","region":"guangzhou","sign_in":{"userid":"u1","password":"p"}"#).unwrap();
        assert_eq!(c.sign_in.style, SignInStyle::Guangzhou);
        assert_eq!(c.gateway.style(), UrlStyle::AppendInfno);
        assert_eq!(c.envelope.cainfo, Cainfo::Sm3OfInput);
        assert_eq!(c.envelope.extra["recer_admdvs"], "{mdtrtarea_admvs}");
        assert!(c.sign_in.auto, "keys the preset does not name keep their defaults");
        assert_eq!(c.readers.mapping.card_as_id_in, ["440"], "Guangdong's cards go into 1101 as 02");
        assert_eq!(c.readers.mapping.card_no, crate::readers::CardNo::CardNo);
        let c = cfg(
            r#","region":"guangzhou","sign_in":{"userid":"u1","password":"p"},"envelope":{"cainfo":"none","extra":{"recer_admdvs":"440000"}}"#,
        )
        .unwrap();
        assert_eq!(c.envelope.cainfo, Cainfo::None);
        assert_eq!(c.envelope.extra["recer_admdvs"], "440000");
        // null takes a preset's key away.
        let c = cfg(r#","region":"guangzhou","sign_in":{"userid":"u1","password":"p"},"envelope":{"extra":{"recer_admdvs":null}}"#)
            .unwrap();
        assert!(c.envelope.extra.is_empty());
    }

    #[test]
    fn jilin_needs_the_keys_a_preset_cannot_carry() {
        let e = cfg(r#","region":"jilin""#).unwrap_err();
        assert_eq!(e.code, crate::error::Code::Config);
        assert!(e.message.contains("platform_public_key") || e.message.contains("app_id"), "{}", e.message);
    }

    #[test]
    fn unknown_presets_name_the_known_ones() {
        let e = cfg(r#","region":"atlantis""#).unwrap_err();
        assert_eq!(e.code, crate::error::Code::Config);
        assert!(e.message.contains("atlantis") && e.message.contains("guangzhou, hebei, jilin"), "{}", e.message);
        let e = cfg(r#","region":7"#).unwrap_err();
        assert!(e.message.contains("region"), "{}", e.message);
        let e = cfg(r#","region":"./missing.json""#).unwrap_err();
        assert!(e.message.contains("missing.json"), "{}", e.message);
        for not_a_preset in ["/dev/zero", "/"] {
            let e = cfg(&format!(r#","region":"{not_a_preset}""#)).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Config, "{not_a_preset}");
            // A device or a folder (Windows has no /dev/zero: it cannot be read at all).
            if cfg!(unix) {
                assert!(e.message.contains("at most 1048576 bytes"), "{not_a_preset}: {}", e.message);
            } else {
                assert!(e.message.contains("region") && e.message.contains(not_a_preset), "{}", e.message);
            }
        }
    }

    #[test]
    fn a_preset_file_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("regions")).unwrap();
        std::fs::write(
            dir.path().join("regions/fujian.json"),
            r#"{"_source":"the bureau's interface document","envelope":{"extra":{"app_id":"A1"}},"gateway":{"url_style":"append_infno"}}"#,
        )
        .unwrap();
        let c = Config::from_json(&format!(r#"{{{INST},"region":"regions/fujian.json"}}"#), dir.path()).unwrap();
        assert_eq!(c.envelope.extra["app_id"], "A1");
        assert_eq!(c.gateway.url_style, UrlStyle::AppendInfno);
        // A preset's bad key is named as any config key is.
        std::fs::write(dir.path().join("bad.json"), r#"{"gateway":{"url_styl":"single"}}"#).unwrap();
        let e = Config::from_json(&format!(r#"{{{INST},"region":"bad.json"}}"#), dir.path()).unwrap_err();
        assert!(e.message.contains("url_styl"), "{}", e.message);
    }
}
