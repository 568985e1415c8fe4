//! The C ABI, version 1 (docs/api_reference.md). The only module that knows about
//! C: it checks and decodes arguments, calls the Rust API, encodes results into the
//! caller's buffers, maps errors to `MI_*` codes and keeps every panic inside the
//! library.
//!
//! Every export has one shape: its body runs inside [`export`] (or [`guard`], for
//! the few that return something other than a code), which catches a panic,
//! records the message of a failure for `mi_last_error`, and returns the code.
//!
//! `include/mi_sdk.h` is generated from this file by cbindgen (see `build.rs`).

#![warn(unsafe_op_in_unsafe_fn)]

use crate::call::Outcome;
use crate::charset::Charset;
use crate::error::{Code, Error, Result};
use crate::handle;
use crate::readers::guard::Guarded;
use crate::readers::reader::Library;
use crate::sdk::Sdk;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr};
use std::time::Duration;

/// Success; for a call: the platform answered `infcode` 0.
pub const MI_OK: i32 = 0;
/// `mi_get_result`: accepted, not finished (queued, sending, or waiting to retry).
pub const MI_PENDING: i32 = 1;
/// NULL pointer, text not valid in the charset, malformed `infno`, input not a JSON
/// object or too large, duplicate caller-given msgid.
pub const MI_E_INVALID_ARGUMENT: i32 = -1;
/// No successful `mi_init` yet, or after `mi_shutdown`.
pub const MI_E_NOT_INITIALIZED: i32 = -2;
/// The output buffer is too small; `*len` holds the size needed (NUL not counted).
pub const MI_E_BUFFER_TOO_SMALL: i32 = -3;
/// Config missing, unreadable or invalid; the message names the field.
pub const MI_E_CONFIG: i32 = -4;
/// The gateway could not be reached; the request was not sent.
pub const MI_E_NETWORK: i32 = -5;
/// A retry-safe transaction got no answer in time.
pub const MI_E_TIMEOUT: i32 = -6;
/// The gateway answered, but not with a valid platform response.
pub const MI_E_PROTOCOL: i32 = -7;
/// The platform answered with `infcode` other than 0: show its `err_msg`.
pub const MI_E_BUSINESS: i32 = -8;
/// A state-changing transaction may have been processed but no answer came. It was
/// not resent: resolve it with `mi_reverse` or a query.
pub const MI_E_UNCERTAIN: i32 = -9;
/// The journal could not be written; the request was not sent.
pub const MI_E_JOURNAL: i32 = -10;
/// No request with that id.
pub const MI_E_NOT_FOUND: i32 = -11;
/// The async queue is full; try later.
pub const MI_E_BUSY: i32 = -12;
/// The SDK is shutting down.
pub const MI_E_SHUTDOWN: i32 = -13;
/// An unexpected internal failure; details in `mi_last_error`.
pub const MI_E_INTERNAL: i32 = -99;

/// No transaction code is longer than this; a longer `infno` is refused unread.
const INFNO_LIMIT: (u64, &str) = (16, "a transaction code allows");
/// Paths, file names and file query numbers.
const PATH_LIMIT: (u64, &str) = (4096, "a path allows");
const REQUEST_LIMIT: (u64, &str) = (64 * 1024, "a request of this kind allows");

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static LAST_REQUEST_ID: Cell<i64> = const { Cell::new(0) };
    /// A reconciliation report that did not fit the caller's buffer, with the
    /// request it answers: what it resolved is written once and must not be lost.
    static KEPT_REPORT: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Runs an export's body and returns its value; a panic inside becomes
/// `fallback`, with the panic's message for `mi_last_error`.
fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        log::error!("internal error caught at the C boundary: {what}");
        set_last_error(&format!("internal error: {what}"));
        fallback
    })
}

/// The shape of every export that returns a code: the body's code, or its
/// error's code with the message kept for `mi_last_error`, or `MI_E_INTERNAL`
/// for a panic.
fn export(body: impl FnOnce() -> Result<Code>) -> i32 {
    guard(MI_E_INTERNAL, || match body() {
        Ok(c) => c.as_i32(),
        Err(e) => {
            set_last_error(&e.message);
            e.code.as_i32()
        }
    })
}

/// [`export`] for the functions that make a request (`mi_call_sync`,
/// `mi_call_async`, `mi_reverse`, the file transfers): `mi_last_request_id` is
/// cleared before anything else, so a call that fails before it journals a request
/// (a bad argument, an unknown id, a caught panic: `MI_E_INTERNAL`) leaves 0 rather
/// than the id of an earlier request the HIS might then fetch or reverse.
fn call_export(body: impl FnOnce() -> Result<Code>) -> i32 {
    // Outside the guard: clearing a thread-local Cell cannot panic.
    LAST_REQUEST_ID.with(|c| c.set(0));
    export(body)
}

fn set_last_error(msg: &str) {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg.to_string());
}

/// The charset in force: the config's, or UTF-8 before `mi_init`.
fn charset() -> Charset {
    handle::current().map(|s| s.config().charset).unwrap_or_default()
}

/// Reads a string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string readable for this call.
unsafe fn text_arg(ptr: *const c_char, what: &str, (max_bytes, limit): (u64, &str), cs: Charset) -> Result<String> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    // SAFETY: not NULL (checked above), and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    if bytes.len() as u64 > max_bytes {
        return Err(Error::invalid(format!("{what} is {} bytes, more than {limit} ({max_bytes})", bytes.len())));
    }
    cs.decode(bytes, what)
}

/// A caller's output buffer, checked: the `(char *buf, int32_t *len)` pair of the
/// buffer protocol (docs/api_reference.md).
struct OutBuf {
    buf: *mut c_char,
    len: *mut i32,
    cap: usize,
}

impl OutBuf {
    /// # Safety
    /// `len` is NULL or points to a writable `int32_t`; `buf` is NULL or writable for
    /// `*len` bytes.
    unsafe fn new(buf: *mut c_char, len: *mut i32) -> Result<OutBuf> {
        if len.is_null() {
            return Err(Error::invalid("output length pointer is NULL"));
        }
        // SAFETY: `len` is not NULL and points to an int32_t by the caller's contract.
        let cap = unsafe { len.read_unaligned() };
        if cap < 0 {
            return Err(Error::invalid(format!("output capacity *len is negative ({cap})")));
        }
        if buf.is_null() && cap > 0 {
            return Err(Error::invalid("output buffer is NULL but *len is not 0"));
        }
        Ok(OutBuf { buf, len, cap: cap as usize })
    }

    /// Writes text and its NUL, or only a NUL and the size needed.
    fn write(&self, bytes: &[u8]) -> Code {
        let needed = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        // SAFETY: `len` was checked non-NULL in `new` and is writable by contract.
        unsafe { self.len.write_unaligned(needed) };
        if self.cap > bytes.len() {
            // SAFETY: `buf` is writable for `cap` bytes and `cap > bytes.len()`, so the
            // text and its NUL fit; the regions cannot overlap (ours is a fresh Vec).
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf.cast::<u8>(), bytes.len());
                self.buf.add(bytes.len()).write(0);
            }
            Code::Ok
        } else {
            if self.cap >= 1 {
                // SAFETY: `buf` is non-NULL (cap > 0) and writable for at least one byte.
                unsafe { self.buf.write(0) };
            }
            Code::BufferTooSmall
        }
    }

    /// Writes a document that is not a call's result.
    fn text(&self, text: &str, cs: Charset) -> Result<Code> {
        match self.write(&cs.encode(text)) {
            Code::Ok => Ok(Code::Ok),
            _ => Err(too_small(self.needed(), "")),
        }
    }

    fn needed(&self) -> i32 {
        // SAFETY: `len` was checked non-NULL and was just written by `write`.
        unsafe { self.len.read_unaligned() }
    }
}

fn too_small(needed: i32, hint: &str) -> Error {
    Error::new(Code::BufferTooSmall, format!("output buffer too small: {needed} bytes and a NUL are needed{hint}"))
}

/// The running SDK and the caller's checked output buffer: the first two steps of
/// every export that answers with text about the running SDK.
///
/// # Safety
/// As [`OutBuf::new`].
unsafe fn running_with_output(output: *mut c_char, output_len: *mut i32) -> Result<(std::sync::Arc<Sdk>, OutBuf)> {
    let sdk = handle::get()?;
    // SAFETY: the caller passes on its own pointer contract.
    let out = unsafe { OutBuf::new(output, output_len) }?;
    Ok((sdk, out))
}

/// Delivers a call's outcome: output text into the buffer, message for `mi_last_error`.
fn deliver(out: &OutBuf, cs: Charset, r: Result<Outcome>, is_call: bool) -> Result<Code> {
    let outcome = r.unwrap_or_else(|e| Outcome { request_id: 0, code: e.code, output: Sdk::error_output(&e) });
    if is_call {
        LAST_REQUEST_ID.with(|c| c.set(outcome.request_id));
    }
    if !matches!(outcome.code, Code::Ok | Code::Pending) {
        let msg = serde_json::from_str::<serde_json::Value>(&outcome.output)
            .ok()
            .and_then(|v| v.get("err_msg").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        set_last_error(&format!("{}: {msg}", outcome.code.name()));
    }
    match out.write(&cs.encode(&outcome.output)) {
        Code::Ok => Ok(outcome.code),
        _ => {
            let hint = if outcome.request_id > 0 {
                format!("; the result is kept: ask mi_get_result({}) again with a larger buffer", outcome.request_id)
            } else {
                String::new()
            };
            Err(too_small(out.needed(), &hint))
        }
    }
}

/// Like [`deliver`] for functions about an existing request: an unknown id is
/// `MI_E_NOT_FOUND` with no output, not a call outcome.
fn deliver_about(out: &OutBuf, cs: Charset, r: Result<Outcome>, is_call: bool) -> Result<Code> {
    match r {
        Err(e) if e.code == Code::NotFound => Err(e),
        r => deliver(out, cs, r, is_call),
    }
}

/// Initialises the SDK.
///
/// `config` is inline JSON (text starting with `{`), a path to a JSON file, or NULL
/// (then `$MI_SDK_CONFIG`, then `mi_sdk.json` beside the library, then in the working
/// folder). It is read as UTF-8 and not kept after the call. Calling again with the
/// same config returns `MI_OK`; with a different one `MI_E_CONFIG`.
///
/// # Safety
/// `config` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn mi_init(config: *const c_char) -> i32 {
    export(|| {
        crate::charset::set_ansi_code_page(system_ansi_code_page());
        // No charset is configured yet: the bytes go on as they are, to be read as
        // UTF-8 when valid, else in the ANSI code page.
        let source = if config.is_null() {
            None
        } else {
            // SAFETY: not NULL; NUL-terminated by the caller's contract.
            Some(unsafe { CStr::from_ptr(config) }.to_bytes())
        };
        handle::init(source).map(|_| Code::Ok)
    })
}

/// Makes a synchronous call: builds the envelope, journals it, sends it, waits.
///
/// `infno` and `input` (a JSON object) are read in the config's charset and not kept.
/// `output` belongs to the caller: on entry `*output_len` is its capacity in bytes;
/// on return `*output_len` is the length of the whole output (NUL not counted). The
/// output is a JSON object with at least `infcode` and `err_msg` for every code from
/// `MI_OK` to `MI_E_UNCERTAIN`. When the buffer is too small the call still happened:
/// fetch its result with `mi_get_result(mi_last_request_id(), ...)`.
///
/// # Safety
/// `infno`, `input`: NULL or NUL-terminated. `output_len`: NULL or a writable int32_t.
/// `output`: NULL or writable for `*output_len` bytes.
#[no_mangle]
pub unsafe extern "system" fn mi_call_sync(
    infno: *const c_char,
    input: *const c_char,
    output: *mut c_char,
    output_len: *mut i32,
) -> i32 {
    call_export(|| {
        let sdk = handle::get()?;
        let cs = sdk.config().charset;
        // SAFETY: pointer contract of this function, checked for NULL inside.
        let out = unsafe { OutBuf::new(output, output_len) }?;
        let max = sdk.config().max_input_bytes;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let args = unsafe { text_arg(infno, "infno", INFNO_LIMIT, cs) }.and_then(|i| {
            // SAFETY: as above.
            Ok((i, unsafe { text_arg(input, "input", (max, "max_input_bytes"), cs) }?))
        });
        let r = args.and_then(|(infno, input)| sdk.call_sync(&infno, &input));
        deliver(&out, cs, r, true)
    })
}

/// Commits a request to the journal and queues it; returns once it is durable.
///
/// Higher `priority` goes first. On success `*request_id` receives the request's id,
/// to pass to `mi_get_result`. `infno` and `input` are not kept after the call.
///
/// # Safety
/// `infno`, `input`: NULL or NUL-terminated. `request_id`: NULL or a writable int64_t.
#[no_mangle]
pub unsafe extern "system" fn mi_call_async(
    infno: *const c_char,
    input: *const c_char,
    priority: i32,
    request_id: *mut i64,
) -> i32 {
    call_export(|| {
        let sdk = handle::get()?;
        let cs = sdk.config().charset;
        if request_id.is_null() {
            return Err(Error::invalid("request_id pointer is NULL"));
        }
        let max = sdk.config().max_input_bytes;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let infno = unsafe { text_arg(infno, "infno", INFNO_LIMIT, cs) }?;
        // SAFETY: as above.
        let input = unsafe { text_arg(input, "input", (max, "max_input_bytes"), cs) }?;
        let id = sdk.call_async(&infno, &input, priority)?;
        LAST_REQUEST_ID.with(|c| c.set(id));
        // SAFETY: not NULL (checked above) and writable by the caller's contract.
        unsafe { request_id.write_unaligned(id) };
        Ok(Code::Ok)
    })
}

/// The result of a request: `MI_PENDING` while unfinished, then the same code and
/// output the sync call would have given. Works across restarts. Buffer as in
/// `mi_call_sync`.
///
/// # Safety
/// `output_len`: NULL or a writable int32_t; `output`: NULL or writable for `*output_len` bytes.
#[no_mangle]
pub unsafe extern "system" fn mi_get_result(request_id: i64, output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        deliver_about(&out, sdk.config().charset, sdk.get_result(request_id), false)
    })
}

/// The journal record of a request as JSON (`request_id`, `msgid`, `infno`, `state`,
/// `priority`, `attempts`, `created_at`, `updated_at`, `last_error`, `reversal_of`,
/// `reversed_by`). Buffer as in `mi_call_sync`.
///
/// # Safety
/// As `mi_get_result`.
#[no_mangle]
pub unsafe extern "system" fn mi_get_request(request_id: i64, output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        out.text(&sdk.get_request(request_id)?.to_json(), sdk.config().charset)
    })
}

/// Reverses (2601) a reversible transaction that is `uncertain` or `succeeded`: sends
/// 2601 naming its msgid, links both records, and returns like a sync call (the
/// reversal's outcome; `mi_last_request_id()` is the reversal). Anything that cannot
/// be reversed is `MI_E_INVALID_ARGUMENT` with the reason; an unknown id
/// `MI_E_NOT_FOUND`. Buffer as in `mi_call_sync`.
///
/// # Safety
/// As `mi_get_result`.
#[no_mangle]
pub unsafe extern "system" fn mi_reverse(request_id: i64, output: *mut c_char, output_len: *mut i32) -> i32 {
    call_export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        deliver_about(&out, sdk.config().charset, sdk.reverse(request_id), true)
    })
}

/// Reconciles the day's books with the platform (docs/operations.md, "Day end"):
/// `request` is `{"from":"yyyy-MM-dd","to":"yyyy-MM-dd","journals":["..."]}` (`to`
/// defaults to `from`; `journals` names other workstations' journals, or folders of
/// copies, read only). Sends 3201 per group and the 3202 chain where the totals
/// differ or a settlement is uncertain, resolves uncertain settlements by the
/// platform's detail (in this SDK's journal), and writes the report JSON
/// (`balanced`, `groups`, `differences`, `resolved`, `uncertain_left`). `MI_OK`
/// whether or not the books balance; a transaction that failed on the way is its
/// code, with the reason in `mi_last_error()`. On `MI_E_BUFFER_TOO_SMALL` the report
/// is kept: the next `mi_reconcile` on the same thread with the same request gets
/// it without running again (so what it resolved is not lost).
///
/// # Safety
/// `request`: NULL or NUL-terminated (in the config's charset). `output_len`,
/// `output`: as in `mi_call_sync`.
#[no_mangle]
pub unsafe extern "system" fn mi_reconcile(request: *const c_char, output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        let cs = sdk.config().charset;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let request = unsafe { text_arg(request, "request", REQUEST_LIMIT, cs) }?;
        let kept = KEPT_REPORT.with(|k| k.borrow_mut().take()).filter(|(asked, _)| *asked == request);
        let report = match kept {
            Some((_, report)) => report,
            None => crate::reconcile::run(&*sdk, &crate::reconcile::Spec::parse(&request)?)?.to_json(),
        };
        let written = out.text(&report, cs);
        if matches!(&written, Err(e) if e.code == Code::BufferTooSmall) {
            KEPT_REPORT.with(|k| *k.borrow_mut() = Some((request, report)));
        }
        written
    })
}

/// Identifies the patient through the card and e-voucher readers configured in
/// `readers` (docs/readers.md). `request` is JSON: `way` (`"ecard"`, `"sscard"`,
/// `"idcard"`, or `"auto"`: the configured order, the first reader that finds a
/// person wins), `business_type` (what the e-voucher is shown for, `"01101"` by
/// default), `operator_id` / `operator_name` (default: the config's). NULL or empty
/// asks for `auto`. A reader is loaded at its first use and kept until the process
/// ends (and keeps mi_sdk loaded until then). The output is JSON: `data`, ready to
/// be the `data` of 1101, `way`, `reader`, `insured_in`, `hcard` (a social card's two
/// outputs as written, which some regions' visits carry; else null), `raw` (what the
/// reader wrote, masked) and `tried` (in `auto`, what the readers before said). A
/// reader that says no (no card, an expired QR code) is `MI_E_BUSINESS`; one that
/// answers garbage or writes past its buffer `MI_E_PROTOCOL`; one that does not
/// return within `readers.timeout_ms` `MI_E_TIMEOUT`, and it is not called again
/// until the process restarts. Nothing is sent to the platform and nothing is
/// journaled. Buffer as in `mi_call_sync`, but an answer that does not fit is not
/// kept: asking again reads the reader again (give 64 KiB).
///
/// # Safety
/// `request`: NULL or NUL-terminated (in the config's charset). `output_len`,
/// `output`: as in `mi_call_sync`.
#[no_mangle]
pub unsafe extern "system" fn mi_identify(request: *const c_char, output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        let cs = sdk.config().charset;
        let request = if request.is_null() {
            String::new()
        } else {
            // SAFETY: not NULL, and NUL-terminated by the caller's contract.
            unsafe { text_arg(request, "request", REQUEST_LIMIT, cs) }?
        };
        // Not kept when it does not fit, unlike a reconciliation: a kept identity
        // could be handed over for the next patient. Asked again, the reader is read
        // again; answers are about 1 KiB.
        out.text(&crate::readers::identify::identify(sdk.config(), &request, ReaderLib::open)?, cs)
    })
}

/// Uploads a file (9101): reads the file at `path`, sends its bytes, the file name
/// and the institution code to the upload URL (`files.upload_url`, by default
/// `/fsi/api/fileupload/upload` beside `gateway.url`) and returns the platform's
/// answer, whose `output` names the `file_qury_no` the file is kept under. The file
/// may be at most `files.max_upload_mb`. Journaled like any call; never resent once
/// it may have left. Buffer as in `mi_call_sync`.
///
/// # Safety
/// `path`: NULL or NUL-terminated (in the config's charset). `output_len`, `output`:
/// as in `mi_call_sync`.
#[no_mangle]
pub unsafe extern "system" fn mi_upload_file(path: *const c_char, output: *mut c_char, output_len: *mut i32) -> i32 {
    call_export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        let cs = sdk.config().charset;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let path = unsafe { text_arg(path, "path", PATH_LIMIT, cs) };
        let r = path.and_then(|p| sdk.upload_file(std::path::Path::new(&p)));
        deliver(&out, cs, r, true)
    })
}

/// Downloads a file (9102): asks the download URL (`files.download_url`, by default
/// `/fsi/api/fileupload/download` beside `gateway.url`) for `file_qury_no` /
/// `filename`, writes the zip stream to disk as it arrives (never whole in memory),
/// and unpacks it into `dest_dir` (created if missing). Entries that would land
/// outside `dest_dir` (absolute, `..`, drive letters, links), more than
/// `files.max_entries` entries or more than `files.max_unpacked_mb` unpacked are
/// refused with `MI_E_PROTOCOL`, and nothing of that zip is left behind. The output
/// lists the files written: `output.files[]` with `name`, `path` and `bytes`. A
/// download that breaks off is resent (9102 is a query). Buffer as in `mi_call_sync`.
///
/// # Safety
/// `file_qury_no`, `filename`, `dest_dir`: NULL or NUL-terminated (in the config's
/// charset). `output_len`, `output`: as in `mi_call_sync`.
#[no_mangle]
pub unsafe extern "system" fn mi_download_file(
    file_qury_no: *const c_char,
    filename: *const c_char,
    dest_dir: *const c_char,
    output: *mut c_char,
    output_len: *mut i32,
) -> i32 {
    call_export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        let cs = sdk.config().charset;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let args = unsafe { text_arg(file_qury_no, "file_qury_no", PATH_LIMIT, cs) }.and_then(|q| {
            // SAFETY: as above.
            let name = unsafe { text_arg(filename, "filename", PATH_LIMIT, cs) }?;
            // SAFETY: as above.
            let dest = unsafe { text_arg(dest_dir, "dest_dir", PATH_LIMIT, cs) }?;
            Ok((q, name, dest))
        });
        let r = args.and_then(|(q, name, dest)| sdk.download_file(&q, &name, std::path::Path::new(&dest)));
        deliver(&out, cs, r, true)
    })
}

/// The SDK's status as JSON: version, gateway URL (no secrets), journal path, workers,
/// queue depth, counts by state, last success and error, sign-in, latency p50/p99.
/// Buffer as in `mi_call_sync`.
///
/// # Safety
/// As `mi_get_result`.
#[no_mangle]
pub unsafe extern "system" fn mi_get_status(output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // SAFETY: pointer contract of this function.
        let (sdk, out) = unsafe { running_with_output(output, output_len) }?;
        out.text(&sdk.status()?.to_json(), sdk.config().charset)
    })
}

/// The message of the last failure on the calling thread, in the config's charset
/// (UTF-8 before `mi_init`); empty if none. Buffer as in `mi_call_sync`.
///
/// # Safety
/// As `mi_get_result`.
#[no_mangle]
pub unsafe extern "system" fn mi_last_error(output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        // Never an error: a failure here must not replace the message asked for.
        // SAFETY: pointer contract of this function.
        Ok(match unsafe { OutBuf::new(output, output_len) } {
            Ok(out) => out.write(&charset().encode(&LAST_ERROR.with(|e| e.borrow().clone()))),
            Err(e) => e.code,
        })
    })
}

/// The id of the last request made by a call on the calling thread; 0 if none, or if
/// the last call failed in any way (`MI_E_INTERNAL` included) before it was journaled.
#[no_mangle]
pub extern "system" fn mi_last_request_id() -> i64 {
    guard(0, || LAST_REQUEST_ID.with(|c| c.get()))
}

/// Stops taking calls, waits up to `wait_ms` for sends in flight, leaves queued
/// requests in the journal for the next `mi_init`, and closes everything.
/// Idempotent. Call it before `FreeLibrary`/`dlclose`.
#[no_mangle]
pub extern "system" fn mi_shutdown(wait_ms: i32) -> i32 {
    export(|| {
        handle::shutdown(Duration::from_millis(wait_ms.max(0) as u64));
        Ok(Code::Ok)
    })
}

/// SM3 of a text, as 64 lower-case hex characters. The text is read in the config's
/// charset (UTF-8 before `mi_init`) and hashed as UTF-8, the platform's encoding.
/// Needs no `mi_init`. Buffer as in `mi_call_sync`.
///
/// # Safety
/// `data`: NULL or NUL-terminated. `output_len`: NULL or a writable int32_t;
/// `output`: NULL or writable for `*output_len` bytes.
#[no_mangle]
pub unsafe extern "system" fn mi_sm3_hex(data: *const c_char, output: *mut c_char, output_len: *mut i32) -> i32 {
    export(|| {
        let cs = charset();
        // SAFETY: pointer contract of this function.
        let out = unsafe { OutBuf::new(output, output_len) }?;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let text = unsafe { text_arg(data, "data", CRYPTO_LIMIT, cs) }?;
        out.text(&hex::encode(crate::crypto::sm::sm3(text.as_bytes())), cs)
    })
}

/// SM4 encryption with PKCS#7 padding: `mode` is "ecb" or "cbc"; `key_hex` 32 hex
/// characters; `iv_hex` 32 hex characters for CBC (NULL or "" for ECB). The plaintext
/// is read in the config's charset and encrypted as UTF-8; the output is upper-case hex.
/// Needs no `mi_init`. Buffer as in `mi_call_sync`.
///
/// # Safety
/// Text arguments: NULL or NUL-terminated. `output_len`/`output` as in `mi_sm3_hex`.
#[no_mangle]
pub unsafe extern "system" fn mi_sm4_encrypt_hex(
    mode: *const c_char,
    key_hex: *const c_char,
    iv_hex: *const c_char,
    plaintext: *const c_char,
    output: *mut c_char,
    output_len: *mut i32,
) -> i32 {
    // SAFETY: this function's pointer contract is sm4_export's.
    export(|| unsafe { sm4_export(true, mode, key_hex, iv_hex, plaintext, output, output_len) })
}

/// SM4 decryption, the reverse of `mi_sm4_encrypt_hex`: `ciphertext_hex` in either
/// case; the plaintext must be UTF-8 and is written in the config's charset. A wrong
/// key or damaged ciphertext is `MI_E_INVALID_ARGUMENT`. Needs no `mi_init`.
///
/// # Safety
/// As `mi_sm4_encrypt_hex`.
#[no_mangle]
pub unsafe extern "system" fn mi_sm4_decrypt_hex(
    mode: *const c_char,
    key_hex: *const c_char,
    iv_hex: *const c_char,
    ciphertext_hex: *const c_char,
    output: *mut c_char,
    output_len: *mut i32,
) -> i32 {
    // SAFETY: this function's pointer contract is sm4_export's.
    export(|| unsafe { sm4_export(false, mode, key_hex, iv_hex, ciphertext_hex, output, output_len) })
}

/// The body of both SM4 exports.
///
/// # Safety
/// Text arguments: NULL or NUL-terminated; `output_len`/`output` as in `OutBuf::new`.
unsafe fn sm4_export(
    encrypt: bool,
    mode: *const c_char,
    key_hex: *const c_char,
    iv_hex: *const c_char,
    text: *const c_char,
    output: *mut c_char,
    output_len: *mut i32,
) -> Result<Code> {
    use crate::crypto::sm;
    {
        let cs = charset();
        // SAFETY: pointer contract of this function.
        let out = unsafe { OutBuf::new(output, output_len) }?;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let (mode, key, iv) = unsafe { sm4_args(mode, key_hex, iv_hex) }?;
        if encrypt {
            // SAFETY: as above.
            let plain = unsafe { text_arg(text, "plaintext", CRYPTO_LIMIT, cs) }?;
            out.text(&sm::to_hex_upper(&sm::sm4_encrypt(mode, &key, iv.as_deref(), plain.as_bytes())?), cs)
        } else {
            // SAFETY: as above.
            let hex_text = unsafe { text_arg(text, "ciphertext_hex", CRYPTO_LIMIT, Charset::Utf8) }?;
            let plain = sm::sm4_decrypt(mode, &key, iv.as_deref(), &sm::from_hex(&hex_text, "ciphertext_hex")?)?;
            let text = String::from_utf8(plain).map_err(|_| Error::invalid("the plaintext is not UTF-8 text"))?;
            out.text(&text, cs)
        }
    }
}

/// The most text the crypto helpers take: their inputs are messages, not files.
const CRYPTO_LIMIT: (u64, &str) = (64 * 1024 * 1024, "the crypto helpers take");

/// Mode, key and IV of the SM4 helpers.
///
/// # Safety
/// Each pointer is NULL or NUL-terminated.
unsafe fn sm4_args(
    mode: *const c_char,
    key_hex: *const c_char,
    iv_hex: *const c_char,
) -> Result<(crate::crypto::sm::Mode, Vec<u8>, Option<Vec<u8>>)> {
    use crate::crypto::sm::{from_hex, Mode};
    let limit = (64, "an SM4 argument allows");
    // SAFETY: NULL or NUL-terminated by the caller's contract.
    let m = unsafe { text_arg(mode, "mode", limit, Charset::Utf8) }?;
    let mode = Mode::parse(&m).ok_or_else(|| Error::invalid("mode must be \"ecb\" or \"cbc\""))?;
    // SAFETY: as above.
    let key = from_hex(&unsafe { text_arg(key_hex, "key_hex", limit, Charset::Utf8) }?, "key_hex")?;
    if key.len() != 16 {
        return Err(Error::invalid("key_hex must be 32 hex characters (16 bytes)"));
    }
    let iv = match mode {
        Mode::Ecb => None,
        Mode::Cbc => {
            // SAFETY: as above.
            let iv = from_hex(&unsafe { text_arg(iv_hex, "iv_hex", limit, Charset::Utf8) }?, "iv_hex")?;
            if iv.len() != 16 {
                return Err(Error::invalid("iv_hex must be 32 hex characters (16 bytes) for cbc"));
            }
            Some(iv)
        }
    };
    Ok((mode, key, iv))
}

/// The library version, e.g. "1.0.0". Static: never free it.
#[no_mangle]
pub extern "system" fn mi_version() -> *const c_char {
    guard(c"".as_ptr(), || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

/// The C ABI version: 1.
#[no_mangle]
pub extern "system" fn mi_abi_version() -> i32 {
    guard(MI_E_INTERNAL, || crate::ABI_VERSION)
}

/// The name of a code, e.g. "MI_E_UNCERTAIN" for -9, for logs and messages;
/// "MI_UNKNOWN" for a value that is no code. Static: never free it. Needs no
/// `mi_init`.
#[no_mangle]
pub extern "system" fn mi_code_name(code: i32) -> *const c_char {
    guard(c"MI_UNKNOWN".as_ptr(), || Code::of(code).map_or(c"MI_UNKNOWN", Code::c_name).as_ptr())
}

/// The system's ANSI code page (`GetACP()`), in which a Windows program's `char *`
/// text is; the `mi-sdk` command reads its config the way `mi_init` does with it.
#[cfg(windows)]
pub fn system_ansi_code_page() -> u32 {
    #[link(name = "kernel32")]
    extern "system" {
        fn GetACP() -> u32;
    }
    // SAFETY: GetACP takes no arguments and only returns a number.
    unsafe { GetACP() }
}

/// Elsewhere there is no ANSI code page: GBK, as on Chinese Windows.
#[cfg(not(windows))]
pub fn system_ansi_code_page() -> u32 {
    936
}

/// Hands DPAPI to the journal's key file ([`crate::journal::key::use_dpapi`]) as the
/// module is loaded: a CRT initializer (`.CRT$XCU`), run by the C runtime of the DLL,
/// of `mi-sdk.exe` or of a test program before any of its code can open a journal.
/// The journal sits below this file and never calls up into it.
#[cfg(windows)]
#[used]
#[link_section = ".CRT$XCU"]
static DPAPI_AT_LOAD: extern "C" fn() = {
    extern "C" fn hand_over() {
        crate::journal::key::use_dpapi(dpapi_protect, dpapi_unprotect);
    }
    hand_over
};

/// `data` protected by DPAPI in machine scope: the blob opens on this PC only, for
/// any program on it (the journal's key file, [`crate::journal::key`]).
#[cfg(windows)]
pub fn dpapi_protect(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use windows_sys::Win32::Security::Cryptography::{
        CryptProtectData, CRYPTPROTECT_LOCAL_MACHINE, CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
    };
    let input = CRYPT_INTEGER_BLOB { cbData: data.len() as u32, pbData: data.as_ptr() as *mut u8 };
    let mut out = CRYPT_INTEGER_BLOB::default();
    let flags = CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN;
    // SAFETY: `input` points at `data`, alive for the call and only read by it; the
    // optional arguments are null, as the documentation allows; `out` is written by
    // the call and its buffer is taken over below.
    let ok = unsafe {
        CryptProtectData(
            &input,
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            flags,
            &mut out,
        )
    };
    dpapi_output(ok, out)
}

/// The data a DPAPI blob made on this PC holds.
#[cfg(windows)]
pub fn dpapi_unprotect(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    use windows_sys::Win32::Security::Cryptography::{
        CryptUnprotectData, CRYPTPROTECT_UI_FORBIDDEN, CRYPT_INTEGER_BLOB,
    };
    let input = CRYPT_INTEGER_BLOB { cbData: blob.len() as u32, pbData: blob.as_ptr() as *mut u8 };
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: as in dpapi_protect: `input` is only read, the optional arguments are
    // null, and `out` is written by the call and taken over below.
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    dpapi_output(ok, out)
}

/// What a DPAPI call wrote: copied out, and its buffer given back to the system.
#[cfg(windows)]
fn dpapi_output(
    ok: windows_sys::core::BOOL,
    out: windows_sys::Win32::Security::Cryptography::CRYPT_INTEGER_BLOB,
) -> std::io::Result<Vec<u8>> {
    if ok == 0 || out.pbData.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: on success DPAPI wrote `cbData` bytes at `pbData`, a buffer it
    // allocated with LocalAlloc for the caller; it is copied, then freed once.
    let data = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize).to_vec() };
    // SAFETY: `pbData` came from DPAPI's LocalAlloc and is freed here only.
    unsafe { windows_sys::Win32::Foundation::LocalFree(out.pbData.cast()) };
    Ok(data)
}

/// Runs this process as the Windows service `spec.name` the Service Control
/// Manager has just started (`mi-sdk service run`): hands it the service's entry
/// point, which runs [`crate::ops::service::main`] with `spec`, and returns when the
/// service has stopped.
#[cfg(windows)]
pub fn run_service(spec: crate::ops::service::Spec) -> Result<()> {
    let name = spec.name.clone();
    let _ = SERVICE.set(spec);
    windows_service::service_dispatcher::start(&name, service_entry).map_err(|e| {
        let not_scm = matches!(&e, windows_service::Error::Winapi(io) if io.raw_os_error() == Some(1063));
        Error::invalid(if not_scm {
            "`mi-sdk service run` is how Windows starts the service: use `mi-sdk service start`, or \
             `mi-sdk serve --watch DIR` in a console"
                .to_string()
        } else {
            format!("cannot run as the service {name}: {e}")
        })
    })
}

/// Elsewhere there is no Service Control Manager to run under.
#[cfg(not(windows))]
pub fn run_service(_: crate::ops::service::Spec) -> Result<()> {
    Err(crate::ops::service::unsupported())
}

/// What the service entry point runs: one service per process.
#[cfg(windows)]
static SERVICE: std::sync::OnceLock<crate::ops::service::Spec> = std::sync::OnceLock::new();

// SAFETY: the entry point this defines has one unsafe block, which reads the
// argument array the Service Control Manager passes it, as Windows documents
// (ServiceMain's dwNumServicesArgs and lpServiceArgVectors); nothing else.
#[cfg(windows)]
windows_service::define_windows_service!(service_entry, service_body);

#[cfg(windows)]
fn service_body(_arguments: Vec<std::ffi::OsString>) {
    if let Some(spec) = SERVICE.get() {
        crate::ops::service::main(spec.clone());
    }
}

/// A reader library (the e-voucher's, a card reader's) loaded from the path the
/// config names. Its functions are declared as the public HIS code that calls them
/// declares them (docs/readers.md): stdcall on 32-bit Windows, C elsewhere, ANSI
/// text, output buffers of no stated size ([`crate::readers::guard::Guarded`]).
/// Keeps this library loaded for the life of the process, from the first reader
/// library opened on: a thread abandoned inside a reader would come back into this
/// library's code were the reader ever to return, so the HIS's `FreeLibrary` after
/// `mi_shutdown` must not unload it. Loading the library again (by the full path of
/// the loaded module) raises its reference count, and the handle is never given back.
pub fn pin_this_library() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        let Some(path) = process_path::get_dylib_path() else { return };
        // SAFETY: this library is already loaded in this process: loading it again
        // runs no initialiser, it only counts one more user of it.
        match unsafe { libloading::Library::new(&path) } {
            Ok(lib) => std::mem::forget(lib),
            // Linked into a program rather than loaded: nothing can unload it.
            Err(e) => log::debug!("{} not pinned: {e}", path.display()),
        }
    });
}

/// A buffer's size as a reader's `int` length.
fn len_arg(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub struct ReaderLib {
    lib: libloading::Library,
    name: String,
}

type EcTransFn = unsafe extern "system" fn(*const c_char, *const c_char, *mut c_char) -> *const c_char;
type InitFn = unsafe extern "system" fn(*const c_char, *mut c_char) -> i32;
type ReadCardBasFn = unsafe extern "system" fn(*mut c_char, *mut c_char) -> i32;
type IReadCardBasFn = unsafe extern "system" fn(i32, *mut c_char) -> i32;
type ReadSfzFn = unsafe extern "system" fn(*const c_char, *mut c_char, *mut c_char) -> i32;
type InitUrlUserFn = unsafe extern "system" fn(*const c_char, *const c_char) -> i32;
type SizedReadFn = unsafe extern "system" fn(*mut c_char, i32, *mut c_char, i32) -> i32;

impl ReaderLib {
    /// Loads the reader library at `path` ([`crate::readers::reader::Opener`]), and
    /// from then on keeps mi_sdk itself loaded ([`pin_this_library`]).
    pub fn open(path: &std::path::Path) -> Result<Box<dyn Library>> {
        pin_this_library();
        // SAFETY: loading a library runs its initialisers; this is the reader library
        // the hospital installed and named in the config, trusted as its HIS trusts it.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| Error::config(format!("cannot load the reader library {}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Box::new(ReaderLib { lib, name }))
    }

    fn symbol<T: Copy>(&self, export: &str) -> Result<T> {
        // SAFETY: `T` is the function type the readers' callers declare for `export`
        // (the aliases above); a library exporting the name with another type is
        // beyond what can be checked before calling it.
        let f = unsafe { self.lib.get::<T>(export.as_bytes()) }
            .map_err(|e| Error::new(Code::Protocol, format!("{} has no function {export}: {e}", self.name)))?;
        Ok(*f)
    }
}

impl Library for ReaderLib {
    fn name(&self) -> &str {
        &self.name
    }

    /// What `NationEcTrans` returns is not used (versions differ): the output's
    /// `code` says how it went.
    fn nation_ec_trans(&self, url: &CStr, input: &CStr, out: &mut Guarded) -> Result<()> {
        let f: EcTransFn = self.symbol("NationEcTrans")?;
        // SAFETY: `url` and `input` are NUL-terminated and outlive the call; `out`
        // is writable for its usable size and its guard, checked after the call.
        unsafe { f(url.as_ptr(), input.as_ptr(), out.as_mut_ptr().cast()) };
        Ok(())
    }

    fn init(&self, json: &CStr, err: &mut Guarded) -> Result<i32> {
        let f: InitFn = self.symbol("Init")?;
        // SAFETY: as in `nation_ec_trans`.
        Ok(unsafe { f(json.as_ptr(), err.as_mut_ptr().cast()) })
    }

    fn init_url_user(&self, url: &CStr, user: &CStr) -> Result<i32> {
        let f: InitUrlUserFn = self.symbol("Init")?;
        // SAFETY: both NUL-terminated and outliving the call.
        Ok(unsafe { f(url.as_ptr(), user.as_ptr()) })
    }

    fn read_card_bas(&self, info: &mut Guarded, busi: &mut Guarded) -> Result<i32> {
        let f: ReadCardBasFn = self.symbol("ReadCardBas")?;
        // SAFETY: as in `nation_ec_trans`, for both buffers.
        Ok(unsafe { f(info.as_mut_ptr().cast(), busi.as_mut_ptr().cast()) })
    }

    fn i_read_card_bas(&self, kind: i32, out: &mut Guarded) -> Result<i32> {
        let f: IReadCardBasFn = self.symbol("iReadCardBas")?;
        // SAFETY: as in `nation_ec_trans`.
        Ok(unsafe { f(kind, out.as_mut_ptr().cast()) })
    }

    fn read_sfz(&self, info: &mut Guarded, busi: &mut Guarded) -> Result<i32> {
        let f: ReadSfzFn = self.symbol("ReadSFZ")?;
        // SAFETY: a NULL photo path asks for no photo (as its callers pass it); the
        // buffers as in `nation_ec_trans`.
        Ok(unsafe { f(std::ptr::null(), info.as_mut_ptr().cast(), busi.as_mut_ptr().cast()) })
    }

    fn sized_read(&self, export: &str, out: &mut Guarded, sign: &mut Guarded) -> Result<i32> {
        let f: SizedReadFn = self.symbol(export)?;
        let (out_len, sign_len) = (len_arg(out.usable()), len_arg(sign.usable()));
        // SAFETY: as in `nation_ec_trans`, for both buffers, each told its usable size.
        Ok(unsafe { f(out.as_mut_ptr().cast(), out_len, sign.as_mut_ptr().cast(), sign_len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `MI_*` constant of the header is its code's value; every code has one.
    #[test]
    fn constants_match_the_rust_codes() {
        let table = [
            (Code::Ok, MI_OK),
            (Code::Pending, MI_PENDING),
            (Code::InvalidArgument, MI_E_INVALID_ARGUMENT),
            (Code::NotInitialized, MI_E_NOT_INITIALIZED),
            (Code::BufferTooSmall, MI_E_BUFFER_TOO_SMALL),
            (Code::Config, MI_E_CONFIG),
            (Code::Network, MI_E_NETWORK),
            (Code::Timeout, MI_E_TIMEOUT),
            (Code::Protocol, MI_E_PROTOCOL),
            (Code::Business, MI_E_BUSINESS),
            (Code::Uncertain, MI_E_UNCERTAIN),
            (Code::Journal, MI_E_JOURNAL),
            (Code::NotFound, MI_E_NOT_FOUND),
            (Code::Busy, MI_E_BUSY),
            (Code::Shutdown, MI_E_SHUTDOWN),
            (Code::Internal, MI_E_INTERNAL),
        ];
        assert_eq!(table.map(|(c, _)| c), Code::ALL);
        for (c, v) in table {
            assert_eq!(c.as_i32(), v, "{}", c.name());
        }
    }

    #[test]
    fn version_is_static_and_terminated() {
        // SAFETY: mi_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(mi_version()) };
        assert_eq!(v.to_str().unwrap(), crate::VERSION);
        assert_eq!(mi_abi_version(), 1);
    }

    #[test]
    fn code_names_are_static_and_unknown_codes_say_so() {
        for c in Code::ALL {
            // SAFETY: mi_code_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(mi_code_name(c.as_i32())) };
            assert_eq!(name.to_str().unwrap(), c.name());
        }
        for v in [2, -14, 42, i32::MIN, i32::MAX] {
            // SAFETY: as above.
            assert_eq!(unsafe { CStr::from_ptr(mi_code_name(v)) }.to_str().unwrap(), "MI_UNKNOWN");
        }
    }

    #[test]
    fn a_panic_becomes_internal_with_a_message() {
        let code = export(|| {
            let v: Vec<i32> = Vec::new();
            Ok(Code::from_i32(v[3]))
        });
        assert_eq!(code, MI_E_INTERNAL);
        let msg = LAST_ERROR.with(|e| e.borrow().clone());
        assert!(msg.starts_with("internal error:") && msg.contains("index out of bounds"), "{msg}");
        assert_eq!(guard(-1i64, || panic!("boom")), -1);
    }

    #[test]
    fn an_error_keeps_its_message_for_mi_last_error() {
        assert_eq!(export(|| Err(Error::invalid("infno is NULL"))), MI_E_INVALID_ARGUMENT);
        assert_eq!(LAST_ERROR.with(|e| e.borrow().clone()), "infno is NULL");
    }
}
