//! `--proxy URL`: parse; a parsed proxy never shows its password.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<sockit::net::proxy::Proxy>() {
        Ok(p) => {
            // What is shown is the scheme and HOST:PORT: never USER:PASS@.
            assert!(!p.to_string().contains('@'));
            assert!(!format!("{p:?}").contains("pass:"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
