//! The services over datagram sockets: one loop per socket, answers never larger than needed.

use std::borrow::Cow;

use tokio_util::sync::CancellationToken;

use super::ratelimit::RateLimit;
use super::{chargen, clock, sntp, Config, Service, DAYTIME_MAX};
use crate::net::{Datagram, MAX_DATAGRAM};
use crate::server::Admission;

pub(super) async fn serve(
    service: Service,
    sock: Datagram,
    admission: Admission,
    cfg: Config,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut limit = RateLimit::new(cfg.udp_rate);
    let mut seq = 0u64;
    loop {
        let (n, peer) = tokio::select! {
            r = admission.receive(&sock, &mut buf, service.name()) => r,
            () = shutdown.cancelled() => return,
        };
        seq = seq.wrapping_add(1);
        let Some(reply) = answer(service, &buf[..n], &cfg, clock::ntp_now(), seq) else {
            continue;
        };
        if !limit.allow(peer.ip()) {
            tracing::debug!(%service, %peer, "dropped: over --udp-rate");
            continue;
        }
        if let Err(e) = sock.send_to(&reply, &peer).await {
            tracing::debug!(%service, %peer, error = %crate::error::describe_io(&e), "send failed");
        }
    }
}

/// What `service` answers to one datagram, if anything. Echo borrows the request, so the
/// busiest service answers straight from the receive buffer.
fn answer<'a>(
    service: Service,
    request: &'a [u8],
    cfg: &Config,
    received: u64,
    seq: u64,
) -> Option<Cow<'a, [u8]>> {
    match service {
        Service::Echo => Some(Cow::Borrowed(request)),
        Service::Discard => None,
        Service::Chargen => Some(Cow::Owned(
            chargen::datagram(received ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_vec(),
        )),
        Service::Daytime => Some(Cow::Owned(daytime(request, cfg.utc).into_bytes())),
        Service::Time => Some(Cow::Owned(clock::rfc868_now().to_vec())),
        Service::Sntp => sntp::answer(request, received, &cfg.sntp).map(|a| Cow::Owned(a.to_vec())),
        // Refused when parsing the binding: the proxies run over TCP.
        Service::Socks5 | Service::HttpProxy | Service::Tunnel => None,
    }
}

/// An empty datagram gets the RFC 867 line; text is a strftime format (the tutorial's server).
fn daytime(request: &[u8], utc: bool) -> String {
    let Ok(text) = std::str::from_utf8(request) else {
        return "error: the format is not UTF-8 text".into();
    };
    let format = text.trim_end_matches(['\r', '\n']);
    if format.trim().is_empty() {
        return clock::daytime(utc);
    }
    match clock::format_now(format, utc) {
        Ok(s) if s.len() <= DAYTIME_MAX => s,
        Ok(_) => format!("error: the answer would be longer than {DAYTIME_MAX} bytes"),
        Err(why) => format!("error: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daytime_answers() {
        assert!(daytime(b"", true).ends_with("\r\n"));
        assert!(daytime("%Y年".as_bytes(), true).ends_with('年'));
        assert!(daytime(b"%Q", true).starts_with("error: "));
        assert!(daytime(&[0xff, 0xfe], true).starts_with("error: "));
        assert!(daytime("%c".repeat(100).as_bytes(), true).starts_with("error: "));
    }

    #[test]
    fn no_answer_is_larger_than_needed() {
        let cfg = Config::default();
        for seq in 0..200 {
            assert!(
                answer(Service::Chargen, b"", &cfg, clock::ntp_now(), seq)
                    .unwrap()
                    .len()
                    <= 512
            );
        }
        assert_eq!(answer(Service::Time, b"x", &cfg, 0, 0).unwrap().len(), 4);
        assert!(answer(Service::Discard, b"x", &cfg, 0, 0).is_none());
    }
}
