//! HTTP CONNECT: requests a client sends to `serve http-proxy`, replies a proxy sends to
//! `--proxy http://`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let open = sockit::services::proxy::Config::default();
    let _ = sockit::services::proxy::http::parse_request(data, &open);
    let guarded = sockit::services::proxy::Config {
        users: vec![sockit::net::proxy::Credentials {
            user: "u".into(),
            pass: "p".into(),
        }],
        ..Default::default()
    };
    let _ = sockit::services::proxy::http::parse_request(data, &guarded);
    let _ = sockit::net::proxy::reply(data);
});
