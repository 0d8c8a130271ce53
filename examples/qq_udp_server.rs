//! The tutorial's QQ-style UDP chat server, written with sockit: show every message with who
//! sent it, and send the line you type back to whoever wrote last. Unlike the tutorial, it
//! does not wait for your answer before taking the next message.
//! (`sockit listen -k --show-peer udp://127.0.0.1:8081` does the same from the command line.)
//!
//! Run: `cargo run --example qq_udp_server`, then from other terminals
//! `sockit connect udp://127.0.0.1:8081` and type.

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("udp://127.0.0.1:8081".into());
    let sock = sockit::net::bind_datagram(&endpoint.parse()?).await?;
    eprintln!("listening on {}", sock.local_endpoint());
    let mut typed = BufReader::new(sockit::stdio::Input::stdin()).lines();
    let mut last = None;
    let mut buf = [0u8; 65_535];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, peer)) = r else { continue };
                println!("message from [{peer}]: {}", String::from_utf8_lossy(&buf[..n]).trim_end());
                last = Some(peer);
            }
            line = typed.next_line() => {
                let Ok(Some(line)) = line else { return Ok(()) };
                match &last {
                    Some(peer) => {
                        if let Err(e) = sock.send_to(line.trim().as_bytes(), peer).await {
                            eprintln!("cannot answer {peer}: {e}");
                        }
                    }
                    None => eprintln!("nobody has written yet"),
                }
            }
        }
    }
}
