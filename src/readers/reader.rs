//! A reader library in use: loaded once, each call on a thread of its own so that a
//! reader that never returns is abandoned after its timeout instead of taking the
//! cashier's program with it. What that costs: the thread stays inside the library
//! (nothing can stop it), and the reader is not called again until the program
//! restarts (a library stuck in one call may not take another). Because such a
//! thread would come back into mi_sdk's code were the reader ever to return, mi_sdk
//! keeps its own library loaded for the life of the process once a reader is opened
//! (pinned then, not at the timeout, when the stuck reader might hold the loader's
//! lock). One call at a time per library: these libraries drive one device and are
//! not known to be re-entrant.

use super::card::{id_card, social_card};
use super::ecard::{self, Asker};
use super::guard::Guarded;
use super::{Identity, Mapping};
use crate::error::{Code, Error, Result};
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Output buffer sizes: several times the largest any caller of these readers
/// allocates (20 KiB for the e-voucher, 8 KiB for the card's business string).
pub const ECARD_OUT: usize = 64 * 1024;
pub const CARD_OUT: usize = 16 * 1024;
pub const BUSI_OUT: usize = 64 * 1024;

/// How a social-security card is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCall {
    /// HeaSecReadInfo.dll: `Init` once, then `ReadCardBas(cardInfo, busiCardInfo)`.
    HeaSec,
    /// SSCardDriver.dll: `iReadCardBas(type, out)` (1 contact, 2 contactless, 3 and 4
    /// automatic); no business string.
    SsCardDriver(i32),
    /// SSCard.dll: `Init(url, user)` once, then `ReadCardBas(out, outLen, sign,
    /// signLen)`; the signature is the card's business string.
    SsCard,
}

/// How a library is made ready before its first read: HeaSecReadInfo's
/// `Init(json, err)`, SSCard's `Init(url, user)`, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    None,
    HeaSec(String),
    SsCard { url: String, user: String },
}

/// The calls of a reader library as its callers declare them; `src/ffi.rs` makes
/// them (`ReaderLib`), the one place foreign code is called. Each returns the
/// library's own return code where it has one (0 is success).
pub trait Library: Send + Sync {
    /// The library's file name, for messages.
    fn name(&self) -> &str;
    /// `NationEcTrans(url, input, output)`.
    fn nation_ec_trans(&self, url: &CStr, input: &CStr, out: &mut Guarded) -> Result<()>;
    /// HeaSecReadInfo's `Init(json, errMsg)`.
    fn init(&self, json: &CStr, err: &mut Guarded) -> Result<i32>;
    /// SSCard.dll's `Init(url, user)`.
    fn init_url_user(&self, url: &CStr, user: &CStr) -> Result<i32>;
    /// HeaSecReadInfo's `ReadCardBas(cardInfo, busiCardInfo)`.
    fn read_card_bas(&self, info: &mut Guarded, busi: &mut Guarded) -> Result<i32>;
    /// SSCardDriver's `iReadCardBas(type, out)`.
    fn i_read_card_bas(&self, kind: i32, out: &mut Guarded) -> Result<i32>;
    /// HeaSecReadInfo's `ReadSFZ(photoPath, info, busi)`, without a photo.
    fn read_sfz(&self, info: &mut Guarded, busi: &mut Guarded) -> Result<i32>;
    /// SSCard.dll's sized `ReadCardBas` or `ReadSFZ` (`export`): `(out, outLen, sign, signLen)`.
    fn sized_read(&self, export: &str, out: &mut Guarded, sign: &mut Guarded) -> Result<i32>;
}

/// Loads the reader library at a path (`ffi::ReaderLib::open`).
pub type Opener = fn(&std::path::Path) -> Result<Box<dyn Library>>;

pub struct Reader {
    lib: Arc<dyn Library>,
    /// The timeout of the next call, in milliseconds (the config's, which a new
    /// `mi_init` may change).
    timeout_ms: AtomicU64,
    /// A call never came back: the library is not called again.
    hung: AtomicBool,
    /// Held for the whole of each call (one at a time per library); holds whether
    /// the library's `Init` has succeeded.
    calling: Mutex<bool>,
}

impl Reader {
    /// The library at `path`, loaded by `open`.
    pub fn open(path: &std::path::Path, timeout: Duration, open: Opener) -> Result<Reader> {
        let reader = Reader {
            lib: Arc::from(open(path)?),
            timeout_ms: AtomicU64::new(0),
            hung: AtomicBool::new(false),
            calling: Mutex::new(false),
        };
        reader.set_timeout(timeout);
        Ok(reader)
    }

    /// How long the following calls may take.
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms.store(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Runs `f` on the library on a thread of its own, waiting up to the timeout.
    /// The caller holds `calling`.
    fn run<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&dyn Library) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let name = format!("{} {what}", self.lib.name());
        if self.hung.load(Ordering::Acquire) {
            return Err(Error::new(
                Code::Timeout,
                format!("{name}: an earlier call never returned; restart the program before using this reader again"),
            ));
        }
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Acquire));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let lib = self.lib.clone();
        // Not joined: a thread leaving needs the loader's lock on Windows, which a
        // stuck reader may hold; mi_sdk is pinned when a reader is opened
        // (`ffi::ReaderLib::open`), so a thread that
        // outlives `mi_shutdown` never runs in unloaded code.
        std::thread::Builder::new()
            .name("mi-reader".into())
            .spawn(move || {
                let _ = tx.send(f(&*lib));
            })
            .map_err(|e| Error::new(Code::Internal, format!("{name}: no thread for the call: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(Error::new(Code::Internal, format!("{name}: the call failed inside mi_sdk (a panic)")))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                self.hung.store(true, Ordering::Release);
                Err(Error::new(
                    Code::Timeout,
                    format!(
                        "{name} did not return within {} ms: abandoned (its thread stays inside the reader); \
                         restart the program before using this reader again",
                        timeout.as_millis()
                    ),
                ))
            }
        }
    }

    /// One call at a time; the library set up (its `Init`) before its first read.
    fn ready(&self, setup: &Setup) -> Result<std::sync::MutexGuard<'_, bool>> {
        let mut done = self.calling.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return Ok(done);
        }
        match setup.clone() {
            Setup::None => return Ok(done),
            Setup::HeaSec(json) => {
                let json = text_arg(&json, "the reader's Init JSON")?;
                self.run("Init", move |lib| {
                    let mut err = Guarded::new(CARD_OUT);
                    match lib.init(&json, &mut err)? {
                        0 => Ok(()),
                        rc => Err(refused(&format!("{} Init", lib.name()), rc, &err)),
                    }
                })?
            }
            Setup::SsCard { url, user } => {
                let (url, user) =
                    (text_arg(&url, "the reader's Init URL")?, text_arg(&user, "the reader's Init user")?);
                self.run("Init", move |lib| match lib.init_url_user(&url, &user)? {
                    0 => Ok(()),
                    rc => Err(Error::new(Code::Business, format!("{} Init returned {rc}", lib.name()))),
                })?
            }
        }
        *done = true;
        Ok(done)
    }

    /// The e-voucher shown at `url` (the local e-voucher service's address).
    pub fn ecard(&self, url: &str, asker: &Asker) -> Result<Identity> {
        let url = text_arg(url, "the e-voucher URL")?;
        let input = text_arg(&ecard::request(asker), "the e-voucher request")?;
        let _calling = self.ready(&Setup::None)?;
        self.run("NationEcTrans", move |lib| {
            let what = format!("{} NationEcTrans", lib.name());
            let mut out = Guarded::new(ECARD_OUT);
            lib.nation_ec_trans(&url, &input, &mut out)?;
            ecard::parse(&out.text(&what)?, &what)
        })
    }

    /// The social-security card in the reader, read as `call` says after `setup`
    /// (HeaSecReadInfo's `Init` JSON, whose keys differ by province; SSCard's URL
    /// and user).
    pub fn social_card(&self, call: CardCall, setup: &Setup, mapping: Mapping) -> Result<Identity> {
        let _calling = self.ready(setup)?;
        self.run("ReadCardBas", move |lib| {
            let what = format!("{} ReadCardBas", lib.name());
            let mut info = Guarded::new(CARD_OUT);
            let mut busi = Guarded::new(BUSI_OUT);
            let rc = match call {
                CardCall::HeaSec => lib.read_card_bas(&mut info, &mut busi)?,
                CardCall::SsCardDriver(kind) => lib.i_read_card_bas(kind, &mut info)?,
                CardCall::SsCard => lib.sized_read("ReadCardBas", &mut info, &mut busi)?,
            };
            if rc != 0 {
                return Err(refused(&what, rc, &info));
            }
            let busi = match call {
                CardCall::HeaSec | CardCall::SsCard => busi.text(&what)?,
                CardCall::SsCardDriver(_) => String::new(),
            };
            social_card(&info.text(&what)?, &busi, &mapping, &what)
        })
    }

    /// The resident ID card on the reader (`ReadSFZ`: HeaSecReadInfo's three
    /// arguments, or SSCard's four), after `setup`.
    pub fn id_card(&self, setup: &Setup) -> Result<Identity> {
        let sized = matches!(setup, Setup::SsCard { .. });
        let _calling = self.ready(setup)?;
        self.run("ReadSFZ", move |lib| {
            let what = format!("{} ReadSFZ", lib.name());
            let mut info = Guarded::new(CARD_OUT);
            let mut busi = Guarded::new(BUSI_OUT);
            let rc = if sized {
                lib.sized_read("ReadSFZ", &mut info, &mut busi)?
            } else {
                lib.read_sfz(&mut info, &mut busi)?
            };
            match rc {
                0 => id_card(&info.text(&what)?, &what),
                rc => Err(refused(&what, rc, &info)),
            }
        })
    }
}

/// A reader's "no" (no card, a wrong PIN): its return code and the message it
/// wrote. A message that looks like the card's fields is not quoted, and any
/// personal data in one is masked: it goes into errors and the log.
fn refused(what: &str, rc: i32, out: &Guarded) -> Error {
    match out.text(what) {
        Ok(said) if said.contains('|') => {
            Error::new(Code::Business, format!("{what} returned {rc} with {} fields", said.split('|').count()))
        }
        Ok(said) => Error::new(
            Code::Business,
            format!(
                "{what}: {} (returned {rc})",
                crate::logging::mask_text(&said.chars().take(200).collect::<String>())
            ),
        ),
        Err(e) => e,
    }
}

/// Text for a reader: in the ANSI code page of Chinese Windows, as they read it.
fn text_arg(text: &str, what: &str) -> Result<CString> {
    CString::new(crate::charset::Charset::Gbk.encode(text))
        .map_err(|_| Error::invalid(format!("{what} contains a NUL character")))
}
