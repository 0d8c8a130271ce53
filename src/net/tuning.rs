//! What every TCP connection gets once it is up, dialed or accepted: one place, so both legs
//! of a relay (and every other command's connections) are tuned alike.
//!
//! - TCP_NODELAY: sockit's traffic is lines and keystrokes as often as bulk, and a line must
//!   leave when it is written, not when Nagle's timer says so; bulk writes are large anyway.
//! - A peer on this host gets a congestion control that does not pace. BBR (a common system
//!   default) sizes its window from the smallest round trip it has seen, microseconds on
//!   loopback, and paces every send. There is no link to model on a loopback hop: the delays
//!   it sees are the CPU scheduling the reader, and on a busy host its window and pacing then
//!   hold the sender back. Measured with iperf3 through `relay` on 2 cores
//!   (`bench/relay.sh`): 0.63-0.69 of a direct connection with BBR on the relay's legs,
//!   0.69-0.85 with CUBIC (the gain larger the busier the host). Only BBR is replaced, and
//!   only on such a connection: a remote peer keeps the system's choice, and so does a host
//!   configured for something else.

use std::net::IpAddr;

use tokio::net::TcpStream;

/// The congestion control that replaces a pacing one on a connection within this host.
#[cfg(target_os = "linux")]
const UNPACED: &str = "cubic";

/// Tunes a connected TCP socket; `peer` is what the dial or the accept already knows, so no
/// second lookup is made. Every setting is best effort: a kernel that refuses one leaves the
/// connection as it was, and working.
pub(crate) fn connected(s: &TcpStream, peer: IpAddr) {
    let _ = s.set_nodelay(true);
    if on_this_host(|| s.local_addr().ok().map(|a| a.ip()), peer) {
        unpaced(s);
    }
}

/// True when the peer is this host: a loopback address, or our own address (a connection
/// to the host's own IP is routed over loopback too). Our address is asked only when the
/// peer is not loopback.
fn on_this_host(local: impl FnOnce() -> Option<IpAddr>, peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    peer.is_loopback() || local().is_some_and(|l| l.to_canonical() == peer)
}

#[cfg(not(target_os = "linux"))]
fn unpaced(_: &TcpStream) {}

#[cfg(target_os = "linux")]
fn unpaced(s: &TcpStream) {
    use rustix::net::sockopt::{set_tcp_congestion, tcp_congestion};
    if tcp_congestion(s).is_ok_and(|cc| paces(&cc)) {
        let _ = set_tcp_congestion(s, UNPACED);
    }
}

/// The BBR family (`bbr`, and `bbr2`/`bbr3` where a kernel has them) paces every send.
#[cfg(target_os = "linux")]
fn paces(cc: &str) -> bool {
    cc.starts_with("bbr")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_and_our_own_address_are_this_host_and_others_are_not() {
        let here = |s: &'static str| move || Some(ip(s));
        assert!(on_this_host(here("127.0.0.1"), ip("127.0.0.1")));
        assert!(on_this_host(here("127.0.0.1"), ip("127.0.0.53")));
        assert!(on_this_host(here("::1"), ip("::1")));
        assert!(on_this_host(
            here("::ffff:127.0.0.1"),
            ip("::ffff:127.0.0.1")
        ));
        assert!(on_this_host(here("10.0.0.5"), ip("::ffff:10.0.0.5")));
        assert!(!on_this_host(here("10.0.0.5"), ip("10.0.0.4")));
        assert!(!on_this_host(here("2001:db8::1"), ip("2001:db8::2")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_the_bbr_family_is_replaced() {
        assert!(paces("bbr"));
        assert!(paces("bbr3"));
        assert!(!paces("cubic"));
        assert!(!paces("reno"));
        assert!(!paces("dctcp"));
    }

    /// On a host whose default is BBR (and which allows CUBIC), a loopback connection made
    /// and accepted through the stack runs CUBIC on both ends; elsewhere it keeps the default.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_loopback_connection_is_not_paced_on_either_end() {
        use rustix::net::sockopt::tcp_congestion;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), l.accept());
        let (dialed, (accepted, _)) = (dialed.unwrap(), accepted.unwrap());
        let default = tcp_congestion(&dialed).unwrap();
        let listed = |list: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/tcp_{list}_congestion_control"))
                .is_ok_and(|a| a.split_whitespace().any(|c| c == UNPACED))
        };
        // Root may pick any available one; others only what the host allows.
        let can_replace =
            listed("allowed") || (rustix::process::geteuid().is_root() && listed("available"));
        connected(&dialed, addr.ip());
        connected(&accepted, addr.ip());
        let want = if paces(&default) && can_replace {
            UNPACED.to_string()
        } else {
            default
        };
        assert_eq!(tcp_congestion(&dialed).unwrap(), want);
        assert_eq!(tcp_congestion(&accepted).unwrap(), want);
        assert!(dialed.nodelay().unwrap() && accepted.nodelay().unwrap());
    }
}
