//! `listen -k` and `--broker`: many clients, stdin to all, access rules, limits, resets, restarts.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use super::{closed_without_data, read_line, tcp};
use crate::util::*;

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

/// A prompt (no newline) reaches the others once its sender is quiet, not when (if ever)
/// its line ends, as ncat --broker passes it.
#[test]
fn broker_passes_an_unfinished_line_after_a_short_quiet() {
    let (mut srv, port) = server(&["listen", "-v", "--broker", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    for _ in 0..2 {
        srv.stderr_contains("connection accepted");
    }
    a.write_all(b"ready\n").unwrap();
    assert_eq!(read_line(&mut b), "ready\n");
    a.write_all(b"prompt> ").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = [0u8; 8];
    b.read_exact(&mut got).expect("the prompt never came");
    assert_eq!(&got, b"prompt> ");
}

/// Clients that send no newline (the tutorial's own clients) do not run together on stdout:
/// an unfinished line is written once its client is quiet, and another client's bytes
/// start on a new line; --show-peer marks each piece as a line of its own.
#[test]
fn unfinished_lines_of_different_clients_never_run_together() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    a.write_all("你好 server".as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let mut b = tcp(port);
    b.write_all(b"hello python").unwrap();
    drop(b);
    std::thread::sleep(Duration::from_millis(600));
    a.write_all(b" again\n").unwrap();
    assert_eq!(srv.line(), "你好 server\n");
    assert_eq!(srv.line(), "hello python\n");
    assert_eq!(srv.line(), " again\n");
    let (mut srv, port) = server(&["listen", "-k", "--show-peer", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    let me = a.local_addr().unwrap();
    a.write_all(b"partial").unwrap();
    assert_eq!(srv.line(), format!("[{me}] partial\n"));
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
    // A flood past the limit: one line, then a count, not a line per client.
    let flood: Vec<std::net::TcpStream> = (0..30).map(|_| tcp(port)).collect();
    let count = srv.stderr_contains("more clients in 5 s");
    let refused: u64 = count
        .split("refused ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{count}"));
    assert!(refused >= 25, "{count}");
    let said = srv
        .err_seen
        .iter()
        .filter(|l| l.contains("connection limit reached"))
        .count();
    assert!(said <= 3, "{:?}", srv.err_seen);
    drop(flood);
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

/// SIGTERM under `-k`: a line a client has begun but not ended is written out, not lost.
#[test]
fn sigterm_flushes_a_clients_unfinished_line() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut c = tcp(port);
    // One write: once the complete line is out, the unfinished one was read with it.
    c.write_all(b"complete\nunfinished").unwrap();
    assert_eq!(srv.line(), "complete\n");
    srv.terminate();
    assert_eq!(
        srv.wait().code(),
        Some(143),
        "interrupted: exit 128 + SIGTERM"
    );
    assert_eq!(srv.rest(), b"unfinished");
}

/// `--broker` with a receiver slower than the sender: the sender is slowed down and the
/// receiver gets every byte (ncat --broker's behaviour), with memory bounded by the queue.
#[test]
fn broker_slows_the_sender_for_a_slow_reader() {
    let (_srv, port) = server(&["listen", "--broker", "tcp://127.0.0.1:0"]);
    let mut receiver = tcp(port);
    let mut sender = tcp(port);
    let data: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("{i:0999}\n").into_bytes())
        .collect();
    // The broker has both before the first byte: the receiver says hello and the sender
    // waits to hear it.
    receiver.write_all(b"ready\n").unwrap();
    assert_eq!(read_line(&mut sender), "ready\n");
    let to_send = data.clone();
    let feeder = std::thread::spawn(move || {
        sender.write_all(&to_send).unwrap();
        sender
    });
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < data.len() {
        let n = receiver.read(&mut buf).unwrap();
        assert!(n > 0, "dropped after {} of {} bytes", got.len(), data.len());
        got.extend_from_slice(&buf[..n]);
        // Slower than the sender: at most ~30 MB/s.
        std::thread::sleep(Duration::from_millis(2));
    }
    let _sender = feeder.join().unwrap();
    assert_eq!(sha256(&got), sha256(&data));
}

/// The exact limit of "lines never mix" is stated where users read it: lines of up to
/// 64 KiB are whole (tested above with many clients); `--help` says where it ends.
#[test]
fn the_whole_line_limit_is_stated_in_help() {
    let (status, out, _) = run(&["listen", "--help"], b"");
    assert!(status.success());
    let help = String::from_utf8_lossy(&out);
    assert!(help.contains("64 KiB"), "{help}");
}

/// A 60,000-byte line sent in two halves, with another client's line in between: the other
/// line comes out first and whole, then the long one whole.
#[test]
fn a_line_under_the_limit_stays_whole_around_another_clients_line() {
    let (mut srv, port) = server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    a.write_all(&[b'a'; 30_000]).unwrap();
    b.write_all(b"b's line\n").unwrap();
    assert_eq!(srv.line(), "b's line\n");
    a.write_all(&[b'a'; 30_000]).unwrap();
    a.write_all(b"\n").unwrap();
    let line = srv.line();
    assert_eq!(line.len(), 60_001);
    assert!(line[..60_000].bytes().all(|c| c == b'a'));
}
