//! The Windows build (`sockit.exe`, x86_64-pc-windows-gnu) run under wine on this Linux
//! machine, against the tutorial's Python programs and the Linux sockit, over TCP and UDP
//! on 127.0.0.1: a few bounded smoke tests (wine starts slowly). `.ci/run` makes the build,
//! the shim wine 8 needs (.ci/wine/bcryptprimitives.c) and the wine prefix, then runs them.

#![cfg(unix)]
#![allow(clippy::unwrap_used)] // reason: a failed unwrap is a failed test, with its message

#[path = "util/mod.rs"]
mod util;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use util::*;

/// Where the Windows build is (`SOCKIT_WINDOWS_EXE`, else cargo's place for it).
fn exe() -> PathBuf {
    let path = std::env::var_os("SOCKIT_WINDOWS_EXE").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/x86_64-pc-windows-gnu/debug/sockit.exe")
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "no Windows build at {}; .ci/run makes it",
        path.display()
    );
    path
}

/// `sockit.exe ARGS` under wine, quiet, in the prefix .ci/run prepared.
fn windows(args: &[&str]) -> Command {
    let mut cmd = Command::new("wine");
    cmd.arg(exe()).args(args).env("WINEDEBUG", "-all").env(
        "WINEPREFIX",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/wineprefix"),
    );
    cmd
}

/// A Windows server, ready (its readiness line read), and the port it names.
fn windows_server(args: &[&str]) -> (Proc, u16) {
    let mut p = Proc::spawn(windows(args), Some(Stdio::null()));
    let port = p.port();
    (p, port)
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_serve_answers_linux_clients_over_tcp_and_udp() {
    let mut p = Proc::spawn(
        windows(&["serve", "echo=tcp://127.0.0.1:0", "echo=udp://127.0.0.1:0"]),
        Some(Stdio::null()),
    );
    let tcp: u16 = p
        .stderr_contains("echo listening on tcp://")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let udp: u16 = p
        .stderr_contains("echo listening on udp://")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The Linux sockit, input from a pipe that ends: byte-exact.
    let data = random_bytes(200_000, 35);
    let (status, out, err) = run(&["connect", &format!("tcp://127.0.0.1:{tcp}")], &data);
    assert!(status.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
    // The tutorial's UDP client.
    let mut py = python("udp_client.py", &[&udp.to_string()], Some(Stdio::null()));
    assert!(py.line().starts_with("hello "));
    assert!(py.wait().success());
    // The tutorial's time server, on Windows: its UDP client's strftime formats, Chinese too.
    let (_day, dport) = windows_server(&["serve", "daytime=udp://127.0.0.1:0", "--utc"]);
    let mut py = python("time_client.py", &[&dport.to_string()], None);
    py.write("%Y\n今天是%Y年\n".as_bytes());
    py.close_stdin();
    let year = chrono_year();
    assert!(py.line().ends_with(&format!("当前日期: {year}\n")));
    assert!(py.line().ends_with(&format!("当前日期: 今天是{year}年\n")));
    // TLS: a self-signed certificate made at start, trusted by its fingerprint.
    let mut t = Proc::spawn(
        windows(&["serve", "echo=tls://127.0.0.1:0"]),
        Some(Stdio::null()),
    );
    let line = t.stderr_contains("SHA-256 fingerprint ");
    let pin = line.split("SHA-256 fingerprint ").nth(1).unwrap();
    let pin = pin.split_whitespace().next().unwrap().to_string();
    let tport = t.port();
    let (status, out, err) = run(
        &[
            "connect",
            "--pin",
            &pin,
            &format!("tls://127.0.0.1:{tport}"),
        ],
        b"over tls\n",
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, b"over tls\n");
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_connect_and_listen_talk_to_the_tutorial_programs() {
    // sockit.exe connect to the tutorial's TCP server.
    let mut server = python("tcp_server.py", &[], Some(Stdio::null()));
    let port = server.line().trim().to_string();
    let mut c = Proc::spawn(
        windows(&[
            "connect",
            "--send",
            "hello!",
            &format!("tcp://127.0.0.1:{port}"),
        ]),
        Some(Stdio::null()),
    );
    assert_eq!(c.rest(), b"hi");
    assert_eq!(c.wait().code(), Some(0));
    assert_eq!(server.line(), "b'hello!'\n");
    // sockit.exe listen (one conversation) for the tutorial's TCP client.
    let dir = temp_dir("windows-listen");
    let hi = dir.join("hi");
    std::fs::write(&hi, b"hi").unwrap();
    let mut l = Proc::spawn(
        windows(&["listen", "tcp://127.0.0.1:0"]),
        Some(Stdio::from(std::fs::File::open(&hi).unwrap())),
    );
    let lport = l.port();
    let mut py = python("tcp_client.py", &[&lport.to_string()], Some(Stdio::null()));
    assert_eq!(py.line(), "b'hi'\n");
    assert!(py.wait().success());
    assert_eq!(l.rest(), b"hello!");
    assert_eq!(l.wait().code(), Some(0));
    // listen -k: clients one after another, each answered by the Linux sockit's lines.
    let (mut k, kport) = windows_server(&["listen", "-k", "tcp://127.0.0.1:0"]);
    for i in 0..2 {
        let line = format!("client {i}\n");
        let (status, _, err) = run(
            &["connect", &format!("tcp://127.0.0.1:{kport}")],
            line.as_bytes(),
        );
        assert!(status.success(), "{err}");
        assert_eq!(k.line(), line);
    }
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_chat_and_relay_carry_every_byte() {
    // A room on Windows, members from Linux.
    let (_room, rport) = windows_server(&["chat", "tcp://127.0.0.1:0"]);
    let mut a = Proc::spawn(
        {
            let mut c = sockit();
            c.args(["connect", &format!("tcp://127.0.0.1:{rport}")]);
            c
        },
        None,
    );
    let mut b = Proc::spawn(
        {
            let mut c = sockit();
            c.args(["connect", &format!("tcp://127.0.0.1:{rport}")]);
            c
        },
        None,
    );
    a.write(b"/nick alice\n");
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        assert!(
            std::time::Instant::now() < end,
            "the room never passed the line on"
        );
        a.write(b"hello from linux\n");
        if let Some(l) = b.line_within(std::time::Duration::from_millis(500)) {
            if l.contains("hello from linux") {
                break;
            }
        }
    }
    // A relay on Windows in front of the Linux echo, TCP and UDP.
    let (_echo, eport) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    let (_relay, port) = windows_server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("tcp://127.0.0.1:{eport}"),
    ]);
    let data = random_bytes(300_000, 7);
    let (status, out, err) = run(&["connect", &format!("tcp://127.0.0.1:{port}")], &data);
    assert!(status.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
    let (_uecho, ueport) = server(&["serve", "echo=udp://127.0.0.1:0", "--udp-rate", "0"]);
    let (_urelay, uport) = windows_server(&[
        "relay",
        "udp://127.0.0.1:0",
        &format!("udp://127.0.0.1:{ueport}"),
    ]);
    let mut py = python("udp_client.py", &[&uport.to_string()], Some(Stdio::null()));
    assert!(py.line().starts_with("hello "));
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_errors_are_words_and_exit_codes_as_on_linux() {
    let check = |args: &[&str], wanted: &str| {
        let mut p = Proc::spawn(windows(args), Some(Stdio::null()));
        assert_eq!(p.wait().code(), Some(1), "{args:?}");
        let err = p.drain_err().join("\n");
        assert!(err.contains(wanted), "{args:?}: {err}");
        assert!(
            err.contains("hint: ") || wanted.contains("Unix"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked") && !err.contains("Os {"), "{err}");
    };
    let closed = free_port();
    check(
        &["connect", &format!("tcp://127.0.0.1:{closed}")],
        "connection refused",
    );
    let (_taken, port) = server(&["serve", "echo=tcp://127.0.0.1:0"]);
    check(
        &["listen", &format!("tcp://127.0.0.1:{port}")],
        "address already in use",
    );
    check(
        &["connect", "unix:/tmp/x.sock"],
        "Unix sockets are not available on this system",
    );
    check(
        &["listen", "--pty", "--exec", "cmd", "tcp://127.0.0.1:0"],
        "--pty",
    );
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_wine_is_here() {
    let out = windows(&["--version"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sockit "));
}

#[test]
#[ignore = "needs wine and the Windows build; .ci/run makes both"]
fn windows_exec_runs_a_program_per_client_through_cmd() {
    // --sh-exec is cmd.exe /C on Windows; the UCSPI variables are there too.
    let (mut srv, port) = windows_server(&[
        "listen",
        "-k",
        "--sh-exec",
        "echo from %TCPREMOTEIP%",
        "tcp://127.0.0.1:0",
    ]);
    for _ in 0..2 {
        let (status, out, err) = run(&["connect", &format!("tcp://127.0.0.1:{port}")], b"");
        assert!(status.success(), "{err}");
        assert_eq!(String::from_utf8_lossy(&out).trim_end(), "from 127.0.0.1");
    }
    assert!(srv.running());
}
