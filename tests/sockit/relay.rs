//! `sockit relay`: stream pairs with half-close, Unix to TCP, UDP per-client sockets, a dead
//! target, and kinds that cannot be joined.

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

#[test]
fn tcp_relay_carries_both_directions_with_half_close() {
    let dir = temp_dir("relay-bulk");
    let (down, up) = (random_bytes(8 << 20, 11), random_bytes(8 << 20, 12));
    let mut target = listener_sending(&dir, &down, &["listen", "tcp://127.0.0.1:0"]);
    let tport = target.port();
    let (_relay, rport) = server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{tport}"),
    ]);
    check_both_ways(
        &dir,
        &mut target,
        &[&format!("127.0.0.1:{rport}")],
        &up,
        &down,
    );
}

#[test]
fn unix_front_for_a_tcp_service() {
    let (_svc, sport) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let dir = temp_dir("relay-unix");
    let front = format!("unix:{}", dir.join("front.sock").display());
    let mut relay = sockit();
    relay.args(["relay", &front, &format!("tcp://127.0.0.1:{sport}")]);
    let mut relay = Proc::spawn(relay, Some(Stdio::null()));
    assert_eq!(relay.ready(), front);
    let (status, out, err) = run(&["connect", &front], b"through the relay\n");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"through the relay\n");
}

#[test]
fn udp_relay_keeps_clients_apart() {
    let (_svc, sport) = server(&["serve", "--udp-rate", "0", "echo=udp://127.0.0.1:0"]);
    let (_relay, rport) = server(&[
        "relay",
        "udp://127.0.0.1:0",
        &format!("udp://127.0.0.1:{sport}"),
    ]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (s, text) in [(&a, "from a"), (&b, "from b")] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.send_to(text.as_bytes(), ("127.0.0.1", rport)).unwrap();
    }
    let mut buf = [0u8; 64];
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from a");
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from b");
}

#[test]
fn a_dead_target_closes_the_client_and_the_relay_goes_on() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (mut relay, rport) = server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{dead}"),
    ]);
    for _ in 0..3 {
        let mut c = TcpStream::connect(("127.0.0.1", rport)).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    }
    relay.stderr_contains("connection refused");
    assert!(relay.running());
}

#[test]
fn streams_and_datagrams_cannot_be_joined() {
    let (status, _, err) = run(&["relay", "tcp://127.0.0.1:0", "udp://127.0.0.1:9"], b"");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("both sides must be streams"), "{err}");
}

#[test]
fn half_close_passes_through_the_relay() {
    for extra in [&[][..], &["--idle-timeout", "30"][..]] {
        // Both paths: splice between plain sockets, and the buffered pump.
        let mut backend = python("answer_after_eof.py", &[], Some(Stdio::null()));
        let bport = backend.line().trim().to_string();
        let mut args = vec!["relay", "tcp://127.0.0.1:0"];
        let target = format!("tcp://127.0.0.1:{bport}");
        args.extend_from_slice(extra);
        args.push(&target);
        let (_relay, rport) = server(&args);
        let (status, out, err) = run(&["connect", &format!("127.0.0.1:{rport}")], &[7u8; 100_000]);
        assert!(status.success(), "{err}");
        assert_eq!(out, b"got 100000 bytes", "{extra:?}");
    }
}

#[test]
fn tcp_to_unix_keeps_every_byte_both_ways() {
    let dir = temp_dir("relay-tcp-unix");
    let (down, up) = (random_bytes(4 << 20, 31), random_bytes(4 << 20, 32));
    let back = format!("unix:{}", dir.join("back.sock").display());
    let mut target = listener_sending(&dir, &down, &["listen", &back]);
    assert_eq!(target.ready(), back);
    let (_relay, rport) = server(&["relay", "tcp://127.0.0.1:0", &back]);
    check_both_ways(
        &dir,
        &mut target,
        &[&format!("127.0.0.1:{rport}")],
        &up,
        &down,
    );
}

/// A SIGTERM in the middle of a transfer stops new clients at once and lets the transfer
/// finish (the drain); a second signal cuts it.
#[test]
fn sigterm_drains_a_transfer_in_flight_and_a_second_one_cuts() {
    let dir = temp_dir("relay-drain");
    let data = random_bytes(24 << 20, 3);
    let path = dir.join("big");
    std::fs::write(&path, &data).unwrap();
    for cut in [false, true] {
        let mut sink = python("slow_sink.py", &[], None);
        let port: u16 = sink
            .line()
            .trim()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let (mut relay, rport) = server(&[
            "relay",
            "tcp://127.0.0.1:0",
            &format!("tcp://127.0.0.1:{port}"),
        ]);
        let mut cmd = sockit();
        cmd.args(["connect", &format!("127.0.0.1:{rport}")]);
        let mut client = Proc::spawn(cmd, Some(Stdio::from(std::fs::File::open(&path).unwrap())));
        // Once the relay carries the transfer (the sink is reading), stop it.
        let end = std::time::Instant::now() + DEADLINE;
        while open_fds(&relay) < 8 {
            assert!(
                std::time::Instant::now() < end,
                "the relay never took the client"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        relay.terminate();
        // No new client is accepted meanwhile.
        relay.stderr_contains("letting open connections finish");
        assert!(std::net::TcpStream::connect(("127.0.0.1", rport)).is_err());
        if cut {
            relay.terminate();
            assert!(relay.wait().success());
            let total: usize = sink.line().trim().parse().unwrap();
            assert!(total < data.len(), "a second signal must cut the transfer");
        } else {
            let total: usize = sink.line().trim().parse().unwrap();
            assert_eq!(total, data.len(), "the drain let the transfer finish");
            assert!(relay.wait().success());
        }
        let _ = client.wait();
    }
}
