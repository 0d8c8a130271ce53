//! `--pcap FILE`: the session as a capture that tshark reads back byte for byte, with the
//! handshake, the FINs, IPv6, UDP and a relay's two legs; a killed process's file still
//! reads. Here without tshark: the file's own structure; with tshark in the ignored tests
//! that `.ci/run` runs.

use std::process::{Command, Stdio};

use crate::util::*;

/// The records of a pcap file (raw IP link type): each packet's bytes.
fn records(file: &std::path::Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(file).unwrap();
    assert!(data.len() >= 24, "no global header");
    assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        101,
        "raw IP"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        if at + 16 + len > data.len() {
            break;
        }
        out.push(data[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

/// TCP flags of an IPv4 packet.
fn tcp_flags(p: &[u8]) -> u8 {
    assert_eq!(p[0] >> 4, 4);
    assert_eq!(p[9], 6, "not TCP");
    p[20 + 13]
}

#[test]
fn a_capture_starts_with_the_handshake_and_ends_with_both_fins() {
    let dir = temp_dir("pcap-structure");
    let file = dir.join("s.pcap");
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (st, out, err) = run(
        &[
            "connect",
            "--pcap",
            file.to_str().unwrap(),
            &format!("127.0.0.1:{port}"),
        ],
        b"hello\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"hello\n");
    let recs = records(&file);
    let flags: Vec<u8> = recs.iter().map(|p| tcp_flags(p)).collect();
    // SYN, SYN-ACK, ACK; then data both ways; a FIN from each side.
    assert_eq!(&flags[..3], &[0x02, 0x12, 0x10], "{flags:?}");
    assert_eq!(
        flags.iter().filter(|f| *f & 0x01 != 0).count(),
        2,
        "{flags:?}"
    );
    let payloads: usize = recs
        .iter()
        .map(|p| usize::from(u16::from_be_bytes([p[2], p[3]])) - 40)
        .sum();
    assert_eq!(payloads, 12, "hello\\n each way");
}

#[test]
fn an_unwritable_capture_is_one_error_at_start() {
    let (st, _, err) = run(
        &[
            "connect",
            "--pcap",
            "/nonexistent/dir/s.pcap",
            "127.0.0.1:9",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(
        err.starts_with("sockit: cannot write the capture to /nonexistent/dir/s.pcap:"),
        "{err}"
    );
}

/// `sockit listen -k --pcap FILE ENDPOINT` with FILE in a fresh folder: the server, its
/// port, the folder (removed when dropped) and the file.
fn capturing_server(name: &str, endpoint: &str) -> (Proc, u16, TempDir, std::path::PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("capture.pcap");
    let mut cmd = sockit();
    cmd.args(["listen", "-k", "--pcap", file.to_str().unwrap(), endpoint]);
    let mut srv = Proc::spawn(cmd, None);
    let port = srv.port();
    (srv, port, dir, file)
}

fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `tshark -q -z follow,PROTO,raw,N`: the bytes each way of stream N (node 0's, node 1's).
fn follow(file: &std::path::Path, proto: &str, stream: usize) -> (Vec<u8>, Vec<u8>) {
    let out = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-q", "-z"])
        .arg(format!("follow,{proto},raw,{stream}"))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut body = false;
    for line in text.lines() {
        if line.starts_with("Node 1:") {
            body = true;
            continue;
        }
        if !body || line.starts_with("====") {
            continue;
        }
        let (to, hex) = match line.strip_prefix('\t') {
            Some(h) => (&mut b, h),
            None => (&mut a, line),
        };
        to.extend(
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()),
        );
    }
    (a, b)
}

/// How many packets match a display filter (with tshark checking every checksum).
fn count(file: &std::path::Path, filter: &str) -> usize {
    let out = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-Y", filter])
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(["-o", "udp.check_checksum:TRUE"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
#[ignore = "needs tshark (apt-get install tshark); run by .ci/run"]
fn tshark_reads_both_directions_byte_for_byte() {
    assert!(have_tshark(), "apt-get install tshark");
    let dir = temp_dir("pcap-tshark");
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    // A short exchange and 3 MiB, over IPv4 and IPv6.
    for (host, size) in [("127.0.0.1", 6), ("127.0.0.1", 3 << 20), ("[::1]", 4096)] {
        let (_e6, p6) = server(&["serve", "echo=tcp://[::1]:0"]);
        let port = if host.starts_with('[') { p6 } else { port };
        let file = dir.join(format!("s-{size}.pcap"));
        let data = random_bytes(size, size as u64);
        let (st, out, err) = run(
            &[
                "connect",
                "--pcap",
                file.to_str().unwrap(),
                &format!("tcp://{host}:{port}"),
            ],
            &data,
        );
        assert!(st.success(), "{err}");
        assert_eq!(out.len(), data.len());
        let (up, down) = follow(&file, "tcp", 0);
        assert_eq!(
            sha256(&up),
            sha256(&data),
            "{host} {size}: client to server"
        );
        assert_eq!(
            sha256(&down),
            sha256(&data),
            "{host} {size}: server to client"
        );
        assert_eq!(count(&file, "tcp.flags.syn == 1"), 2, "SYN and SYN-ACK");
        assert_eq!(count(&file, "tcp.flags.fin == 1"), 2, "a FIN each way");
        let problems = "tcp.analysis.lost_segment || tcp.analysis.retransmission || tcp.analysis.out_of_order || tcp.analysis.ack_lost_segment";
        assert_eq!(count(&file, problems), 0, "tshark found a sequence problem");
        assert_eq!(
            count(
                &file,
                "tcp.checksum.status == \"Bad\" || ip.checksum.status == \"Bad\""
            ),
            0,
            "a bad checksum"
        );
        let packets = count(&file, "tcp");
        assert_eq!(
            count(&file, "tcp.checksum.status == \"Good\""),
            packets,
            "every TCP checksum verified"
        );
        if host.starts_with('[') {
            assert!(count(&file, "ipv6") > 0);
        }
    }
    // UDP: ports and payloads.
    let (_udp, uport) = server(&["serve", "echo=udp://127.0.0.1:0"]);
    let file = dir.join("u.pcap");
    let (st, out, err) = run(
        &[
            "connect",
            "--pcap",
            file.to_str().unwrap(),
            &format!("udp://127.0.0.1:{uport}"),
        ],
        b"one\ntwo\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"one\ntwo\n");
    assert_eq!(count(&file, &format!("udp.dstport == {uport}")), 2);
    assert_eq!(count(&file, &format!("udp.srcport == {uport}")), 2);
    assert_eq!(
        count(&file, "udp.checksum.status == \"Good\""),
        4,
        "every UDP checksum verified"
    );
    let (up, down) = follow(&file, "udp", 0);
    assert_eq!(
        (up.as_slice(), down.as_slice()),
        (&b"onetwo"[..], &b"onetwo"[..])
    );
}

#[test]
#[ignore = "needs tshark (apt-get install tshark); run by .ci/run"]
fn a_relays_two_legs_and_a_killed_process_read_back() {
    assert!(have_tshark(), "apt-get install tshark");
    let dir = temp_dir("pcap-relay");
    let file = dir.join("r.pcap");
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (mut relay, rport) = server(&[
        "relay",
        "--pcap",
        file.to_str().unwrap(),
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{port}"),
    ]);
    let (st, out, _) = run(&["connect", &format!("127.0.0.1:{rport}")], b"through\n");
    assert!(st.success());
    assert_eq!(out, b"through\n");
    // Killed, not stopped: the file reads up to its last record.
    let _ = relay.child.kill();
    let _ = relay.child.wait();
    for leg in 0..2 {
        let (up, down) = follow(&file, "tcp", leg);
        assert_eq!(
            (up.as_slice(), down.as_slice()),
            (&b"through\n"[..], &b"through\n"[..]),
            "leg {leg}"
        );
    }
    assert!(
        count(&file, &format!("tcp.dstport == {rport}")) > 0,
        "the client's leg"
    );
    assert!(
        count(&file, &format!("tcp.dstport == {port}")) > 0,
        "the target's leg"
    );
}

#[test]
#[ignore = "needs tshark (apt-get install tshark); run by .ci/run"]
fn listen_keep_open_puts_every_client_in_one_file() {
    use std::io::{Read, Write};
    assert!(have_tshark(), "apt-get install tshark");
    let (mut srv, port, _dir, file) = capturing_server("pcap-listen", "tcp://127.0.0.1:0");
    for who in ["first", "second"] {
        let mut c = crate::tcp(port);
        c.write_all(format!("{who}\n").as_bytes()).unwrap();
        assert_eq!(srv.line(), format!("{who}\n"));
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
    srv.terminate();
    let _ = srv.wait_open();
    for (stream, who) in [(0, "first\n"), (1, "second\n")] {
        let (from_client, _) = follow(&file, "tcp", stream);
        assert_eq!(from_client, who.as_bytes(), "client {stream}");
    }
    assert_eq!(count(&file, "tcp.flags.syn == 1 && tcp.flags.ack == 0"), 2);
}

/// `listen -k` over UDP: every peer's datagrams, and the answer to the one that wrote
/// last, as UDP packets between the real ports.
#[test]
fn a_udp_server_captures_every_peer() {
    let (mut srv, port, _dir, file) = capturing_server("pcap-udp-listen", "udp://127.0.0.1:0");
    let (a, b) = (
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    b.set_read_timeout(Some(DEADLINE)).unwrap();
    a.send_to(b"from a", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.line(), "from a\n");
    b.send_to(b"from b", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.line(), "from b\n");
    srv.write(b"to b\n");
    let mut buf = [0u8; 16];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to b");
    srv.terminate();
    let _ = srv.wait_open();
    let packets: Vec<(u16, u16, Vec<u8>)> = records(&file)
        .iter()
        .map(|p| {
            assert_eq!(p[9], 17, "UDP");
            let port = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
            (port(20), port(22), p[28..].to_vec())
        })
        .collect();
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    assert_eq!(
        packets,
        [
            (pa, port, b"from a".to_vec()),
            (pb, port, b"from b".to_vec()),
            (port, pb, b"to b".to_vec()),
        ]
    );
}
