//! The "idiomatic tokio" echo server, as tokio's own examples write it: a task per
//! connection, an 8 KiB buffer, read then write_all; and a UDP socket that answers each
//! datagram. The baseline for `bench/compare.sh`: sockit's serve must not be slower.
//!
//! Usage: tokio-echo PORT   (binds 127.0.0.1:PORT for TCP and UDP)

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7007);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let udp = UdpSocket::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..n], from).await;
        }
    });
    loop {
        let (mut socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8 * 1024];
            loop {
                let n = match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
}
