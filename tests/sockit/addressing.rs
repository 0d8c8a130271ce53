//! Where sockets live: Unix paths and abstract names, IPv6, dual-stack wildcards, names with many addresses.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Stdio;
use std::time::Duration;

use super::tcp;
use crate::util::*;

#[test]
fn unix_stream_conversation_and_file_cleanup() {
    let dir = temp_dir("unix");
    let path = dir.join("s.sock");
    let ep = format!("unix:{}", path.display());
    let mut srv = sockit();
    srv.args(["listen", &ep]);
    let mut srv = Proc::spawn(srv, None);
    assert_eq!(srv.ready(), ep);
    srv.write(b"from server\n");
    srv.close_stdin();
    let (status, out, err) = run(&["connect", &ep], b"from client\n");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"from server\n");
    assert_eq!(srv.rest(), b"from client\n");
    assert!(srv.wait().success());
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn stale_unix_file_is_replaced_and_live_one_is_in_use() {
    let dir = temp_dir("stale");
    let path = dir.join("s.sock");
    drop(UnixListener::bind(&path).unwrap()); // leaves a stale file
    assert!(path.exists());
    let ep = format!("unix:{}", path.display());
    let (mut srv, _) = {
        let mut cmd = sockit();
        cmd.args(["listen", "-k", &ep]);
        let mut p = Proc::spawn(cmd, None);
        let r = p.ready();
        (p, r)
    };
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"hello\n").unwrap();
    assert_eq!(srv.line(), "hello\n");

    // A second server on the live socket is refused, and the file survives.
    let (status, _, err) = run(&["listen", &ep], b"");
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with(&format!(
            "sockit: cannot listen on {ep}: a server is already listening"
        )),
        "{err}"
    );
    assert!(err.contains("hint:"));
    assert!(path.exists());

    // SIGTERM removes the file.
    srv.terminate();
    assert_eq!(
        srv.wait().code(),
        Some(143),
        "interrupted: exit 128 + SIGTERM"
    );
    assert!(!path.exists(), "socket file left behind after SIGTERM");

    // A path that is not a socket is never replaced.
    std::fs::write(&path, b"data").unwrap();
    let (status, _, err) = run(&["listen", &ep], b"");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("exists and is not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"data");
}

#[test]
fn abstract_unix_and_unixgram() {
    let name = format!("unix:@sockit-test-{}", std::process::id());
    let mut srv = sockit();
    srv.args(["listen", &name]);
    let mut srv = Proc::spawn(srv, None);
    srv.ready();
    srv.close_stdin();
    let (status, _, err) = run(&["connect", &name], b"abstract\n");
    assert!(status.success(), "{err}");
    assert_eq!(srv.rest(), b"abstract\n");

    let dir = temp_dir("unixgram");
    let ep = format!("unixgram:{}", dir.join("d.sock").display());
    let mut srv = sockit();
    srv.args(["listen", "--idle-timeout", "1", &ep]);
    let mut srv = Proc::spawn(srv, None);
    srv.ready();
    srv.write(b"hi\n");
    srv.close_stdin();
    let (status, out, err) = run(&["connect", "--send", "hello", &ep], b"");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hi\n");
    assert_eq!(srv.line(), "hello\n");
    assert!(srv.wait().success());
    assert!(!dir.join("d.sock").exists());
}

fn ipv6_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_loopback_tcp_and_udp() {
    if !ipv6_available() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let mut srv = sockit();
    srv.args(["listen", "tcp://[::1]:0"]);
    let mut srv = Proc::spawn(srv, None);
    let ep = srv.ready();
    assert!(ep.starts_with("tcp://[::1]:"), "{ep}");
    srv.write(b"six\n");
    srv.close_stdin();
    let (status, out, err) = run(&["connect", &ep], b"");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"six\n");

    let mut srv = sockit();
    srv.args(["listen", "--idle-timeout", "1", "udp://[::1]:0"]);
    let mut srv = Proc::spawn(srv, None);
    let ep = srv.ready();
    srv.write(b"pong\n");
    srv.close_stdin();
    let (status, out, err) = run(&["connect", "--send", "ping", &ep], b"");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"pong\n");
    assert_eq!(srv.line(), "ping\n");
}

#[test]
fn empty_host_listens_on_ipv4_and_ipv6() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://:0"]);
    let mut c = tcp(port);
    c.write_all(b"v4\n").unwrap();
    assert_eq!(srv.line(), "v4\n");
    if ipv6_available() {
        let mut c6 = TcpStream::connect(("::1", port)).unwrap();
        c6.write_all(b"v6\n").unwrap();
        assert_eq!(srv.line(), "v6\n");
    }
}

#[test]
fn connect_tries_every_address_of_a_name() {
    // localhost may resolve to ::1 first; a server on 127.0.0.1 only must still be reached.
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    srv.close_stdin();
    let (status, _, err) = run(
        &["connect", &format!("tcp://localhost:{port}")],
        b"by name\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(srv.rest(), b"by name\n");
}

/// netcat's `-s ADDR`, `-p PORT`, `-4` and `-6`: the client's socket is bound where asked
/// and only addresses of the family asked for are tried.
#[test]
fn source_address_port_and_family_are_honoured() {
    let (mut srv, port) = server(&["listen", "-k", "--show-peer", "tcp://:0"]);
    let free = free_port();
    let (status, _, err) = run(
        &[
            "connect",
            "-s",
            "127.0.0.2",
            "-p",
            &free.to_string(),
            &format!("127.0.0.1:{port}"),
        ],
        b"from a chosen source\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        srv.line(),
        format!("[127.0.0.2:{free}] from a chosen source\n")
    );
    let (status, _, err) = run(&["connect", "-6", &format!("127.0.0.1:{port}")], b"");
    assert!(!status.success());
    assert!(err.contains("-6"), "{err}");
    let (status, _, err) = run(&["connect", "-4", &format!("localhost:{port}")], b"v4\n");
    assert!(status.success(), "{err}");
    assert!(srv.line().ends_with("] v4\n"));
    if ipv6_available() {
        let (status, _, err) = run(&["connect", "-6", &format!("tcp://[::1]:{port}")], b"v6\n");
        assert!(status.success(), "{err}");
        assert!(srv.line().starts_with("[[::1]:"));
    }
}

/// A zone id is part of the address: `[::1%lo]` reaches the loopback listener.
#[test]
fn ipv6_zone_ids_are_accepted() {
    if !ipv6_available() {
        return;
    }
    let (_srv, port) = server(&["serve", "echo=tcp://[::1]:0"]);
    let (status, out, err) = run(&["connect", &format!("tcp://[::1%lo]:{port}")], b"zone\n");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"zone\n");
}

/// `--binary` on datagrams: one read is one datagram as it is (newlines and NULs inside),
/// and datagrams come out raw; without it, a line over the UDP limit is named as such.
#[test]
fn binary_datagrams_are_sent_and_written_as_they_are() {
    let (_srv, port) = server(&["serve", "--udp-rate", "0", "echo=udp://127.0.0.1:0"]);
    let ep = format!("udp://127.0.0.1:{port}");
    let data = b"a\nb\x00c\xff";
    let (status, out, err) = run(&["connect", "--binary", "--idle-timeout", "0.5", &ep], data);
    assert!(status.success(), "{err}");
    assert_eq!(out, data);
    let big = vec![b'x'; 100_000];
    let (status, _, err) = run(&["connect", &ep], &big);
    assert!(!status.success());
    assert!(err.contains("65,507 bytes"), "{err}");
}

/// `sockit listen -k` as a member of `group` on the loopback interface, on a free port.
fn group_member(group: &str) -> (Proc, u16) {
    let mut cmd = sockit();
    cmd.args([
        "listen",
        "-k",
        "--iface",
        "127.0.0.1",
        &format!("udp://{group}:0"),
    ]);
    let mut srv = Proc::spawn(cmd, Some(Stdio::null()));
    let port = srv.port();
    (srv, port)
}

/// `listen udp://GROUP:PORT` joins the group (here on the loopback interface, so nothing
/// leaves this machine) and hears only the group's datagrams; `connect` sends to the group
/// through `--iface`.
#[test]
fn multicast_groups_are_joined_and_sent_to() {
    let group = format!("239.255.{}.{}", std::process::id() % 250, 7);
    let (mut srv, port) = group_member(&group);
    // Straight to the port, not to the group: not for this listener.
    let direct = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let _ = direct.send_to(b"direct\n", ("127.0.0.1", port));
    let to_group = format!("udp://{group}:{port}");
    let (status, _, err) = run(
        &[
            "connect",
            "--iface",
            "127.0.0.1",
            "--idle-timeout",
            "0.2",
            &to_group,
        ],
        b"to the group\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(srv.line(), "to the group\n");
}

/// Sending to a broadcast address takes `--broadcast` (SO_BROADCAST), and says so; the
/// loopback broadcast address keeps it on this machine.
#[test]
fn broadcast_needs_its_flag() {
    let (status, _, err) = run(&["connect", "udp://127.255.255.255:9"], b"x\n");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("--broadcast"), "{err}");
    let (status, _, err) = run(
        &[
            "connect",
            "--broadcast",
            "--idle-timeout",
            "0.2",
            "udp://127.255.255.255:9",
        ],
        b"x\n",
    );
    assert!(status.success(), "{err}");
}

/// socat as a real multicast peer both ways: its sender reaches sockit's group member, and
/// sockit's datagrams to the group reach socat's member (all on the loopback interface).
#[test]
#[ignore = "needs socat (apt-get install socat); .ci/run installs it and runs ignored tests"]
fn multicast_with_socat_as_sender_and_receiver() {
    let group = format!("239.254.{}.{}", std::process::id() % 250, 9);
    // socat sends, sockit receives.
    let (mut srv, port) = group_member(&group);
    let out = std::process::Command::new("socat")
        .args([
            "-u",
            "EXEC:echo from-socat",
            &format!("UDP4-DATAGRAM:{group}:{port},ip-multicast-if=127.0.0.1"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(srv.line(), "from-socat\n");
    // sockit sends, socat receives (a member of the group on lo, on a port found free).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut recv = std::process::Command::new("socat");
    recv.args([
        "-u",
        &format!("UDP4-RECV:{port},ip-add-membership={group}:127.0.0.1,reuseaddr"),
        "STDOUT",
    ]);
    let mut member = Proc::spawn(recv, Some(Stdio::null()));
    // socat prints nothing when it is ready: send until it hears one (bounded).
    let to_group = format!("udp://{group}:{port}");
    let end = std::time::Instant::now() + DEADLINE;
    let got = loop {
        let (st, _, err) = run(
            &[
                "connect",
                "--iface",
                "127.0.0.1",
                "--idle-timeout",
                "0",
                "--send",
                "from-sockit\n",
                &to_group,
            ],
            b"",
        );
        assert!(st.success(), "{err}");
        if let Some(line) = member.line_within(Duration::from_millis(200)) {
            break line;
        }
        assert!(
            std::time::Instant::now() < end,
            "socat never heard the group"
        );
    };
    assert_eq!(got, "from-sockit\n");
}
