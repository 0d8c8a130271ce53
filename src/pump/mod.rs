//! Bytes both ways between two streams, each direction ending on its own.
//!
//! The contract is tokio's `copy_bidirectional`: EOF on one side's read half shuts down the
//! other side's write half, and the opposite direction keeps flowing until its own EOF. So
//! `sockit connect < file` half-closes after the file and still prints the whole answer,
//! and an early half-close from the peer never cuts our upload short. What we add: byte
//! counts for the logs, an idle timeout, `--crlf`, and the one exception for people (a
//! terminal session ends when the peer closes).

mod copy;
mod join;
#[cfg(target_os = "linux")]
pub(crate) mod splice;
#[cfg(not(target_os = "linux"))]
#[path = "no_splice.rs"]
pub(crate) mod splice;

pub(crate) use copy::fired;
pub use copy::{pump, Activity, Counts, End, Options, Report, Ways, QUIET_CLOSE};
pub use join::{join, Joined};
