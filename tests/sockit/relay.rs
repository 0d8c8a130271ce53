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
            assert_eq!(
                relay.wait().code(),
                Some(143),
                "interrupted: exit 128 + SIGTERM"
            );
            let total: usize = sink.line().trim().parse().unwrap();
            assert!(total < data.len(), "a second signal must cut the transfer");
        } else {
            let total: usize = sink.line().trim().parse().unwrap();
            assert_eq!(total, data.len(), "the drain let the transfer finish");
            assert_eq!(relay.wait().code(), Some(143), "exit 128 + SIGTERM");
        }
        let _ = client.wait();
    }
}

/// A relay direction copies small reads and splices bulk, switching back and forth: small
/// messages while the target does not read (what the target cannot take waits in the
/// relay's pipe), bulk in between, then small again. Every byte arrives, in order.
#[test]
fn small_and_bulk_writes_keep_their_order_through_a_stalled_target() {
    use std::io::Write;
    // A target with a small receive buffer that reads nothing until the client's writes
    // block: by then the relay's sends to it have been refused.
    let target = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    target.set_recv_buffer_size(4096).unwrap();
    target
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    target.listen(1).unwrap();
    let target = std::net::TcpListener::from(target);
    let tport = target.local_addr().unwrap().port();
    let (_relay, rport) = server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{tport}"),
    ]);
    // Messages of 1 to 700 bytes, and 3 MiB of bulk after the 10,000th.
    let size = |i: usize| 1 + (i * 37) % 700 + if i == 10_000 { 3 << 20 } else { 0 };
    let sent: Vec<u8> = random_bytes((0..20_000).map(size).sum(), 41);
    let (blocked, start) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = target.accept().unwrap();
        start.recv_timeout(Duration::from_secs(20)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        got
    });
    let mut client = TcpStream::connect(("127.0.0.1", rport)).unwrap();
    client.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut blocked = Some(blocked);
    let mut at = 0;
    for i in 0..20_000 {
        let mut msg = &sent[at..at + size(i)];
        at += msg.len();
        while !msg.is_empty() {
            match client.write(msg) {
                Ok(n) => msg = &msg[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Everything between us and the target is full: let it read.
                    let tx = blocked.take().expect("the relay took nothing for 20 s");
                    tx.send(()).unwrap();
                    client.set_nonblocking(false).unwrap();
                    client
                        .set_write_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                }
                Err(e) => panic!("writing to the relay: {e}"),
            }
        }
    }
    assert!(blocked.is_none(), "the target's side never filled up");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the bytes arrived out of order");
}
