//! Drives the real binary and real peers: spawn, wait for the readiness line, read with
//! deadlines. Every wait here has a deadline; none is a synchronisation sleep.

#![allow(dead_code)] // reason: each test uses a different subset of these helpers

pub mod fault;
pub mod tmux;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The watchdog for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn sockit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockit"))
}

pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

/// A running child whose stdout and stderr are read by threads into line channels.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    out: mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    err: mpsc::Receiver<String>,
    pub err_seen: Vec<String>,
    pub desc: String,
}

impl Proc {
    /// Spawns `cmd` with piped stdio (stdin piped unless `stdin` is given).
    pub fn spawn(mut cmd: Command, stdin: Option<Stdio>) -> Proc {
        let desc = format!("{cmd:?}");
        let piped = stdin.is_none();
        cmd.stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (otx, out) = mpsc::channel();
        thread::spawn(move || {
            let mut r = stdout;
            loop {
                let mut buf = vec![0u8; 64 * 1024];
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if otx.send(buf).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let (etx, err) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if etx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = if piped { child.stdin.take() } else { None };
        Proc {
            child,
            stdin,
            out,
            buf: Vec::new(),
            err,
            err_seen: Vec::new(),
            desc,
        }
    }

    /// Waits for a stderr line starting with `prefix` and returns it.
    pub fn stderr_line(&mut self, prefix: &str) -> String {
        self.stderr_matching(&format!("starting with {prefix:?}"), |l| {
            l.starts_with(prefix)
        })
    }

    /// Waits for a stderr line containing `text`.
    pub fn stderr_contains(&mut self, text: &str) -> String {
        self.stderr_matching(&format!("containing {text:?}"), |l| l.contains(text))
    }

    fn stderr_matching(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(line) => {
                    self.err_seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "{}: no stderr line {what}; stderr so far: {:?}",
                    self.desc, self.err_seen
                ),
            }
        }
    }

    /// Waits for the readiness line and returns the endpoint it names.
    pub fn ready(&mut self) -> String {
        // `listening on EP`, or `SERVICE listening on EP` for serve and chat.
        let line = self.stderr_contains("listening on ");
        line.split("listening on ")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// The port in the readiness line.
    pub fn port(&mut self) -> u16 {
        let ep = self.ready();
        // `ws://127.0.0.1:P/path`: the digits after the last colon.
        let port = ep.rsplit(':').next().unwrap();
        let digits: String = port.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    }

    /// The next stdout line (with its newline), waiting at most the deadline.
    pub fn line(&mut self) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            self.fill(end, "no stdout line");
        }
    }

    /// At least `n` bytes of stdout, newline or not.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let end = Instant::now() + DEADLINE;
        while self.buf.len() < n {
            self.fill(end, "too little stdout");
        }
        self.buf.drain(..n).collect()
    }

    /// The next stdout line if one comes within `wait` (for peers that print no readiness).
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        let end = Instant::now() + wait;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(chunk) => self.buf.extend_from_slice(&chunk),
                Err(_) => return None,
            }
        }
    }

    fn fill(&mut self, end: Instant, what: &str) {
        let left = end.saturating_duration_since(Instant::now());
        match self.out.recv_timeout(left) {
            Ok(chunk) => self.buf.extend_from_slice(&chunk),
            Err(_) => {
                let err = self.drain_err();
                panic!(
                    "{}: {what} (have {:?}); stderr: {err:?}",
                    self.desc,
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
    }

    /// All stdout until EOF.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) => all.extend_from_slice(&l),
                Err(mpsc::RecvTimeoutError::Disconnected) => return all,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let err = self.drain_err();
                    panic!("{}: stdout did not end; stderr: {err:?}", self.desc)
                }
            }
        }
    }

    pub fn write(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    pub fn drain_err(&mut self) -> Vec<String> {
        while let Ok(l) = self.err.recv_timeout(Duration::from_millis(50)) {
            self.err_seen.push(l);
        }
        self.err_seen.clone()
    }

    /// Waits for exit within the deadline (killing it past that) and returns the status.
    pub fn wait(&mut self) -> ExitStatus {
        self.close_stdin();
        self.wait_open()
    }

    /// As [`Proc::wait`], but leaves stdin open: the process must end on its own.
    pub fn wait_open(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let err = self.drain_err();
                panic!("{}: did not exit; stderr: {err:?}", self.desc);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, by PID, of a process this test started.
    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    /// A signal by name (`INT`, `HUP`), by PID, to a process this test started.
    pub fn signal(&mut self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sockit ARGS` and waits for its readiness line.
pub fn server(args: &[&str]) -> (Proc, u16) {
    let mut cmd = sockit();
    cmd.args(args);
    let mut p = Proc::spawn(cmd, None);
    let port = p.port();
    (p, port)
}

/// Runs `sockit ARGS` to completion with `input` on stdin; returns status, stdout, stderr.
pub fn run(args: &[&str], input: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut cmd = sockit();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("sockit {args:?} did not exit");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = feeder.join();
    (status, out.join().unwrap(), err.join().unwrap())
}

/// Runs python3 with a peer script; stdout lines are readable as with sockit.
pub fn python(script: &str, args: &[&str], stdin: Option<Stdio>) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.arg("-u").arg(peer_script(script)).args(args);
    Proc::spawn(cmd, stdin)
}

/// A port on 127.0.0.1 that nothing listens on now (bound by the system, then let go).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A fresh directory for this test under the target dir (cargo's `CARGO_TARGET_TMPDIR`,
/// never the system's temp folder), removed with everything in it when dropped.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sockit-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A test's directory: a path while it lives, gone once dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a failure can be reproduced.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

/// Starts `sockit ARGS` (a listener) with `data` on stdin, from a file in `dir`.
pub fn listener_sending(dir: &Path, data: &[u8], args: &[&str]) -> Proc {
    let path = dir.join("to-client");
    std::fs::write(&path, data).unwrap();
    let mut cmd = sockit();
    cmd.args(args);
    Proc::spawn(cmd, Some(Stdio::from(std::fs::File::open(path).unwrap())))
}

/// Runs `sockit connect ARGS` with `up` on stdin against `target` (started by
/// [`listener_sending`] with `down`, behind whatever the test put between), and checks that
/// both ends got every byte and both exit 0.
pub fn check_both_ways(dir: &Path, target: &mut Proc, args: &[&str], up: &[u8], down: &[u8]) {
    let path = dir.join("to-server");
    std::fs::write(&path, up).unwrap();
    let mut cmd = sockit();
    cmd.arg("connect").args(args);
    let mut cli = Proc::spawn(cmd, Some(Stdio::from(std::fs::File::open(path).unwrap())));
    let got_down = cli.rest();
    let got_up = target.rest();
    assert!(cli.wait().success());
    assert!(target.wait().success());
    assert_eq!(sha256(&got_down), sha256(down));
    assert_eq!(sha256(&got_up), sha256(up));
}

/// Resident anonymous memory (heap, stacks) of a running child, in KiB: code pages that come
/// in on first use are not what a test of per-client cost means.
pub fn rss_kib(p: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open descriptors of a running child: tells when a server has accepted every client.
pub fn open_fds(p: &Proc) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", p.child.id()))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Seconds since 1900 (RFC 868) by the system clock.
pub fn now_since_1900() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2_208_988_800
}

/// The current (UTC) year, as daytime and date print it.
pub fn chrono_year() -> String {
    // Years since 1970 from the clock, without another date library in the tests.
    let secs = now_since_1900() - 2_208_988_800;
    let mut year = 1970;
    let mut left = secs as i64;
    loop {
        let days = if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
            366
        } else {
            365
        };
        if left < days * 86_400 {
            return year.to_string();
        }
        left -= days * 86_400;
        year += 1;
    }
}
