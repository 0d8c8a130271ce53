//! WebSocket (`ws://`, `wss://`, chat's `http://`): sockit against itself and raw sockets
//! here; python's `websockets` and a browser (Playwright driving Debian's chromium) in the
//! ignored tests that `.ci/run` runs.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::tcp;
use crate::util::*;

/// `serve` with `args`; the port of its readiness line.
fn serve(args: &[&str]) -> (Proc, u16) {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    server(&all)
}

/// `sockit ARGS` running, stdin piped.
fn spawn(args: &[&str]) -> Proc {
    let mut c = sockit();
    c.args(args);
    Proc::spawn(c, None)
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

#[test]
fn connect_sends_lines_as_text_messages_and_serve_echo_returns_them() {
    let (_srv, port) = serve(&["echo=ws://127.0.0.1:0/echo"]);
    let (st, out, err) = run(
        &["connect", &format!("ws://127.0.0.1:{port}/echo")],
        "hello\nwörld\n\nlast without newline".as_bytes(),
    );
    assert!(st.success(), "{err}");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "hello\nwörld\n\nlast without newline"
    );
}

/// The framing rule between sockits: a text message is a line wherever it meets a byte
/// stream, a binary one is its bytes, so every mix of modes is byte-exact.
#[test]
fn every_mix_of_framings_between_sockits_is_byte_exact() {
    let (_cat, port) = server(&["listen", "-k", "--exec", "cat", "ws://127.0.0.1:0/x"]);
    let url = format!("ws://127.0.0.1:{port}/x");
    let mut text = Vec::new();
    for i in 0..20_000 {
        text.extend_from_slice(format!("line {i} of a file with newlines\n").as_bytes());
    }
    text.extend_from_slice(b"an unfinished last line");
    for mode in [&["--binary"][..], &[]] {
        let mut args = vec!["connect"];
        args.extend_from_slice(mode);
        args.push(&url);
        let (st, out, err) = run(&args, &text);
        assert!(st.success(), "{mode:?}: {err}");
        assert_eq!(out.len(), text.len(), "{mode:?}");
        assert_eq!(sha256(&out), sha256(&text), "{mode:?}");
    }
    // A line that is not UTF-8 keeps its newline, an unfinished one gains none.
    let odd = b"a\xffb\nc\nlast";
    let (st, out, err) = run(&["connect", &url], odd);
    assert!(st.success(), "{err}");
    assert_eq!(out, odd);
    let mut one = spawn(&["listen", "ws://127.0.0.1:0/"]);
    let port = one.port();
    one.close_stdin();
    let (st, _, err) = run(&["connect", &format!("ws://127.0.0.1:{port}/")], odd);
    assert!(st.success(), "{err}");
    assert_eq!(one.rest(), odd);
    // A line client through a relay to a TCP echo: the TCP side gets the lines as lines.
    let (_echo, echo) = serve(&["echo=tcp://127.0.0.1:0"]);
    let (_relay, relay) = server(&[
        "relay",
        "ws://127.0.0.1:0/",
        &format!("tcp://127.0.0.1:{echo}"),
    ]);
    let (st, out, err) = run(
        &["connect", &format!("ws://127.0.0.1:{relay}/")],
        b"line1\nline2\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"line1\nline2\n");
}

#[test]
fn binary_mode_is_byte_exact_and_bench_runs_over_ws() {
    let (_srv, port) = serve(&["echo=ws://127.0.0.1:0/"]);
    let url = format!("ws://127.0.0.1:{port}/");
    let data = random_bytes(3 * 1024 * 1024, 14);
    let (st, out, err) = run(&["connect", "--binary", &url], &data);
    assert!(st.success(), "{err}");
    assert_eq!(sha256(&out), sha256(&data));
    for mode in ["rr", "stream"] {
        let (st, out, err) = run(
            &[
                "bench",
                &url,
                "--mode",
                mode,
                "--conns",
                "2",
                "--duration",
                "1",
                "--json",
            ],
            b"",
        );
        assert!(st.success(), "{mode}: {err}");
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("\"errors\":0"), "{mode}: {out}");
    }
}

#[test]
fn a_tcp_tunnel_over_websocket_keeps_every_byte_both_ways() {
    // tcp -> relay -> ws -> relay -> ws -> relay -> tcp echo: the upload, its half-close,
    // then the whole
    // echo back (WebSocket has no half-close of its own; two sockits agree on one).
    let (_echo, echo) = serve(&["echo=tcp://127.0.0.1:0"]);
    let (_ws, ws) = server(&[
        "relay",
        "ws://127.0.0.1:0/tunnel",
        &format!("tcp://127.0.0.1:{echo}"),
    ]);
    // WebSocket on both sides of one relay, in the middle.
    let (_mid, mid) = server(&[
        "relay",
        "ws://127.0.0.1:0/",
        &format!("ws://127.0.0.1:{ws}/tunnel"),
    ]);
    let (_tcp, entry) = server(&[
        "relay",
        "tcp://127.0.0.1:0",
        &format!("ws://127.0.0.1:{mid}/"),
    ]);
    let data = random_bytes(5 * 1024 * 1024, 7);
    for _ in 0..2 {
        let (st, out, err) = run(&["connect", &format!("127.0.0.1:{entry}")], &data);
        assert!(st.success(), "{err}");
        assert_eq!(out.len(), data.len());
        assert_eq!(sha256(&out), sha256(&data));
    }
}

#[test]
fn wss_is_verified_and_pinned() {
    let mut cmd = sockit();
    cmd.args(["serve", "echo=wss://127.0.0.1:0/secure"]);
    let mut srv = Proc::spawn(cmd, None);
    let fp_line = srv.stderr_contains("fingerprint");
    let pin = fp_line
        .rsplit("--pin ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    let port = srv.port();
    let url = format!("wss://127.0.0.1:{port}/secure");
    let (st, out, err) = run(&["connect", "--pin", pin, &url], b"over tls\n");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"over tls\n");
    let (st, _, err) = run(&["connect", &url], b"x\n");
    assert!(!st.success());
    assert!(err.contains("--pin") && !err.contains("panicked"), "{err}");
}

#[test]
fn upgrades_only_at_the_path_within_the_header_limit_and_the_deadline() {
    let (_srv, port) = serve(&["echo=ws://127.0.0.1:0/here", "--handshake-timeout", "1"]);
    assert!(
        crate::exchange(port, upgrade_request("/elsewhere").as_bytes()).starts_with("HTTP/1.1 404")
    );
    assert!(
        crate::exchange(port, b"GET /here HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 426"),
        "a plain GET at the path is told to upgrade"
    );
    let answer = crate::exchange(port, upgrade_request("/here?x=1").as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 101")
            && answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{answer}"
    );
    let big = format!(
        "GET /here HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    assert!(crate::exchange(port, big.as_bytes()).starts_with("HTTP/1.1 431"));
    let (st, _, err) = run(
        &["connect", &format!("ws://127.0.0.1:{port}/elsewhere")],
        b"",
    );
    assert!(!st.success());
    assert!(
        err.contains("404") && err.contains("right path") && err.lines().count() <= 2,
        "{err}"
    );
    // Stalled upgrades hold only their sockets and are closed at the deadline; a real
    // client meanwhile is served at once.
    let stalled: Vec<_> = (0..100)
        .map(|_| {
            let mut s = tcp(port);
            s.write_all(b"GET /here HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    let t = Instant::now();
    let (st, out, err) = run(
        &["connect", &format!("ws://127.0.0.1:{port}/here")],
        b"ok\n",
    );
    assert!(st.success() && out == b"ok\n", "{err}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for mut s in stalled {
        let mut buf = [0u8; 16];
        // Closed by the deadline (EOF), not left open until our read times out.
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    }
}

#[test]
fn listen_and_exec_speak_websocket() {
    // listen: each text message is a line on stdout (its own stdin is empty: it
    // half-closes at once, and the conversation ends with the client's end).
    let mut cmd = sockit();
    cmd.args(["listen", "ws://127.0.0.1:0/"]);
    let mut l = Proc::spawn(cmd, Some(Stdio::null()));
    let port = l.port();
    let (st, _, err) = run(
        &["connect", &format!("ws://127.0.0.1:{port}/")],
        b"one\ntwo\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(l.line(), "one\n");
    assert_eq!(l.line(), "two\n");
    assert!(l.wait().success());
    // listen -k --exec: the program reads lines and its lines go back as messages.
    let (_srv, port) = server(&[
        "listen",
        "-k",
        "ws://127.0.0.1:0/up",
        "--exec",
        "tr a-z A-Z",
    ]);
    for _ in 0..2 {
        let (st, out, err) = run(
            &["connect", &format!("ws://127.0.0.1:{port}/up")],
            b"shout\nthis\n",
        );
        assert!(st.success(), "{err}");
        assert_eq!(out, b"SHOUT\nTHIS\n");
    }
}

#[test]
fn chat_members_over_ws_and_tcp_talk_and_the_page_is_served() {
    let mut cmd = sockit();
    cmd.args([
        "chat",
        "http://127.0.0.1:0",
        "ws://127.0.0.1:0/room",
        "tcp://127.0.0.1:0",
    ]);
    let mut chat = Proc::spawn(cmd, None);
    let (web, ws, tcp_port) = (chat.port(), chat.port(), chat.port());
    let mut nc = tcp(tcp_port);
    assert!(crate::read_line(&mut nc).starts_with("*** welcome"));
    let mut member = spawn(&["connect", &format!("ws://127.0.0.1:{ws}/room")]);
    assert!(member.line().starts_with("*** welcome, you are guest2"));
    assert_eq!(crate::read_line(&mut nc), "*** guest2 joined\n");
    member.write(b"hello from ws\n");
    assert_eq!(crate::read_line(&mut nc), "<guest2> hello from ws\n");
    nc.write_all(b"hi back\n").unwrap();
    assert_eq!(member.line(), "<guest1> hi back\n");
    // The page's socket is at /ws of the http endpoint.
    let mut browserish = spawn(&["connect", &format!("ws://127.0.0.1:{web}/ws")]);
    // It gets the room as data: each line with its kind, then who is here.
    let first = browserish.line();
    assert!(
        first.starts_with(r#"{"kind":"notice","text":"*** welcome, you are guest3"#),
        "{first}"
    );
    let state = browserish.line();
    assert!(
        state.contains(r#""kind":"state""#) && state.contains(r#""you":"guest3""#),
        "{state}"
    );
    let page = crate::exchange(web, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Content-Security-Policy: default-src 'none'; script-src 'sha256-"));
    assert!(page.contains("textContent") && !page.contains("innerHTML"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    assert!(crate::exchange(web, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    // The page's URL answers HEAD (the head only) and refuses other methods with 405.
    let head = crate::exchange(web, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let post = crate::exchange(
        web,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"),
        "{post}"
    );
    // SIGTERM: WebSocket members get the farewell as every member does.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &chat.child.id().to_string()])
        .status();
    while member.line() != "*** server shutting down\n" {}
    assert_eq!(chat.wait().code(), Some(143));
}

#[test]
fn http_endpoints_belong_to_chat() {
    let (st, _, err) = run(&["listen", "http://127.0.0.1:0"], b"");
    assert!(!st.success());
    assert!(
        err.contains("chat's web page") && err.lines().count() <= 2,
        "{err}"
    );
    let (st, _, err) = run(&["connect", "http://127.0.0.1:9"], b"");
    assert!(!st.success());
    assert!(err.contains("ws://127.0.0.1:9/ws"), "{err}");
    let (st, _, err) = run(&["connect", "ws://127.0.0.1:9/a b"], b"");
    assert!(!st.success() && err.contains("percent-encoded"), "{err}");
}

fn have_python_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs one check of `ws_peer.py client` and returns its `ok` line.
fn ws_client_check(url: &str, check: &str) -> String {
    let mut p = python("ws_peer.py", &["client", url, check], Some(Stdio::null()));
    let line = p.line();
    let status = p.wait();
    assert!(status.success(), "{check}: {line} {:?}", p.drain_err());
    line
}

#[test]
#[ignore = "needs python's websockets (pip install websockets); run by .ci/run"]
fn python_websockets_clients_against_sockit() {
    assert!(have_python_websockets(), "pip install websockets");
    let (_srv, port) = serve(&["echo=ws://127.0.0.1:0/", "--max-message", "50"]);
    let url = format!("ws://127.0.0.1:{port}/");
    assert!(ws_client_check(&url, "toolong").starts_with("ok close 1009"));
    assert!(ws_client_check(&url, "badutf8").starts_with("ok close 1007"));
    let (_big, port) = serve(&["echo=ws://127.0.0.1:0/"]);
    let line = ws_client_check(&format!("ws://127.0.0.1:{port}/"), "echo");
    // A message over the limit in many fragments: the Close 1009 reaches the client (what
    // it still sends is read and dropped, so no reset destroys the Close).
    let check = ws_client_check(&format!("ws://127.0.0.1:{port}/"), "fragtoolong");
    assert!(check.starts_with("ok close 1009"), "{check}");
    assert!(line.starts_with("ok echo 1000"), "{line}");
    // websockify's job: a WebSocket client (binary subprotocol) to a TCP server.
    let (_echo, echo) = serve(&["echo=tcp://127.0.0.1:0"]);
    let (_relay, relay) = server(&[
        "relay",
        "ws://127.0.0.1:0/",
        &format!("tcp://127.0.0.1:{echo}"),
    ]);
    assert!(ws_client_check(&format!("ws://127.0.0.1:{relay}/"), "relay").starts_with("ok relay"));
}

#[test]
#[ignore = "needs python's websockets (pip install websockets); run by .ci/run"]
fn sockit_connects_to_a_python_websockets_server() {
    assert!(have_python_websockets(), "pip install websockets");
    let mut srv = python("ws_peer.py", &["server", "hello"], Some(Stdio::null()));
    let port = srv.port();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut c = spawn(&["connect", &url, "--ping", "0.2"]);
    assert_eq!(c.line(), "hello\n");
    // Idle past the server's 0.5 s ping timeout: sockit answers its pings.
    std::thread::sleep(Duration::from_millis(1500));
    c.write(b"still open\n");
    assert_eq!(c.line(), "still open\n");
    c.close_stdin();
    assert!(c.wait().success(), "{:?}", c.drain_err());
}

/// `echo hi | sockit connect ws://...` against python's websockets: WebSocket has no
/// half-close, so at stdin's end sockit reads on until the server goes quiet and only then
/// closes; a Close right after the message would drop the echo.
#[test]
#[ignore = "needs python's websockets (pip install websockets); run by .ci/run"]
fn piped_stdin_gets_the_answer_of_a_python_websockets_server() {
    assert!(have_python_websockets(), "pip install websockets");
    let mut srv = python("ws_peer.py", &["server", "echo"], Some(Stdio::null()));
    let port = srv.port();
    let url = format!("ws://127.0.0.1:{port}/");
    for _ in 0..3 {
        let (st, out, err) = run(&["connect", &url], b"hi\n");
        assert!(st.success(), "{err}");
        assert_eq!(out, b"hi\n", "{err}");
    }
    let data = random_bytes(2 * 1024 * 1024, 3);
    let (st, out, err) = run(&["connect", "--binary", &url], &data);
    assert!(st.success(), "{err}");
    assert_eq!(out.len(), data.len());
    assert_eq!(sha256(&out), sha256(&data));
    // relay passes a TCP client's half-close to the WebSocket server the same way.
    let (_relay, relay) = server(&["relay", "tcp://127.0.0.1:0", &url]);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", relay)).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(b"line1\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"line1\n");
}

#[test]
#[ignore = "needs Debian's chromium and Playwright (pip install playwright); run by .ci/run"]
fn the_chat_page_works_in_a_browser() {
    let mut cmd = sockit();
    cmd.args(["chat", "http://127.0.0.1:0", "tcp://127.0.0.1:0"]);
    let mut chat = Proc::spawn(cmd, None);
    let (web, tcp_port) = (chat.port(), chat.port());
    let mut nc = tcp(tcp_port);
    assert!(crate::read_line(&mut nc).starts_with("*** welcome, you are guest1"));
    let shot = std::env::var("SOCKIT_SCREENSHOT").unwrap_or_default();
    let mut browser = python(
        "browser_chat.py",
        &[&format!("http://127.0.0.1:{web}/"), &shot],
        None,
    );
    assert_eq!(browser.line(), "joined\n");
    assert_eq!(crate::read_line(&mut nc), "*** guest2 joined\n");
    assert_eq!(
        crate::read_line(&mut nc),
        "<guest2> hello from the browser\n"
    );
    nc.write_all(b"hi browser <img src=x onerror=\"document.title='pwned'\">\n")
        .unwrap();
    let line = browser.line();
    assert!(line.starts_with("shown as text"), "{line}");
    let line = browser.line();
    assert_eq!(line, "ran nothing\n");
    // Actions that pose as notices stay actions, and fill no member list.
    nc.write_all(b"/me joined\n/me here: admin, root, FAKE\n")
        .unwrap();
    let line = browser.line();
    assert_eq!(line, "actions: act,act\n");
    let line = browser.line();
    assert_eq!(line, "who: guest1, guest2\n");
    browser.close_stdin();
    assert!(browser.wait().success(), "{:?}", browser.drain_err());
}

#[test]
fn the_upgrade_carries_header_and_origin_and_a_bad_101_is_refused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for answer in [
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n",
        ] {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap() == 1 {
                head.push(b[0]);
            }
            s.write_all(answer.as_bytes()).unwrap();
            heads.push(String::from_utf8(head).unwrap());
        }
        heads
    });
    let url = format!("ws://127.0.0.1:{port}/api?v=2");
    let args = [
        "connect",
        "--header",
        "Authorization: Bearer T0KEN",
        "--origin",
        "http://o.example",
        &url,
    ];
    let (st, _, err) = run(&args, b"");
    assert!(!st.success() && err.contains("404"), "{err}");
    let (st, _, err) = run(&args, b"");
    assert!(!st.success() && err.contains("accept key"), "{err}");
    let heads = server.join().unwrap();
    for wanted in [
        "GET /api?v=2 HTTP/1.1\r\n",
        "\r\nAuthorization: Bearer T0KEN\r\n",
        "\r\nOrigin: http://o.example\r\n",
        "\r\nSec-WebSocket-Version: 13\r\n",
    ] {
        assert!(heads[0].contains(wanted), "{wanted:?} in {}", heads[0]);
    }
    let (st, _, err) = run(&["connect", "--header", "no colon", &url], b"");
    assert!(!st.success() && err.contains("Name: value"), "{err}");
}

#[test]
fn websocket_goes_through_a_proxy_hop_and_tls_inside_it() {
    // The stack's order: the proxy hop, then TLS, then the upgrade.
    let mut cmd = sockit();
    cmd.args([
        "serve",
        "socks5=tcp://127.0.0.1:0",
        "http-proxy=tcp://127.0.0.1:0",
        "echo=wss://127.0.0.1:0/e",
    ]);
    let mut srv = Proc::spawn(cmd, None);
    let fp = srv.stderr_contains("fingerprint");
    let pin = fp
        .rsplit("--pin ")
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let (socks, http, wss) = (srv.port(), srv.port(), srv.port());
    for proxy in [
        format!("socks5h://127.0.0.1:{socks}"),
        format!("http://127.0.0.1:{http}"),
    ] {
        let (st, out, err) = run(
            &[
                "connect",
                "--proxy",
                &proxy,
                "--pin",
                &pin,
                &format!("wss://localhost:{wss}/e"),
            ],
            b"through the hop\n",
        );
        assert!(st.success(), "{proxy}: {err}");
        assert_eq!(out, b"through the hop\n", "{proxy}");
    }
}

#[test]
fn ping_keeps_an_idle_connection_alive_with_pings() {
    let mut probe = python("ws_ping_probe.py", &[], Some(Stdio::null()));
    let port = probe.port();
    let mut c = spawn(&[
        "connect",
        "--ping",
        "0.3",
        &format!("ws://127.0.0.1:{port}/"),
    ]);
    assert_eq!(probe.line(), "ping\n");
    c.terminate();
    // Without --ping, an idle client sends nothing (the probe gives up after 5 s).
    let mut probe = python("ws_ping_probe.py", &[], Some(Stdio::null()));
    let port = probe.port();
    let mut c = spawn(&["connect", &format!("ws://127.0.0.1:{port}/")]);
    assert_eq!(probe.line(), "no ping\n");
    c.terminate();
}
