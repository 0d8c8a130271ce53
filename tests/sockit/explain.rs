//! `--explain`: the tutorial's socket calls, in Python, in the order they happen.

use std::io::{Read, Write};
use std::net::{Shutdown, UdpSocket};

use crate::tcp;
use crate::util::*;

/// Checks that `lines` hold lines starting with each of `calls`, in that order, and
/// returns the lines they matched.
fn in_order(lines: &[String], calls: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    for call in calls {
        match lines[at..].iter().position(|l| l.starts_with(call)) {
            Some(i) => {
                found.push(lines[at + i].clone());
                at += i + 1;
            }
            None => panic!("no {call:?} after {found:?} in {lines:#?}"),
        }
    }
    found
}

#[test]
fn listen_explains_the_tutorials_server_calls() {
    let (mut srv, port) = server(&["listen", "--explain", "tcp://127.0.0.1:0"]);
    let mut c = tcp(port);
    let me = c.local_addr().unwrap();
    c.write_all(b"hello\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(srv.line(), "hello\n");
    srv.write(b"hi there\n");
    srv.close_stdin();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi there\n");
    assert!(srv.wait().success());
    let err = srv.drain_err();
    let all: Vec<String> = srv.err_seen.iter().chain(err.iter()).cloned().collect();
    let seen = in_order(
        &all,
        &[
            "sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
            "sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
            "sk.bind(('127.0.0.1', 0))",
            "sk.listen(",
            "listening on ",
            "conn, addr = sk.accept()",
            "data = conn.recv(65536)",
            "data = conn.recv(65536)",
            "conn.sendall(b'hi there\\n')",
            "conn.shutdown(socket.SHUT_WR)",
            "conn.close()",
        ],
    );
    assert!(
        seen[2].contains(&format!("bound to ('127.0.0.1', {port})")),
        "{}",
        seen[2]
    );
    assert!(
        seen[5].ends_with(&format!("# addr = ('127.0.0.1', {})", me.port())),
        "{}",
        seen[5]
    );
    assert!(seen[6].ends_with("# 6 bytes: b'hello\\n'"), "{}", seen[6]);
    assert!(
        seen[7].contains("b'': the peer shut down its side"),
        "{}",
        seen[7]
    );
}

#[test]
fn connect_explains_the_clients_calls_and_a_refusal() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    let ep = format!("127.0.0.1:{port}");
    let mut cmd = sockit();
    cmd.args(["connect", "--explain", &ep]);
    let mut cli = Proc::spawn(cmd, None);
    cli.write(b"ping\n");
    cli.close_stdin();
    assert_eq!(srv.line(), "ping\n");
    srv.close_stdin();
    assert!(cli.wait().success());
    let err = cli.drain_err();
    let lines: Vec<String> = cli.err_seen.iter().chain(err.iter()).cloned().collect();
    in_order(
        &lines,
        &[
            "sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)",
            &format!("sk.connect(('127.0.0.1', {port}))"),
            "sk.sendall(b'ping\\n')",
            "sk.shutdown(socket.SHUT_WR)",
            "data = sk.recv(65536)",
            "sk.close()",
        ],
    );
    drop(srv);
    // A refused connect is explained as Python would raise it.
    let free = free_port();
    let (st, _, err) = run(&["connect", "--explain", &format!("127.0.0.1:{free}")], b"");
    assert!(!st.success());
    assert!(
        err.lines().any(|l| l.starts_with("sk.connect(")
            && l.ends_with("# ConnectionRefusedError: [Errno 111] Connection refused")),
        "{err}"
    );
}

#[test]
fn udp_is_explained_with_recvfrom_and_sendto() {
    let (mut srv, port) = server(&["listen", "-k", "--explain", "udp://127.0.0.1:0"]);
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let me = c.local_addr().unwrap();
    c.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.line(), "ping\n");
    srv.write(b"pong\n");
    let mut buf = [0u8; 16];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
    srv.stderr_contains(&format!(
        "# 4 bytes from ('127.0.0.1', {}): b'ping'",
        me.port()
    ));
    let line = srv.stderr_line("sk.sendto(b'pong', ");
    assert!(
        line.contains(&format!("('127.0.0.1', {})", me.port())),
        "{line}"
    );
    let first = &srv.err_seen[0];
    assert_eq!(
        first,
        "sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
    );
}

#[test]
fn tls_handshakes_are_explained() {
    let (_srv, port) = server(&["serve", "echo=tls://127.0.0.1:0"]);
    let ep = format!("tls://127.0.0.1:{port}");
    let (st, out, err) = run(&["connect", "--explain", "--insecure", &ep], b"x\n");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"x\n");
    assert!(
        err.lines().any(
            |l| l.starts_with("sk = ctx.wrap_socket(sk, server_hostname='127.0.0.1')")
                && l.contains("TLS handshake done: TLSv1.3")
        ),
        "{err}"
    );
}

#[test]
fn nothing_is_explained_without_the_flag() {
    let (_srv, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (st, _, err) = run(&["connect", &format!("127.0.0.1:{port}")], b"x\n");
    assert!(st.success());
    assert!(!err.contains("socket."), "{err}");
}
