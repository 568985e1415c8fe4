//! A buffer handed to a reader DLL, which is told no size (`NationEcTrans`,
//! `ReadCardBas`, `iReadCardBas` take a bare `char *`): far larger than any size
//! its callers document, with guard bytes after it that are checked once the call
//! returns. A reader that wrote past the end, or left no terminating NUL, is named
//! in the error instead of corrupting the process quietly; its text is decoded as
//! UTF-8, else GB18030 (readers write the ANSI code page of Chinese Windows).

use crate::error::{Code, Error, Result};

/// Bytes after the usable part that the reader must leave alone: a reader that
/// overruns by less than this is caught before anything else is harmed.
const GUARD: usize = 4096;
/// What the guard bytes hold (and the usable part before the call: no stray NUL
/// is mistaken for the end of the reader's text).
const PATTERN: u8 = 0xA5;

pub struct Guarded {
    buf: Vec<u8>,
    usable: usize,
}

impl Guarded {
    /// A buffer with `usable` bytes for the reader, then the guard.
    pub fn new(usable: usize) -> Guarded {
        Guarded { buf: vec![PATTERN; usable + GUARD], usable }
    }

    /// The pointer the reader writes through.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.buf.as_mut_ptr()
    }

    pub fn usable(&self) -> usize {
        self.usable
    }

    /// The raw bytes, for a test standing in for a reader.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The text the reader wrote, checked: the guard intact, a NUL within the
    /// usable part. `reader` names it in the errors.
    pub fn text(&self, reader: &str) -> Result<String> {
        if self.buf[self.usable..].iter().any(|b| *b != PATTERN) {
            return Err(Error::new(
                Code::Protocol,
                format!(
                    "{reader} wrote past the end of its {}-byte buffer: its output is not used, and the process may \
                     be damaged; restart the program",
                    self.usable
                ),
            ));
        }
        let Some(end) = self.buf[..self.usable].iter().position(|b| *b == 0) else {
            return Err(Error::new(Code::Protocol, format!("{reader} returned text without an end (no NUL)")));
        };
        crate::charset::utf8_or_gbk(&self.buf[..end], reader)
            .map(|t| t.into_owned())
            .map_err(|_| Error::new(Code::Protocol, format!("{reader} returned text that is neither UTF-8 nor GBK")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(g: &mut Guarded, bytes: &[u8]) {
        g.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
    }

    #[test]
    fn text_in_utf8_or_gbk_up_to_its_nul() {
        let mut g = Guarded::new(32);
        write(&mut g, "张三|1\0junk".as_bytes());
        assert_eq!(g.text("r").unwrap(), "张三|1");
        let mut g = Guarded::new(32);
        let mut gbk = crate::charset::Charset::Gbk.encode("张三");
        gbk.push(0);
        write(&mut g, &gbk);
        assert_eq!(g.text("r").unwrap(), "张三");
    }

    #[test]
    fn an_overrun_or_a_missing_end_is_named() {
        let mut g = Guarded::new(8);
        write(&mut g, b"123456789\0");
        let e = g.text("HeaSecReadInfo.dll ReadCardBas").unwrap_err();
        assert_eq!(e.code, Code::Protocol);
        assert!(e.message.starts_with("HeaSecReadInfo.dll ReadCardBas wrote past the end of its 8-byte buffer"));
        let mut g = Guarded::new(8);
        write(&mut g, b"12345678");
        assert!(g.text("r").unwrap_err().message.contains("without an end"));
        let mut g = Guarded::new(8);
        write(&mut g, b"\xFF\xFF\xFF\0");
        assert!(g.text("r").unwrap_err().message.contains("neither UTF-8 nor GBK"));
    }
}
