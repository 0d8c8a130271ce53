//! The tutorial's interactive chat client, written with sockit: type a line, read the
//! answer; `bye` from either side ends the chat.
//!
//! Run: `cargo run --example chat_server` (or `sockit listen tcp://127.0.0.1:8090`), then
//! `cargo run --example chat_client [ENDPOINT]`.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("tcp://127.0.0.1:8090".into());
    let (mut conn, peer) = sockit::net::dial(&endpoint.parse()?, &Default::default()).await?;
    let io_err = |e: std::io::Error| sockit::Error::io(format!("talking to {peer}"), &e);
    let mut typed = BufReader::new(sockit::stdio::Input::stdin()).lines();
    let mut buf = [0u8; 1024];
    loop {
        eprint!("client>>> ");
        let Some(msg) = typed.next_line().await.map_err(io_err)? else {
            return Ok(());
        };
        conn.write_all(msg.as_bytes()).await.map_err(io_err)?;
        if msg == "bye" {
            return Ok(());
        }
        let n = conn.read(&mut buf).await.map_err(io_err)?;
        let reply = String::from_utf8_lossy(&buf[..n]);
        println!("{reply}");
        if n == 0 || reply.trim_end() == "bye" {
            return Ok(());
        }
    }
}
