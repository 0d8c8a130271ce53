//! `connect -z`: netcat's port check, over TCP and UDP.

use std::net::{TcpListener, UdpSocket};

use crate::util::*;

/// A port nobody listens on (bound, then let go).
fn closed_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn open_tcp_ports_are_listed_in_order_and_the_status_follows_netcat() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb, pc) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
        closed_tcp_port(),
    );
    let (status, out, err) = run(
        &["connect", "-z", &format!("127.0.0.1:{pc},{pb},{pa}")],
        b"",
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("tcp://127.0.0.1:{pb} open\ntcp://127.0.0.1:{pa} open\n")
    );
    // Closed ones only with -v, on stderr.
    let (_, _, err) = run(&["connect", "-z", "-v", &format!("127.0.0.1:{pc}")], b"");
    assert!(
        err.contains(&format!("tcp://127.0.0.1:{pc} closed")),
        "{err}"
    );
    // None open: exit 1, and no error line (netcat's rule).
    let (status, out, err) = run(&["connect", "-z", &format!("127.0.0.1:{pc}")], b"");
    assert_eq!(status.code(), Some(1));
    assert!(out.is_empty());
    assert!(!err.contains("sockit:"), "{err}");
}

#[test]
fn a_port_range_is_checked_concurrently() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let (lo, hi) = (port.saturating_sub(10).max(1), port.saturating_add(10));
    let (status, out, err) = run(
        &[
            "connect",
            "-z",
            "--max-conns",
            "20",
            &format!("127.0.0.1:{lo}-{hi}"),
        ],
        b"",
    );
    assert!(status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out).contains(&format!("tcp://127.0.0.1:{port} open\n")));
}

#[test]
fn udp_ports_are_open_or_filtered_unless_refused() {
    let open = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let (status, out, err) = run(
        &[
            "connect",
            "-z",
            "-w",
            "0.5",
            &format!("udp://127.0.0.1:{port},{closed}"),
        ],
        b"",
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("udp://127.0.0.1:{port} open|filtered\n")
    );
}

#[test]
fn bad_port_lists_are_refused_with_an_example() {
    for spec in ["127.0.0.1:25-20", "127.0.0.1:http", "tls://127.0.0.1:443"] {
        let (status, _, err) = run(&["connect", "-z", spec], b"");
        assert_eq!(status.code(), Some(1), "{spec}");
        assert!(
            err.contains("sockit: bad port check") || err.contains("-z checks"),
            "{spec}: {err}"
        );
        assert!(err.contains("hint:"), "{spec}: {err}");
    }
}

#[test]
#[ignore = "needs OpenBSD netcat (apt-get install netcat-openbsd); .ci/run installs it and runs ignored tests"]
fn the_open_ports_and_the_exit_status_agree_with_nc() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb, pc) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
        closed_tcp_port(),
    );
    let open_by_nc = |ports: &[u16]| {
        let mut open = Vec::new();
        let mut any = false;
        for p in ports {
            let st = std::process::Command::new("nc")
                .args(["-z", "-w", "1", "127.0.0.1", &p.to_string()])
                .status()
                .unwrap();
            if st.success() {
                open.push(format!("tcp://127.0.0.1:{p} open\n"));
                any = true;
            }
        }
        (any, open.concat())
    };
    let mut ports = [pa, pb, pc];
    ports.sort_unstable();
    let list = ports.map(|p| p.to_string()).join(",");
    let (st, out, err) = run(&["connect", "-z", &format!("127.0.0.1:{list}")], b"");
    let (nc_any, nc_open) = open_by_nc(&ports);
    assert!(nc_any);
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), nc_open);
    // None open: both exit 1.
    let (st, _, _) = run(&["connect", "-z", &format!("127.0.0.1:{pc}")], b"");
    let (nc_any, _) = open_by_nc(&[pc]);
    assert!(!nc_any);
    assert_eq!(st.code(), Some(1));
}
