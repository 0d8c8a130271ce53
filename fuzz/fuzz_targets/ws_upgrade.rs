//! The WebSocket upgrade a server's admission reads: any request head, with and without
//! chat's page. A 101 must carry the accept key; nothing may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sockit::net::ws::server::{decide, Decision, Upgrade};

fuzz_target!(|data: &[u8]| {
    for page in [None, Some("<p>page</p>")] {
        let up = Upgrade {
            path: "/ws".into(),
            page,
            opts: sockit::net::ws::Options::default(),
        };
        if let Decision::Upgrade { reply, .. } = decide(data, &up) {
            assert!(reply.starts_with("HTTP/1.1 101 ") && reply.contains("Sec-WebSocket-Accept: "));
            assert!(reply.ends_with("\r\n\r\n"));
        }
    }
});
