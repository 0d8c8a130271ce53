//! `sockit chat`: the protocol, nicks, every transport in one room, the safety rules and
//! shutdown, with std sockets and the tutorial's own Python clients as members.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `sockit chat ARGS`; returns it and the endpoints its readiness lines name.
fn chat(args: &[&str]) -> (Proc, Vec<String>) {
    let mut cmd = sockit();
    cmd.arg("chat").args(args);
    let mut p = Proc::spawn(cmd, Some(Stdio::null()));
    let count = args.iter().filter(|a| a.contains(':')).count().max(1);
    let eps = (0..count)
        .map(|_| {
            let line = p.stderr_line("chat listening on ");
            line.trim_start_matches("chat listening on ").to_string()
        })
        .collect();
    (p, eps)
}

fn port_of(ep: &str) -> u16 {
    ep.rsplit(':').next().unwrap().parse().unwrap()
}

/// A line client: what nc or telnet would be.
struct Member<S: Read + Write> {
    r: BufReader<S>,
    nick: String,
}

fn tcp(port: u16) -> Member<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    Member::join(s)
}

impl<S: Read + Write> Member<S> {
    fn join(s: S) -> Self {
        let mut m = Member {
            r: BufReader::new(s),
            nick: String::new(),
        };
        let welcome = m.line();
        assert!(welcome.starts_with("*** welcome, you are "), "{welcome}");
        m.nick = welcome["*** welcome, you are ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        m
    }

    fn send(&mut self, text: &str) {
        self.r.get_mut().write_all(text.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with('\n'), "connection ended or line cut: {l:?}");
        l.pop();
        l
    }

    /// Skips lines until one equals `want`; returns what was skipped.
    fn until(&mut self, want: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            let l = self.line();
            if l == want {
                return skipped;
            }
            skipped.push(l);
        }
    }

    /// Skips lines until one starts with `prefix`; returns it.
    fn until_starts(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line();
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
}

/// Reads to EOF (the server closed us).
fn rest<S: Read + Write>(m: &mut Member<S>) -> String {
    let mut s = String::new();
    m.r.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn members_see_joins_lines_and_leaves_never_their_own_lines() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    assert_ne!(a.nick, b.nick);
    assert!(a.nick.starts_with("guest") && b.nick.starts_with("guest"));
    assert_eq!(a.line(), format!("*** {} joined", b.nick));
    b.send("hello everyone\n");
    assert_eq!(a.line(), format!("<{}> hello everyone", b.nick));
    a.send("hi\r\n");
    assert_eq!(b.line(), format!("<{}> hi", a.nick));
    // b's next line is the answer to /who: its own line never came back to it.
    b.send("/who\n");
    let who = b.line();
    assert!(who.starts_with("*** 2 here: "), "{who}");
    b.r.get_ref().shutdown(Shutdown::Both).unwrap();
    assert_eq!(a.line(), format!("*** {} left (connection closed)", b.nick));
}

#[test]
fn commands_do_what_help_says() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    let mut c = tcp(port);
    a.until(&format!("*** {} joined", c.nick));
    b.until(&format!("*** {} joined", c.nick));

    a.send("/help\n");
    let help: Vec<String> = (0..6).map(|_| a.line()).collect();
    for cmd in ["/nick", "/who", "/msg", "/me", "/quit", "bye"] {
        assert!(
            help.iter().any(|l| l.contains(cmd)),
            "{cmd} not in {help:?}"
        );
    }

    a.send("/nick 小明\n");
    assert_eq!(a.line(), "*** you are now 小明");
    assert_eq!(b.line(), format!("*** {} is now 小明", a.nick));
    assert_eq!(c.line(), format!("*** {} is now 小明", a.nick));
    a.send("/me waves\n");
    assert_eq!(b.line(), "* 小明 waves");
    assert_eq!(c.line(), "* 小明 waves");

    // Private: only the addressee sees it; the sender gets a confirmation.
    a.send(&format!("/msg {} just for you\n", b.nick.to_uppercase()));
    assert_eq!(b.line(), "<小明> (private) just for you");
    assert_eq!(a.line(), format!("*** to {}: just for you", b.nick));
    a.send("/msg nobody hi\n");
    assert!(a.line().starts_with("! nobody here is called nobody"));
    a.send("/msg\n");
    assert_eq!(a.line(), "! usage: /msg NICK text");

    a.send("/frobnicate\n");
    assert!(a.line().starts_with("! unknown command /frobnicate"));
    a.send("//not a command\n");
    assert_eq!(b.line(), "<小明> /not a command");
    assert_eq!(c.line(), "<小明> /not a command");

    c.send("/who\n");
    let who = c.line();
    assert!(
        who.starts_with("*** 3 here: ") && who.contains("小明"),
        "{who}"
    );

    b.send("/quit off to lunch\n");
    assert_eq!(b.line(), "*** bye");
    assert_eq!(rest(&mut b), "");
    assert_eq!(a.line(), format!("*** {} left (off to lunch)", b.nick));
    c.send("bye\n");
    c.until("*** bye");
    assert_eq!(a.line(), format!("*** {} left (bye)", c.nick));
    // "bye" inside a sentence is just text.
    let mut d = tcp(port);
    a.until(&format!("*** {} joined", d.nick));
    d.send("bye for now, said nobody\n");
    assert_eq!(a.line(), format!("<{}> bye for now, said nobody", d.nick));
}

#[test]
fn nicks_are_checked_and_never_shared() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    a.send("/nick Alice\n");
    a.until("*** you are now Alice");
    b.until(&format!("*** {} is now Alice", a.nick));
    for (wanted, why) in [
        ("alice", "! the nick alice is taken"),
        ("ALICE", "! the nick ALICE is taken"),
        ("a b", "! ' ' cannot be in a nick"),
        ("<root>", "! '<' cannot be in a nick"),
        // Look-alikes of a taken nick are the same nick: Cyrillic А, full-width letters.
        ("\u{410}lice", "! the nick \u{410}lice is taken"),
        (
            "\u{ff21}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
            "! the nick \u{ff21}\u{ff4c}\u{ff49}\u{ff43}\u{ff45} is taken",
        ),
        // An invisible character is refused and named, never printed.
        ("Al\u{200b}ice", "! U+200B cannot be in a nick"),
        (&"x".repeat(33), "! a nick has at most 32 characters"),
        ("", "! a nick needs at least one character"),
    ] {
        b.send(&format!("/nick {wanted}\n"));
        let l = b.line();
        assert!(l.starts_with(why), "{wanted:?}: {l}");
    }
    // The guest names skip what somebody took by hand.
    let next_guest = format!("guest{}", b.nick[5..].parse::<u32>().unwrap() + 1);
    b.send(&format!("/nick {next_guest}\n"));
    assert_eq!(b.line(), format!("*** you are now {next_guest}"));
    let c = tcp(port);
    assert_ne!(c.nick.to_lowercase(), next_guest);
    // Free again once its owner is gone (unread lines make the close a reset).
    drop(a);
    let left = b.until_starts("*** Alice left (");
    assert!(left.ends_with("(connection closed)") || left.ends_with("(connection reset)"));
    b.send("/nick alice\n");
    b.until("*** you are now alice");
    b.send("/nick 王小明_2-x\n");
    b.until("*** you are now 王小明_2-x");
}

#[test]
fn tcp_udp_and_unix_members_share_one_room() {
    let dir = temp_dir("chat-kinds");
    let sock = dir.join("chat.sock");
    let unix_ep = format!("unix:{}", sock.display());
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", &unix_ep]);
    let (tport, uport) = (port_of(&eps[0]), port_of(&eps[1]));
    let mut t = tcp(tport);
    let us = UnixStream::connect(&sock).unwrap();
    us.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut x = Member::join(us);
    t.until(&format!("*** {} joined", x.nick));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 2048];
    let mut recv = || {
        let n = udp.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    // An address proves itself first: its first datagram only earns it a code, and is
    // applied once the address is proved (a `/nick` first is not lost).
    udp.send_to(b"/nick udpuser\n", ("127.0.0.1", uport))
        .unwrap();
    let code = join_code(&recv());
    // One datagram may hold several lines; the proof comes first.
    udp.send_to(
        format!("/join {code}\nfirst\nsecond").as_bytes(),
        ("127.0.0.1", uport),
    )
    .unwrap();
    let welcome = recv();
    let unick = welcome["*** welcome, you are ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(t.line(), format!("*** {unick} joined"));
    assert_eq!(t.line(), format!("*** {unick} is now udpuser"));
    assert_eq!(recv(), "*** you are now udpuser\n");
    let unick = "udpuser".to_string();
    assert_eq!(t.line(), format!("<{unick}> first"));
    assert_eq!(t.line(), format!("<{unick}> second"));
    x.until(&format!("<{unick}> second"));

    t.send("from tcp\nand again\n");
    // Every room line is a datagram of its own.
    assert_eq!(recv(), format!("<{}> from tcp\n", t.nick));
    assert_eq!(recv(), format!("<{}> and again\n", t.nick));
    assert_eq!(x.line(), format!("<{}> from tcp", t.nick));
    x.send("from unix\n");
    assert_eq!(recv(), format!("<{}> from unix\n", x.nick));
    t.until(&format!("<{}> from unix", x.nick));

    udp.send_to(b"bye", ("127.0.0.1", uport)).unwrap();
    assert_eq!(recv(), "*** bye\n");
    assert_eq!(t.line(), format!("*** {unick} left (bye)"));
    // A new datagram from the same address proves it again, then joins again.
    udp.send_to(b"back again\n", ("127.0.0.1", uport)).unwrap();
    let code = join_code(&recv());
    udp.send_to(format!("/join {code}").as_bytes(), ("127.0.0.1", uport))
        .unwrap();
    assert!(recv().starts_with("*** welcome, you are "));
    let back = t.until_starts("*** ");
    assert!(back.ends_with(" joined"), "{back}");
    assert!(t.line().ends_with("> back again"));
}

/// The nick in a `* NICK joined` notice.
fn joined_nick(line: &str) -> String {
    let nick = line
        .strip_prefix("*** ")
        .and_then(|l| l.strip_suffix(" joined"));
    nick.unwrap_or_else(|| panic!("not a join notice: {line:?}"))
        .to_string()
}

/// The code in an answer to an unproven address (`... /join CODE ...`).
fn join_code(answer: &str) -> String {
    let after = answer
        .split("/join ")
        .nth(1)
        .unwrap_or_else(|| panic!("no code in {answer:?}"));
    after.split_whitespace().next().unwrap().to_string()
}

/// A forged source cannot use the room as a reflector: an unproven address gets nothing but
/// its code, never more than 3x the bytes it sent, hears no room traffic, and nobody sees it.
#[test]
fn unproven_udp_addresses_hear_nothing_but_their_code() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "--rate", "0"]);
    let (tport, uport) = (port_of(&eps[0]), port_of(&eps[1]));
    let mut t = tcp(tport);
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // One byte earns three: not even the shortest answer fits.
    victim.send_to(b"x", ("127.0.0.1", uport)).unwrap();
    let mut sent = 1usize;
    for i in 0..20 {
        t.send(&format!("room traffic {i}\n"));
    }
    let mut got = 0usize;
    let mut buf = [0u8; 2048];
    while let Ok(n) = victim.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            text.contains("/join "),
            "room traffic reached an unproven address: {text}"
        );
        got += n;
    }
    assert_eq!(got, 0, "1 byte in, {got} out");
    // More bytes earn an answer, still within 3x.
    for _ in 0..5 {
        victim.send_to(b"hello", ("127.0.0.1", uport)).unwrap();
        sent += 5;
    }
    while let Ok(n) = victim.recv(&mut buf) {
        got += n;
    }
    assert!(got > 0, "an address that wrote 26 bytes gets its code");
    assert!(got <= 3 * sent, "{got} bytes out for {sent} in");
    // Nobody in the room saw it: the next line the tcp member gets is its own room's.
    t.send("/who\n");
    let who = t.line();
    assert!(who.starts_with("*** 1 here"), "{who}");
}

/// `--udp-open` on a trusted network: the first datagram joins, as before the proof.
#[test]
fn udp_open_skips_the_proof() {
    let (_room, eps) = chat(&["udp://127.0.0.1:0", "--udp-open"]);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(DEADLINE)).unwrap();
    udp.send_to(b"hi", ("127.0.0.1", port_of(&eps[0]))).unwrap();
    let mut buf = [0u8; 2048];
    let n = udp.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("*** welcome, you are guest1"));
}

#[test]
fn datagram_members_leave_after_the_idle_timeout() {
    let (_room, eps) = chat(&[
        "tcp://127.0.0.1:0",
        "udp://127.0.0.1:0",
        "--udp-open",
        "--idle-timeout",
        "0.5",
    ]);
    let mut t = tcp(port_of(&eps[0]));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hi\n", ("127.0.0.1", port_of(&eps[1])))
        .unwrap();
    let unick = joined_nick(&t.line());
    assert_eq!(t.line(), format!("<{unick}> hi"));
    let started = Instant::now();
    let l = t.line();
    assert_eq!(l, format!("*** {unick} left (idle timeout)"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_tutorials_clients_join_the_room() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0"]);
    let (tport, uport) = (port_of(&eps[0]), port_of(&eps[1]));
    let mut t = tcp(tport);
    // The tutorial's chat client sends each message without a newline.
    let mut py = python("chat_client.py", &[&tport.to_string()], None);
    let pnick = joined_nick(&t.line());
    py.write("你好，服务器\n".as_bytes());
    assert_eq!(t.line(), format!("<{pnick}> 你好，服务器"));
    py.write(b"bye\n");
    assert_eq!(t.line(), format!("*** {pnick} left (bye)"));
    assert!(py.wait().success());
    // The tutorial's UDP client sends b'hello' and prints the first datagram back: the line
    // that proves its address (15 bytes for its 5).
    let mut udp = python("udp_client.py", &[&uport.to_string()], Some(Stdio::null()));
    let out = udp.line();
    assert!(out.starts_with("/join "), "{out}");
    assert!(udp.wait().success());
    // On a trusted network (--udp-open) it is a member at once.
    let (_open, eps) = chat(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "--udp-open"]);
    let (tport, uport) = (port_of(&eps[0]), port_of(&eps[1]));
    let mut t = tcp(tport);
    let mut udp = python("udp_client.py", &[&uport.to_string()], Some(Stdio::null()));
    let out = udp.line();
    assert!(out.starts_with("*** welcome, you are guest"), "{out}");
    assert!(udp.wait().success());
    assert!(t.line().ends_with(" joined"));
    assert!(t.line().ends_with("> hello"));
}

#[test]
fn escapes_controls_and_bad_utf8_never_reach_a_screen() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "--rate", "0"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    b.r.get_mut()
        .write_all(b"\x1b[2J\x1b[31mred\x1b[0m \x1b]0;owned\x07title\x07\x08 ok\xff\xfe\n")
        .unwrap();
    a.line();
    let mut raw = Vec::new();
    a.r.read_until(b'\n', &mut raw).unwrap();
    let got = String::from_utf8(raw).expect("valid UTF-8 only");
    assert_eq!(got, format!("<{}> red title ok\u{fffd}\u{fffd}\n", b.nick));
    assert!(!got.bytes().any(|c| c < 0x20 && c != b'\n'));
    // A nick cannot smuggle them in either.
    b.send("/nick \x1b[31mevil\n");
    assert_eq!(b.line(), "*** you are now evil");
}

#[test]
fn long_lines_are_refused_and_the_member_stays() {
    let (room, eps) = chat(&["tcp://127.0.0.1:0", "--max-line", "100", "--rate", "0"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    a.line();
    b.send(&format!("{}\nshort\n", "x".repeat(101)));
    assert_eq!(
        b.line(),
        "! line too long (over 100 bytes); it was not sent"
    );
    assert_eq!(a.line(), format!("<{}> short", b.nick));
    // A line that never ends cannot grow the server: 64 MiB without a newline.
    let rss_before = rss_kib(&room);
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..64 {
        b.r.get_mut().write_all(&chunk).unwrap();
    }
    b.send("\nstill here\n");
    assert_eq!(
        b.line(),
        "! line too long (over 100 bytes); it was not sent"
    );
    assert_eq!(a.line(), format!("<{}> still here", b.nick));
    let grown = rss_kib(&room).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "server grew by {grown} KiB");
}

#[test]
fn a_member_that_never_reads_is_dropped_and_nobody_waits_for_it() {
    let (room, eps) = chat(&["tcp://127.0.0.1:0", "--rate", "0"]);
    let port = port_of(&eps[0]);
    let mut reader = tcp(port);
    let stuck = tcp(port); // joins, then never reads again
    let mut sender = tcp(port);
    reader.until(&format!("*** {} joined", sender.nick));
    let rss_before = rss_kib(&room);
    // 16 MiB of lines: far more than the stuck member's queue and socket buffers hold.
    let line = format!("{}\n", "z".repeat(1000));
    let count = 16 * 1024;
    let writer = std::thread::spawn(move || {
        let block = line.repeat(64);
        for _ in 0..count / 64 {
            sender.r.get_mut().write_all(block.as_bytes()).unwrap();
        }
        sender
    });
    let mut got = 0;
    let mut dropped = false;
    while got < count {
        let l = reader.line();
        if l.ends_with(&"z".repeat(1000)) {
            got += 1;
        } else if l == format!("*** {} left (too slow)", stuck.nick) {
            dropped = true;
        } else {
            panic!("unexpected line {l:.80}");
        }
    }
    writer.join().unwrap();
    assert!(dropped, "the stuck member was never dropped");
    let grown = rss_kib(&room).saturating_sub(rss_before);
    assert!(grown < 32 * 1024, "server grew by {grown} KiB");
}

#[test]
fn a_fast_sender_is_slowed_down_not_cut() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "--rate", "50"]);
    let port = port_of(&eps[0]);
    let mut a = tcp(port);
    let mut b = tcp(port);
    a.line();
    let lines: String = (0..200).map(|i| format!("line {i}\n")).collect();
    let started = Instant::now();
    b.send(&lines);
    for i in 0..200 {
        assert_eq!(a.line(), format!("<{}> line {i}", b.nick));
    }
    // A burst of 100 goes at once, the other 100 at 50 a second.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
}

#[test]
fn two_thousand_members_get_one_line() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0"]);
    let port = port_of(&eps[0]);
    let members: Vec<Member<TcpStream>> = (0..2000).map(|_| tcp(port)).collect();
    let mut sender = tcp(port);
    sender.send("hello, all 2000 of you\n");
    let want = format!("<{}> hello, all 2000 of you", sender.nick);
    for mut m in members {
        m.until(&want);
    }
}

#[test]
fn max_members_and_access_rules_turn_clients_away() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "--max-members", "2"]);
    let port = port_of(&eps[0]);
    let _a = tcp(port);
    let _b = tcp(port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "! the room is full (2 members); try again later\n");

    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "--deny", "127.0.0.0/8"]);
    let mut d = TcpStream::connect(("127.0.0.1", port_of(&eps[0]))).unwrap();
    d.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut s = String::new();
    let _ = d.read_to_string(&mut s);
    assert_eq!(s, "");
}

#[test]
fn shutdown_tells_every_member_and_removes_the_socket_file() {
    shutdown_by_signal("TERM");
}

/// SIGHUP (a closed terminal, a service manager's reload) is SIGTERM: the notice goes out
/// and the socket file goes away.
#[test]
fn sighup_shuts_down_like_sigterm() {
    shutdown_by_signal("HUP");
}

fn shutdown_by_signal(signal: &str) {
    let dir = temp_dir(&format!("chat-shutdown-{signal}"));
    let sock = dir.join("room.sock");
    let unix_ep = format!("unix:{}", sock.display());
    let (mut room, eps) = chat(&["tcp://127.0.0.1:0", &unix_ep]);
    let mut a = tcp(port_of(&eps[0]));
    let us = UnixStream::connect(&sock).unwrap();
    us.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut b = Member::join(us);
    a.line();
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(room.child.id().to_string())
        .status();
    assert_eq!(a.until("*** server shutting down"), Vec::<String>::new());
    assert_eq!(rest(&mut a), "");
    b.until("*** server shutting down");
    let code = match signal {
        "HUP" => 129,
        "INT" => 130,
        _ => 143,
    };
    assert_eq!(room.wait().code(), Some(code), "exit 128 + SIG{signal}");
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
#[ignore = "needs OpenBSD netcat (apt-get install netcat-openbsd); .ci/run installs it and runs ignored tests"]
fn netcat_is_a_member_like_any_other() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0"]);
    let port = port_of(&eps[0]);
    let mut t = tcp(port);
    let mut cmd = std::process::Command::new("nc");
    cmd.args(["-N", "127.0.0.1", &port.to_string()]);
    let mut nc = Proc::spawn(cmd, None);
    let welcome = nc.line();
    assert!(
        welcome.starts_with("*** welcome, you are guest"),
        "{welcome}"
    );
    let ncnick = joined_nick(&t.line());
    nc.write("大家好 from nc\n".as_bytes());
    assert_eq!(t.line(), format!("<{ncnick}> 大家好 from nc"));
    t.send("hi nc\n");
    assert_eq!(nc.line(), format!("<{}> hi nc\n", t.nick));
    nc.close_stdin();
    assert_eq!(t.line(), format!("*** {ncnick} left (connection closed)"));
}

/// A datagram member whose address answers with ICMP port unreachable is dropped at once,
/// not after the idle timeout.
#[test]
fn an_unreachable_datagram_member_is_dropped_at_once() {
    let (_room, eps) = chat(&["tcp://127.0.0.1:0", "udp://127.0.0.1:0", "--udp-open"]);
    let (tport, uport) = (port_of(&eps[0]), port_of(&eps[1]));
    let mut t = tcp(tport);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"hi\n", ("127.0.0.1", uport)).unwrap();
    let unick = joined_nick(&t.line());
    assert_eq!(t.line(), format!("<{unick}> hi"));
    drop(udp);
    // Each line to the gone member draws an ICMP port unreachable; the kernel may drop one
    // under its ICMP rate limit when other tests make many at once: say more, bounded.
    t.r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let want = format!("*** {unick} left (unreachable)");
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        t.send("are you there?\n");
        let mut l = String::new();
        if t.r.read_line(&mut l).is_ok() && l.trim_end() == want {
            break;
        }
        assert!(std::time::Instant::now() < end, "never dropped: last {l:?}");
    }
}
