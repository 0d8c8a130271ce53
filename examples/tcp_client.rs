//! The tutorial's tcp_client.py, written with sockit: send `hello!`, print the answer.
//!
//! Run: start `cargo run --example tcp_server` (or `echo hi | sockit listen tcp://127.0.0.1:8898`),
//! then `cargo run --example tcp_client [ENDPOINT]`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("tcp://127.0.0.1:8898".into());
    let (mut conn, peer) = sockit::net::dial(&endpoint.parse()?, &Default::default()).await?;
    let io_err = |e: std::io::Error| sockit::Error::io(format!("talking to {peer}"), &e);
    conn.write_all(b"hello!").await.map_err(io_err)?;
    let mut buf = [0u8; 1024];
    let n = conn.read(&mut buf).await.map_err(io_err)?;
    println!("{:?}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
