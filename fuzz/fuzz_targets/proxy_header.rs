//! PROXY protocol headers from whoever connects to `--accept-proxy`: any bytes are a
//! header, the start of one, or not one; never a panic. Every prefix of a header is
//! "incomplete", and what `encode` makes parses back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockit::net::proxy_header::{encode, parse, Parse, Version};

fuzz_target!(|data: &[u8]| {
    if let Parse::Done(h) = parse(data) {
        assert!(h.len <= data.len());
        if let Some((client, reached)) = h.addrs {
            for v in [Version::V1, Version::V2] {
                let again = encode(v, client, reached);
                assert!(matches!(parse(&again), Parse::Done(_)));
            }
        }
    }
});
