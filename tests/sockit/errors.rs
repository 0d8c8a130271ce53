//! Errors in words: one line, a hint, exit status 1; and `--help`.

use std::io::Read;
use std::time::Duration;

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
