//! Caller text in both charsets: invalid bytes are refused, valid text survives
//! the trip back to the caller unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mi_sdk::Charset;

fuzz_target!(|data: &[u8]| {
    for cs in [Charset::Utf8, Charset::Gbk] {
        if let Ok(text) = cs.decode(data, "input") {
            let back = cs.encode(&text);
            assert_eq!(cs.decode(&back, "output").unwrap(), text, "{cs:?} round trip");
        }
    }
});
