//! Where splice(2) does not exist (Windows, other Unix systems): no zero-copy path, so
//! every transfer takes the buffered pump. Same names as `splice.rs`, so callers need no
//! conditions of their own.

use std::io;

use super::copy::Report;
use crate::net::Stream;

/// No socket-to-socket path either.
pub(crate) const SOCKETS: bool = false;

/// Never: the buffered pump does the work.
pub(crate) fn available() -> bool {
    false
}

/// Not reached ([`available`] is false); says so if it ever is.
pub(crate) async fn pump(_stream: &Stream) -> io::Result<Report> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no zero-copy path here",
    ))
}

/// Not reached (callers check [`available`]); says so if it ever is.
pub(crate) async fn relay(_a: &Stream, _b: &Stream) -> io::Result<(u64, u64, bool)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no zero-copy path here",
    ))
}
