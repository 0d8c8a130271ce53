//! Proxies: `--proxy` through sockit's own `serve socks5` and `serve http-proxy`, and
//! through real ones (microsocks, ncat, curl as a client of ours: ignored unless installed).

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::tcp;
use crate::util::*;

/// `serve` with the given arguments; the port of each service's readiness line, in order.
fn services(args: &[&str], count: usize) -> (Proc, Vec<u16>) {
    let mut cmd = sockit();
    cmd.arg("serve").args(args);
    let mut p = Proc::spawn(cmd, None);
    let ports = (0..count).map(|_| p.port()).collect();
    (p, ports)
}

#[test]
fn every_proxy_kind_reaches_a_server_that_speaks_first() {
    // daytime speaks first and closes: its bytes follow the proxy's reply at once.
    let (_srv, ports) = services(
        &[
            "socks5=tcp://127.0.0.1:0",
            "http-proxy=tcp://127.0.0.1:0",
            "daytime=tcp://127.0.0.1:0",
        ],
        3,
    );
    let (s5, hp, day) = (ports[0], ports[1], ports[2]);
    let year = chrono_year();
    for proxy in [
        format!("socks5://127.0.0.1:{s5}"),
        format!("socks5h://127.0.0.1:{s5}"),
        format!("socks4://127.0.0.1:{s5}"),
        format!("socks4a://127.0.0.1:{s5}"),
        format!("http://127.0.0.1:{hp}"),
    ] {
        let (st, out, err) = run(
            &["connect", "--proxy", &proxy, &format!("127.0.0.1:{day}")],
            b"",
        );
        assert!(st.success(), "{proxy}: {err}");
        assert!(
            String::from_utf8_lossy(&out).contains(&year),
            "{proxy}: {out:?}"
        );
    }
    // A name goes to the proxy as a name (socks5h, socks4a, http) and is resolved there.
    let (st, out, err) = run(
        &[
            "connect",
            "--proxy",
            &format!("socks4a://127.0.0.1:{s5}"),
            &format!("localhost:{day}"),
        ],
        b"",
    );
    assert!(st.success(), "{err}");
    assert!(String::from_utf8_lossy(&out).contains(&year));
}

#[test]
fn a_transfer_through_each_proxy_is_byte_exact_both_ways_and_tls_rides_inside() {
    let (_srv, ports) = services(
        &[
            "socks5=tcp://127.0.0.1:0",
            "http-proxy=tcp://127.0.0.1:0",
            "echo=tcp://127.0.0.1:0",
            "echo=tls://127.0.0.1:0",
        ],
        4,
    );
    let data = random_bytes(3 << 20, 5);
    for proxy in [
        format!("socks5h://127.0.0.1:{}", ports[0]),
        format!("http://127.0.0.1:{}", ports[1]),
    ] {
        let (st, out, err) = run(
            &[
                "connect",
                "--proxy",
                &proxy,
                &format!("127.0.0.1:{}", ports[2]),
            ],
            &data,
        );
        assert!(st.success(), "{proxy}: {err}");
        assert_eq!(sha256(&out), sha256(&data), "{proxy}");
        let (st, out, err) = run(
            &[
                "connect",
                "--insecure",
                "--proxy",
                &proxy,
                &format!("tls://127.0.0.1:{}", ports[3]),
            ],
            b"secret inside\n",
        );
        assert!(st.success(), "{proxy}: {err}");
        assert_eq!(out, b"secret inside\n");
    }
}

#[test]
fn credentials_are_checked_and_never_shown() {
    let (mut srv, ports) = services(
        &[
            "-v",
            "--proxy-user",
            "alice:s3cret",
            "socks5=tcp://127.0.0.1:0",
            "http-proxy=tcp://127.0.0.1:0",
            "echo=tcp://127.0.0.1:0",
        ],
        3,
    );
    let target = format!("127.0.0.1:{}", ports[2]);
    for scheme in ["socks5", "http"] {
        let port = if scheme == "http" { ports[1] } else { ports[0] };
        let good = format!("{scheme}://alice:s3cret@127.0.0.1:{port}");
        let (st, out, err) = run(&["connect", "-v", "--proxy", &good, &target], b"hi\n");
        assert!(st.success(), "{err}");
        assert_eq!(out, b"hi\n");
        assert!(!err.contains("s3cret"), "{err}");
        let bad = format!("{scheme}://alice:wr0ng@127.0.0.1:{port}");
        let (st, _, err) = run(&["connect", "-v", "--proxy", &bad, &target], b"hi\n");
        assert_eq!(st.code(), Some(1));
        assert!(!err.contains("wr0ng"), "{err}");
        let want = if scheme == "http" {
            "the HTTP proxy answered 407 Proxy Authentication Required"
        } else {
            "the SOCKS5 proxy refused the user name and password"
        };
        assert!(err.contains(want), "{err}");
    }
    srv.terminate();
    let _ = srv.wait();
    let logs = srv.drain_err().join("\n") + &srv.err_seen.join("\n");
    assert!(
        !logs.contains("s3cret") && !logs.contains("wr0ng"),
        "{logs}"
    );
}

#[test]
fn target_rules_are_checked_on_resolved_addresses() {
    let (_srv, ports) = services(
        &[
            "--deny-target",
            "127.0.0.0/8",
            "--deny-target",
            "::1",
            "socks5=tcp://127.0.0.1:0",
            "http-proxy=tcp://127.0.0.1:0",
            "echo=tcp://127.0.0.1:0",
        ],
        3,
    );
    // By address, and by a name that resolves to a denied address.
    for target in [
        format!("127.0.0.1:{}", ports[2]),
        format!("localhost:{}", ports[2]),
    ] {
        let (st, _, err) = run(
            &[
                "connect",
                "--proxy",
                &format!("socks5h://127.0.0.1:{}", ports[0]),
                &target,
            ],
            b"x",
        );
        assert_eq!(st.code(), Some(1));
        assert!(
            err.contains("the SOCKS5 proxy refused: connection not allowed by ruleset"),
            "{err}"
        );
        let (st, _, err) = run(
            &[
                "connect",
                "--proxy",
                &format!("http://127.0.0.1:{}", ports[1]),
                &target,
            ],
            b"x",
        );
        assert_eq!(st.code(), Some(1));
        assert!(
            err.contains("the HTTP proxy answered 403 Forbidden"),
            "{err}"
        );
    }
}

#[test]
fn the_http_proxy_answers_bad_requests_with_their_status() {
    let (_srv, ports) = services(
        &[
            "--handshake-timeout",
            "0.5",
            "--proxy-user",
            "u:p",
            "http-proxy=tcp://127.0.0.1:0",
        ],
        1,
    );
    let port = ports[0];
    let get = crate::exchange(
        port,
        b"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n",
    );
    assert!(get.starts_with("HTTP/1.1 501 Not Implemented"), "{get}");
    let unauth = crate::exchange(port, b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n");
    assert!(
        unauth.starts_with("HTTP/1.1 407 Proxy Authentication Required"),
        "{unauth}"
    );
    assert!(unauth.contains("Proxy-Authenticate: Basic"), "{unauth}");
    let mut big = b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let too_big = crate::exchange(port, &big);
    assert!(too_big.starts_with("HTTP/1.1 431"), "{too_big}");
    // A client that stalls mid-request is answered 408 after the deadline.
    let mut s = tcp(port);
    s.write_all(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n").unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
}

#[test]
fn a_socks5_client_stalled_in_negotiation_is_closed_at_the_deadline() {
    let (_srv, ports) = services(
        &["--handshake-timeout", "0.5", "socks5=tcp://127.0.0.1:0"],
        1,
    );
    let mut s = tcp(ports[0]);
    s.write_all(b"\x05").unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 8];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn udp_associate_relays_for_its_client_only_and_ends_with_its_connection() {
    let (_srv, ports) = services(&["socks5=tcp://127.0.0.1:0", "echo=udp://127.0.0.1:0"], 2);
    let mut client = python(
        "socks_udp.py",
        &[&ports[0].to_string(), &ports[1].to_string()],
        None,
    );
    assert_eq!(
        client.line(),
        format!("reply from 127.0.0.1:{} ping\n", ports[1])
    );
    assert_eq!(client.line(), "stranger dropped\n");
    assert_eq!(client.line(), "association closed\n");
    assert!(client.wait().success());
}

#[test]
fn relay_and_bench_go_through_the_proxy() {
    let (_srv, ports) = services(&["socks5=tcp://127.0.0.1:0", "echo=tcp://127.0.0.1:0"], 2);
    let proxy = format!("socks5://127.0.0.1:{}", ports[0]);
    let target = format!("tcp://127.0.0.1:{}", ports[1]);
    let (_relay, rport) = server(&["relay", "--proxy", &proxy, "tcp://127.0.0.1:0", &target]);
    let (st, out, err) = run(&["connect", &format!("127.0.0.1:{rport}")], b"via relay\n");
    assert!(st.success(), "{err}");
    assert_eq!(out, b"via relay\n");
    let (st, out, err) = run(
        &[
            "bench", "--proxy", &proxy, "--mode", "rr", "-c", "2", "-n", "200", &target,
        ],
        b"",
    );
    assert!(st.success(), "{err}");
    assert!(
        String::from_utf8_lossy(&out).contains("errors 0"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn a_bad_proxy_url_is_refused_without_its_password() {
    let (st, _, err) = run(
        &[
            "connect",
            "--proxy",
            "gopher://u:hunter2@h:1",
            "127.0.0.1:9",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("bad --proxy"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let (st, _, err) = run(
        &[
            "connect",
            "--proxy",
            "socks5://127.0.0.1:1",
            "udp://127.0.0.1:9",
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("--proxy carries TCP connections"), "{err}");
}

/// `connect --proxy URL TARGET` with stdin held open: proxies that do not pass a half-close
/// on (microsocks, ncat) would otherwise drop the answer. Sends `send`, returns the first line.
fn first_line_through(url: &str, target: &str, send: &[u8]) -> Option<String> {
    let mut cmd = sockit();
    cmd.args(["connect", "--proxy", url, target]);
    let mut p = Proc::spawn(cmd, None);
    p.write(send);
    let line = p.line_within(std::time::Duration::from_secs(5));
    p.close_stdin();
    line
}

/// `echo hi | sockit connect --no-shutdown --proxy URL ECHO`: the answer arrives through a
/// proxy that would end the tunnel at our half-close.
fn echo_kept_open_through(url: &str, echo: &str) {
    let (st, out, err) = run(
        &[
            "connect",
            "--no-shutdown",
            "--idle-timeout",
            "1",
            "--proxy",
            url,
            echo,
        ],
        b"hi\n",
    );
    assert!(st.success(), "{err}");
    assert_eq!(out, b"hi\n", "{err}");
}

fn needs(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A python HTTP server answering `GET /` on a free port; returns it and the port.
fn http_server(dir: &std::path::Path) -> (Proc, u16) {
    std::fs::write(dir.join("index.html"), "hello through the proxy\n").unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
        .current_dir(dir);
    let mut p = Proc::spawn(cmd, None);
    let line = p.line();
    let port = line
        .split("port ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (p, port)
}

#[test]
#[ignore = "needs curl (apt-get install curl); .ci/run installs it and runs ignored tests"]
fn curl_uses_sockits_proxies() {
    assert!(needs("curl"));
    let dir = temp_dir("proxy-curl");
    let (_web, web) = http_server(&dir);
    let (_srv, ports) = services(
        &["socks5=tcp://127.0.0.1:0", "http-proxy=tcp://127.0.0.1:0"],
        2,
    );
    let url = format!("http://127.0.0.1:{web}/");
    for args in [
        vec![
            "-x".to_string(),
            format!("socks5h://127.0.0.1:{}", ports[0]),
        ],
        vec!["--socks4a".to_string(), format!("127.0.0.1:{}", ports[0])],
        vec![
            "-p".to_string(),
            "-x".to_string(),
            format!("http://127.0.0.1:{}", ports[1]),
        ],
    ] {
        let out = Command::new("curl")
            .args(["-s", "-m", "10"])
            .args(&args)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"hello through the proxy\n", "{args:?}");
    }
    // A wrong password: curl says the SOCKS5 proxy handshake failed (exit 97).
    let (_auth, aports) = services(
        &["--proxy-user", "alice:s3cret", "socks5=tcp://127.0.0.1:0"],
        1,
    );
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-x",
            &format!("socks5h://alice:nope@127.0.0.1:{}", aports[0]),
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(97));
}

#[test]
#[ignore = "needs microsocks (apt-get install microsocks); .ci/run installs it and runs ignored tests"]
fn connect_goes_through_microsocks_with_and_without_auth() {
    assert!(needs("microsocks"));
    let (_srv, ports) = services(&["echo=tcp://127.0.0.1:0", "daytime=tcp://127.0.0.1:0"], 2);
    for auth in [false, true] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if auth {
            cmd.args(["-u", "bob", "-P", "pw"]);
        }
        let _ms = Proc::spawn(cmd, Some(Stdio::null()));
        let url = if auth {
            format!("socks5h://bob:pw@127.0.0.1:{port}")
        } else {
            format!("socks5h://127.0.0.1:{port}")
        };
        // microsocks prints nothing when ready: try until it answers (bounded).
        let end = std::time::Instant::now() + DEADLINE;
        loop {
            let (st, _, err) = run(
                &[
                    "connect",
                    "-w",
                    "1",
                    "--proxy",
                    &url,
                    &format!("127.0.0.1:{}", ports[0]),
                ],
                b"",
            );
            if st.success() {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "microsocks never answered: {err}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let echoed = first_line_through(&url, &format!("127.0.0.1:{}", ports[0]), b"hi\n");
        assert_eq!(echoed.as_deref(), Some("hi\n"));
        // microsocks ends the tunnel at the client's half-close: piped stdin that ends gets
        // no answer, and sockit says why; --no-shutdown keeps the tunnel open for it.
        let echo = format!("127.0.0.1:{}", ports[0]);
        let (st, out, err) = run(&["connect", "--proxy", &url, &echo], b"hi\n");
        assert!(st.success(), "{err}");
        // (The echo may win the race with microsocks's close: then it is there.)
        assert!(
            out == b"hi\n" || (out.is_empty() && err.contains("--no-shutdown")),
            "{out:?} {err}"
        );
        echo_kept_open_through(&url, &echo);
        // A server that speaks first, by name (resolved by microsocks).
        let date = first_line_through(&url, &format!("localhost:{}", ports[1]), b"").unwrap();
        assert!(date.contains(&chrono_year()), "{date}");
    }
}

#[test]
#[ignore = "needs ncat (apt-get install ncat); .ci/run installs it and runs ignored tests"]
fn connect_goes_through_ncats_http_proxy_with_auth() {
    assert!(needs("ncat"));
    let (_srv, ports) = services(&["daytime=tcp://127.0.0.1:0", "echo=tcp://127.0.0.1:0"], 2);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("ncat");
    cmd.args([
        "-l",
        "-k",
        "--proxy-type",
        "http",
        "--proxy-auth",
        "carol:pw",
        "127.0.0.1",
        &port.to_string(),
    ]);
    let _nc = Proc::spawn(cmd, Some(Stdio::null()));
    // ncat drops the answer at our half-close: stdin stays open until the line is in.
    let url = format!("http://carol:pw@127.0.0.1:{port}");
    let target = format!("127.0.0.1:{}", ports[0]);
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(date) = first_line_through(&url, &target, b"") {
            assert!(date.contains(&chrono_year()), "{date}");
            break;
        }
        assert!(std::time::Instant::now() < end, "ncat never answered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // ncat's proxy ends the tunnel at our half-close too: --no-shutdown gets the echo with
    // stdin piped and ended.
    let echo = format!("127.0.0.1:{}", ports[1]);
    echo_kept_open_through(&url, &echo);
    let (st, _, err) = run(
        &[
            "connect",
            "--proxy",
            &format!("http://carol:bad@127.0.0.1:{port}"),
            &format!("127.0.0.1:{}", ports[0]),
        ],
        b"",
    );
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("407"), "{err}");
}
