//! Every server command over every kind it takes (tcp, unix, tls, and udp where it applies),
//! and `bench` against each: what the one dial and the one admission promise.

use std::process::Stdio;

use crate::util::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Tcp,
    Unix,
    Tls,
    Udp,
}

const STREAMS: [Kind; 3] = [Kind::Tcp, Kind::Unix, Kind::Tls];
const ALL: [Kind; 4] = [Kind::Tcp, Kind::Unix, Kind::Tls, Kind::Udp];

/// Where a server of `kind` listens (port 0, or a fresh socket path).
fn listen_on(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Tcp => "tcp://127.0.0.1:0".into(),
        Kind::Tls => "tls://127.0.0.1:0".into(),
        Kind::Udp => "udp://127.0.0.1:0".into(),
        // The server removes its socket file when it ends: no directory to clean up.
        Kind::Unix => format!(
            "unix:{}/sockit-matrix-{}-{name}.sock",
            env!("CARGO_TARGET_TMPDIR"),
            std::process::id()
        ),
    }
}

/// A started server: the process, the endpoint of its (first) readiness line, and the
/// flags a client needs to trust it (`--pin` for TLS).
struct Started {
    proc: Proc,
    endpoint: String,
    trust: Vec<String>,
}

fn start(kind: Kind, args: &[&str], stdin: Option<Stdio>) -> Started {
    let mut cmd = sockit();
    cmd.args(args);
    let mut proc = Proc::spawn(cmd, stdin);
    let trust = if kind == Kind::Tls {
        let line = proc.stderr_contains("SHA-256 fingerprint ");
        let fp = line.split("SHA-256 fingerprint ").nth(1).unwrap();
        vec![
            "--pin".to_string(),
            fp.split_whitespace().next().unwrap().to_string(),
        ]
    } else {
        Vec::new()
    };
    let endpoint = proc.ready();
    Started {
        proc,
        endpoint,
        trust,
    }
}

/// The server is killed at the end of the test, so its Unix socket file is removed here.
impl Drop for Started {
    fn drop(&mut self) {
        if let Some(path) = self.endpoint.strip_prefix("unix:") {
            let _ = self.proc.child.kill();
            let _ = self.proc.child.wait();
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Started {
    /// `sockit connect` to this server with `input`; its stdout, after checking it exited 0.
    fn connect(&self, input: &[u8]) -> String {
        let mut args = vec!["connect"];
        args.extend(self.trust.iter().map(String::as_str));
        args.push(&self.endpoint);
        let (status, out, err) = run(&args, input);
        assert!(status.success(), "connect {}: {err}", self.endpoint);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[test]
fn serve_echo_and_bench_over_every_kind() {
    for kind in ALL {
        let ep = listen_on(kind, "serve");
        let srv = start(
            kind,
            &["serve", "--udp-rate", "0", &format!("echo={ep}")],
            None,
        );
        assert_eq!(srv.connect(b"ping\n"), "ping\n", "{kind:?}");
        let mut modes = vec![vec!["--mode", "rr", "--count", "200", "--size", "16"]];
        if kind != Kind::Udp {
            modes.push(vec!["--mode", "stream", "--count", "20"]);
            modes.push(vec!["--mode", "connect", "--count", "20"]);
        }
        for mode in modes {
            let mut args = vec!["bench", "--json", "-q"];
            args.extend(mode.iter().copied());
            args.extend(srv.trust.iter().map(String::as_str));
            args.push(&srv.endpoint);
            let (status, out, err) = run(&args, b"");
            let out = String::from_utf8_lossy(&out);
            assert!(
                status.success(),
                "bench {mode:?} over {kind:?}: {out} {err}"
            );
            assert!(out.contains("\"errors\":0"), "{kind:?} {mode:?}: {out}");
        }
    }
}

#[test]
fn listen_talks_to_one_client_over_every_stream_kind() {
    for kind in STREAMS {
        let ep = listen_on(kind, "listen");
        let mut srv = start(kind, &["listen", &ep], None);
        srv.proc.write(b"from the listener\n");
        srv.proc.close_stdin();
        assert_eq!(srv.connect(b"from the client\n"), "from the listener\n");
        assert_eq!(srv.proc.rest(), b"from the client\n", "{kind:?}");
        assert!(srv.proc.wait().success());
    }
}

#[test]
fn listen_keep_open_serves_clients_over_every_kind() {
    for kind in ALL {
        let ep = listen_on(kind, "listen-k");
        let mut srv = start(kind, &["listen", "-k", &ep], Some(Stdio::null()));
        for n in 0..2 {
            let line = format!("client {n}\n");
            // Datagram clients wait out the idle timeout; streams end at EOF.
            srv.connect(line.as_bytes());
            assert_eq!(srv.proc.line(), line, "{kind:?}");
        }
        assert!(srv.proc.running(), "{kind:?}: a -k server keeps running");
    }
}

#[test]
fn relay_reaches_an_echo_from_every_kind() {
    for kind in ALL {
        let (target_ep, relay_kind_target) = if kind == Kind::Udp {
            ("udp://127.0.0.1:0", Kind::Udp)
        } else {
            ("tcp://127.0.0.1:0", Kind::Tcp)
        };
        let echo = start(
            relay_kind_target,
            &["serve", "--udp-rate", "0", &format!("echo={target_ep}")],
            None,
        );
        let ep = listen_on(kind, "relay");
        let relay = start(kind, &["relay", &ep, &echo.endpoint], None);
        assert_eq!(relay.connect(b"through\n"), "through\n", "{kind:?}");
    }
}

#[test]
fn relay_to_a_tls_target_and_bench_through_it() {
    let echo = start(Kind::Tls, &["serve", "echo=tls://127.0.0.1:0"], None);
    let mut args = vec!["relay".to_string()];
    args.extend(echo.trust.iter().cloned());
    args.push("tcp://127.0.0.1:0".into());
    args.push(echo.endpoint.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = start(Kind::Tcp, &args, None);
    assert_eq!(relay.connect(b"wrapped\n"), "wrapped\n");
    let (status, out, err) = run(
        &[
            "bench",
            "--json",
            "-q",
            "--mode",
            "rr",
            "--count",
            "100",
            &relay.endpoint,
        ],
        b"",
    );
    assert!(status.success(), "{} {err}", String::from_utf8_lossy(&out));
}

#[test]
fn chat_welcomes_a_member_over_every_kind() {
    for kind in ALL {
        let ep = listen_on(kind, "chat");
        // Datagram addresses prove themselves first; the proof has its own tests.
        let srv = start(kind, &["chat", "--udp-open", &ep], None);
        let out = srv.connect(b"/quit\n");
        assert!(
            out.starts_with("*** welcome, you are guest1"),
            "{kind:?}: {out}"
        );
        assert!(out.contains("*** bye"), "{kind:?}: {out}");
    }
}
