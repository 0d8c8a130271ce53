//! `--exec` and `--sh-exec`: programs on a connection, byte-exact both ways, half-close,
//! the UCSPI variables, process groups ended (no orphan, no zombie), limits, UDP peers.

use std::io::{Read, Write};
use std::net::{Shutdown, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;
use crate::{closed_without_data, tcp};

/// Sends `data` and half-closes on one thread while reading the whole answer on this one.
fn exchange(port: u16, data: Vec<u8>) -> Vec<u8> {
    let mut s = tcp(port);
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        w.write_all(&data).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    got
}

/// `listen -k` running `sleep 100 & echo $!; cat` (the shell child that outlives its
/// stdin), a client connected to it, and the pid of the background `sleep`.
fn background_server() -> (Proc, std::net::TcpStream, u32) {
    let (srv, port) = server(&[
        "listen",
        "-k",
        "--sh-exec",
        "sleep 100 & echo $!; cat",
        "tcp://127.0.0.1:0",
    ]);
    let mut s = tcp(port);
    let mut first = [0u8; 32];
    let n = s.read(&mut first).unwrap();
    let pid = String::from_utf8_lossy(&first[..n]).trim().parse().unwrap();
    (srv, s, pid)
}

/// Waits (bounded) until no process with `pid` exists: gone, reaped, not a zombie.
fn wait_gone(pid: u32) {
    let end = Instant::now() + DEADLINE;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < end, "process {pid} still there");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_cat_is_byte_exact_at_four_mib() {
    // ncat 7.93's `-e /bin/cat` stops after 56 KiB of a 2 MB transfer (nmap/nmap#2510).
    let (_srv, port) = server(&["listen", "-k", "--exec", "cat", "tcp://127.0.0.1:0"]);
    let data = random_bytes(4 << 20, 7);
    let got = exchange(port, data.clone());
    assert_eq!(sha256(&got), sha256(&data));
    // The server serves the next one too.
    assert_eq!(exchange(port, b"again\n".to_vec()), b"again\n");
}

#[test]
fn the_clients_eof_is_the_programs_and_its_late_output_still_arrives() {
    let (_srv, port) = server(&[
        "listen",
        "-k",
        "--sh-exec",
        "wc -c; echo after-eof",
        "tcp://127.0.0.1:0",
    ]);
    let got = exchange(port, vec![b'x'; 100_000]);
    assert_eq!(String::from_utf8_lossy(&got), "100000\nafter-eof\n");
}

#[test]
fn the_programs_closed_stdout_half_closes_and_input_still_flows() {
    let dir = temp_dir("exec-half");
    let file = dir.join("late");
    let cmd = format!("echo bye; exec 1>&-; cat > {}", file.display());
    let (_srv, port) = server(&["listen", "-k", "--sh-exec", &cmd, "tcp://127.0.0.1:0"]);
    let mut s = tcp(port);
    let mut got = Vec::new();
    // Our side sees the EOF while its own write side is still open.
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye\n");
    s.write_all(b"late\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let end = Instant::now() + DEADLINE;
    while std::fs::read(&file).unwrap_or_default() != b"late\n" {
        assert!(Instant::now() < end, "the program never got the late line");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn with_nothing_to_watch_the_program_reads_the_socket_itself_and_may_block_on_it() {
    // As inetd hands a connection over: no copy through sockit. The program reads before
    // the bytes are there, so a socket left non-blocking would fail its read (EAGAIN).
    let cmd = "if [ -S /dev/stdin ]; then echo socket; else echo pipe; fi; head -c 5";
    for (flags, kind) in [(&[][..], "socket"), (&["-x", "/dev/null"][..], "pipe")] {
        let mut args = vec!["listen", "-k", "--sh-exec", cmd];
        args.extend_from_slice(flags);
        args.push("tcp://127.0.0.1:0");
        let (_srv, port) = server(&args);
        let mut s = tcp(port);
        let mut first = vec![0u8; kind.len() + 1];
        s.read_exact(&mut first).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&first),
            format!("{kind}\n"),
            "{flags:?}"
        );
        thread::sleep(Duration::from_millis(100));
        s.write_all(b"hello world").unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"hello", "{flags:?}");
    }
}

#[test]
fn a_peers_reset_ends_a_program_that_neither_reads_nor_writes() {
    // Its stdin is the socket itself: sockit still notices the reset and ends it, as it
    // does when it relays through pipes.
    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "-v",
        "--sh-exec",
        "echo $$; exec sleep 120",
        "tcp://127.0.0.1:0",
    ]);
    let s = tcp(port);
    let mut line = [0u8; 16];
    let n = (&s).read(&mut line).unwrap();
    let pid: u32 = String::from_utf8_lossy(&line[..n]).trim().parse().unwrap();
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    wait_gone(pid);
    srv.stderr_contains("program ended");
}

#[test]
fn the_program_sees_the_name_it_was_given_not_the_path_found_for_it() {
    let prog = "sh -c 'head -c 2 /proc/$$/cmdline; echo'";
    let (_srv, port) = server(&["listen", "-k", "--exec", prog, "tcp://127.0.0.1:0"]);
    assert_eq!(exchange(port, Vec::new()), b"sh\n");
}

#[test]
fn the_program_gets_the_ucspi_variables() {
    let cmd = "echo \"$PROTO|$TCPREMOTEIP|$TCPREMOTEPORT|$TCPLOCALIP|$TCPLOCALPORT|$SOCKIT_PEER\"";
    let (_srv, port) = server(&["listen", "-k", "--sh-exec", cmd, "tcp://127.0.0.1:0"]);
    let mut s = tcp(port);
    let me = s.local_addr().unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(
        got,
        format!(
            "TCP|127.0.0.1|{}|127.0.0.1|{port}|tcp://127.0.0.1:{}\n",
            me.port(),
            me.port()
        )
    );
    // Over TLS and Unix sockets too.
    let (_tls, tport) = server(&[
        "listen",
        "-k",
        "--sh-exec",
        "echo $PROTO $TCPLOCALPORT",
        "tls://127.0.0.1:0",
    ]);
    let ep = format!("tls://127.0.0.1:{tport}");
    let (st, out, err) = run(&["connect", "--insecure", &ep], b"");
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), format!("TLS {tport}\n"));
    let dir = temp_dir("exec-unix");
    let sock = format!("unix:{}", dir.join("s").display());
    let mut cmd = sockit();
    cmd.args([
        "listen",
        "-k",
        "--sh-exec",
        "echo $PROTO $SOCKIT_PEER",
        &sock,
    ]);
    let mut unix = Proc::spawn(cmd, None);
    unix.ready();
    let (st, out, _) = run(&["connect", &sock], b"");
    assert!(st.success());
    assert_eq!(String::from_utf8_lossy(&out), "UNIX unix:(unnamed)\n");
}

#[test]
fn exec_cat_over_a_unix_socket_is_byte_exact() {
    // The program reads the Unix socket itself (nothing watches the bytes).
    let dir = temp_dir("exec-unix-cat");
    let sock = format!("unix:{}", dir.join("s").display());
    let mut cmd = sockit();
    cmd.args(["listen", "-k", "--exec", "cat", &sock]);
    let mut srv = Proc::spawn(cmd, None);
    srv.ready();
    let data = random_bytes(1 << 20, 11);
    let (st, out, err) = run(&["connect", &sock], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
}

#[test]
fn a_background_process_is_ended_with_its_connection_no_orphan_no_zombie() {
    // The shell child that outlives its stdin.
    let (_srv, mut s, pid) = background_server();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    s.write_all(b"x\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"x\n");
    wait_gone(pid);
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace() {
    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "-v",
        "--sh-exec",
        "trap '' TERM; sleep 100 & echo $!",
        "tcp://127.0.0.1:0",
    ]);
    let mut s = tcp(port);
    let mut got = String::new();
    // The program exited: the connection ends although `sleep` still holds its stdout.
    s.read_to_string(&mut got).unwrap();
    let pid: u32 = got.trim().parse().unwrap();
    let started = Instant::now();
    wait_gone(pid);
    // SIGTERM was ignored, so SIGKILL (2 s later) ended it.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    srv.stderr_contains("program ended");
}

#[test]
fn max_conns_bounds_the_programs() {
    let (_srv, port) = server(&[
        "listen",
        "-k",
        "--max-conns",
        "1",
        "--sh-exec",
        "echo in; cat",
        "tcp://127.0.0.1:0",
    ]);
    let mut a = tcp(port);
    let mut line = [0u8; 3];
    a.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"in\n");
    let mut b = tcp(port);
    assert!(closed_without_data(&mut b));
}

#[test]
fn a_program_that_cannot_run_is_one_error_at_start() {
    let (st, _, err) = run(
        &[
            "listen",
            "-k",
            "--exec",
            "no-such-program-x",
            "tcp://127.0.0.1:0",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("sockit: cannot run 'no-such-program-x': no such program on PATH"),
        "{err}"
    );
    let (st, _, err) = run(
        &["connect", "--exec", "cat", "--send", "x", "127.0.0.1:9"],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("--exec and --send do not go together"),
        "{err}"
    );
}

#[test]
fn a_flooding_program_is_held_by_backpressure() {
    // 64 MiB to a client that does not read yet: sockit must not buffer it.
    let (srv, port) = server(&[
        "listen",
        "-k",
        "--sh-exec",
        "head -c 67108864 /dev/zero",
        "tcp://127.0.0.1:0",
    ]);
    let mut s = tcp(port);
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    let watch = Instant::now();
    let mut peak = 0;
    while watch.elapsed() < Duration::from_millis(500) {
        peak = peak.max(rss_kib(&srv));
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        peak < 32 * 1024,
        "sockit held {peak} KiB of the program's output"
    );
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len() + 1, 64 << 20);
    assert!(rest.iter().all(|&b| b == 0));
}

#[test]
fn connect_exec_talks_to_the_server_and_ends_with_the_program() {
    let mut cmd = sockit();
    cmd.args(["listen", "tcp://127.0.0.1:0"]);
    let mut srv = Proc::spawn(cmd, None);
    let port = srv.port();
    let ep = format!("127.0.0.1:{port}");
    let mut cli = Proc::spawn(
        {
            let mut c = sockit();
            c.args([
                "connect",
                "--sh-exec",
                "echo hello; read answer; echo \"got $answer\"",
                &ep,
            ]);
            c
        },
        None,
    );
    assert_eq!(srv.line(), "hello\n");
    srv.write(b"fine\n");
    assert_eq!(srv.line(), "got fine\n");
    assert!(cli.wait_open().success());
    srv.close_stdin();
    assert!(srv.wait().success());
}

#[test]
fn sigterm_ends_every_programs_group_before_exit() {
    let (mut srv, _s, pid) = background_server();
    srv.terminate();
    assert_eq!(
        srv.wait().code(),
        Some(143),
        "interrupted: exit 128 + SIGTERM"
    );
    wait_gone(pid);
}

#[test]
fn udp_gives_each_peer_its_own_program_ended_when_idle() {
    let (mut srv, port) = server(&[
        "listen",
        "-k",
        "-v",
        "--idle-timeout",
        "0.5",
        "--sh-exec",
        "echo \"hi $PROTO $SOCKIT_PEER\"; while read l; do echo \"got $l\"; done",
        "udp://127.0.0.1:0",
    ]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.connect(("127.0.0.1", port)).unwrap();
        s.send(b"one").unwrap();
    }
    let recv = |s: &UdpSocket| {
        let mut buf = [0u8; 256];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    for s in [&a, &b] {
        let me = s.local_addr().unwrap();
        // Each line the program writes is one datagram, without its newline.
        assert_eq!(recv(s), format!("hi UDP udp://{me}"));
        assert_eq!(recv(s), "got one");
    }
    srv.stderr_contains("end=\"idle timeout\"");
    srv.stderr_contains("end=\"idle timeout\"");
    // A new datagram after the idle end starts a new program.
    a.send(b"two").unwrap();
    assert!(recv(&a).starts_with("hi UDP"));
    assert_eq!(recv(&a), "got two");
}

#[test]
fn connect_over_udp_sends_the_programs_lines_as_datagrams() {
    let (mut srv, port) = server(&["listen", "udp://127.0.0.1:0"]);
    let ep = format!("udp://127.0.0.1:{port}");
    let (st, _, err) = run(
        &[
            "connect",
            "--idle-timeout",
            "0.5",
            "--exec",
            "printf 'x\\ny\\n'",
            &ep,
        ],
        b"",
    );
    assert!(st.success(), "{err}");
    assert_eq!(srv.line(), "x\n");
    assert_eq!(srv.line(), "y\n");
}

#[test]
#[ignore = "needs OpenBSD netcat (apt-get install netcat-openbsd); .ci/run installs it and runs ignored tests"]
fn nc_through_exec_cat_is_byte_exact() {
    let (_srv, port) = server(&["listen", "-k", "--exec", "cat", "tcp://127.0.0.1:0"]);
    let dir = temp_dir("exec-nc");
    let data = random_bytes(2_000_000, 11);
    let path = dir.join("in");
    std::fs::write(&path, &data).unwrap();
    let out = std::process::Command::new("nc")
        .args(["-N", "127.0.0.1", &port.to_string()])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(sha256(&out.stdout), sha256(&data));
}
