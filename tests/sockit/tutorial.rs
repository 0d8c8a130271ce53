//! The tutorial's own programs against sockit, in both directions.

use std::net::UdpSocket;
use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

#[test]
fn tutorial_tcp_server_answers_sockit_connect() {
    let mut py = python("tcp_server.py", &[], Some(Stdio::null()));
    let port = py.line().trim().to_string();
    let (status, out, err) = run(
        &[
            "connect",
            "--send",
            "hello!",
            &format!("tcp://127.0.0.1:{port}"),
        ],
        b"",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hi");
    assert_eq!(py.line(), "b'hello!'\n");
}

#[test]
fn tutorial_tcp_client_talks_to_sockit_listen() {
    let mut srv = sockit();
    srv.args(["listen", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(srv, None);
    let port = srv.port();
    srv.write(b"hi");
    srv.close_stdin();
    let mut py = python("tcp_client.py", &[&port.to_string()], Some(Stdio::null()));
    assert_eq!(py.line(), "b'hi'\n");
    assert!(py.wait().success());
    assert_eq!(srv.rest(), b"hello!");
    assert!(srv.wait().success());
}

#[test]
fn tutorial_chat_client_with_sockit_as_server() {
    let mut srv = sockit();
    srv.args(["listen", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(srv, None);
    let port = srv.port();
    let mut py = python("chat_client.py", &[&port.to_string()], None);
    py.write("你好\n".as_bytes());
    // The tutorial sends without a newline; one recv is one message.
    assert_eq!(srv.bytes("你好".len()), "你好".as_bytes());
    srv.write("在的\n".as_bytes());
    assert!(py.line().contains("在的"));
    py.write(b"bye\n");
    assert!(py.wait().success());
    assert_eq!(srv.bytes(3), b"bye");
    // Not a terminal: the session lasts until our stdin ends too.
    assert!(srv.running());
    srv.close_stdin();
    assert_eq!(srv.rest(), b"");
    assert!(srv.wait().success());
}

#[test]
fn tutorial_chat_server_with_sockit_as_client() {
    let mut py = python("chat_server.py", &[], None);
    let port = py.line().trim().to_string();
    let mut cli = sockit();
    cli.args(["connect", &format!("127.0.0.1:{port}")]);
    let mut cli = Proc::spawn(cli, None);
    cli.write(b"hello");
    assert!(py.line().ends_with("hello\n"));
    py.write(b"hi there\n");
    assert_eq!(cli.bytes("hi there".len()), b"hi there");
    cli.write(b"bye");
    assert!(py.line().ends_with("bye\n"));
    assert!(py.wait().success());
    assert!(cli.wait().success(), "{:?}", cli.drain_err());
}

#[test]
fn tutorial_udp_server_answers_sockit_connect() {
    let mut py = python("udp_server.py", &[], Some(Stdio::null()));
    let port = py.line().trim().to_string();
    let (status, out, err) = run(
        &[
            "connect",
            "--idle-timeout",
            "0.5",
            &format!("udp://127.0.0.1:{port}"),
        ],
        b"hello\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hi\n");
    assert_eq!(py.line(), "b'hello'\n");
}

#[test]
fn tutorial_udp_client_talks_to_sockit_listen() {
    let mut srv = sockit();
    srv.args(["listen", "--idle-timeout", "1", "udp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(srv, None);
    let port = srv.port();
    // stdin ends before the first datagram arrives: it is kept for that peer.
    srv.write(b"hi\n");
    srv.close_stdin();
    let mut py = python("udp_client.py", &[&port.to_string()], Some(Stdio::null()));
    let line = py.line();
    assert!(line.starts_with("hi ('127.0.0.1', "), "{line}");
    assert_eq!(srv.line(), "hello\n");
    assert!(srv.wait().success());
}

#[test]
fn tutorial_qq_server_replies_to_sockit() {
    let mut py = python("qq_server.py", &[], None);
    let port = py.line().trim().to_string();
    let mut cli = sockit();
    cli.args(["connect", &format!("udp://127.0.0.1:{port}")]);
    let mut cli = Proc::spawn(cli, None);
    cli.write("你好，QQ\n".as_bytes());
    let shown = py.line();
    assert!(shown.contains("的一条消息:你好，QQ"), "{shown}");
    py.write("收到\n".as_bytes());
    assert_eq!(cli.line(), "收到\n");
    cli.close_stdin();
    assert!(cli.wait().success());
}

#[test]
fn sockit_as_qq_server_replies_to_whoever_wrote() {
    let (mut srv, port) = server(&["listen", "-k", "--show-peer", "udp://127.0.0.1:0"]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    a.send_to("我是A".as_bytes(), ("127.0.0.1", port)).unwrap();
    let a_addr = a.local_addr().unwrap();
    assert_eq!(srv.line(), format!("[{a_addr}] 我是A\n"));
    srv.write(b"reply to A\n");
    let mut buf = [0u8; 100];
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"reply to A");
    b.send_to(b"I am B", ("127.0.0.1", port)).unwrap();
    assert_eq!(
        srv.line(),
        format!("[{}] I am B\n", b.local_addr().unwrap())
    );
    srv.write(b"reply to B\n");
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"reply to B");
    // A got nothing more: the reply went to whoever wrote last.
    a.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(a.recv(&mut buf).is_err());
}
