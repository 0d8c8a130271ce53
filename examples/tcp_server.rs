//! The tutorial's tcp_server.py, written with sockit: accept one client, print what it sent,
//! answer `hi`. Unlike the tutorial, a restart never fails with "address already in use"
//! (sockit sets SO_REUSEADDR), and a bad address is one clear line, not a traceback.
//!
//! Run: `cargo run --example tcp_server` then, in another terminal,
//! `cargo run --example tcp_client` (or `sockit connect --send hello! 127.0.0.1:8898`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("tcp://127.0.0.1:8898".into());
    let listener = sockit::net::bind(&endpoint.parse()?).await?;
    eprintln!("listening on {}", listener.local_endpoint());
    let (mut conn, peer) = listener
        .accept()
        .await
        .map_err(|e| sockit::Error::io("cannot accept", &e))?;
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.unwrap_or(0);
    println!("{peer} sent {:?}", String::from_utf8_lossy(&buf[..n]));
    if let Err(e) = conn.write_all(b"hi").await {
        eprintln!("cannot answer {peer}: {e}");
    }
    Ok(())
}
