//! Under faults: 1-byte chunks with delays, resets mid-transfer, stalled handshakes. A
//! transfer stays byte-exact, a reset is one line, a stalled client costs nobody else.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::fault::{Fault, FaultProxy};
use crate::util::*;

const ONE_BYTE: Fault = Fault::OneByte {
    pause_every: 4096,
    pause: Duration::from_millis(1),
};

#[test]
fn connect_is_byte_exact_through_one_byte_chunks() {
    let (_srv, echo) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let proxy = FaultProxy::start(echo, ONE_BYTE);
    let data = random_bytes(200_000, 21);
    let (st, out, err) = run(&["connect", &format!("127.0.0.1:{}", proxy.port)], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
}

#[test]
fn relay_is_byte_exact_through_one_byte_chunks_on_both_sides() {
    let (_srv, echo) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let behind = FaultProxy::start(echo, ONE_BYTE);
    let (_relay, rport) = server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{}", behind.port),
    ]);
    let front = FaultProxy::start(rport, ONE_BYTE);
    let data = random_bytes(150_000, 22);
    let (st, out, err) = run(&["connect", &format!("127.0.0.1:{}", front.port)], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
}

#[test]
fn tls_survives_one_byte_chunks() {
    let (_srv, echo) = server(&["serve", "echo=tls://127.0.0.1:0"]);
    let proxy = FaultProxy::start(echo, ONE_BYTE);
    let data = random_bytes(100_000, 23);
    let (st, out, err) = run(
        &[
            "connect",
            "--insecure",
            &format!("tls://127.0.0.1:{}", proxy.port),
        ],
        &data,
    );
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
}

#[test]
fn websocket_and_wss_survive_one_byte_chunks() {
    // The upgrade's head, every frame header and payload, split byte by byte, both ways;
    // lines mode (text messages) and the binary tunnel.
    let (_srv, ws) = server(&["serve", "echo=ws://127.0.0.1:0/e"]);
    let proxy = FaultProxy::start(ws, ONE_BYTE);
    let lines: Vec<u8> = (0..2000)
        .flat_map(|i| format!("line {i} of the test\n").into_bytes())
        .collect();
    let url = format!("ws://127.0.0.1:{}/e", proxy.port);
    let (st, out, err) = run(&["connect", &url], &lines);
    assert!(st.success(), "{err}");
    assert_eq!(out, lines);
    let data = random_bytes(100_000, 25);
    let (st, out, err) = run(&["connect", "--binary", &url], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
    let (_srv, wss) = server(&["serve", "echo=wss://127.0.0.1:0/e"]);
    let proxy = FaultProxy::start(wss, ONE_BYTE);
    let url = format!("wss://127.0.0.1:{}/e", proxy.port);
    let (st, out, err) = run(&["connect", "--insecure", "--binary", &url], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
}

#[test]
fn a_reset_mid_transfer_is_one_line() {
    let (_srv, sink) = server(&["serve", "discard=tcp://127.0.0.1:0"]);
    let proxy = FaultProxy::start(sink, Fault::ResetAfter(300_000));
    let data = random_bytes(8 << 20, 24);
    let (st, _, err) = run(&["connect", &format!("127.0.0.1:{}", proxy.port)], &data);
    assert_eq!(st.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("hint:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("sockit: connection with 127.0.0.1:"),
        "{err}"
    );
    assert!(
        lines[0].contains("reset") || lines[0].contains("broken pipe"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("Os {"), "{err}");
}

#[test]
fn a_stalled_upstream_ends_at_the_idle_timeout() {
    let (_srv, echo) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let proxy = FaultProxy::start(echo, Fault::StallAfter(10));
    let started = Instant::now();
    let (st, _, err) = run(
        &[
            "connect",
            "--idle-timeout",
            "0.5",
            &format!("127.0.0.1:{}", proxy.port),
        ],
        b"0123456789abcdef\n",
    );
    assert!(st.success(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Hundreds of clients that connect and say nothing (a stalled TLS handshake, a stalled
/// SOCKS negotiation) do not delay a real client, and each is closed at the deadline.
#[test]
fn stalled_handshakes_do_not_delay_a_real_client() {
    let (_srv, ports) = {
        let mut cmd = sockit();
        cmd.args([
            "serve",
            "--handshake-timeout",
            "2",
            "echo=tls://127.0.0.1:0",
            "socks5=tcp://127.0.0.1:0",
            "echo=tcp://127.0.0.1:0",
        ]);
        let mut p = Proc::spawn(cmd, None);
        let ports: Vec<u16> = (0..3).map(|_| p.port()).collect();
        (p, ports)
    };
    let stalled: Vec<std::net::TcpStream> = (0..300)
        .flat_map(|i| {
            let port = if i % 2 == 0 { ports[0] } else { ports[1] };
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .collect();
    assert!(stalled.len() >= 290);
    let started = Instant::now();
    let (st, out, err) = run(
        &[
            "connect",
            "--insecure",
            &format!("tls://127.0.0.1:{}", ports[0]),
        ],
        b"real\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"real\n");
    let (st, out, err) = run(
        &[
            "connect",
            "--proxy",
            &format!("socks5://127.0.0.1:{}", ports[1]),
            &format!("127.0.0.1:{}", ports[2]),
        ],
        b"real\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"real\n");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Each stalled one is closed at the deadline.
    let mut s = stalled.into_iter().next().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8];
    let _ = s.write_all(b"");
    assert!(matches!(
        std::io::Read::read(&mut s, &mut buf),
        Ok(0) | Err(_)
    ));
}
