//! The configuration loader: any text is a configuration or an error
//! that says where, and the settings of every guest it names are usable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nri_wasm::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Ok(config) => {
            for name in config.named_guests() {
                let settings = config.guest(name);
                let _ = settings.sandbox();
            }
        }
        Err(err) => assert!(!err.is_empty()),
    }
});
