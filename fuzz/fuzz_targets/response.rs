//! What the gateway answers: the platform envelope parser, the sealed `output`
//! (hex SM4 of `enc_type: SM4`, Base64 SM4 signed in `cainfo`), the mobile-payment wrapper (`encData`, `signData`)
//! and the masking and escaping of whatever is logged of it. Any input: an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mi_sdk::crypto::mobile_pay::Keys;
use mi_sdk::crypto::sealed_output::{Seal, SealedOutput};
use mi_sim::{mobile, sealed};
use std::sync::OnceLock;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let platform = mobile::public_key_b64(&mobile::TEST_PLATFORM_PRIVATE_KEY, mobile::TEST_APP_SECRET);
        Keys::new(mobile::TEST_APP_ID, mobile::TEST_APP_SECRET, &mobile::b64(&mobile::TEST_APP_PRIVATE_KEY), &platform)
            .expect("the simulator's test keys")
    })
}

fn sealed_outputs() -> &'static [SealedOutput; 2] {
    static SEALED: OnceLock<[SealedOutput; 2]> = OnceLock::new();
    SEALED.get_or_init(|| {
        let platform = sealed::public_key_b64(&sealed::TEST_ANSWER_PRIVATE_KEY);
        let vk = mi_sdk::crypto::sm::verifying_key(&platform, sealed::USER_ID).expect("the simulator's test key");
        let key = *keys().data_key();
        [SealedOutput { key, seal: Seal::Hex }, SealedOutput { key, seal: Seal::Signed(vk) }]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    if let Ok((v, verdict)) = mi_sdk::internals::parse_response(body) {
        assert!(v.is_object());
        let _ = verdict.err_msg.len();
    }
    for sealed in sealed_outputs() {
        if let Ok(opened) = mi_sdk::internals::open_answer(sealed, body) {
            // Either the body as it came, or valid JSON with the output decrypted.
            assert!(opened == body || serde_json::from_str::<serde_json::Value>(&opened).is_ok());
        }
    }
    let _ = keys().open(body);
    let logged = mi_sdk::internals::for_log(body, true);
    assert!(!logged.is_empty() || body.is_empty() || serde_json::from_str::<serde_json::Value>(body).is_ok());
    // Whatever an answer holds, the line it is logged in stays one line.
    for mask_pii in [true, false] {
        let line = mi_sdk::internals::safe_line(body, mask_pii);
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{line:?}");
    }
});
