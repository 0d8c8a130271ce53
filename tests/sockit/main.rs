//! Integration tests: the built binary, driven as a user would, against itself, the
//! tutorial's own Python programs and plain std sockets, on loopback with port 0.

#![allow(clippy::unwrap_used)] // reason: a failed unwrap is a failed test, with its message

#[path = "../util/mod.rs"]
mod util;

mod bench;
mod chat;
mod relay;
mod serve;
mod tls;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Stdio;
use std::time::Duration;

use util::*;

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(_) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(line).unwrap()
}

/// Reads until EOF; true when the server closed (EOF or reset) rather than sent data.
fn closed_without_data(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

// ---------- the tutorial's programs, both directions ----------

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

// ---------- bulk transfers with half-close ----------

fn bulk(listen_in: &[u8], connect_in: &[u8]) {
    let dir = temp_dir(&format!("bulk-{}-{}", listen_in.len(), connect_in.len()));
    let (lin, cin) = (dir.join("lin"), dir.join("cin"));
    std::fs::write(&lin, listen_in).unwrap();
    std::fs::write(&cin, connect_in).unwrap();
    let mut srv = sockit();
    srv.args(["listen", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(srv, Some(Stdio::from(File::open(&lin).unwrap())));
    let port = srv.port();
    let mut cli = sockit();
    cli.args(["connect", &format!("127.0.0.1:{port}")]);
    let mut cli = Proc::spawn(cli, Some(Stdio::from(File::open(&cin).unwrap())));
    let got_by_client = cli.rest();
    let got_by_server = srv.rest();
    assert!(cli.wait().success(), "{:?}", cli.drain_err());
    assert!(srv.wait().success(), "{:?}", srv.drain_err());
    assert_eq!(got_by_client.len(), listen_in.len());
    assert_eq!(sha256(&got_by_client), sha256(listen_in));
    assert_eq!(got_by_server.len(), connect_in.len());
    assert_eq!(sha256(&got_by_server), sha256(connect_in));
    let _ = std::fs::remove_dir_all(dir);
}

const MIB32: usize = 32 << 20;

#[test]
fn bulk_32mib_each_way_is_byte_exact() {
    bulk(&random_bytes(MIB32, 1), &random_bytes(MIB32, 2));
}

#[test]
fn early_half_close_of_the_listener_does_not_cut_the_upload() {
    bulk(b"", &random_bytes(MIB32, 3));
}

#[test]
fn early_half_close_of_the_client_does_not_cut_the_download() {
    bulk(&random_bytes(MIB32, 4), b"");
}

#[test]
fn closed_stdout_ends_quietly() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    let writer = std::thread::spawn({
        let mut stdin = srv.stdin.take().unwrap();
        move || {
            let flood = vec![b'x'; 1 << 20];
            for _ in 0..256 {
                if stdin.write_all(&flood).is_err() {
                    return;
                }
            }
        }
    });
    let mut cli = sockit()
        .args(["connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = cli.stdout.take().unwrap();
    let mut head = [0u8; 4096];
    out.read_exact(&mut head).unwrap();
    drop(out); // the reader goes away, as `| head` does
    let mut err = String::new();
    cli.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = cli.wait().unwrap();
    assert!(status.success(), "{status:?} {err}");
    assert!(err.is_empty(), "{err}");
    drop(srv);
    let _ = writer.join();
}

// ---------- listen -k ----------

#[test]
fn keep_open_serves_concurrent_clients_and_stdin_goes_to_all() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut clients: Vec<TcpStream> = (0..5).map(|_| tcp(port)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("client {i}\n").as_bytes()).unwrap();
    }
    let mut lines: Vec<String> = (0..5).map(|_| srv.line()).collect();
    lines.sort();
    let want: Vec<String> = (0..5).map(|i| format!("client {i}\n")).collect();
    assert_eq!(lines, want);
    srv.write(b"to everybody\n");
    for c in &mut clients {
        assert_eq!(read_line(c), "to everybody\n");
    }
    // The end of stdin closes nobody and stops nothing.
    srv.close_stdin();
    clients[0].write_all(b"still here\n").unwrap();
    assert_eq!(srv.line(), "still here\n");
    let mut late = tcp(port);
    late.write_all(b"late\n").unwrap();
    assert_eq!(srv.line(), "late\n");
    assert!(srv.running());
}

#[test]
fn keep_open_runs_with_stdin_from_dev_null() {
    let mut cmd = sockit();
    cmd.args(["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(cmd, Some(Stdio::null()));
    let port = srv.port();
    for i in 0..3 {
        let mut c = tcp(port);
        c.write_all(format!("n{i}\n").as_bytes()).unwrap();
        assert_eq!(srv.line(), format!("n{i}\n"));
    }
    assert!(srv.running());
}

#[test]
fn long_lines_from_many_clients_never_interleave() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let handles: Vec<_> = (0..4u8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = tcp(port);
                let line: Vec<u8> = std::iter::repeat_n(b'a' + i, 10_000)
                    .chain([b'\n'])
                    .collect();
                for chunk in line.chunks(1000) {
                    c.write_all(chunk).unwrap();
                    c.flush().unwrap();
                }
                c.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                let _ = c.read_to_end(&mut rest);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    for _ in 0..4 {
        let line = srv.line();
        let first = line.as_bytes()[0];
        assert_eq!(line.len(), 10_001);
        assert!(line.trim_end().bytes().all(|b| b == first), "mixed line");
    }
}

#[test]
fn show_peer_prefixes_each_line() {
    let (mut srv, port) = server(&["listen", "-k", "--show-peer", "tcp://127.0.0.1:0"]);
    let mut c = tcp(port);
    let me = c.local_addr().unwrap();
    c.write_all(b"one\ntwo\n").unwrap();
    assert_eq!(srv.line(), format!("[{me}] one\n"));
    assert_eq!(srv.line(), format!("[{me}] two\n"));
}

#[test]
fn broker_passes_each_client_to_the_others() {
    let (mut srv, port) = server(&["listen", "-v", "--broker", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    let mut c = tcp(port);
    for _ in 0..3 {
        srv.stderr_contains("connection accepted");
    }
    // Make sure all three are registered: each speaks once and the others hear it.
    a.write_all(b"from a\n").unwrap();
    assert_eq!(read_line(&mut b), "from a\n");
    assert_eq!(read_line(&mut c), "from a\n");
    b.write_all(b"from b\n").unwrap();
    assert_eq!(read_line(&mut a), "from b\n");
    assert_eq!(read_line(&mut c), "from b\n");
    c.write_all(b"from c\n").unwrap();
    assert_eq!(read_line(&mut a), "from c\n");
    // b's next line is c's, never its own.
    assert_eq!(read_line(&mut b), "from c\n");
}

#[test]
fn deny_and_allow_rules_close_refused_peers() {
    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "--deny",
        "127.0.0.1/32",
        "tcp://127.0.0.1:0",
    ]);
    let mut c = tcp(port);
    assert!(closed_without_data(&mut c));
    srv.stderr_contains("not allowed by --allow/--deny");

    let (_srv, port) = server(&["listen", "-k", "--allow", "10.0.0.0/8", "tcp://127.0.0.1:0"]);
    let mut c = tcp(port);
    assert!(closed_without_data(&mut c));

    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "--allow",
        "127.0.0.0/8",
        "--deny",
        "10.0.0.0/8",
        "tcp://127.0.0.1:0",
    ]);
    let mut c = tcp(port);
    c.write_all(b"welcome\n").unwrap();
    assert_eq!(srv.line(), "welcome\n");
}

#[test]
fn max_conns_closes_the_excess_and_serves_the_rest() {
    let (mut srv, port) = server(&["listen", "-k", "--max-conns", "2", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    a.write_all(b"a\n").unwrap();
    b.write_all(b"b\n").unwrap();
    let mut got = [srv.line(), srv.line()];
    got.sort();
    assert_eq!(got, ["a\n".to_string(), "b\n".to_string()]);
    let mut c = tcp(port);
    assert!(closed_without_data(&mut c));
    srv.stderr_contains("connection limit reached (--max-conns)");
    // When one leaves, a new client gets its place.
    drop(a);
    let mut d = tcp(port);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        d.write_all(b"d\n").unwrap();
        let mut buf = [0u8; 1];
        d.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match d.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            _ => {
                assert!(std::time::Instant::now() < deadline, "slot never freed");
                d = tcp(port);
            }
        }
    }
    assert_eq!(srv.line(), "d\n");
}

#[test]
fn resets_from_twenty_clients_do_not_stop_the_server() {
    let (mut srv, port) = server(&["listen", "-k", "-v", "tcp://127.0.0.1:0"]);
    for i in 0..20 {
        let c = tcp(port);
        let mut w = &c;
        w.write_all(format!("r{i}\n").as_bytes()).unwrap();
        assert_eq!(srv.line(), format!("r{i}\n"));
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c); // RST
    }
    let mut ok = tcp(port);
    ok.write_all(b"after the resets\n").unwrap();
    assert_eq!(srv.line(), "after the resets\n");
    assert!(srv.running());
}

// ---------- restart, Unix sockets, IPv6 ----------

#[test]
fn restarts_at_once_on_the_same_port() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    let mut c = tcp(port);
    c.write_all(b"x").unwrap();
    srv.close_stdin();
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(srv.wait().success());
    // The server closed first, so its side holds TIME_WAIT; SO_REUSEADDR lets it rebind.
    let (mut again, port2) = server(&["listen", &format!("tcp://127.0.0.1:{port}")]);
    assert_eq!(port, port2);
    drop(tcp(port));
    again.close_stdin();
}

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
    assert!(srv.wait().success());
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

#[test]
fn crlf_turns_lf_into_crlf() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    srv.close_stdin();
    let (status, _, _) = run(
        &["connect", "--crlf", &format!("127.0.0.1:{port}")],
        b"a\nb\r\n",
    );
    assert!(status.success());
    assert_eq!(srv.rest(), b"a\r\nb\r\n");
}

// ---------- errors: one line, a hint, exit 1 ----------

fn fails_with(args: &[&str], first_line: &str, hint: &str) {
    let (status, out, err) = run(args, b"");
    assert_eq!(status.code(), Some(1), "{args:?}: {err}");
    assert!(out.is_empty());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{args:?}: {err}");
    assert!(lines[0].starts_with(first_line), "{args:?}: {err}");
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains(hint),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn connection_refused_is_explained() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    fails_with(
        &["connect", &format!("tcp://127.0.0.1:{port}")],
        &format!("sockit: cannot connect to tcp://127.0.0.1:{port}: connection refused"),
        "sockit listen",
    );
    fails_with(
        &["connect", "unix:/nonexistent-dir/x.sock"],
        "sockit: cannot connect to unix:/nonexistent-dir/x.sock: no socket file there",
        "sockit listen",
    );
}

#[test]
fn unresolvable_name_is_explained() {
    fails_with(
        &["connect", "tcp://no-such-host.invalid:80"],
        "sockit: cannot resolve 'no-such-host.invalid':",
        "spelling",
    );
}

#[test]
fn port_in_use_names_the_holder() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let me = std::process::id();
    fails_with(
        &["listen", &format!("tcp://127.0.0.1:{port}")],
        &format!("sockit: cannot listen on tcp://127.0.0.1:{port}: address already in use"),
        &format!("(pid {me}) holds it"),
    );
}

#[test]
fn malformed_endpoints_are_refused_with_an_example() {
    for (ep, why) in [
        ("tcp://localhost", "missing port"),
        ("tcp://localhost:99999", "port 99999 is out of range"),
        ("gopher://h:70", "unknown scheme 'gopher'"),
        ("tcp://[::1:80", "unbalanced '['"),
        ("unix:", "the socket path is empty"),
    ] {
        fails_with(
            &["connect", ep],
            &format!("sockit: bad endpoint '{ep}': {why}"),
            "write endpoints like",
        );
    }
}

#[test]
fn unix_path_errors_are_explained() {
    let (status, _, err) = run(&["listen", "unix:/nonexistent-dir/x.sock"], b"");
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        err.lines().next().unwrap(),
        "sockit: cannot listen on unix:/nonexistent-dir/x.sock: no such file or directory"
    );
}

#[test]
fn a_reset_during_a_conversation_is_one_line_and_exit_1() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 5];
        (&s).read_exact(&mut buf).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let mut cli = sockit();
    cli.args(["connect", &format!("127.0.0.1:{port}")]);
    let mut cli = Proc::spawn(cli, None);
    cli.write(b"hello");
    t.join().unwrap();
    let status = cli.wait();
    assert_eq!(status.code(), Some(1));
    let err = cli.drain_err();
    assert!(
        err.iter()
            .any(|l| l.starts_with("sockit: connection with 127.0.0.1:")
                && l.ends_with("connection reset by peer")),
        "{err:?}"
    );
}

#[test]
fn help_lists_every_command_with_examples() {
    let (status, out, _) = run(&["--help"], b"");
    assert!(status.success());
    let help = String::from_utf8(out).unwrap();
    for c in ["connect", "listen", "chat", "serve", "relay"] {
        assert!(help.contains(c), "{c} missing from --help");
        let (status, out, _) = run(&[c, "--help"], b"");
        assert!(status.success());
        assert!(
            String::from_utf8(out).unwrap().contains("sockit "),
            "{c} --help has no example"
        );
    }
}

#[test]
fn bulk_from_a_pipe_is_byte_exact() {
    // stdin a pipe on both sides: the zero-copy (splice) path in both directions.
    let down = random_bytes(MIB32, 5);
    let up = random_bytes(MIB32, 6);
    let mut srv = sockit();
    srv.args(["listen", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(srv, None);
    let port = srv.port();
    let mut cli = sockit();
    cli.args(["connect", &format!("127.0.0.1:{port}")]);
    let mut cli = Proc::spawn(cli, None);
    let feed = |mut stdin: std::process::ChildStdin, data: Vec<u8>| {
        std::thread::spawn(move || {
            for chunk in data.chunks(100_000) {
                stdin.write_all(chunk).unwrap();
            }
        })
    };
    let f1 = feed(srv.stdin.take().unwrap(), down.clone());
    let f2 = feed(cli.stdin.take().unwrap(), up.clone());
    let got_down = cli.rest();
    let got_up = srv.rest();
    f1.join().unwrap();
    f2.join().unwrap();
    assert!(cli.wait().success());
    assert!(srv.wait().success());
    assert_eq!(sha256(&got_down), sha256(&down));
    assert_eq!(sha256(&got_up), sha256(&up));
}

#[test]
fn on_a_terminal_the_peers_eof_ends_the_session() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    srv.write(b"bye\n");
    srv.close_stdin();
    let sockit = env!("CARGO_BIN_EXE_sockit");
    let ep = format!("127.0.0.1:{port}");
    let mut tty = python("on_tty.py", &[sockit, "connect", &ep], Some(Stdio::null()));
    assert_eq!(tty.line(), "bye\n");
    assert_eq!(tty.line(), "exit 0\n");
    assert!(srv.wait().success());
}

#[test]
fn idle_timeout_closes_silent_clients_and_sessions() {
    // listen -k: a client that says nothing is closed; the server goes on.
    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "-v",
        "--idle-timeout",
        "0.3",
        "tcp://127.0.0.1:0",
    ]);
    let mut quiet = tcp(port);
    assert!(closed_without_data(&mut quiet));
    srv.stderr_contains("idle timeout");
    assert!(srv.running());

    // connect: a silent peer ends the session with status 0.
    let (mut srv2, port2) = server(&["listen", "tcp://127.0.0.1:0"]);
    let mut cli = sockit();
    cli.args([
        "connect",
        "--idle-timeout",
        "0.3",
        &format!("127.0.0.1:{port2}"),
    ]);
    let mut cli = Proc::spawn(cli, None); // stdin stays open: only the timeout can end it
    let status = cli.wait_open();
    assert!(status.success());
    srv2.close_stdin();
}
