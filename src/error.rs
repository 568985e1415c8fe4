//! Error kinds of the Rust API and their fixed `MI_*` codes (docs/api_reference.md,
//! "Codes").
//!
//! The numbers are part of the C contract: they never change within ABI version 1.

use std::ffi::CStr;
use std::fmt;

/// A result code of the C ABI. The discriminants are the wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    Pending = 1,
    InvalidArgument = -1,
    NotInitialized = -2,
    BufferTooSmall = -3,
    Config = -4,
    Network = -5,
    Timeout = -6,
    Protocol = -7,
    Business = -8,
    Uncertain = -9,
    Journal = -10,
    NotFound = -11,
    Busy = -12,
    Shutdown = -13,
    Internal = -99,
}

impl Code {
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Every code, in the order of the reference table.
    pub const ALL: [Code; 16] = [
        Code::Ok,
        Code::Pending,
        Code::InvalidArgument,
        Code::NotInitialized,
        Code::BufferTooSmall,
        Code::Config,
        Code::Network,
        Code::Timeout,
        Code::Protocol,
        Code::Business,
        Code::Uncertain,
        Code::Journal,
        Code::NotFound,
        Code::Busy,
        Code::Shutdown,
        Code::Internal,
    ];

    /// The code of a value, if it is one.
    pub fn of(v: i32) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_i32() == v)
    }

    /// The code for a stored value; unknown values read back as `Internal`
    /// so a damaged journal never turns into a false success.
    pub fn from_i32(v: i32) -> Code {
        Code::of(v).unwrap_or(Code::Internal)
    }

    /// The `MI_*` name, for logs and docs.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().expect("the names are ASCII")
    }

    /// The `MI_*` name as a static C string (`mi_code_name`).
    pub fn c_name(self) -> &'static CStr {
        match self {
            Code::Ok => c"MI_OK",
            Code::Pending => c"MI_PENDING",
            Code::InvalidArgument => c"MI_E_INVALID_ARGUMENT",
            Code::NotInitialized => c"MI_E_NOT_INITIALIZED",
            Code::BufferTooSmall => c"MI_E_BUFFER_TOO_SMALL",
            Code::Config => c"MI_E_CONFIG",
            Code::Network => c"MI_E_NETWORK",
            Code::Timeout => c"MI_E_TIMEOUT",
            Code::Protocol => c"MI_E_PROTOCOL",
            Code::Business => c"MI_E_BUSINESS",
            Code::Uncertain => c"MI_E_UNCERTAIN",
            Code::Journal => c"MI_E_JOURNAL",
            Code::NotFound => c"MI_E_NOT_FOUND",
            Code::Busy => c"MI_E_BUSY",
            Code::Shutdown => c"MI_E_SHUTDOWN",
            Code::Internal => c"MI_E_INTERNAL",
        }
    }
}

/// An error of the Rust API: a code and a message fit to show an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// The request was no longer this process's to move on (see [`Error::lost_claim`]).
    lost_claim: bool,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), lost_claim: false }
    }
    /// A change to request `id` refused because this process no longer owns it:
    /// another took it over (it judged this one gone). Whoever gets this must
    /// neither send the request nor record anything over the new owner's outcome;
    /// the request's outcome is what the journal now says.
    pub fn lost_claim(id: i64) -> Error {
        let message = format!("request {id} was taken over by another process; this one no longer drives it");
        Error { lost_claim: true, ..Error::journal(message) }
    }
    pub fn is_lost_claim(&self) -> bool {
        self.lost_claim
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidArgument, message)
    }
    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Code::Config, message)
    }
    pub fn journal(message: impl Into<String>) -> Error {
        Error::new(Code::Journal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    /// Names what the hospital's IT staff can act on (a full disk, a read-only file,
    /// a damaged file, another program's lock), with SQLite's own words after it.
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode as C;
        let what = match e.sqlite_error_code() {
            Some(C::DiskFull) => "the disk holding the journal is full; free space on it",
            Some(C::ReadOnly) => "the journal file or its folder is read-only; give this program write access",
            Some(C::DatabaseCorrupt) | Some(C::NotADatabase) => {
                "the journal file is damaged or is not an mi_sdk journal; move it aside (keep it for the audit) \
                 and start again, or restore it from a backup"
            }
            Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => {
                "the journal is locked by another program (journal.busy_timeout_ms ran out); close the \
                 program holding it"
            }
            Some(C::CannotOpen) => "the journal file cannot be opened; check its folder exists and is writable",
            Some(C::SystemIoFailure) => "the disk reported an error writing the journal",
            _ => "",
        };
        if what.is_empty() {
            Error::journal(format!("journal: {e}"))
        } else {
            Error::journal(format!("journal: {what} ({e})"))
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_internal() {
        for c in [Code::Ok, Code::Uncertain, Code::Internal, Code::Shutdown] {
            assert_eq!(Code::from_i32(c.as_i32()), c);
        }
        assert_eq!(Code::from_i32(42), Code::Internal);
        assert_eq!(Code::of(42), None);
        for c in Code::ALL {
            assert_eq!(Code::of(c.as_i32()), Some(c));
            assert!(c.name().starts_with("MI_") && c.c_name().to_bytes() == c.name().as_bytes());
        }
        let mut values: Vec<i32> = Code::ALL.iter().map(|c| c.as_i32()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), Code::ALL.len(), "every code once");
        assert_eq!(Code::Uncertain.as_i32(), -9);
    }
}
