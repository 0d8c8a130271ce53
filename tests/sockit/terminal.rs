//! A person at a terminal: line editing (a real terminal, tmux), programs on a
//! pseudo-terminal (`--pty`), and a remote shell (`connect --raw` to `listen --pty`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::util::tmux::Tmux;
use crate::util::*;
use crate::{read_line, tcp};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sockit")
}

/// A peer the test plays: a listener, and the one connection the terminal's sockit makes.
fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(false).unwrap();
    let (s, _) = listener.accept().unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Where `stty -a` was written before and after a command ran in a window.
struct Modes {
    before: std::path::PathBuf,
    after: std::path::PathBuf,
}

impl Modes {
    /// The terminal's modes after the command are the modes before it.
    fn check(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.before).unwrap(),
            std::fs::read_to_string(&self.after).unwrap(),
            "stty -a before and after"
        );
    }
}

/// `command` in a tmux window, with the terminal's modes written down before and after it.
fn keeping_modes(
    dir: &std::path::Path,
    name: &str,
    command: &str,
    size: (u16, u16),
) -> (Tmux, Modes) {
    let modes = Modes {
        before: dir.join(format!("{name}.before")),
        after: dir.join(format!("{name}.after")),
    };
    let line = format!(
        "stty -a > {b}; {command}; s=$?; stty -a > {a}; (exit $s)",
        b = modes.before.display(),
        a = modes.after.display()
    );
    (Tmux::start(dir, name, &line, size), modes)
}

/// The last non-blank row of the screen: where the line being typed is.
fn last_row(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn the_typed_line_survives_incoming_text_and_keys_edit_it() {
    let dir = temp_dir("edit");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = Tmux::start(
        &dir,
        "edit",
        &format!("{} connect tcp://127.0.0.1:{port}", bin()),
        (100, 30),
    );
    let mut peer = accept(&listener);
    // A line arrives while one is half typed: it shows above, the typed line stays whole.
    t.type_text("hello there, I am typing a long messag");
    t.wait_text("I am typing a long messag");
    peer.write_all(b"<guest2> interrupting message\n").unwrap();
    let screen = t.wait_text("<guest2> interrupting message");
    assert_eq!(
        last_row(&screen),
        "hello there, I am typing a long messag",
        "{screen}"
    );
    let above = screen.find("<guest2>").unwrap();
    assert!(above < screen.find("hello there").unwrap(), "{screen}");
    t.type_text("e");
    t.keys(&["Enter"]);
    assert_eq!(
        read_line(&mut peer),
        "hello there, I am typing a long message\n"
    );
    // A prompt without its newline shows at once, and the typed line still stays intact.
    t.type_text("half");
    peer.write_all("服务端>> ".as_bytes()).unwrap();
    let screen = t.wait_text("服务端>>");
    assert_eq!(last_row(&screen), "half", "{screen}");
    t.keys(&["C-u"]);
    // Editing keys: cursor movement, Home/End, Ctrl-W, Ctrl-U.
    t.type_text("abc");
    t.keys(&["Left", "Left"]);
    t.type_text("X");
    t.keys(&["Home"]);
    t.type_text("Y");
    t.keys(&["End"]);
    t.type_text("Z");
    t.keys(&["Enter"]);
    assert_eq!(read_line(&mut peer), "YaXbcZ\n");
    t.type_text("one two");
    t.keys(&["C-w"]);
    t.type_text("three");
    t.keys(&["Enter"]);
    assert_eq!(read_line(&mut peer), "one three\n");
    t.type_text("junk");
    t.keys(&["C-u"]);
    t.type_text("clean");
    t.keys(&["Enter"]);
    assert_eq!(read_line(&mut peer), "clean\n");
    // History: Up twice is the line before last; Ctrl-R finds a line by what it holds.
    t.keys(&["Up", "Up", "Enter"]);
    assert_eq!(read_line(&mut peer), "one three\n");
    t.keys(&["C-r"]);
    t.type_text("XbcZ");
    t.keys(&["Enter"]);
    assert_eq!(read_line(&mut peer), "YaXbcZ\n");
    // Ctrl-D on a line with text does not end the input; on an empty line it does.
    t.type_text("x");
    t.keys(&["C-d", "C-u", "C-d"]);
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "Ctrl-D on a line with text sent nothing");
    // The half-close: what the peer still sends is shown, then its close ends the session.
    peer.write_all(b"bye\n").unwrap();
    drop(peer);
    assert_eq!(t.exit_status(), 0);
    t.wait_text("bye");
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn the_history_file_carries_lines_across_sessions() {
    let dir = temp_dir("history");
    let history = dir.join("history");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let command = format!(
        "{} connect --history {} tcp://127.0.0.1:{port}",
        bin(),
        history.display()
    );
    {
        let t = Tmux::start(&dir, "first", &command, (80, 20));
        let mut peer = accept(&listener);
        t.type_text("remember me");
        t.keys(&["Enter"]);
        assert_eq!(read_line(&mut peer), "remember me\n");
        t.keys(&["C-d"]);
        drop(peer);
        assert_eq!(t.exit_status(), 0);
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&history).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the history is the user's alone: {mode:o}");
    let t = Tmux::start(&dir, "second", &command, (80, 20));
    let mut peer = accept(&listener);
    t.keys(&["Up", "Enter"]);
    assert_eq!(read_line(&mut peer), "remember me\n");
    // Without --history nothing is carried over.
    let plain = Tmux::start(
        &dir,
        "plain",
        &format!("{} connect tcp://127.0.0.1:{port}", bin()),
        (80, 20),
    );
    let mut other = accept(&listener);
    plain.keys(&["Up"]);
    plain.type_text("fresh");
    plain.keys(&["Enter"]);
    assert_eq!(read_line(&mut other), "fresh\n");
    drop(t);
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn ctrl_c_ends_the_session_and_the_terminal_is_as_it_was() {
    let dir = temp_dir("ctrl-c");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (t, modes) = keeping_modes(
        &dir,
        "ctrl-c",
        &format!("{} connect tcp://127.0.0.1:{port}", bin()),
        (100, 20),
    );
    let mut peer = accept(&listener);
    t.type_text("typed, never sent");
    t.wait_text("never sent");
    t.keys(&["C-c"]);
    assert_eq!(t.exit_status(), 130, "as a Ctrl-C without editing");
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
    modes.check();
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn the_peer_closing_while_a_line_is_typed_leaves_the_terminal_as_it_was() {
    let dir = temp_dir("peer-closes");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (t, modes) = keeping_modes(
        &dir,
        "peer-closes",
        &format!("{} connect tcp://127.0.0.1:{port}", bin()),
        (100, 20),
    );
    let mut peer = accept(&listener);
    peer.write_all(b"goodbye\n").unwrap();
    t.wait_text("goodbye");
    t.type_text("half a line, never sent");
    t.wait_text("never sent");
    drop(peer);
    assert_eq!(t.exit_status(), 0);
    modes.check();
    // The unsent line was cleared, so the shell's next line starts clean.
    assert!(!t.screen().contains("never sent"), "{}", t.screen());
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn listen_edits_its_one_conversation_and_no_edit_reads_the_terminal_plainly() {
    let dir = temp_dir("listen-edit");
    let t = Tmux::start(
        &dir,
        "listen",
        &format!("{} listen tcp://127.0.0.1:0", bin()),
        (100, 20),
    );
    let screen = t.wait_text("listening on");
    let port: u16 = screen
        .lines()
        .find_map(|l| l.strip_prefix("listening on tcp://127.0.0.1:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut client = tcp(port);
    t.type_text("from the server sid");
    client.write_all(b"from the client\n").unwrap();
    let screen = t.wait_text("from the client");
    assert_eq!(last_row(&screen), "from the server sid", "{screen}");
    t.type_text("e");
    t.keys(&["Enter"]);
    assert_eq!(read_line(&mut client), "from the server side\n");
    drop(client);
    assert_eq!(t.exit_status(), 0);
    // --no-edit: the terminal as a pipe (its own cooked mode): the arrow key's bytes go as
    // they are.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let plain = Tmux::start(
        &dir,
        "plain",
        &format!("{} connect --no-edit tcp://127.0.0.1:{port}", bin()),
        (100, 20),
    );
    let mut peer = accept(&listener);
    plain.type_text("abc");
    plain.keys(&["Left"]);
    plain.type_text("X");
    plain.keys(&["Enter"]);
    assert_eq!(read_line(&mut peer), "abc\x1b[DX\n");
}

/// `listen --pty --exec bash` and a client: returns the server and the connection.
fn shell_server(extra: &[&str]) -> (Proc, TcpStream) {
    let mut args = vec!["listen", "tcp://127.0.0.1:0", "--pty"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--exec", "bash --norc --noprofile -i"]);
    let (server, port) = server(&args);
    let mut s = tcp(port);
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Quiet prompts, so that only the commands' output is matched.
    s.write_all(
        b"PS1='$ '; unset PROMPT_COMMAND; bind 'set enable-bracketed-paste off' 2>/dev/null\n",
    )
    .unwrap();
    (server, s)
}

/// Reads from the terminal until its output holds `text`; returns all read.
fn read_until(s: &mut TcpStream, text: &str) -> String {
    let end = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) {
        assert!(
            Instant::now() < end,
            "never saw {text:?} in {:?}",
            String::from_utf8_lossy(&seen)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {text:?}: {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads until the connection is closed, within the deadline.
fn read_to_close(s: &mut TcpStream) {
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < end, "the connection was never closed");
        if let Ok(0) = s.read(&mut buf) {
            return;
        }
    }
}

/// The number after `name=` in the terminal's output, as a command printed it (not the
/// echo of the command line, where a `$` follows).
fn value(out: &str, name: &str) -> Option<i32> {
    let key = format!("{name}=");
    out.match_indices(&key).find_map(|(at, _)| {
        let digits: String = out[at + key.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// Reads from the terminal until a command printed `name=NUMBER`; returns the number.
fn read_value(s: &mut TcpStream, name: &str) -> i32 {
    let end = Instant::now() + DEADLINE;
    let mut seen = String::new();
    loop {
        if let Some(v) = value(&seen, name) {
            return v;
        }
        assert!(Instant::now() < end, "never saw {name}=N in {seen:?}");
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before {name}=N: {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
}

/// Waits until process `pid` is gone (not even a zombie).
fn wait_gone(pid: i32) {
    let end = Instant::now() + DEADLINE;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < end, "process {pid} was left behind");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_program_on_a_pty_is_a_shell_with_a_terminal_and_job_control() {
    let (mut server, mut s) = shell_server(&["--pty-size", "100x30"]);
    s.write_all(b"tty; stty size; echo \"T=$TERM\"\n").unwrap();
    let out = read_until(&mut s, "T=xterm-256color");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(
        out.contains("30 100"),
        "stty size follows --pty-size: {out}"
    );
    // A Ctrl-C byte interrupts the foreground job, and the shell answers after it.
    s.write_all(b"echo started-$((1+1)); sleep 100\n").unwrap();
    read_until(&mut s, "started-2");
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"\x03").unwrap();
    s.write_all(b"echo after-$((6*7))\n").unwrap();
    read_until(&mut s, "after-42");
    // A background job holds the terminal; `exit` still ends the connection, and the job.
    s.write_all(b"sleep 100 & echo bg=$!\n").unwrap();
    let bg = read_value(&mut s, "bg");
    s.write_all(b"exit\n").unwrap();
    read_to_close(&mut s);
    assert!(server.wait().success());
    wait_gone(bg);
}

#[test]
fn the_session_is_hung_up_when_the_connection_ends_first() {
    let (mut server, mut s) = shell_server(&[]);
    s.write_all(b"sleep 100 & echo bg=$!\n").unwrap();
    let bg = read_value(&mut s, "bg");
    s.write_all(b"echo shell=$$; sleep 200\n").unwrap();
    let shell = read_value(&mut s, "shell");
    // A reset ends the connection with the program still running in the foreground.
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    for pid in [shell, bg] {
        wait_gone(pid);
    }
    server.wait();
}

#[test]
fn connect_runs_a_program_on_a_pty_for_the_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cmd = sockit();
    cmd.args([
        "connect",
        &format!("tcp://127.0.0.1:{port}"),
        "--pty",
        "--term",
        "vt100",
        "--sh-exec",
        "tty; echo \"T=$TERM\"; test -t 0 && echo stdin-is-a-terminal",
    ]);
    let mut client = Proc::spawn(cmd, Some(std::process::Stdio::null()));
    let mut peer = accept(&listener);
    let mut got = String::new();
    peer.read_to_string(&mut got).unwrap();
    assert!(got.contains("/dev/pts/"), "{got}");
    assert!(got.contains("T=vt100\r\n"), "{got}");
    assert!(got.contains("stdin-is-a-terminal"), "{got}");
    assert!(client.wait().success());
}

#[test]
fn pty_without_a_program_or_on_datagrams_is_refused_with_a_hint() {
    for (args, want) in [
        (
            vec!["listen", "tcp://127.0.0.1:0", "--pty"],
            "--pty needs a program",
        ),
        (
            vec!["listen", "udp://127.0.0.1:0", "--pty", "--exec", "cat"],
            "--pty does not go with udp://",
        ),
        (
            vec![
                "listen",
                "tcp://127.0.0.1:0",
                "--pty",
                "--pty-size",
                "0x5",
                "--exec",
                "cat",
            ],
            "is not COLSxROWS",
        ),
        (
            vec![
                "listen",
                "tcp://127.0.0.1:0",
                "--term",
                "vt100",
                "--exec",
                "cat",
            ],
            "--pty",
        ),
    ] {
        let (st, _, err) = run(&args, b"");
        assert!(!st.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
#[ignore = "needs tmux; .ci/run runs it"]
fn connect_raw_to_listen_pty_is_a_remote_shell() {
    let dir = temp_dir("remote-shell");
    let (mut server, port) = server(&[
        "listen",
        "tcp://127.0.0.1:0",
        "--pty",
        "--exec",
        "bash --norc --noprofile -i",
    ]);
    let (t, modes) = keeping_modes(
        &dir,
        "shell",
        &format!("{} connect --raw tcp://127.0.0.1:{port}", bin()),
        (100, 30),
    );
    t.wait_text("Ctrl-] leaves");
    t.type_text("PS1='remote$ '");
    t.keys(&["Enter"]);
    t.wait_text("remote$");
    // Ctrl-C goes to the remote job, not to the local sockit.
    t.type_text("sleep 100");
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["C-c"]);
    t.type_text("echo after-$((6*7)); tput cols");
    t.keys(&["Enter"]);
    t.wait_text("after-42\n80");
    // Tab completes on the remote side.
    t.type_text("ech");
    t.keys(&["Tab"]);
    t.type_text(" tab-$((1+1))");
    t.keys(&["Enter"]);
    t.wait_text("tab-2");
    t.type_text("exit");
    t.keys(&["Enter"]);
    assert_eq!(t.exit_status(), 0);
    assert!(server.wait().success());
    modes.check();
}

#[test]
fn the_peers_end_is_the_terminals_end_of_file() {
    // `cat` on a terminal ends at the EOF character, which is what the peer's EOF becomes;
    // the terminal echoes what it is given, so each line comes back twice.
    let (mut server, port) = server(&["listen", "tcp://127.0.0.1:0", "--pty", "--exec", "cat"]);
    let (st, out, err) = run(&["connect", &format!("tcp://127.0.0.1:{port}")], b"abc\n");
    assert!(st.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "abc\r\nabc\r\n");
    assert!(server.wait().success());
}

#[test]
fn pty_works_over_every_stream_kind() {
    let dir = temp_dir("pty-kinds");
    let sock = dir.join("shell.sock");
    let unix = format!("unix:{}", sock.display());
    for kind in [
        "tls://127.0.0.1:0",
        unix.as_str(),
        "ws://127.0.0.1:0",
        "wss://127.0.0.1:0",
        "quic://127.0.0.1:0",
    ] {
        let mut cmd = sockit();
        cmd.args([
            "listen",
            kind,
            "--pty",
            "--exec",
            "bash --norc --noprofile -i",
        ]);
        let mut server = Proc::spawn(cmd, None);
        let endpoint = server.ready();
        // Piped input that ends, as a user's `printf ... | sockit connect` gives it.
        let (st, out, err) = run(
            &["connect", "--insecure", &endpoint],
            b"echo x=$((6*7)); tty\nexit\n",
        );
        let out = String::from_utf8_lossy(&out);
        assert!(st.success(), "{kind}: {err}");
        assert_eq!(value(&out, "x"), Some(42), "{kind}: {out}");
        assert!(out.contains("/dev/pts/"), "{kind}: {out}");
        assert!(server.wait().success(), "{kind}");
    }
}
