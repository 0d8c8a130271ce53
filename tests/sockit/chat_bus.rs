//! One room across nodes through a real `redis-server` (started here on a free port, stopped
//! by PID): lines exactly once, `/who`, `/msg`, nicks unique across nodes, a node killed, Redis
//! killed and restarted. Ignored unless redis-server is installed (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A redis-server of this test on `port` (a fresh one on a free port when `None`).
fn redis(port: Option<u16>) -> (Proc, u16) {
    let port = port.unwrap_or_else(free_port);
    redis_with(port, &["--port", &port.to_string()])
}

/// redis-server with `args` (its ports among them), once it takes connections on `port`.
fn redis_with(port: u16, args: &[&str]) -> (Proc, u16) {
    let mut cmd = Command::new("redis-server");
    cmd.args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    let p = Proc::spawn(cmd, Some(Stdio::null()));
    let end = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (p, port)
}

/// A chat node on the bus; its port.
fn node(redis_port: u16) -> (Proc, u16) {
    let mut cmd = sockit();
    cmd.args([
        "chat",
        "-v",
        "--rate",
        "0",
        "--bus",
        &format!("redis://127.0.0.1:{redis_port}"),
        "--room",
        "test",
        "tcp://127.0.0.1:0",
    ]);
    let mut p = Proc::spawn(cmd, Some(Stdio::null()));
    // The readiness line comes once the node has joined the room on the bus.
    let port = p.port();
    (p, port)
}

/// A member who joins right after both nodes said they are ready is seen across, every
/// time (the readiness line waits for the node to be on the bus).
#[test]
#[ignore = "needs redis-server (apt-get install redis-server); .ci/run installs it and runs ignored tests"]
fn a_member_who_joins_right_after_readiness_is_seen_across() {
    let (_redis, rport) = redis(None);
    for _ in 0..5 {
        let (_na, pa) = node(rport);
        let (_nb, pb) = node(rport);
        let mut b = Member::join(pb);
        let a = Member::join(pa);
        drop(a);
        b.until(" joined");
    }
}

struct Member {
    out: TcpStream,
    lines: BufReader<TcpStream>,
    seen: Vec<String>,
}

impl Member {
    fn join(port: u16) -> Member {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut m = Member {
            out: s.try_clone().unwrap(),
            lines: BufReader::new(s),
            seen: Vec::new(),
        };
        m.until("*** welcome");
        m
    }

    fn say(&mut self, text: &str) {
        self.out.write_all(format!("{text}\n").as_bytes()).unwrap();
    }

    /// Reads lines until one contains `text`; returns it.
    fn until(&mut self, text: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self
                .lines
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("waiting for {text:?}: {e}; seen {:?}", self.seen));
            assert!(
                n > 0,
                "closed while waiting for {text:?}; seen {:?}",
                self.seen
            );
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    fn nick(&mut self, nick: &str) {
        self.say(&format!("/nick {nick}"));
        self.until(&format!("*** you are now {nick}"));
    }
}

/// Waits until every node's roster lists `want` members in all (the rosters go out every 3 s
/// and at each join or rename), `named` among them.
fn wait_for_roster(m: &mut Member, want: usize) {
    wait_for_roster_with(m, want, &[]);
}

fn wait_for_roster_with(m: &mut Member, want: usize, named: &[&str]) {
    let end = Instant::now() + DEADLINE;
    loop {
        m.say("/who");
        let who = m.until(" here: ");
        if who.starts_with(&format!("*** {want} here")) && named.iter().all(|n| who.contains(n)) {
            return;
        }
        assert!(Instant::now() < end, "roster never reached {want}: {who}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); .ci/run installs it and runs ignored tests"]
fn three_nodes_are_one_room_with_lines_exactly_once() {
    let (_redis, rport) = redis(None);
    let nodes: Vec<(Proc, u16)> = (0..3).map(|_| node(rport)).collect();
    let mut a = Member::join(nodes[0].1);
    let mut b = Member::join(nodes[1].1);
    let mut c = Member::join(nodes[2].1);
    a.nick("alice");
    b.nick("bob");
    c.nick("carol");
    wait_for_roster_with(&mut a, 3, &["alice", "bob", "carol"]);
    wait_for_roster_with(&mut c, 3, &["alice", "bob", "carol"]);
    // Every line reaches every other member once, in the sender's order.
    for i in 0..50 {
        a.say(&format!("line {i} from alice"));
    }
    a.say("/me is done");
    for m in [&mut b, &mut c] {
        m.until("* alice is done");
        for i in 0..50 {
            let want = format!("<alice> line {i} from alice\n");
            assert_eq!(
                m.seen.iter().filter(|l| **l == want).count(),
                1,
                "{want:?} in {:?}",
                m.seen
            );
        }
        let order: Vec<&String> = m
            .seen
            .iter()
            .filter(|l| l.starts_with("<alice> line "))
            .collect();
        assert!(order.windows(2).all(|w| {
            let n = |l: &str| l.split(' ').nth(2).unwrap().parse::<u32>().unwrap();
            n(w[0]) < n(w[1])
        }));
    }
    // /who shows every node's members; /msg reaches a member on another node.
    a.say("/who");
    let who = a.until(" here: ");
    assert!(
        who.contains("alice") && who.contains("bob") && who.contains("carol"),
        "{who}"
    );
    a.say("/msg carol psst");
    c.until("<alice> (private) psst");
    // A nick held on another node is refused.
    b.say("/nick carol");
    b.until("! the nick carol is taken");
    // The sender never gets its own lines back through the bus.
    a.say("/msg alice self");
    a.until("(private) self");
    assert!(
        !a.seen.iter().any(|l| l.starts_with("<alice> line")),
        "{:?}",
        a.seen
    );
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); .ci/run installs it and runs ignored tests"]
fn a_killed_node_is_announced_and_its_nicks_freed() {
    // The bound must hold every time, not once in a while.
    for _ in 0..3 {
        killed_node_round();
    }
}

fn killed_node_round() {
    let (_redis, rport) = redis(None);
    let (mut na, pa) = node(rport);
    let (_nb, pb) = node(rport);
    let mut a = Member::join(pa);
    let mut b = Member::join(pb);
    a.nick("alice");
    wait_for_roster_with(&mut b, 2, &["alice"]);
    let killed = Instant::now();
    let _ = Command::new("kill")
        .args(["-KILL", &na.child.id().to_string()])
        .status();
    let _ = na.child.wait();
    drop(a);
    b.until("*** alice left (node lost)");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );
    // Its nick is free again once its lease has run out.
    let end = Instant::now() + DEADLINE;
    loop {
        b.say("/nick alice");
        let l = b.until("alice");
        if l.contains("you are now alice") {
            break;
        }
        assert!(Instant::now() < end, "alice never became free: {l}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); .ci/run installs it and runs ignored tests"]
fn redis_killed_and_restarted_cuts_the_room_off_and_back() {
    let (mut redis_a, rport) = redis(None);
    let (_na, pa) = node(rport);
    let (_nb, pb) = node(rport);
    let mut a = Member::join(pa);
    let mut b = Member::join(pb);
    a.nick("alice");
    b.nick("bob");
    wait_for_roster(&mut a, 2);
    let _ = Command::new("kill")
        .args(["-KILL", &redis_a.child.id().to_string()])
        .status();
    let _ = redis_a.child.wait();
    a.until("the room is cut off");
    b.until("the room is cut off");
    // Each node goes on serving its own members meanwhile.
    let mut a2 = Member::join(pa);
    a2.say("still here");
    a.until("still here");
    let (_redis_b, _) = redis(Some(rport));
    a.until("the room is whole again");
    b.until("the room is whole again");
    wait_for_roster(&mut b, 3);
    a.say("after the restart");
    b.until("<alice> after the restart");
}

#[test]
#[ignore = "needs redis-server (apt-get install redis-server); .ci/run installs it and runs ignored tests"]
fn a_rediss_bus_is_tls_with_sockits_own_trust() {
    let port = free_port();
    let certs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certs");
    let cert = |f: &str| certs.join(f).display().to_string();
    let _redis = redis_with(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert("localhost.pem"),
            "--tls-key-file",
            &cert("localhost.key"),
            "--tls-ca-cert-file",
            &cert("ca.pem"),
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://localhost:{port}");
    let start = |ca: &str| {
        let mut c = sockit();
        c.args([
            "chat",
            "-v",
            "--bus",
            &url,
            "--ca",
            ca,
            "--room",
            "tls",
            "tcp://127.0.0.1:0",
        ]);
        let mut p = Proc::spawn(c, Some(Stdio::null()));
        let port = p.port();
        (p, port)
    };
    let (na, pa) = start(&cert("ca.pem"));
    assert!(
        na.err_seen.iter().any(|l| l.contains("bus connected")),
        "ready before joined"
    );
    let (nb, pb) = start(&cert("ca.pem"));
    assert!(
        nb.err_seen.iter().any(|l| l.contains("bus connected")),
        "ready before joined"
    );
    let mut a = Member::join(pa);
    let mut b = Member::join(pb);
    a.nick("alice");
    wait_for_roster(&mut b, 2);
    a.say("over tls");
    b.until("<alice> over tls");
    // A node that does not trust the server's certificate stays cut off, and says why.
    let (nc, _) = start(&cert("stranger.pem"));
    assert!(
        nc.err_seen
            .iter()
            .any(|l| l.contains("the bus is unreachable")),
        "{:?}",
        nc.err_seen
    );
}

#[test]
#[ignore = "needs redis-server and OpenBSD nc; .ci/run installs them and runs ignored tests"]
fn nc_members_talk_across_nodes() {
    let (_redis, rport) = redis(None);
    let (_na, pa) = node(rport);
    let (_nb, pb) = node(rport);
    let mut a = Member::join(pa);
    a.nick("alice");
    let mut nc = Command::new("nc");
    nc.args(["127.0.0.1", &pb.to_string()]);
    let mut nc = Proc::spawn(nc, None);
    // Other members' notices may come first: read until the line wanted.
    let nc_until = |nc: &mut Proc, want: &str| loop {
        if nc.line().contains(want) {
            break;
        }
    };
    nc_until(&mut nc, "*** welcome");
    nc.write(b"/nick ncuser\n");
    nc_until(&mut nc, "*** you are now ncuser");
    wait_for_roster_with(&mut a, 2, &["ncuser"]);
    a.say("hello nc");
    nc_until(&mut nc, "<alice> hello nc");
    nc.write(b"hello alice\n");
    a.until("<ncuser> hello alice");
}
