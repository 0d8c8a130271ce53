//! The tutorial's udp_server.py, written with sockit: receive one datagram, print it and who
//! sent it, answer `hi` to that sender.
//!
//! Run: `cargo run --example udp_server`, then `cargo run --example udp_client`
//! (or `sockit connect --send hello udp://127.0.0.1:9000`).

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("udp://127.0.0.1:9000".into());
    let sock = sockit::net::bind_datagram(&endpoint.parse()?).await?;
    eprintln!("listening on {}", sock.local_endpoint());
    let mut buf = [0u8; 65_535];
    let (n, peer) = sock
        .recv_from(&mut buf)
        .await
        .map_err(|e| sockit::Error::io("cannot receive", &e))?;
    println!("{peer} sent {:?}", String::from_utf8_lossy(&buf[..n]));
    sock.send_to(b"hi", &peer)
        .await
        .map_err(|e| sockit::Error::io(format!("cannot answer {peer}"), &e))?;
    Ok(())
}
