//! Programs on a connection (`--exec`, `--sh-exec`): a child process's stdin and stdout take
//! the place of sockit's own stdio, as ncat's `-e`, socat's `EXEC:` and inetd do.
//!
//! The child process is a layer that lives here only: [`Program`] is what to run (checked
//! once at start, so a missing program is one error, not one per client), `child` starts
//! it in its own process group with the UCSPI variables and ends that group (SIGTERM, then
//! SIGKILL) when its connection ends, [`stream`] pumps a stream connection through it with
//! the same [`crate::pump`] stdio uses (through pipes, or a pseudo-terminal: [`pty`]), and
//! [`datagram`] gives each datagram peer its own child; a bare socket
//! with nothing to watch is the program's stdin itself (`direct`), as inetd hands it over. `session` and `listen` reach it; nothing else starts processes.

mod child;
pub mod datagram;
#[cfg(unix)]
mod direct;
mod program;
#[cfg(unix)]
pub mod pty;
#[cfg(not(unix))]
#[path = "pty_none.rs"]
pub mod pty;
mod stream;

pub use child::TERM_GRACE;
pub use program::{Exec, Origin, Program, Terminal, EXIT_WAIT, STOP_WAIT};
pub use stream::stream;
