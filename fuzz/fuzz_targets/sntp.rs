//! SNTP requests: any datagram gets an answer of 48 bytes or none.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sockit::services::sntp::answer(data, 1, &sockit::services::sntp::Options::default());
});
