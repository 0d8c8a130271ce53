//! The tutorial's udp_client.py, written with sockit: send `hello`, print the answer and who
//! sent it. Unlike the tutorial, it gives up after 5 seconds instead of waiting forever.
//!
//! Run: `cargo run --example udp_server` (or `echo hi | sockit listen udp://127.0.0.1:9000`),
//! then `cargo run --example udp_client [ENDPOINT]`.

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("udp://127.0.0.1:9000".into());
    let (sock, peer) = sockit::net::connect_datagram(&endpoint.parse()?).await?;
    let io_err = |e: std::io::Error| sockit::Error::io(format!("talking to {peer}"), &e);
    sock.send(b"hello").await.map_err(io_err)?;
    let mut buf = [0u8; 65_535];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .map_err(|_| io_err(std::io::ErrorKind::TimedOut.into()))?
        .map_err(io_err)?;
    println!("{} {peer}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
