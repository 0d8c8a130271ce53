//! Tunnel control frames from whoever reaches a gateway (or a gateway an expose trusts):
//! any bytes are a frame or a refusal in words, never a panic, and a frame decoded encodes
//! back to a frame that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockit::tunnel::frame::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Frame::decode(data) {
        let wire = f.encode();
        assert_eq!(Frame::decode(&wire[4..]), Ok(f));
    }
});
