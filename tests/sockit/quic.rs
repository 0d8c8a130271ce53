//! `quic://`: a stream kind of its own, against sockit and against aioquic, with the trust,
//! ALPN and SNI of `tls://`.

use std::process::Stdio;

use crate::util::*;

/// A sockit server on a quic:// endpoint (in ARGS); returns it, its fingerprint and port.
fn quic_server(args: &[&str], stdin: Option<Stdio>) -> (Proc, String, u16) {
    let mut cmd = sockit();
    cmd.args(args);
    let mut p = Proc::spawn(cmd, stdin);
    let line = p.stderr_contains("SHA-256 fingerprint ");
    let fp = line
        .split("SHA-256 fingerprint ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    let port = p.port();
    (p, fp, port)
}

fn cert(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/certs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn both_ways_byte_exact_with_a_half_close_in_between() {
    let dir = temp_dir("quic-both-ways");
    let down = random_bytes(2 << 20, 7);
    let up = random_bytes(2 << 20, 8);
    let mut server = listener_sending(&dir, &down, &["listen", "quic://127.0.0.1:0"]);
    let line = server.stderr_contains("SHA-256 fingerprint ");
    let fp = line
        .split("--pin ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let ep = server.ready();
    // Each side's input ends (its FIN) while the other's 2 MiB still flow.
    check_both_ways(&dir, &mut server, &["--pin", &fp, &ep], &up, &down);
}

#[test]
fn every_stream_command_takes_quic() {
    // serve's echo over QUIC, through relay from TCP, and bench's request/response.
    let (_echo, fp, port) = quic_server(&["serve", "echo=quic://127.0.0.1:0"], None);
    let quic = format!("quic://127.0.0.1:{port}");
    let (st, out, err) = run(&["connect", "--pin", &fp, &quic], b"over quic\n");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"over quic\n");
    let (_relay, rport) = server(&["relay", "tcp://127.0.0.1:0", &quic, "--pin", &fp]);
    let (st, out, err) = run(
        &["connect", &format!("tcp://127.0.0.1:{rport}")],
        b"tcp in, quic out\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"tcp in, quic out\n");
    let (st, out, err) = run(
        &[
            "bench", "--mode", "rr", "--conns", "4", "--count", "400", "--pin", &fp, &quic,
        ],
        b"",
    );
    assert!(st.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A QUIC listener in front of a TCP service: relay quic:// to tcp://.
    let (_tcp_echo, tport) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (_front, fp2, qport) = quic_server(
        &[
            "relay",
            "quic://127.0.0.1:0",
            &format!("tcp://127.0.0.1:{tport}"),
        ],
        None,
    );
    let (st, out, err) = run(
        &[
            "connect",
            "--pin",
            &fp2,
            &format!("quic://127.0.0.1:{qport}"),
        ],
        b"quic in, tcp out\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"quic in, tcp out\n");
}

#[test]
fn a_chat_member_over_quic_talks_with_one_over_tcp() {
    let mut cmd = sockit();
    cmd.args(["chat", "tcp://127.0.0.1:0", "quic://127.0.0.1:0"]);
    let mut room = Proc::spawn(cmd, None);
    let line = room.stderr_contains("SHA-256 fingerprint ");
    let fp = line
        .split("--pin ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let tcp_ep = room.ready();
    let quic_ep = room.ready();
    let tport: u16 = tcp_ep.rsplit(':').next().unwrap().parse().unwrap();
    let mut tcp_member = crate::tcp(tport);
    let first = crate::read_line(&mut tcp_member);
    assert!(first.starts_with("***"), "{first}");
    // The QUIC member joins with its first line (a stream reaches a server with its first
    // bytes), says one line and leaves.
    let (st, out, err) = run(
        &["connect", "--pin", &fp, &quic_ep],
        b"/nick quicker\nhello from quic\n",
    );
    assert!(st.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("***"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let l = crate::read_line(&mut tcp_member);
        if l == "<quicker> hello from quic\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < end && !l.is_empty(),
            "never saw the line: {l:?}"
        );
    }
}

#[test]
fn trust_sni_and_the_missing_server_are_said_in_words() {
    // A wrong pin, as for tls://.
    let (_s, _fp, port) = quic_server(&["serve", "echo=quic://127.0.0.1:0"], None);
    let ep = format!("quic://127.0.0.1:{port}");
    let wrong = "AB:".repeat(31) + "AB";
    let (st, _, err) = run(&["connect", "--pin", &wrong, &ep], b"x\n");
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("QUIC handshake with") && err.contains("pinned"),
        "{err}"
    );
    // Not pinned and self-signed: the hint to pin.
    let (st, _, err) = run(&["connect", &ep], b"x\n");
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("--pin"), "{err}");
    // A certificate for localhost, reached by address: --sni names it.
    let (_named, nport) = server(&[
        "serve",
        "echo=quic://127.0.0.1:0",
        "--cert",
        &cert("localhost.pem"),
        "--key",
        &cert("localhost.key"),
    ]);
    let nep = format!("quic://127.0.0.1:{nport}");
    let ca = cert("ca.pem");
    let (st, _, err) = run(&["connect", "--ca", &ca, &nep], b"x\n");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("another name"), "{err}");
    let (st, out, err) = run(
        &["connect", "--ca", &ca, "--sni", "localhost", &nep],
        b"named\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"named\n");
    // Nobody there: no answer within the handshake deadline, with the likely causes.
    let (st, _, err) = run(
        &[
            "connect",
            "--insecure",
            "--handshake-timeout",
            "1",
            &format!("quic://127.0.0.1:{}", free_port()),
        ],
        b"x\n",
    );
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("no QUIC answer from 127.0.0.1:") && err.contains("UDP may be blocked"),
        "{err}"
    );
    assert_eq!(err.matches("sockit:").count(), 1, "one line: {err}");
}

#[test]
fn sni_and_alpn_reach_a_tls_server() {
    // tls:// takes --sni and --alpn too: python's ssl server sees both.
    let ca = cert("ca.pem");
    let (_s, port) = server(&[
        "listen",
        "-k",
        "--exec",
        "cat",
        "tls://127.0.0.1:0",
        "--cert",
        &cert("localhost.pem"),
        "--key",
        &cert("localhost.key"),
        "--alpn",
        "echo/1",
    ]);
    let ep = format!("tls://127.0.0.1:{port}");
    let (st, out, err) = run(
        &[
            "connect",
            "--ca",
            &ca,
            "--sni",
            "localhost",
            "--alpn",
            "echo/1",
            &ep,
        ],
        b"tls with sni\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"tls with sni\n");
    let (st, _, err) = run(
        &[
            "connect",
            "--ca",
            &ca,
            "--sni",
            "localhost",
            "--alpn",
            "h2",
            &ep,
        ],
        b"x\n",
    );
    assert_eq!(
        st.code(),
        Some(1),
        "a protocol the server does not speak: {err}"
    );
}

#[test]
fn python_ssl_sees_the_sni_and_alpn_we_send() {
    let mut peer = python(
        "tls_peer.py",
        &[
            "names",
            &cert("localhost.pem"),
            &cert("localhost.key"),
            "echo/1",
            "h2",
        ],
        Some(Stdio::null()),
    );
    let port = peer.line().trim().to_string();
    let (st, out, err) = run(
        &[
            "connect",
            "--ca",
            &cert("ca.pem"),
            "--sni",
            "localhost",
            "--alpn",
            "h2",
            &format!("tls://127.0.0.1:{port}"),
        ],
        b"",
    );
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "sni=localhost alpn=h2\n");
}

#[test]
fn mutual_tls_over_quic_needs_the_client_certificate() {
    let (_s, fp, port) = quic_server(
        &[
            "serve",
            "echo=quic://127.0.0.1:0",
            "--client-ca",
            &cert("ca.pem"),
        ],
        None,
    );
    let ep = format!("quic://127.0.0.1:{port}");
    let (st, out, err) = run(
        &[
            "connect",
            "--pin",
            &fp,
            "--client-cert",
            &cert("client.pem"),
            "--client-key",
            &cert("client.key"),
            &ep,
        ],
        b"with a certificate\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"with a certificate\n");
    let (st, out, _) = run(&["connect", "--pin", &fp, &ep], b"without\n");
    assert!(!st.success() || out.is_empty(), "no certificate, no echo");
}

#[test]
#[ignore = "needs python's aioquic; .ci/run installs it"]
fn aioquic_as_server_and_as_client_byte_exact_with_a_custom_alpn() {
    let dir = temp_dir("aioquic");
    let data = random_bytes(2 << 20, 11);
    let file = dir.join("data");
    std::fs::write(&file, &data).unwrap();
    // aioquic's echo server: 2 MiB with the end of stream, back whole.
    let mut peer = python(
        "quic_peer.py",
        &[
            "server",
            &cert("localhost.pem"),
            &cert("localhost.key"),
            "echo/1",
        ],
        Some(Stdio::null()),
    );
    let port = peer.line().trim().to_string();
    let ep = format!("quic://127.0.0.1:{port}");
    let keylog = dir.join("keys");
    let mut cmd = sockit();
    cmd.args(["connect", "--insecure", "--alpn", "echo/1", &ep])
        .env("SSLKEYLOGFILE", &keylog)
        .stdin(std::fs::File::open(&file).unwrap());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256(&out.stdout), sha256(&data));
    let keys = std::fs::read_to_string(&keylog).unwrap();
    assert!(keys.contains("CLIENT_TRAFFIC_SECRET_0 "), "{keys}");
    // Our default ALPN is not the server's: said with the list we offered.
    let (st, _, err) = run(&["connect", "--insecure", &ep], b"x\n");
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("none of the application protocols offered (sockit)")
            && err.contains("--alpn"),
        "{err}"
    );
    // aioquic as the client of `listen -k --exec cat`.
    let (_s, _fp, sport) = quic_server(
        &[
            "listen",
            "-k",
            "--alpn",
            "echo/1",
            "--exec",
            "cat",
            "quic://127.0.0.1:0",
        ],
        None,
    );
    let mut client = python(
        "quic_peer.py",
        &[
            "client",
            &sport.to_string(),
            "echo/1",
            &file.display().to_string(),
        ],
        Some(Stdio::null()),
    );
    assert_eq!(
        client.line().trim(),
        format!("got {} {}", data.len(), sha256(&data))
    );
}

#[test]
#[ignore = "needs python's aioquic; .ci/run installs it"]
fn a_stream_the_peer_resets_is_reported_as_a_reset() {
    let mut peer = python(
        "quic_peer.py",
        &[
            "reset",
            &cert("localhost.pem"),
            &cert("localhost.key"),
            "sockit",
        ],
        Some(Stdio::null()),
    );
    let port = peer.line().trim().to_string();
    let (st, _, err) = run(
        &["connect", "--insecure", &format!("quic://127.0.0.1:{port}")],
        b"anyone?\n",
    );
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("reset"), "{err}");
    assert_eq!(err.matches("sockit:").count(), 1, "one line: {err}");
}
