//! tokio's chat example (examples/chat.rs in the tokio repository), kept as it is written
//! there: one `LinesCodec` per client, one unbounded channel per peer, one send per line per
//! peer. `tokio-chat ADDR` prints `listening on ADDR` once bound. A reference for benchmarks
//! only: no nicks, no limits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio_util::codec::{Framed, LinesCodec};

type Tx = mpsc::UnboundedSender<String>;

#[derive(Default)]
struct Shared {
    peers: HashMap<SocketAddr, Tx>,
}

impl Shared {
    fn broadcast(&mut self, sender: SocketAddr, message: &str) {
        for (addr, tx) in &self.peers {
            if *addr != sender {
                let _ = tx.send(message.to_string());
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6142".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    let state = Arc::new(Mutex::new(Shared::default()));
    loop {
        let (stream, addr) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            let _ = process(state, stream, addr).await;
        });
    }
}

async fn process(
    state: Arc<Mutex<Shared>>,
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut lines = Framed::new(stream, LinesCodec::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let name = format!("guest{}", addr.port());
    state.lock().await.peers.insert(addr, tx);
    loop {
        tokio::select! {
            Some(msg) = rx.recv() => {
                lines.send(&msg).await?;
            }
            result = lines.next() => match result {
                Some(Ok(msg)) => {
                    let msg = format!("{name}: {msg}");
                    state.lock().await.broadcast(addr, &msg);
                }
                _ => break,
            },
        }
    }
    state.lock().await.peers.remove(&addr);
    Ok(())
}
