//! The PROXY protocol: `--accept-proxy` behind haproxy (`send-proxy`, `send-proxy-v2`) and
//! curl (`--haproxy-protocol`), `relay --send-proxy` in front of haproxy's `accept-proxy`,
//! and sockit on both ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A listener that answers each client with the address it was told is the client's.
pub(crate) fn whois_server(extra: &[&str]) -> (Proc, u16) {
    let mut args = vec![
        "listen",
        "-k",
        "--accept-proxy",
        "--sh-exec",
        "echo \"you are $TCPREMOTEIP:$TCPREMOTEPORT\"",
        "tcp://127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    server(&args)
}

/// Sends `bytes` (a header made by hand, a line) on a new connection to `port` and returns
/// the whole answer.
fn send(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(bytes).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
}

/// Connects to `port`, says a line, and returns our own port and the whole answer.
fn ask(port: u16) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let me = s.local_addr().unwrap().port();
    s.write_all(b"hello\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    (me, answer)
}

/// A client through `relay --send-proxy` (v1, then v2) to `port`, where a whois server
/// answers at the end of the chain: it must name the client's own port.
fn through_relay_the_client_is_named(port: u16) {
    for v in ["v1", "v2"] {
        let (_relay, rport) = server(&[
            "relay",
            "--send-proxy",
            v,
            "tcp://127.0.0.1:0",
            &format!("tcp://127.0.0.1:{port}"),
        ]);
        let (me, answer) = ask(rport);
        assert_eq!(answer, format!("you are 127.0.0.1:{me}\n"), "{v}");
    }
}

#[test]
fn relay_send_proxy_to_accept_proxy_carries_the_client_both_versions() {
    let (_whois, wport) = whois_server(&[]);
    through_relay_the_client_is_named(wport);
}

#[test]
fn a_connection_without_a_header_or_from_elsewhere_is_closed() {
    let (mut whois, port) = whois_server(&[]);
    let (_, answer) = ask(port);
    assert_eq!(answer, "", "no header: closed, nothing run");
    whois.stderr_contains("does not start with a PROXY protocol header");
    // Headers only from --proxy-from: loopback is not in 10.0.0.0/8.
    let (mut strict, sport) = whois_server(&["--proxy-from", "10.0.0.0/8"]);
    let answer = send(sport, b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n");
    assert_eq!(answer, "");
    strict.stderr_contains("taken only from --proxy-from");
    // --allow/--deny judge the client the header names.
    let (_denying, dport) = whois_server(&["--deny", "192.0.2.0/24"]);
    let answer = send(dport, b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\nhi\n");
    assert_eq!(answer, "", "a denied client behind the proxy");
    let answer = send(dport, b"PROXY TCP4 198.51.100.9 127.0.0.1 4321 80\r\nhi\n");
    assert_eq!(answer, "you are 198.51.100.9:4321\n");
}

#[test]
fn the_header_may_arrive_in_pieces_and_the_bytes_after_it_are_the_streams() {
    let (mut l, port) = server(&[
        "listen",
        "-k",
        "--accept-proxy",
        "--show-peer",
        "tcp://127.0.0.1:0",
    ]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    for piece in [
        &b"PROXY TCP6 2001:db8::"[..],
        b"7 ::1 5",
        b"5555 80\r",
        b"\nfirst line\n",
    ] {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    drop(s);
    assert_eq!(l.line(), "[[2001:db8::7]:55555] first line\n");
}

#[test]
fn accept_proxy_is_refused_where_no_header_can_come() {
    for ep in ["udp://127.0.0.1:0", "quic://127.0.0.1:0"] {
        let (st, _, err) = run(&["listen", "--accept-proxy", ep], b"");
        assert_eq!(st.code(), Some(1), "{ep}");
        assert!(
            err.contains("--accept-proxy does not go with"),
            "{ep}: {err}"
        );
    }
    let (st, _, err) = run(
        &[
            "relay",
            "--send-proxy",
            "v3",
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1:9",
        ],
        b"",
    );
    assert!(!st.success());
    assert!(err.contains("give v1 or v2"), "{err}");
    let (st, _, err) = run(
        &[
            "relay",
            "--send-proxy",
            "v1",
            "tcp://127.0.0.1:0",
            "udp://127.0.0.1:9",
        ],
        b"",
    );
    assert!(!st.success());
    assert!(
        err.contains("does not go with") || err.contains("cannot relay"),
        "{err}"
    );
}

pub(crate) fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Starts haproxy with `config` (its own process, foreground, quiet) and waits until it
/// listens on `port`.
pub(crate) fn haproxy(dir: &std::path::Path, name: &str, config: &str, port: u16) -> Proc {
    let file = dir.join(format!("{name}.cfg"));
    std::fs::write(&file, config).unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.args(["-db", "-q", "-f"]).arg(&file);
    let p = Proc::spawn(cmd, Some(Stdio::null()));
    let end = std::time::Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < end,
            "haproxy never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

pub(crate) const HAPROXY_DEFAULTS: &str = "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n";

#[test]
#[ignore = "needs haproxy; .ci/run installs it"]
fn haproxy_send_proxy_v1_and_v2_reach_accept_proxy() {
    assert!(have("haproxy"));
    let dir = temp_dir("haproxy-send");
    let (_whois, wport) = whois_server(&[]);
    for (v, option) in [("v1", "send-proxy"), ("v2", "send-proxy-v2")] {
        let front = free_port();
        let config = format!(
            "{HAPROXY_DEFAULTS}frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\nbackend b\n  server s 127.0.0.1:{wport} {option}\n"
        );
        let _h = haproxy(&dir, v, &config, front);
        let (me, answer) = ask(front);
        assert_eq!(
            answer,
            format!("you are 127.0.0.1:{me}\n"),
            "haproxy {option}"
        );
    }
}

#[test]
#[ignore = "needs haproxy; .ci/run installs it"]
fn relay_send_proxy_reaches_haproxy_accept_proxy() {
    // client -> sockit relay --send-proxy v2 -> haproxy (accept-proxy, then send-proxy) ->
    // sockit --accept-proxy: the client's own port comes out at the end, so haproxy read
    // what the relay sent.
    assert!(have("haproxy"));
    let dir = temp_dir("haproxy-accept");
    let (_whois, wport) = whois_server(&[]);
    let front = free_port();
    let config = format!(
        "{HAPROXY_DEFAULTS}frontend f\n  bind 127.0.0.1:{front} accept-proxy\n  default_backend b\nbackend b\n  server s 127.0.0.1:{wport} send-proxy\n"
    );
    let _h = haproxy(&dir, "accept", &config, front);
    through_relay_the_client_is_named(front);
}

#[test]
#[ignore = "needs curl; .ci/run installs it"]
fn curl_haproxy_protocol_reaches_accept_proxy() {
    let (mut l, port) = server(&[
        "listen",
        "-k",
        "--accept-proxy",
        "--show-peer",
        "tcp://127.0.0.1:0",
    ]);
    let mut curl = Command::new("curl");
    curl.args(["-s", "-m", "10", "--haproxy-protocol"])
        .arg(format!("http://127.0.0.1:{port}/hello"));
    let _curl = Proc::spawn(curl, Some(Stdio::null()));
    let line = l.line();
    assert!(
        line.starts_with("[127.0.0.1:") && line.contains("] GET /hello HTTP/1.1"),
        "{line}"
    );
}
