//! Errors in words: one line, a hint, exit status 1; and `--help`.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use super::tcp;
use crate::util::*;

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
    let port = free_port();
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
fn a_proxy_that_is_not_there_is_named_as_the_proxy() {
    let port = free_port();
    fails_with(
        &[
            "connect",
            "--proxy",
            &format!("socks5://127.0.0.1:{port}"),
            "127.0.0.1:9",
        ],
        &format!(
            "sockit: cannot connect to 127.0.0.1:9 through socks5://127.0.0.1:{port}: \
             the proxy does not answer (connection refused)"
        ),
        "check the HOST:PORT of --proxy",
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
    // The top-level help names every service, and chat's every endpoint kind.
    for word in ["socks5", "http-proxy"] {
        assert!(help.contains(word), "--help leaves out {word}");
    }
    let (_, out, _) = run(&["chat", "--help"], b"");
    let chat = String::from_utf8(out).unwrap();
    assert!(chat.contains("ws, wss endpoints, and http"), "{chat}");
}

/// `2>/dev/full`: a stderr that cannot be written costs its lines, never the run (eprintln!
/// panics with exit 101 there). Servers go on serving; connect's error path still exits 1.
#[test]
fn a_stderr_that_cannot_be_written_never_panics() {
    let full = || std::fs::File::create("/dev/full").unwrap();
    let port = free_port();
    let status = sockit()
        .args(["connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "refused, reported (to nowhere), exit 1"
    );
    for args in [
        vec!["serve", "-v", "echo=tcp://127.0.0.1:0"],
        vec!["listen", "-v", "-k", "tcp://127.0.0.1:0"],
        vec!["chat", "-v", "tcp://127.0.0.1:0"],
        vec!["relay", "-v", "tcp://127.0.0.1:0", "tcp://127.0.0.1:9"],
    ] {
        let mut child = sockit()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(full())
            .spawn()
            .unwrap();
        // No readiness line can be read here: wait for the listening socket instead.
        let pid = child.id();
        let end = std::time::Instant::now() + DEADLINE;
        let port = loop {
            if let Some(p) = listening_port(pid) {
                break p;
            }
            assert!(child.try_wait().unwrap().is_none(), "{args:?} exited");
            assert!(std::time::Instant::now() < end, "{args:?} never listened");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut c = tcp(port);
        let _ = c.write_all(b"hello\n");
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
        assert!(child.try_wait().unwrap().is_none(), "{args:?} died");
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        let status = child.wait().unwrap();
        assert_ne!(status.code(), Some(101), "{args:?} panicked");
    }
}

/// The TCP port a process of ours listens on, from `/proc` (its socket inodes in
/// `/proc/net/tcp`).
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
        (*state == "0A" && inodes.iter().any(|i| i == inode))
            .then(|| u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok())
            .flatten()
    })
}

/// A directory on stdin is our stdin's failure, not the connection's.
#[test]
fn stdin_failures_are_named_as_stdin() {
    let (_srv, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    for extra in [&[][..], &["--crlf"][..]] {
        let out = sockit()
            .arg("connect")
            .args(extra)
            .arg(format!("127.0.0.1:{port}"))
            .stdin(std::fs::File::open("/tmp").unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(err.contains("cannot read stdin: is a directory"), "{err}");
        assert!(!err.contains("connection with"), "{err}");
    }
}

/// Limits of 0 would refuse everybody: refused as values, with what to write instead.
#[test]
fn zero_limits_are_refused() {
    for args in [
        &["listen", "-k", "--max-conns", "0", "tcp://127.0.0.1:0"][..],
        &["chat", "--max-members", "0", "tcp://127.0.0.1:0"][..],
        &["bench", "--conns", "0", "tcp://127.0.0.1:9"][..],
    ] {
        let (status, _, err) = run(args, b"");
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("use 1 or more"), "{args:?}: {err}");
    }
}

/// `sockit completions SHELL` and `sockit man` come from the same definitions as `--help`.
#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let (status, out, err) = run(&["completions", shell], b"");
        assert!(status.success(), "{shell}: {err}");
        let script = String::from_utf8_lossy(&out);
        for word in [
            "connect",
            "listen",
            "chat",
            "serve",
            "relay",
            "bench",
            "max-conns",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script is valid bash.
    let (_, out, _) = run(&["completions", "bash"], b"");
    let dir = temp_dir("completions");
    let path = dir.join("sockit.bash");
    std::fs::write(&path, &out).unwrap();
    let ok = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap();
    assert!(ok.success());
    let (status, out, _) = run(&["man"], b"");
    assert!(status.success());
    let page = String::from_utf8_lossy(&out);
    assert!(page.contains(".TH sockit 1"), "{page}");
    assert!(page.contains("relay"), "{page}");
    // A page per command, with its options and examples; or every page into a folder.
    let (status, out, err) = run(&["man", "connect"], b"");
    assert!(status.success(), "{err}");
    let page = String::from_utf8_lossy(&out);
    assert!(page.contains(".TH sockit-connect 1"), "{page}");
    assert!(
        page.contains("no\\-shutdown") && page.contains("Examples:"),
        "{page}"
    );
    let pages = temp_dir("man-pages");
    let (status, _, err) = run(&["man", "--dir", pages.to_str().unwrap()], b"");
    assert!(status.success(), "{err}");
    for cmd in [
        "", "-connect", "-listen", "-chat", "-serve", "-bench", "-relay",
    ] {
        assert!(
            pages.join(format!("sockit{cmd}.1")).exists(),
            "sockit{cmd}.1"
        );
    }
    let (status, _, err) = run(&["man", "nope"], b"");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("no command 'nope'"), "{err}");
    let (status, _, err) = run(&["completions", "tcsh"], b"");
    assert_eq!(status.code(), Some(2), "{err}");
}

/// A certificate file that is not there is said in words, as every other error is.
#[test]
fn a_missing_certificate_file_is_said_in_words() {
    let missing = "/nonexistent/sockit-test.pem";
    for args in [
        &["connect", "--ca", missing, "tls://127.0.0.1:1"][..],
        &[
            "listen",
            "--cert",
            missing,
            "--key",
            missing,
            "tls://127.0.0.1:0",
        ],
        &[
            "connect",
            "--client-cert",
            missing,
            "--client-key",
            missing,
            "--insecure",
            "tls://127.0.0.1:1",
        ],
    ] {
        let (status, _, err) = run(args, b"");
        assert_eq!(status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "sockit: cannot read certificates from {missing}: no such file or directory"
            )),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("os error") && !err.contains("I/O error"),
            "{err}"
        );
    }
}

/// TLS against a plain port, plain text into a TLS listener: what it most likely means.
#[test]
fn tls_and_plain_mixed_up_are_named_as_such() {
    let (_echo, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (st, _, err) = run(&["connect", &format!("tls://127.0.0.1:{port}")], b"hi\n");
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("this port is not a TLS server; try tcp://"),
        "{err}"
    );
    let (mut srv, port) = server(&["listen", "-k", "tls://127.0.0.1:0"]);
    let mut c = tcp(port);
    c.write_all(b"plain text\n").unwrap();
    let line = srv.stderr_contains("TLS handshake failed");
    assert!(line.contains("the peer does not speak TLS"), "{line}");
}

/// Hints that fit the mistake: an IPv4 address under -6, a port check of a scheme or a
/// path that has no ports; closed ports under -z -v as plain lines, as nc prints them.
#[test]
fn hints_fit_the_mistake() {
    let (st, _, err) = run(&["connect", "-6", "127.0.0.1:7"], b"");
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("hint: drop -4/-6"), "{err}");
    assert!(!err.contains("spelling"), "{err}");
    let (_, _, err) = run(&["connect", "-z", "ws://127.0.0.1:80"], b"");
    assert!(
        err.contains("not ws://") && !err.contains("schemes:"),
        "{err}"
    );
    let (_, _, err) = run(&["connect", "-z", "unix:/x"], b"");
    assert!(err.contains("a Unix socket has no port"), "{err}");
    let port = free_port();
    let (st, out, err) = run(&["connect", "-z", "-v", &format!("127.0.0.1:{port}")], b"");
    assert_eq!(st.code(), Some(1));
    assert!(out.is_empty());
    assert_eq!(err, format!("tcp://127.0.0.1:{port} closed\n"));
}
