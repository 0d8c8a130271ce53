//! The tutorial's time server: a datagram is a strftime format; any text gets an answer or
//! an error, within the size cap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(format) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = sockit::services::clock::format_now(format, true) {
        let _ = s.len();
    }
});
