//! Signals: one conversation (`connect`, `listen` without `-k`) ends at once, after what
//! arrived is written out; servers drain and say so; whoever is interrupted exits with
//! 128 + the signal's number, as ncat, socat and OpenBSD nc do.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::tcp;
use crate::util::*;

/// How long an interrupted conversation may take to end (the drain is 10 s).
const AT_ONCE: Duration = Duration::from_secs(3);

fn wait_within(p: &mut Proc, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    let status = p.wait_open();
    assert!(
        started.elapsed() < limit,
        "{}: took {:?} to end after the signal",
        p.desc,
        started.elapsed()
    );
    status.code()
}

#[test]
fn an_interrupted_connect_exits_with_128_plus_the_signal() {
    for (name, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let mut cmd = sockit();
        cmd.args(["connect", "--progress", &format!("127.0.0.1:{port}")]);
        // stdin piped and held open: the session is interrupted, not ended.
        let mut c = Proc::spawn(cmd, None);
        let (mut peer, _) = server.accept().unwrap();
        peer.write_all(b"arrived before the signal\n").unwrap();
        assert_eq!(c.line(), "arrived before the signal\n");
        c.signal(name);
        assert_eq!(wait_within(&mut c, AT_ONCE), Some(code), "SIG{name}");
        // --progress still says its totals.
        let err = c.drain_err().join("\n");
        assert!(err.contains("received"), "SIG{name}: {err}");
    }
}

#[test]
fn one_conversation_of_listen_ends_at_once_on_a_signal() {
    let mut l = Proc::spawn(
        {
            let mut c = sockit();
            c.args(["listen", "tcp://127.0.0.1:0"]);
            c
        },
        None,
    );
    let port = l.port();
    let mut client = tcp(port);
    client.write_all(b"from the client\n").unwrap();
    assert_eq!(l.line(), "from the client\n");
    // The client keeps the connection open: the drain would wait for it.
    l.terminate();
    assert_eq!(wait_within(&mut l, AT_ONCE), Some(143));
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
}

#[test]
fn a_datagram_server_with_programs_stops_at_once() {
    let mut cmd = sockit();
    cmd.args(["listen", "-k", "--exec", "cat", "udp://127.0.0.1:0"]);
    let mut l = Proc::spawn(cmd, Some(Stdio::null()));
    let port = l.port();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    sock.send_to(b"hi\n", ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    l.signal("INT");
    assert_eq!(wait_within(&mut l, AT_ONCE), Some(130));
}

#[test]
fn a_draining_server_says_so_at_once() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut client = tcp(port);
    client.write_all(b"here\n").unwrap();
    assert_eq!(srv.line(), "here\n");
    srv.terminate();
    srv.stderr_contains("letting open connections finish");
    drop(client);
    assert_eq!(srv.wait_open().code(), Some(143));
}

/// `connect --raw` on a real (pseudo) terminal: keys go to the peer as bytes (Ctrl-C and
/// Ctrl-Z included), Ctrl-] leaves, and the terminal's modes are restored whichever way it
/// ends: Ctrl-], SIGTERM, SIGHUP, the peer closing, the peer resetting (an error).
#[test]
fn raw_mode_sends_keys_as_bytes_and_restores_the_terminal_at_every_exit() {
    use std::io::Read;
    for (mode, sent, code) in [
        ("escape", &b"ab\x03\x1a\tc"[..], "exit 0"),
        ("term", &b"ab\x03"[..], "exit 143"),
        ("hup", &b"ab\x03"[..], "exit 129"),
        ("peer", &b"ab\x03"[..], "exit 0"),
        ("reset", &b"ab\x03"[..], "exit 1"),
    ] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let bin = env!("CARGO_BIN_EXE_sockit");
        let mut tty = python(
            "raw_tty.py",
            &[bin, &format!("127.0.0.1:{port}"), mode],
            Some(Stdio::null()),
        );
        let (mut peer, _) = server.accept().unwrap();
        peer.set_read_timeout(Some(DEADLINE)).unwrap();
        assert_eq!(tty.line(), "raw\n", "{mode}");
        let mut got = vec![0u8; sent.len()];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, sent, "{mode}: the keys as bytes");
        if mode == "reset" {
            socket2::SockRef::from(&peer)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
        }
        if mode == "peer" || mode == "reset" {
            drop(peer);
        }
        assert_eq!(tty.line(), "restored\n", "{mode}");
        assert_eq!(tty.line().trim_end(), code, "{mode}");
    }
    // Not a terminal: refused with a hint.
    let (st, _, err) = run(&["connect", "--raw", "127.0.0.1:9"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("--raw needs a terminal"), "{err}");
}
