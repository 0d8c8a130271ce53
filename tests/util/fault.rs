//! A fault-injecting TCP proxy for tests: it sits between a client and a server on
//! loopback and forwards both ways with a fault applied (1-byte writes with delays, a reset
//! after some bytes, a stall). Threads, not async: it must not share the runtime under test.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// What the proxy does to the bytes.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Every byte written alone (TCP_NODELAY on), with a pause after every `pause_every`
    /// bytes.
    OneByte {
        /// Bytes between pauses.
        pause_every: usize,
        /// The pause.
        pause: Duration,
    },
    /// Forwards this many bytes from the client, then resets both connections (RST).
    ResetAfter(usize),
    /// Forwards this many bytes from the client, then forwards nothing more (both ways
    /// stay open).
    StallAfter(usize),
}

/// A running fault proxy; it stops with the test process.
pub struct FaultProxy {
    /// Where clients connect.
    pub port: u16,
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:target` with `fault` applied to every connection.
    pub fn start(target: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let up = Arc::new(AtomicUsize::new(0));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || forward(client, server, fault, Some(up)));
                thread::spawn(move || forward(s2, c2, fault, None));
            }
        });
        FaultProxy { port }
    }
}

/// Copies `from` to `to` under `fault`; `counted` counts client bytes (the upstream way).
fn forward(
    mut from: TcpStream,
    mut to: TcpStream,
    fault: Fault,
    counted: Option<Arc<AtomicUsize>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut since_pause = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        match fault {
            Fault::OneByte { pause_every, pause } => {
                for b in data {
                    if to.write_all(std::slice::from_ref(b)).is_err() {
                        return;
                    }
                    since_pause += 1;
                    if since_pause >= pause_every {
                        since_pause = 0;
                        thread::sleep(pause);
                    }
                }
                continue;
            }
            Fault::ResetAfter(limit) | Fault::StallAfter(limit) => {
                if let Some(c) = &counted {
                    let before = c.fetch_add(n, Ordering::Relaxed);
                    if before + n > limit {
                        data = &data[..limit.saturating_sub(before)];
                        let _ = to.write_all(data);
                        if let Fault::ResetAfter(_) = fault {
                            // Linger 0: the close (once the other thread lets go of its
                            // handles too) is a reset, not a FIN.
                            for s in [&from, &to] {
                                let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                                let _ = s.shutdown(Shutdown::Both);
                            }
                            return;
                        }
                        // Stall: hold both sockets open and move nothing more.
                        thread::sleep(Duration::from_secs(3600));
                        return;
                    }
                }
            }
        }
        if to.write_all(data).is_err() {
            return;
        }
    }
}
