//! The tutorial's UDP time client, written with sockit: type a strftime format such as
//! `%Y %m %d` (or `今天是%Y年%m月%d日`), get the current date in that format. Unlike the
//! tutorial, it gives up on a lost answer after 5 seconds instead of hanging.
//!
//! Run: `sockit serve daytime=udp://127.0.0.1:9000` (or the tutorial's server), then
//! `cargo run --example udp_time_client [ENDPOINT]` and type formats; Ctrl-D ends.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("udp://127.0.0.1:9000".into());
    let (sock, peer) = sockit::net::connect_datagram(&endpoint.parse()?).await?;
    let io_err = |e: std::io::Error| sockit::Error::io(format!("talking to {peer}"), &e);
    let mut typed = BufReader::new(sockit::stdio::Input::stdin()).lines();
    let mut buf = [0u8; 1024];
    loop {
        eprint!("time format (e.g. %Y %m %d)>> ");
        let Some(format) = typed.next_line().await.map_err(io_err)? else {
            return Ok(());
        };
        sock.send(format.trim().as_bytes()).await.map_err(io_err)?;
        match tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await {
            Ok(r) => {
                let n = r.map_err(io_err)?;
                println!("current date: {}", String::from_utf8_lossy(&buf[..n]));
            }
            Err(_) => eprintln!("no answer from {peer} within 5 s"),
        }
    }
}
