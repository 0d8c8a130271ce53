//! Integration tests: the built binary, driven as a user would, against itself, the
//! tutorial's own Python programs and plain std sockets, on loopback with port 0.

// They drive a Linux build with Linux tools (/proc, kill, tmux); the Windows build is tried
// under wine by tests/windows.rs instead.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // reason: a failed unwrap is a failed test, with its message

#[path = "../util/mod.rs"]
mod util;

mod addressing;
mod bench;
mod chat;
mod chat_bus;
mod docs;
mod errors;
mod exec;
mod explain;
mod faults;
mod listen;
mod matrix;
mod pcap;
mod portcheck;
mod proxy;
mod proxy_protocol;
mod quic;
mod relay;
mod serve;
mod signals;
mod terminal;
mod tls;
mod transfer;
mod tunnel;
mod tutorial;
mod websocket;

use std::io::Read;
use std::net::TcpStream;

use util::*;

pub(crate) fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Sends `request` on a new connection to `port` and returns everything answered before
/// the server closed (an HTTP exchange with a proxy or a WebSocket endpoint).
pub(crate) fn exchange(port: u16, request: &[u8]) -> String {
    use std::io::Write;
    let mut s = tcp(port);
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

pub(crate) fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(_) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8(line).unwrap()
}

/// Reads until EOF; true when the server closed (EOF or reset) rather than sent data.
pub(crate) fn closed_without_data(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}
