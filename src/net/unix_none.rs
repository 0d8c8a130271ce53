//! Where there are no Unix-domain sockets to use (Windows): the same names as tokio's
//! types, but types that cannot exist, so the code that matches on socket kinds needs no
//! conditions, and `unix:`/`unixgram:` endpoints are refused in words where they are made.

use std::io;
use tokio::io::Interest;

/// A Unix stream socket: none can exist here.
#[derive(Debug)]
pub enum UnixStream {}
/// A Unix stream listener: none can exist here.
#[derive(Debug)]
pub enum UnixListener {}
/// A Unix socket's address: none can exist here.
#[derive(Debug, Clone)]
pub enum SocketAddr {}
/// A Unix datagram socket: none can exist here.
#[derive(Debug)]
pub enum UnixDatagram {}

impl UnixStream {
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match *self {}
    }
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match *self {}
    }
    pub(crate) async fn ready(&self, _: tokio::io::Interest) -> io::Result<tokio::io::Ready> {
        match *self {}
    }
    pub(crate) fn try_read(&self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
    pub(crate) fn try_write(&self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    pub(crate) fn try_io<R>(
        &self,
        _: Interest,
        _: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        match *self {}
    }
}

never_io!(UnixStream);

impl UnixListener {
    pub(crate) async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        match *self {}
    }
}

impl UnixDatagram {
    pub(crate) async fn recv_from(&self, _: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match *self {}
    }
    pub(crate) async fn send(&self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    pub(crate) async fn recv(&self, _: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
}
