//! A reader library in use: loaded once, each call on a thread of its own so that a
//! reader that never returns is abandoned after its timeout instead of taking the
//! cashier's program with it. What that costs: the thread stays inside the library
//! (nothing can stop it), and the reader is not called again until the program
//! restarts, since a library stuck in one call may not take another.

use super::card::{id_card, social_card};
use super::ecard::{self, Asker};
use super::guard::Guarded;
use super::{Identity, Mapping};
use crate::error::{Code, Error, Result};
use crate::ffi::ReaderLib;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

pub struct Reader {
    lib: Arc<ReaderLib>,
    timeout: Duration,
    /// A call never came back: the library is not called again.
    hung: Arc<AtomicBool>,
    /// HeaSecReadInfo's `Init`, done once.
    initialised: Mutex<bool>,
}

impl Reader {
    pub fn open(path: &std::path::Path, timeout: Duration) -> Result<Reader> {
        Ok(Reader {
            lib: Arc::new(ReaderLib::open(path)?),
            timeout,
            hung: Arc::new(AtomicBool::new(false)),
            initialised: Mutex::new(false),
        })
    }

    /// Runs `f` on the library on a thread of its own, waiting up to the timeout.
    fn run<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&ReaderLib) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let name = format!("{} {what}", self.lib.name());
        if self.hung.load(Ordering::Acquire) {
            return Err(Error::new(
                Code::Timeout,
                format!("{name}: an earlier call never returned; restart the program before using this reader again"),
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let lib = self.lib.clone();
        std::thread::Builder::new()
            .name("mi-reader".into())
            .spawn(move || {
                let _ = tx.send(f(&lib));
            })
            .map_err(|e| Error::new(Code::Internal, format!("{name}: no thread for the call: {e}")))?;
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(_) => {
                self.hung.store(true, Ordering::Release);
                Err(Error::new(
                    Code::Timeout,
                    format!(
                        "{name} did not return within {} ms: abandoned (its thread stays inside the reader); \
                         restart the program before using this reader again",
                        self.timeout.as_millis()
                    ),
                ))
            }
        }
    }

    /// The e-voucher shown at `url` (the local e-voucher service's address).
    pub fn ecard(&self, url: &str, asker: &Asker) -> Result<Identity> {
        let url = text_arg(url, "the e-voucher URL")?;
        let input = text_arg(&ecard::request(asker), "the e-voucher request")?;
        self.run("NationEcTrans", move |lib| {
            let mut out = Guarded::new(ECARD_OUT);
            lib.nation_ec_trans(&url, &input, &mut out)?;
            ecard::parse(&out.text(&format!("{} NationEcTrans", lib.name()))?)
        })
    }

    /// The social-security card in the reader; `init_json` is HeaSecReadInfo's
    /// `Init` input (its keys differ by province).
    pub fn social_card(&self, call: CardCall, init_json: &str, mapping: Mapping) -> Result<Identity> {
        if call == CardCall::HeaSec {
            let mut done = self.initialised.lock().unwrap_or_else(|p| p.into_inner());
            if !*done {
                let json = text_arg(init_json, "the reader's Init JSON")?;
                self.run("Init", move |lib| {
                    let mut err = Guarded::new(CARD_OUT);
                    match lib.init(&json, &mut err)? {
                        0 => Ok(()),
                        rc => Err(refused(&format!("{} Init", lib.name()), rc, &err)),
                    }
                })?;
                *done = true;
            }
        }
        self.run("ReadCardBas", move |lib| {
            let what = format!("{} ReadCardBas", lib.name());
            let mut info = Guarded::new(CARD_OUT);
            let mut busi = Guarded::new(BUSI_OUT);
            let rc = match call {
                CardCall::HeaSec => lib.read_card_bas(&mut info, &mut busi)?,
                CardCall::SsCardDriver(kind) => lib.i_read_card_bas(kind, &mut info)?,
            };
            if rc != 0 {
                return Err(refused(&what, rc, &info));
            }
            let busi = match call {
                CardCall::HeaSec => busi.text(&what)?,
                CardCall::SsCardDriver(_) => String::new(),
            };
            social_card(&info.text(&what)?, &busi, &mapping, &what)
        })
    }

    /// The resident ID card on the reader (HeaSecReadInfo.dll `ReadSFZ`).
    pub fn id_card(&self) -> Result<Identity> {
        self.run("ReadSFZ", move |lib| {
            let what = format!("{} ReadSFZ", lib.name());
            let mut info = Guarded::new(CARD_OUT);
            let mut busi = Guarded::new(BUSI_OUT);
            match lib.read_sfz(&mut info, &mut busi)? {
                0 => id_card(&info.text(&what)?, &what),
                rc => Err(refused(&what, rc, &info)),
            }
        })
    }
}

/// A reader's "no" (no card, a wrong PIN): its return code and the message it
/// wrote, which is about the card, not the person.
fn refused(what: &str, rc: i32, out: &Guarded) -> Error {
    match out.text(what) {
        Ok(said) => Error::new(
            Code::Business,
            format!("{what}: {} (returned {rc})", said.chars().take(200).collect::<String>()),
        ),
        Err(e) => e,
    }
}

/// Text for a reader: in the ANSI code page of Chinese Windows, as they read it.
fn text_arg(text: &str, what: &str) -> Result<CString> {
    CString::new(crate::charset::Charset::Gbk.encode(text))
        .map_err(|_| Error::invalid(format!("{what} contains a NUL character")))
}
