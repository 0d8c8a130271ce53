//! `tls://`: self-signed servers trusted by fingerprint, a test CA, every verification
//! failure named, python3's ssl as the independent peer on both sides, chat and relay over TLS.

use std::fs::File;
use std::path::PathBuf;
use std::process::Stdio;

use crate::util::*;

fn cert(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/certs")
        .join(name)
        .display()
        .to_string()
}

/// Starts a sockit TLS server (ARGS include the tls:// endpoint); returns it, the
/// fingerprint it printed and its port.
fn tls_server(args: &[&str], stdin: Option<Stdio>) -> (Proc, String, u16) {
    let mut cmd = sockit();
    cmd.args(args);
    let mut p = Proc::spawn(cmd, stdin);
    let fp = fingerprint_of(&mut p);
    let port = p.port();
    (p, fp, port)
}

/// The fingerprint a TLS server printed before its readiness line.
fn fingerprint_of(p: &mut Proc) -> String {
    let line = p.stderr_contains("SHA-256 fingerprint ");
    let after = line.split("SHA-256 fingerprint ").nth(1).unwrap();
    after.split(' ').next().unwrap().to_string()
}

#[test]
fn a_self_signed_server_is_trusted_by_its_fingerprint() {
    let (mut srv, fp, port) = tls_server(&["listen", "tls://127.0.0.1:0"], None);
    srv.write(b"from the server\n");
    srv.close_stdin();
    assert_eq!(fp.len(), 95, "{fp}");
    let (status, out, err) = run(
        &["connect", "--pin", &fp, &format!("tls://127.0.0.1:{port}")],
        b"from the client\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"from the server\n");
    assert_eq!(srv.rest(), b"from the client\n");
    assert!(srv.wait().success());
}

#[test]
fn verification_failures_name_their_cause() {
    // Self-signed, no trust given: the system's roots do not know it.
    let (_srv, fp, port) = tls_server(&["listen", "tls://127.0.0.1:0"], Some(Stdio::null()));
    let ep = format!("tls://127.0.0.1:{port}");
    let (status, _, err) = run(&["connect", &ep], b"");
    assert!(!status.success());
    assert!(err.contains("self-signed or from an unknown CA"), "{err}");
    assert!(err.contains("--pin"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("sockit: ")).count(),
        1,
        "{err}"
    );
    // A pin for another certificate.
    let other = fp.replace(&fp[..2], if &fp[..2] == "00" { "11" } else { "00" });
    let (status, _, err) = run(&["connect", "--pin", &other, &ep], b"");
    assert!(!status.success());
    assert!(err.contains("not the pinned one"), "{err}");

    // A certificate from the test CA for "localhost", reached as 127.0.0.1: wrong name.
    refused_with("localhost", "tls://127.0.0.1", "for another name");
    refused_with("expired", "tls://localhost", "expired");
}

/// A server with the test certificate NAME (`tests/certs`), a client trusting the test CA
/// that reaches it as `AT:PORT`: the handshake fails and stderr says `why`.
fn refused_with(name: &str, at: &str, why: &str) {
    let (cert_file, key_file) = (cert(&format!("{name}.pem")), cert(&format!("{name}.key")));
    let (_srv, _, port) = tls_server(
        &[
            "listen",
            "--cert",
            &cert_file,
            "--key",
            &key_file,
            "tls://127.0.0.1:0",
        ],
        Some(Stdio::null()),
    );
    let (status, _, err) = run(
        &["connect", "--ca", &cert("ca.pem"), &format!("{at}:{port}")],
        b"",
    );
    assert!(!status.success());
    assert!(err.contains(why), "{name}: {err}");
}

#[test]
fn insecure_connects_and_says_so() {
    let (mut srv, _, port) = tls_server(&["listen", "tls://127.0.0.1:0"], None);
    srv.close_stdin();
    let (status, _, err) = run(
        &["connect", "--insecure", &format!("tls://127.0.0.1:{port}")],
        b"unverified\n",
    );
    assert!(status.success(), "{err}");
    assert!(
        err.contains("--insecure: the server's certificate is not verified"),
        "{err}"
    );
    assert_eq!(srv.rest(), b"unverified\n");
}

#[test]
fn pythons_ssl_client_verifies_a_sockit_server_with_the_test_ca() {
    let (mut srv, _, port) = tls_server(
        &[
            "listen",
            "--cert",
            &cert("localhost.pem"),
            "--key",
            &cert("localhost.key"),
            "tls://127.0.0.1:0",
        ],
        None,
    );
    srv.write("bonjour, 世界\n".as_bytes());
    srv.close_stdin();
    let mut py = python(
        "tls_peer.py",
        &["client", &port.to_string(), "localhost", &cert("ca.pem")],
        Some(Stdio::null()),
    );
    assert!(py.line().starts_with("version TLSv1."));
    assert_eq!(py.line(), "bonjour, 世界\n");
    assert!(py.wait().success());
    assert_eq!(srv.rest(), "hello over tls, 你好\n".as_bytes());
}

/// python3's ssl server with the test certificate (requiring a client certificate from the
/// test CA when `client_ca`), and `sockit connect --ca` with `extra` arguments sending "ping":
/// what sockit printed.
fn ping_python_server(client_ca: bool, extra: &[&str]) -> Vec<u8> {
    let (ca, cert_file, key_file) = (cert("ca.pem"), cert("localhost.pem"), cert("localhost.key"));
    let mut args = vec!["server", cert_file.as_str(), key_file.as_str()];
    if client_ca {
        args.push(&ca);
    }
    let mut py = python("tls_peer.py", &args, Some(Stdio::null()));
    let ep = format!("tls://localhost:{}", py.line().trim());
    let mut args = vec!["connect", "--ca", ca.as_str()];
    args.extend_from_slice(extra);
    args.push(&ep);
    let (status, out, err) = run(&args, b"ping\n");
    assert!(status.success(), "{err}");
    out
}

#[test]
fn sockit_verifies_pythons_ssl_server_with_the_test_ca() {
    assert_eq!(ping_python_server(false, &[]), b"python got: ping\n");
}

#[test]
fn chat_over_tls_shares_the_room_with_tcp() {
    let mut cmd = sockit();
    cmd.args(["chat", "tls://127.0.0.1:0", "tcp://127.0.0.1:0"]);
    let mut room = Proc::spawn(cmd, Some(Stdio::null()));
    room.stderr_contains("SHA-256 fingerprint ");
    let tls_port = room
        .stderr_line("chat listening on tls://")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let tcp_port: u16 = room
        .stderr_line("chat listening on tcp://")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut tcp = std::io::BufReader::new(tcp);
    let mut line = String::new();
    use std::io::BufRead;
    tcp.read_line(&mut line).unwrap();
    assert!(line.starts_with("*** welcome"), "{line}");
    let mut py = python(
        "tls_peer.py",
        &["client", &tls_port, "localhost", "insecure"],
        Some(Stdio::null()),
    );
    assert!(py.line().starts_with("version TLSv1."));
    assert!(py.line().starts_with("*** welcome, you are guest2"));
    let mut next = || {
        let mut l = String::new();
        tcp.read_line(&mut l).unwrap();
        l
    };
    assert_eq!(next(), "*** guest2 joined\n");
    assert_eq!(next(), "<guest2> hello over tls, 你好\n");
    tcp.get_mut().write_all(b"hi tls\n").unwrap();
    assert_eq!(py.line(), "<guest1> hi tls\n");
    use std::io::Write;
}

#[test]
fn relay_terminates_and_originates_tls_with_half_close() {
    // tls -> tcp: the backend answers only after EOF, so the half-close crossed TLS.
    let mut backend = python("answer_after_eof.py", &[], Some(Stdio::null()));
    let bport = backend.line().trim().to_string();
    let (_relay, fp, rport) = tls_server(
        &[
            "relay",
            "tls://127.0.0.1:0",
            &format!("tcp://127.0.0.1:{bport}"),
        ],
        Some(Stdio::null()),
    );
    let dir = temp_dir("tls-relay");
    let up = random_bytes(4 << 20, 21);
    std::fs::write(dir.join("up"), &up).unwrap();
    let mut cli = sockit();
    cli.args(["connect", "--pin", &fp, &format!("tls://127.0.0.1:{rport}")]);
    let mut cli = Proc::spawn(cli, Some(Stdio::from(File::open(dir.join("up")).unwrap())));
    assert_eq!(cli.rest(), format!("got {} bytes", up.len()).as_bytes());
    assert!(cli.wait().success());

    // tcp -> tls: a plain client, a TLS server behind the relay, 4 MiB each way intact.
    let down = random_bytes(4 << 20, 22);
    let mut target = listener_sending(&dir, &down, &["listen", "tls://127.0.0.1:0"]);
    let tfp = fingerprint_of(&mut target);
    let tport = target.port();
    let (_relay2, r2) = server(&[
        "relay",
        "--pin",
        &tfp,
        "tcp://127.0.0.1:0",
        &format!("tls://127.0.0.1:{tport}"),
    ]);
    check_both_ways(&dir, &mut target, &[&format!("127.0.0.1:{r2}")], &up, &down);
}

#[test]
fn listen_keep_open_serves_many_tls_clients() {
    let (mut srv, fp, port) = tls_server(&["listen", "-k", "tls://127.0.0.1:0"], None);
    let ep = format!("tls://127.0.0.1:{port}");
    let client = || {
        let mut c = sockit();
        c.args(["-v", "connect", "--pin", &fp, &ep]);
        Proc::spawn(c, None)
    };
    let (mut a, mut b) = (client(), client());
    a.write(b"from a\n");
    assert_eq!(srv.line(), "from a\n");
    b.write("from b, 你好\n".as_bytes());
    assert_eq!(srv.line(), "from b, 你好\n");
    srv.write(b"to everyone\n");
    assert_eq!(a.line(), "to everyone\n");
    assert_eq!(b.line(), "to everyone\n");
    a.close_stdin();
    assert!(a.wait().success());
    b.close_stdin();
    assert!(b.wait().success());
    assert!(srv.running(), "listen -k goes on after its clients leave");
    // The server ended each conversation with its close_notify, not a bare TCP close.
    for c in [&mut a, &mut b] {
        let err = c.drain_err();
        assert!(err.iter().any(|l| l.contains("end=\"eof\"")), "{err:?}");
        assert!(
            !err.iter().any(|l| l.contains("without close_notify")),
            "{err:?}"
        );
    }
}

/// The port in a readiness line such as `echo listening on tls://127.0.0.1:40123`.
fn port_in(line: &str) -> u16 {
    line.trim().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn serve_runs_its_services_over_tls_beside_plain_ones() {
    let mut cmd = sockit();
    cmd.args([
        "serve",
        "--cert",
        &cert("localhost.pem"),
        "--key",
        &cert("localhost.key"),
        "echo=tls://127.0.0.1:0",
        "daytime=tls://127.0.0.1:0",
        "time=tcp://127.0.0.1:0",
    ]);
    let mut srv = Proc::spawn(cmd, Some(Stdio::null()));
    fingerprint_of(&mut srv);
    let echo = port_in(&srv.stderr_contains("echo listening on tls://"));
    let daytime = port_in(&srv.stderr_contains("daytime listening on tls://"));
    let time = port_in(&srv.stderr_contains("time listening on tcp://"));

    // Echo: 1 MiB through TLS and back, the client verifying with the test CA.
    let data = random_bytes(1 << 20, 7);
    let ca = cert("ca.pem");
    let echo_ep = format!("tls://localhost:{echo}");
    let (status, out, err) = run(&["connect", "--ca", &ca, &echo_ep], &data);
    assert!(status.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data), "{} bytes came back", out.len());

    // Daytime to python3's ssl: the date, then the server closes.
    let mut py = python(
        "tls_peer.py",
        &["client", &daytime.to_string(), "localhost", &ca, "nosend"],
        Some(Stdio::null()),
    );
    assert!(py.line().starts_with("version TLSv1."));
    let date = py.line();
    assert!(date.contains(&chrono_year()), "{date}");
    assert!(py.wait().success());

    // A plaintext client on the TLS port is dropped with a warning; the service goes on.
    let (_, _, _) = run(
        &["connect", "-w", "5", &format!("tcp://127.0.0.1:{echo}")],
        b"plain text\n",
    );
    srv.stderr_contains("TLS handshake failed");
    let (status, out, err) = run(&["connect", "--ca", &ca, &echo_ep], b"still here\n");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"still here\n");

    // The plain service in the same process is untouched by TLS.
    let mut t = std::net::TcpStream::connect(("127.0.0.1", time)).unwrap();
    t.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut secs = Vec::new();
    std::io::Read::read_to_end(&mut t, &mut secs).unwrap();
    assert_eq!(secs.len(), 4);
}

/// `sockit [FIRST...] listen` on tls://127.0.0.1:0 with the test certificate, admitting only
/// clients with a certificate from the test CA; returns it and its port.
fn mutual_tls_listener(first: &[&str]) -> (Proc, u16) {
    let (cert_file, key_file, ca) = (cert("localhost.pem"), cert("localhost.key"), cert("ca.pem"));
    let mut args = first.to_vec();
    args.extend_from_slice(&[
        "listen",
        "--cert",
        &cert_file,
        "--key",
        &key_file,
        "--client-ca",
        &ca,
        "tls://127.0.0.1:0",
    ]);
    let (srv, _fp, port) = tls_server(&args, None);
    (srv, port)
}

#[test]
fn mutual_tls_admits_only_clients_the_ca_issued() {
    let ca = cert("ca.pem");
    let (mut srv, port) = mutual_tls_listener(&["-v"]);
    let ep = format!("tls://localhost:{port}");
    // No certificate, then a self-signed one: refused, each with its reason, and the
    // listener waits for the next client.
    let (status, _, err) = run(&["connect", "--ca", &ca, &ep], b"no certificate\n");
    assert!(!status.success());
    assert!(
        err.contains("the server requires a client certificate"),
        "{err}"
    );
    assert!(err.contains("--client-cert"), "{err}");
    srv.stderr_contains("the client presented no certificate");
    let (status, _, err) = run(
        &[
            "connect",
            "--ca",
            &ca,
            "--client-cert",
            &cert("stranger.pem"),
            "--client-key",
            &cert("stranger.key"),
            &ep,
        ],
        b"a stranger\n",
    );
    assert!(!status.success());
    assert!(err.contains("the peer refused our certificate"), "{err}");
    srv.stderr_contains("self-signed or from an unknown CA");

    // python3's ssl presenting the CA's client certificate is admitted, and logged.
    srv.write(b"welcome, client\n");
    srv.close_stdin();
    let mut py = python(
        "tls_peer.py",
        &[
            "client",
            &port.to_string(),
            "localhost",
            &ca,
            &format!("cert={}", cert("client.pem")),
            &format!("key={}", cert("client.key")),
        ],
        Some(Stdio::null()),
    );
    assert!(py.line().starts_with("version TLSv1."));
    assert_eq!(py.line(), "welcome, client\n");
    assert!(py.wait().success());
    srv.stderr_contains("TLS client certificate accepted");
    assert_eq!(srv.rest(), "hello over tls, 你好\n".as_bytes());
}

#[test]
fn sockit_presents_a_client_certificate_to_pythons_ssl_server() {
    let (cert_file, key_file) = (cert("client.pem"), cert("client.key"));
    let out = ping_python_server(
        true,
        &["--client-cert", &cert_file, "--client-key", &key_file],
    );
    assert_eq!(out, b"python got: ping from sockit test client\n");
}

#[test]
fn relay_presents_a_client_certificate_to_a_mutual_tls_server() {
    let ca = cert("ca.pem");
    let (mut srv, port) = mutual_tls_listener(&[]);
    srv.write(b"hello, relayed client\n");
    srv.close_stdin();
    let (client_cert, client_key) = (cert("client.pem"), cert("client.key"));
    let (_relay, rport) = server(&[
        "relay",
        "--ca",
        &ca,
        "--client-cert",
        &client_cert,
        "--client-key",
        &client_key,
        "tcp://127.0.0.1:0",
        &format!("tls://localhost:{port}"),
    ]);
    let (status, out, err) = run(
        &["connect", &format!("tcp://127.0.0.1:{rport}")],
        b"plain in, mutual TLS out\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hello, relayed client\n");
    assert_eq!(srv.rest(), b"plain in, mutual TLS out\n");
}

/// `openssl req -x509 ... -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`
/// makes a certificate with CA:TRUE (committed as `openssl-selfsigned.*`). Kept in the
/// `--ca` file it is trusted, as curl and `openssl s_client -CAfile` trust it, by connect,
/// relay and bench; its name is still checked.
#[test]
fn a_self_signed_ca_certificate_in_the_ca_file_is_trusted() {
    let (pem, key) = (
        cert("openssl-selfsigned.pem"),
        cert("openssl-selfsigned.key"),
    );
    let (_srv, fp, port) = tls_server(
        &["serve", "--cert", &pem, "--key", &key, "echo=tls://:0"],
        None,
    );
    for at in ["127.0.0.1", "localhost"] {
        let ep = format!("tls://{at}:{port}");
        let (status, out, err) = run(&["connect", "--ca", &pem, &ep], b"trusted\n");
        assert!(status.success(), "{ep}: {err}");
        assert_eq!(out, b"trusted\n");
        assert!(!err.contains("Other("), "{err}");
    }
    let ep = format!("tls://127.0.0.1:{port}");
    let (status, out, err) = run(
        &[
            "bench", "-q", "--json", "--mode", "rr", "--count", "50", "--ca", &pem, &ep,
        ],
        b"",
    );
    assert!(status.success(), "{err} {}", String::from_utf8_lossy(&out));
    let (relay, relay_port) = server(&["relay", "--ca", &pem, "tcp://127.0.0.1:0", &ep]);
    let (status, out, err) = run(
        &["connect", &format!("127.0.0.1:{relay_port}")],
        b"relayed\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"relayed\n");
    drop(relay);
    // Another address of this machine is not in the certificate: refused, in words.
    let (status, _, err) = run(
        &["connect", "--ca", &pem, &format!("tls://127.0.0.2:{port}")],
        b"",
    );
    assert!(!status.success());
    assert!(err.contains("for another name"), "{err}");
    // Without the file, the refusal names the fingerprint to pin.
    let (status, _, err) = run(&["connect", &ep], b"");
    assert!(!status.success());
    assert!(err.contains(&format!("--pin {fp}")), "{err}");
    assert!(
        err.contains(&format!("connect to tls://127.0.0.1:{port}"))
            || err.contains(&format!("with tls://127.0.0.1:{port}")),
        "{err}"
    );
}

/// A server that never answers the handshake: the client gives up after
/// `--handshake-timeout` and the hint names that option, not `-w` (which bounds only the
/// TCP connect).
#[test]
fn a_stalled_handshake_names_its_own_timeout() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (status, _, err) = run(
        &[
            "connect",
            "--handshake-timeout",
            "0.5",
            &format!("tls://127.0.0.1:{port}"),
        ],
        b"",
    );
    drop(l);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("TLS handshake with tls://127.0.0.1:{port} failed")),
        "{err}"
    );
    assert!(err.contains("--handshake-timeout"), "{err}");
    assert!(!err.contains("-w/--connect-timeout"), "{err}");
}

/// SSLKEYLOGFILE: client and server each write the session's secrets in the NSS key log
/// format (what Wireshark takes to decrypt a capture of the real wire).
#[test]
fn sslkeylogfile_is_honoured_by_client_and_server() {
    let dir = temp_dir("keylog");
    let (server_log, client_log) = (dir.join("server.keys"), dir.join("client.keys"));
    let mut cmd = sockit();
    cmd.env("SSLKEYLOGFILE", &server_log)
        .args(["listen", "tls://127.0.0.1:0"]);
    let mut srv = Proc::spawn(cmd, Some(Stdio::null()));
    let fp = fingerprint_of(&mut srv);
    let port = srv.port();
    let mut cmd = sockit();
    cmd.env("SSLKEYLOGFILE", &client_log).args([
        "connect",
        "--pin",
        &fp,
        &format!("tls://127.0.0.1:{port}"),
    ]);
    let mut c = Proc::spawn(cmd, None);
    c.write(b"secret\n");
    c.close_stdin();
    assert!(c.wait().success());
    let _ = srv.wait_open();
    for log in [&server_log, &client_log] {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            text.lines()
                .any(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")),
            "{}: {text}",
            log.display()
        );
    }
}
