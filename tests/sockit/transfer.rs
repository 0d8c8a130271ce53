//! Byte-exact transfers: bulk both ways, half-close, pipes, terminals, stdout closed, CRLF, idle timeouts.

use std::fs::File;
use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::Stdio;

use super::{closed_without_data, tcp};
use crate::util::*;

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

/// A datagram line that stdin has begun but not ended goes out after a short quiet, as
/// `ncat -u` sends what a pipe gave it: `printf hi` into an open pipe is not held back.
#[test]
fn an_unfinished_datagram_line_is_sent_after_a_quiet() {
    let (mut srv, port) = server(&["listen", "udp://127.0.0.1:0"]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    peer.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    assert_eq!(srv.line(), "hello\n");
    srv.write(b"hi");
    let mut buf = [0u8; 64];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert!(srv.running(), "stdin is still open: the session goes on");

    // The same from the connecting side.
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    target.set_read_timeout(Some(DEADLINE)).unwrap();
    let at = format!("udp://127.0.0.1:{}", target.local_addr().unwrap().port());
    let mut cmd = sockit();
    cmd.args(["connect", &at]);
    let mut cli = Proc::spawn(cmd, None);
    cli.write(b"partial");
    let (n, _) = target.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"partial");
}

/// `>> file`: splice(2) refuses a file opened for append; every byte still arrives, after
/// what the file held, for connect and for listen.
#[test]
fn stdout_opened_for_append_gets_every_byte() {
    let dir = temp_dir("append");
    let data = random_bytes(3 << 20, 7);
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let out_path = dir.join("connect.out");
    std::fs::write(&out_path, b"before\n").unwrap();
    let input = dir.join("input");
    std::fs::write(&input, &data).unwrap();
    let status = sockit()
        .args(["connect", &format!("127.0.0.1:{port}")])
        .stdin(File::open(&input).unwrap())
        .stdout(append(&out_path))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let got = std::fs::read(&out_path).unwrap();
    assert_eq!(&got[..7], b"before\n");
    assert_eq!(sha256(&got[7..]), sha256(&data));

    let out_path = dir.join("listen.out");
    std::fs::write(&out_path, b"before\n").unwrap();
    let mut cmd = sockit();
    cmd.args(["listen", "tcp://127.0.0.1:0"])
        .stdout(append(&out_path))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut err, &mut ready).unwrap();
    let port: u16 = ready.trim().rsplit(':').next().unwrap().parse().unwrap();
    let mut c = tcp(port);
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let got = std::fs::read(&out_path).unwrap();
    assert_eq!(
        sha256(&got[7..]),
        sha256(&data),
        "{} bytes of {}",
        got.len() - 7,
        data.len()
    );
}

fn append(path: &std::path::Path) -> File {
    std::fs::OpenOptions::new().append(true).open(path).unwrap()
}

/// A stdout that refuses bytes (`> /dev/full`) is lost data: one line and exit 1, never a
/// quiet success and never "connection failed".
#[test]
fn a_full_stdout_is_reported() {
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let out = sockit()
        .args(["connect", "--send", "hello\n", &format!("127.0.0.1:{port}")])
        .stdout(File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write stdout: no space left on device"),
        "{err}"
    );
}

/// A server that writes a greeting and resets at once: the greeting reaches stdout, then the
/// reset is reported (one line, exit 1), as ncat and socat do; never "cannot connect".
#[test]
fn data_before_a_reset_is_delivered_then_the_reset_reported() {
    let mut py = python("greet_and_reset.py", &[], Some(Stdio::null()));
    let port = py.line().trim().to_string();
    // The race between the greeting, the reset and our connect differs each time.
    for _ in 0..30 {
        // stdin stays open (a pipe), as when a person or a program is still typing.
        let mut cmd = sockit();
        cmd.args(["connect", &format!("127.0.0.1:{port}")]);
        let mut cli = Proc::spawn(cmd, None);
        let got = cli.rest();
        let status = cli.wait_open();
        let err = cli.drain_err().join("\n");
        assert_eq!(got, b"SSH-2.0-greeting\r\n", "{err}");
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(err.contains("connection reset by peer"), "{err}");
        assert!(!err.contains("cannot connect"), "{err}");
    }
}

/// `--send-only`: stdin reaches the peer, nothing the peer sends is written, and sockit ends
/// at stdin's end. `--recv-only`: the peer's bytes are written, stdin is never sent.
#[test]
fn send_only_and_recv_only_use_one_direction() {
    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    srv.write(b"ignored by the client\n");
    srv.close_stdin();
    let (status, out, err) = run(
        &["connect", "--send-only", &format!("127.0.0.1:{port}")],
        b"to the server\n",
    );
    assert!(status.success(), "{err}");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert_eq!(srv.rest(), b"to the server\n");

    let (mut srv, port) = server(&["listen", "tcp://127.0.0.1:0"]);
    srv.write(b"from the server\n");
    srv.close_stdin();
    let (status, out, err) = run(
        &["connect", "--recv-only", &format!("127.0.0.1:{port}")],
        b"never sent\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"from the server\n");
    assert!(srv.wait().success());
    assert_eq!(srv.rest(), b"", "the client sent nothing");
}

/// A dump that cannot be written (a full disk) is said once; the session goes on whole.
#[test]
fn an_unwritable_dump_is_said_once_and_the_session_goes_on() {
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (status, out, err) = run(
        &["connect", "-x", "/dev/full", &format!("127.0.0.1:{port}")],
        b"one\ntwo\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"one\ntwo\n");
    assert_eq!(
        err.matches("cannot write the hex dump to /dev/full")
            .count(),
        1,
        "{err}"
    );
}

/// `-x FILE`: every chunk both ways, with its direction, length and per-direction offset,
/// then xxd's lines; for connect, listen -k and relay.
#[test]
fn hex_dump_shows_both_directions() {
    let dir = temp_dir("hexdump");
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let path = dir.join("connect.dump");
    let (status, out, err) = run(
        &[
            "connect",
            "-x",
            path.to_str().unwrap(),
            &format!("127.0.0.1:{port}"),
        ],
        b"hello\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"hello\n");
    let dump = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = dump.lines().collect();
    assert!(
        lines[0].starts_with("> ") && lines[0].ends_with(" 6 bytes at offset 0"),
        "{dump}"
    );
    assert_eq!(
        lines[1],
        "00000000: 6865 6c6c 6f0a                           hello."
    );
    assert!(
        lines[2].starts_with("< ") && lines[2].ends_with(" 6 bytes at offset 0"),
        "{dump}"
    );

    let path = dir.join("relay.dump");
    let (_relay, rport) = server(&[
        "relay",
        "-x",
        path.to_str().unwrap(),
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{port}"),
    ]);
    let (status, out, _) = run(&["connect", &format!("127.0.0.1:{rport}")], b"through\n");
    assert!(status.success());
    assert_eq!(out, b"through\n");
    let dump = std::fs::read_to_string(&path).unwrap();
    assert!(
        dump.contains("8 bytes at offset 0\n00000000: 7468 726f 7567 680a"),
        "{dump}"
    );
    assert_eq!(dump.matches(" bytes at offset ").count(), 2, "{dump}");

    let path = dir.join("listen.dump");
    let (mut srv, lport) = server(&[
        "listen",
        "-k",
        "-x",
        path.to_str().unwrap(),
        "tcp://127.0.0.1:0",
    ]);
    let mut c = tcp(lport);
    c.write_all(b"from a client\n").unwrap();
    assert_eq!(srv.line(), "from a client\n");
    let dump = std::fs::read_to_string(&path).unwrap();
    assert!(
        dump.starts_with("< ") && dump.contains(" 14 bytes at offset 0\n"),
        "{dump}"
    );
}

/// `--progress`: the last line says the totals, 100% when stdin is a file that went whole;
/// stdout still carries only data.
#[test]
fn progress_ends_with_the_totals() {
    let dir = temp_dir("progress");
    let input = dir.join("input");
    std::fs::write(&input, random_bytes(3 << 20, 3)).unwrap();
    let (_srv, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let out = sockit()
        .args(["connect", "--progress", &format!("127.0.0.1:{port}")])
        .stdin(File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 3 << 20);
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("sent 3.0 MiB (100%), received 3.0 MiB"),
        "{err}"
    );
}
