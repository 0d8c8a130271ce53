//! A real terminal for tests: a tmux server of the test's own (its socket in the test's
//! directory), one window running a command, keys typed with `send-keys`, the screen read
//! with `capture-pane`. Every wait has a deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::DEADLINE;

/// One tmux server with one window; killed (and everything in it) when dropped.
pub struct Tmux {
    socket: PathBuf,
    /// Where the window's command writes `exit=N` when it ends.
    pub status_file: PathBuf,
}

impl Tmux {
    /// Runs `command` (a shell command line) in a `cols` x `rows` window; when it ends, its
    /// exit status is written to the status file and the window stays until dropped.
    pub fn start(dir: &Path, name: &str, command: &str, (cols, rows): (u16, u16)) -> Tmux {
        let socket = dir.join(format!("{name}.tmux"));
        let status_file = dir.join(format!("{name}.status"));
        let line = format!(
            "{command}; echo \"exit=$?\" > {status}; sleep 600",
            status = status_file.display()
        );
        let t = Tmux {
            socket,
            status_file,
        };
        t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            &line,
        ]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    /// Presses keys by tmux's names: `Enter`, `Left`, `Home`, `C-d`, `Up`.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The screen as text, one line per row, trailing blank rows dropped.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"]).trim_end().to_string()
    }

    /// Waits until the screen satisfies `ok`, and returns it.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < end,
                "the screen never showed {what}:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows `text`, and returns it.
    pub fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits for the command to end and returns its exit status.
    pub fn exit_status(&self) -> i32 {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Ok(s) = std::fs::read_to_string(&self.status_file) {
                if let Some(code) = s.trim().strip_prefix("exit=") {
                    return code.parse().expect("a number");
                }
            }
            assert!(
                Instant::now() < end,
                "the command never ended:\n{}",
                self.screen()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}
