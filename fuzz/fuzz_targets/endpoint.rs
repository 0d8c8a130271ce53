//! Endpoints from the command line: parse, and what parses prints back as itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = text.parse::<sockit::Endpoint>() {
        let shown = e.to_string();
        let again: sockit::Endpoint = shown.parse().expect("a shown endpoint parses");
        assert_eq!(again.to_string(), shown);
    }
});
