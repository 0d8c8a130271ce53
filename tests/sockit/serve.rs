//! `sockit serve`: every service over TCP and UDP against python3 clients, the tutorial's
//! time client, rdate (ignored unless installed: `.ci/run` installs it), caps and limits.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `sockit serve ARGS` and maps "service/proto" to its port, from the readiness lines.
fn serve(args: &[&str]) -> (Proc, HashMap<String, u16>) {
    let mut cmd = sockit();
    cmd.arg("serve").args(args);
    let mut p = Proc::spawn(cmd, Some(Stdio::null()));
    let mut ports = HashMap::new();
    for arg in args.iter().filter(|a| a.contains('=')) {
        let (service, _) = arg.split_once('=').unwrap();
        let line = p.stderr_line(&format!("{service} listening on "));
        let ep = line.split(" listening on ").nth(1).unwrap().to_string();
        let proto = ep.split("://").next().unwrap().to_string();
        let port = ep.rsplit(':').next().unwrap().parse().unwrap_or(0);
        ports.insert(format!("{service}/{proto}"), port);
    }
    (p, ports)
}

/// python3 query.py: (length, bytes) of the answer.
fn query(proto: &str, port: u16, payload: &str, max: Option<usize>) -> (usize, Vec<u8>) {
    let port = port.to_string();
    let max = max.map(|m| m.to_string());
    let mut args = vec![proto, port.as_str(), payload];
    if let Some(m) = &max {
        args.push(m);
    }
    let mut py = python("query.py", &args, Some(Stdio::null()));
    let line = py.line();
    assert!(py.wait().success());
    let mut parts = line.split_whitespace();
    let len: usize = parts.next().unwrap().parse().unwrap();
    let hex = parts.next().unwrap_or("");
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    (len, bytes)
}

const ALL: &[&str] = &[
    "echo=tcp://127.0.0.1:0",
    "echo=udp://127.0.0.1:0",
    "discard=tcp://127.0.0.1:0",
    "chargen=tcp://127.0.0.1:0",
    "chargen=udp://127.0.0.1:0",
    "daytime=tcp://127.0.0.1:0",
    "daytime=udp://127.0.0.1:0",
    "time=tcp://127.0.0.1:0",
    "time=udp://127.0.0.1:0",
];

#[test]
fn every_service_over_tcp_and_udp() {
    let (_srv, p) = serve(&[ALL, &["--utc"]].concat());
    assert_eq!(query("tcp", p["echo/tcp"], "echo me", None).1, b"echo me");
    assert_eq!(query("udp", p["echo/udp"], "echo me", None).1, b"echo me");
    assert_eq!(query("tcp", p["discard/tcp"], "into the void", None).0, 0);

    let (n, data) = query("tcp", p["chargen/tcp"], "", Some(74 * 3));
    assert_eq!(n, 74 * 3);
    let text = String::from_utf8(data).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0].len(), 72);
    assert_eq!(&lines[1][..71], &lines[0][1..]); // each line starts one character further
    let (n, _) = query("udp", p["chargen/udp"], "", None);
    assert!(n <= 512);

    let year = chrono_year();
    for proto in ["tcp", "udp"] {
        let (_, data) = query(proto, p[&format!("daytime/{proto}")], "", None);
        let text = String::from_utf8(data).unwrap();
        assert!(text.ends_with("\r\n") && text.contains(&year), "{text:?}");
        let (n, data) = query(proto, p[&format!("time/{proto}")], "", None);
        assert_eq!(n, 4);
        let secs = u64::from(u32::from_be_bytes(data.try_into().unwrap()));
        assert!(secs.abs_diff(now_since_1900()) < 5, "time is off: {secs}");
    }
}

#[test]
fn tutorial_time_client_gets_its_formats() {
    let (_srv, p) = serve(&["daytime=udp://127.0.0.1:0", "--utc"]);
    let port = p["daytime/udp"].to_string();
    let mut py = python("time_client.py", &[&port], None);
    py.write("%Y %m %d\n今天是%Y年%m月%d日\n%Q\n%H:%M\n".as_bytes());
    py.close_stdin();
    // The client prints its prompt, then "当前日期: " and the answer.
    let mut answer = || {
        let line = py.line();
        let (_, date) = line.split_once("当前日期: ").expect("an answer line");
        date.trim_end().to_string()
    };
    let year = chrono_year();
    let a = answer();
    assert!(a.starts_with(&format!("{year} ")) && a.len() == 10, "{a}");
    let b = answer();
    assert!(
        b.starts_with(&format!("今天是{year}年")) && b.ends_with('日'),
        "{b}"
    );
    let c = answer();
    assert!(
        c.starts_with("error: '%Q' is not a valid strftime format"),
        "{c}"
    );
    // The server went on after the bad format.
    let d = answer();
    assert_eq!(d.len(), "12:34".len(), "{d}");
    assert!(py.wait().success());
}

#[test]
fn sntp_answers_client_requests() {
    let (_srv, p) = serve(&["sntp=udp://127.0.0.1:0", "--stratum", "8"]);
    let mut py = python(
        "sntp_client.py",
        &[&p["sntp/udp"].to_string()],
        Some(Stdio::null()),
    );
    let line = py.line();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&f[..3], ["4", "8", "True"], "{line}");
    assert!(f[3].parse::<f64>().unwrap().abs() < 1.0, "{line}");
}

#[test]
fn three_hundred_concurrent_echo_clients() {
    let (srv, p) = serve(&["echo=tcp://127.0.0.1:0"]);
    let (fds_before, rss_before) = (open_fds(&srv), rss_kib(&srv));
    let mut clients: Vec<TcpStream> = (0..300)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", p["echo/tcp"])).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s
        })
        .collect();
    // Idle clients cost a task each, not a read buffer (16 KiB would show as ~10 KiB each).
    let end = Instant::now() + DEADLINE;
    while open_fds(&srv) < fds_before + 300 {
        assert!(
            Instant::now() < end,
            "the server did not accept 300 clients"
        );
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(200)); // let each client's task run up to its wait
    let grown = rss_kib(&srv).saturating_sub(rss_before);
    assert!(
        grown < 300 * 5,
        "300 idle clients grew the server by {grown} KiB"
    );
    // All 300 are connected at once; each gets its own answer back.
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("client {i:03}\n").as_bytes()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut buf = [0u8; 11];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, format!("client {i:03}\n").as_bytes());
    }
    // Quiet again after one short line: each holds a small buffer, not a bulk-sized one.
    let grown = rss_kib(&srv).saturating_sub(rss_before);
    assert!(
        grown < 300 * 8,
        "300 clients that sent a line grew the server by {grown} KiB"
    );
}

#[test]
fn udp_rate_limit_is_per_source() {
    let (_srv, p) = serve(&["echo=udp://127.0.0.1:0", "--udp-rate", "5"]);
    let count_answers = |sock: &UdpSocket, n: usize| {
        for i in 0..n {
            sock.send_to(format!("{i}").as_bytes(), ("127.0.0.1", p["echo/udp"]))
                .unwrap();
        }
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = 0;
        let mut buf = [0u8; 64];
        while sock.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    };
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let got = count_answers(&a, 40);
    // A burst of 5, plus what refills at 5/s while the test runs.
    let refill = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(got >= 5 && got <= 5 + refill, "got {got} answers");
    // Another source has its own budget (same IP here, so use the other loopback address).
    let b = UdpSocket::bind("127.0.0.2:0").unwrap();
    assert!(count_answers(&b, 3) == 3);
}

#[test]
fn unix_stream_and_datagram_services() {
    let dir = temp_dir("serve-unix");
    let stream_ep = format!("echo=unix:{}", dir.join("echo.sock").display());
    let dgram_ep = format!("time=unixgram:{}", dir.join("time.sock").display());
    let (mut srv, _) = serve(&[&stream_ep, &dgram_ep]);
    let (status, out, err) = run(&["connect", &stream_ep["echo=".len()..]], b"over unix\n");
    assert!(status.success(), "{err}");
    assert_eq!(out, b"over unix\n");
    let (status, out, err) = run(
        &[
            "connect",
            "--send",
            "",
            "--idle-timeout",
            "1",
            &dgram_ep["time=".len()..],
        ],
        b"",
    );
    assert!(status.success(), "{err}");
    assert_eq!(
        out.len(),
        5,
        "4 bytes and the newline connect adds: {out:?}"
    );
    srv.terminate();
    assert_eq!(
        srv.wait().code(),
        Some(143),
        "interrupted: exit 128 + SIGTERM"
    );
    assert!(!dir.join("echo.sock").exists() && !dir.join("time.sock").exists());
}

#[test]
fn bad_service_bindings_are_refused() {
    let (status, _, err) = run(&["serve", "gopher=tcp://127.0.0.1:0"], b"");
    assert_eq!(status.code(), Some(1));
    assert!(
        err.starts_with("sockit: unknown service 'gopher': services are echo"),
        "{err}"
    );
    let (status, _, err) = run(&["serve", "sntp=tcp://127.0.0.1:0"], b"");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("sntp runs over datagrams only"), "{err}");
    let (status, _, err) = run(&["serve", "echo"], b"");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("write SERVICE=ENDPOINT"), "{err}");
}

fn rdate(args: &[&str]) -> String {
    let out = std::process::Command::new("rdate")
        .args(args)
        .output()
        .expect("rdate is installed (apt-get install rdate)");
    assert!(
        out.status.success(),
        "rdate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs rdate (apt-get install rdate); .ci/run installs it and runs ignored tests"]
fn rdate_reads_time_and_sntp() {
    let (_srv, p) = serve(&[
        "time=tcp://127.0.0.1:0",
        "time=udp://127.0.0.1:0",
        "sntp=udp://127.0.0.1:0",
    ]);
    let year = chrono_year();
    for (flags, key) in [
        (vec!["-p"], "time/tcp"),
        (vec!["-p", "-u"], "time/udp"),
        (vec!["-n", "-p"], "sntp/udp"),
    ] {
        let port = p[key].to_string();
        let mut args = flags.clone();
        args.extend(["-o", &port, "127.0.0.1"]);
        let out = rdate(&args);
        assert!(out.contains(&year), "rdate {args:?}: {out}");
    }
}
