//! What a command runs per connection: the program (checked once, at start), how (`Exec`:
//! with the run's shutdown, on pipes or a terminal), and what its environment tells it of
//! the connection (`Origin`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::net::Peer;

/// How long a program whose connection ended cleanly (EOF both ways) may take to exit on
/// its own before its group gets SIGTERM: its input has ended, and what it still does with
/// it (a file being written) must not be cut.
pub const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a server waits at shutdown for its programs to end (each gets [`super::TERM_GRACE`]
/// between SIGTERM and SIGKILL).
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `--exec`/`--sh-exec` as a command runs it: the program, and the run's shutdown, on which
/// every child's group is ended (SIGTERM, then SIGKILL) before sockit exits.
#[derive(Debug, Clone)]
pub struct Exec {
    /// What to run per connection.
    pub program: Arc<Program>,
    /// The run's shutdown.
    pub stop: CancellationToken,
    /// `--pty`: the program on a pseudo-terminal of its own instead of pipes.
    pub pty: Option<Terminal>,
}

/// The terminal a program gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    /// `TERM` (`--term`).
    pub term: String,
    /// Columns and rows (`--pty-size`).
    pub size: (u16, u16),
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal {
            term: "xterm-256color".into(),
            size: (80, 24),
        }
    }
}

/// What to run for each connection: its argument vector, as `execve` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    argv: Vec<String>,
    /// Where `argv[0]` runs from, found once at start: a connection's child is not sent
    /// through every `PATH` directory (each a failed `execve` while sockit's worker waits).
    path: PathBuf,
    /// As the user wrote it, for logs and errors.
    shown: String,
}

impl Program {
    /// `--exec 'PROGRAM ARGS'`: split as a shell splits words (quotes kept together), but no
    /// shell runs; the program must exist now (a path, or a name found on `PATH`).
    ///
    /// # Errors
    /// Unbalanced quotes, an empty command, or a program that cannot be found or run.
    pub fn exec(words: &str) -> Result<Program> {
        let argv = shlex::split(words).ok_or_else(|| {
            Error::new(
                ErrorKind::BadArgument,
                format!("bad --exec '{words}'"),
                "its quotes do not pair up; quote it as a shell would",
            )
        })?;
        let Some(first) = argv.first() else {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "bad --exec ''",
                "name a program, such as --exec 'cat' or --exec '/usr/bin/tr a-z A-Z'",
            ));
        };
        let path = find_program(first)?;
        Ok(Program {
            argv,
            path,
            shown: words.to_string(),
        })
    }

    /// `--sh-exec 'COMMAND'`: the command run by `/bin/sh -c`, so pipes, redirections and
    /// `&` work.
    ///
    /// # Errors
    /// An empty command, or no `/bin/sh` on this system.
    pub fn shell(command: &str) -> Result<Program> {
        if command.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "bad --sh-exec ''",
                "give a shell command, such as --sh-exec 'tr a-z A-Z'",
            ));
        }
        // Windows has no /bin/sh: its shell is cmd.exe, with /C.
        let (sh, c) = if cfg!(windows) {
            ("cmd.exe", "/C")
        } else {
            ("/bin/sh", "-c")
        };
        let path = find_program(sh)?;
        Ok(Program {
            path,
            argv: vec![sh.into(), c.into(), command.into()],
            shown: command.to_string(),
        })
    }

    /// The argument vector.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The file that runs (`argv[0]` found on `PATH` at start).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Display for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Where `name` would be run from, as `execvp` looks for it.
fn find_program(name: &str) -> Result<PathBuf> {
    let cannot = |why: &str| {
        Error::new(
            ErrorKind::BadArgument,
            format!("cannot run '{name}'"),
            why.to_string(),
        )
    };
    if name.contains('/') || (cfg!(windows) && name.contains('\\')) {
        return match runnable(Path::new(name)) {
            Some(true) => Ok(PathBuf::from(name)),
            Some(false) => Err(cannot("it is not an executable file (chmod +x?)")),
            None => Err(cannot("no such file")),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    // Windows finds `cat` as cat.exe.
    let names: Vec<String> = if cfg!(windows) && !name.contains('.') {
        vec![
            format!("{name}.exe"),
            format!("{name}.cmd"),
            format!("{name}.bat"),
        ]
    } else {
        vec![name.to_string()]
    };
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| runnable(p) == Some(true))
        .ok_or_else(|| {
            cannot("no such program on PATH; give its path, or use --sh-exec for a shell command")
        })
}

/// `Some(true)` for an executable regular file, `Some(false)` for another file, `None`
/// when nothing is there.
fn runnable(path: &Path) -> Option<bool> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    };
    // Windows runs files by their extension, found above.
    #[cfg(not(unix))]
    let executable = true;
    Some(meta.is_file() && executable)
}

/// The connection a child serves, as its environment describes it (UCSPI, as tcpserver
/// sets it, and `SOCKIT_PEER`).
#[derive(Debug, Clone)]
pub struct Origin {
    /// `TCP`, `TLS`, `QUIC`, `UNIX` or `UDP` (UCSPI's `PROTO`).
    pub proto: &'static str,
    /// The peer.
    pub peer: Peer,
    /// Our address on the connection, when it is an IP one.
    pub local: Option<SocketAddr>,
}

impl Origin {
    /// The variables the child gets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let scheme = match self.proto {
            "TLS" => "tls://",
            "QUIC" => "quic://",
            "UDP" => "udp://",
            "UNIX" => "",
            _ => "tcp://",
        };
        let mut env = vec![
            ("PROTO", self.proto.to_string()),
            ("SOCKIT_PEER", format!("{scheme}{}", self.peer)),
        ];
        if let Peer::Ip(a) = &self.peer {
            env.push(("TCPREMOTEIP", a.ip().to_string()));
            env.push(("TCPREMOTEPORT", a.port().to_string()));
        }
        if let Some(a) = self.local {
            env.push(("TCPLOCALIP", a.ip().to_canonical().to_string()));
            env.push(("TCPLOCALPORT", a.port().to_string()));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_splits_words_as_a_shell_would() {
        let p = Program::exec("tr 'a b' \"c d\"").unwrap();
        assert_eq!(p.argv(), ["tr", "a b", "c d"]);
        assert_eq!(p.to_string(), "tr 'a b' \"c d\"");
    }

    #[test]
    fn a_program_that_cannot_run_is_refused_at_once() {
        let file = std::env::temp_dir().join(format!("sockit-plain-{}", std::process::id()));
        std::fs::write(&file, "not a program").unwrap();
        let plain = file.display().to_string();
        for (words, why) in [
            ("no-such-program-here", "no such program on PATH"),
            ("/no/such/file", "no such file"),
            (plain.as_str(), "not an executable file"),
            ("'unclosed", "quotes do not pair up"),
            ("", "name a program"),
        ] {
            let e = Program::exec(words).unwrap_err().to_string();
            assert!(e.contains(why), "{words}: {e}");
        }
        let _ = std::fs::remove_file(&file);
        assert!(Program::shell("  ").is_err());
        assert_eq!(
            Program::shell("echo hi").unwrap().argv()[..2],
            ["/bin/sh", "-c"]
        );
    }

    #[test]
    fn origin_sets_ucspi_variables() {
        let o = Origin {
            proto: "TCP",
            peer: Peer::Ip("127.0.0.1:51234".parse().unwrap()),
            local: Some("127.0.0.1:8898".parse().unwrap()),
        };
        let env = o.env();
        for want in [
            ("PROTO", "TCP"),
            ("SOCKIT_PEER", "tcp://127.0.0.1:51234"),
            ("TCPREMOTEIP", "127.0.0.1"),
            ("TCPREMOTEPORT", "51234"),
            ("TCPLOCALIP", "127.0.0.1"),
            ("TCPLOCALPORT", "8898"),
        ] {
            assert!(
                env.iter().any(|(k, v)| *k == want.0 && v == want.1),
                "{want:?} in {env:?}"
            );
        }
    }
}
