//! The tutorial's interactive chat server, written with sockit. The tutorial's version talks
//! to one client and the next must wait; this one takes clients one after another and
//! survives a client that disconnects by force. `bye` from either side ends a conversation.
//! (For many clients at once, use `sockit listen -k` or `sockit chat`.)
//!
//! Run: `cargo run --example chat_server`, then `cargo run --example chat_client`.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), sockit::Error> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or("tcp://127.0.0.1:8090".into());
    let listener = sockit::net::bind(&endpoint.parse()?).await?;
    eprintln!("listening on {}", listener.local_endpoint());
    let mut typed = BufReader::new(sockit::stdio::Input::stdin()).lines();
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            continue;
        };
        println!("* {peer} connected");
        let mut buf = [0u8; 1024];
        loop {
            let n = match conn.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    // The tutorial crashes here when a client is killed; we go on.
                    println!("* {peer} went away: {e}");
                    break;
                }
            };
            let msg = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            println!("{peer}: {msg}");
            if msg == "bye" {
                break;
            }
            eprint!("server>> ");
            let Ok(Some(reply)) = typed.next_line().await else {
                return Ok(());
            };
            if conn.write_all(reply.as_bytes()).await.is_err() || reply == "bye" {
                break;
            }
        }
        println!("* {peer} left");
    }
}
