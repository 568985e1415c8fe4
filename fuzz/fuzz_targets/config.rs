//! `mi_init`'s config text: any bytes give a config or a config error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match mi_sdk::Config::from_json(text, std::path::Path::new("/nonexistent/his")) {
        Ok(cfg) => {
            // A config that loads is usable: its derived values do not panic.
            let _ = (cfg.journal_path(), cfg.log_dir(), cfg.charset, cfg.ca_path());
        }
        Err(e) => assert_eq!(e.code, mi_sdk::Code::Config, "{e}"),
    }
});
