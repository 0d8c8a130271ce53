//! SOCKS4/4a/5 negotiations and SOCKS5 UDP requests from clients.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let cfg = sockit::services::proxy::Config::default();
    let _ = rt.block_on(sockit::services::proxy::socks5::negotiation(data, &cfg));
    let _ = sockit::services::proxy::socks5::udp_request(data);
});
