//! The WebSocket layer as a byte stream, against a raw tungstenite peer.

use super::stream::*;
use super::{Framing, Options};
use crate::net::stream::Stream;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Two ends of one TCP connection on loopback (every system has those).
async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = tokio::join!(
        tokio::net::TcpStream::connect(l.local_addr().unwrap()),
        l.accept()
    );
    (a.unwrap(), b.unwrap().0)
}

/// A WsStream (client role, `framing`) and the raw server end of the same WebSocket.
async fn pair(framing: Framing, max: usize) -> (WsStream<Stream>, WebSocketStream<Stream>) {
    let (a, b) = tcp_pair().await;
    let opts = Options {
        framing,
        max_message: max,
        ..Options::default()
    };
    let client = WebSocketStream::from_raw_socket(Stream::Tcp(a), Role::Client, None).await;
    let server = WebSocketStream::from_raw_socket(Stream::Tcp(b), Role::Server, None).await;
    (WsStream::new(client, &opts, false), server)
}

#[tokio::test]
async fn lines_become_text_messages_whatever_the_writes() {
    let (mut ws, mut peer) = pair(Framing::Lines, 8).await;
    for chunk in [
        &b"he"[..],
        b"llo\n\nw",
        b"orld\n\xff\xfe\n",
        b"0123456789ab\nend",
    ] {
        ws.write_all(chunk).await.unwrap();
    }
    ws.shutdown().await.unwrap();
    let mut got = Vec::new();
    while let Some(Ok(m)) = peer.next().await {
        match m {
            Message::Text(t) => got.push(format!("t:{t}")),
            Message::Binary(b) => got.push(format!("b:{b:?}")),
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert_eq!(
        got,
        [
            "t:hello",
            "t:",
            "t:world",
            "b:b\"\\xff\\xfe\\n\"",
            "b:b\"01234567\"",
            "b:b\"89ab\\n\"",
            "b:b\"end\""
        ]
    );
}

#[tokio::test]
async fn messages_read_as_lines_or_raw() {
    use futures_util::SinkExt;
    let (mut ws, mut peer) = pair(Framing::Lines, 1 << 20).await;
    peer.send(Message::Text("one".into())).await.unwrap();
    peer.send(Message::Binary(Bytes::from_static(b"raw")))
        .await
        .unwrap();
    peer.send(Message::Text("two".into())).await.unwrap();
    peer.close(None).await.unwrap();
    let mut out = Vec::new();
    ws.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"one\nrawtwo\n");
}

#[tokio::test]
async fn text_is_a_line_under_binary_framing_too() {
    use futures_util::SinkExt;
    let (mut ws, mut peer) = pair(Framing::Binary, 1 << 20).await;
    peer.send(Message::Text("line".into())).await.unwrap();
    peer.send(Message::Binary(Bytes::from_static(b"raw")))
        .await
        .unwrap();
    peer.close(None).await.unwrap();
    let mut out = Vec::new();
    ws.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"line\nraw");
}

/// A peer without the half-close: the answer it sends after our end of input is read,
/// and our Close goes out only once it has gone quiet.
#[tokio::test]
async fn a_lingering_shutdown_reads_the_answer_then_closes() {
    use futures_util::SinkExt;
    let (a, b) = tcp_pair().await;
    let opts = Options {
        linger: Some(std::time::Duration::from_millis(300)),
        ..Options::default()
    };
    let client = WebSocketStream::from_raw_socket(Stream::Tcp(a), Role::Client, None).await;
    let mut peer = WebSocketStream::from_raw_socket(Stream::Tcp(b), Role::Server, None).await;
    let mut ws = WsStream::new(client, &opts, false);
    ws.write_all(b"hi\n").await.unwrap();
    ws.shutdown().await.unwrap();
    let echo = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(Ok(m)) = peer.next().await {
            match m {
                Message::Text(t) => {
                    seen.push(t.to_string());
                    // An answer that comes late, then more: none of it is lost.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    peer.send(Message::Text(t)).await.unwrap();
                    peer.send(Message::Text("more".into())).await.unwrap();
                }
                Message::Close(_) => {
                    seen.push("close".into());
                    break;
                }
                _ => {}
            }
        }
        let _ = peer.flush().await;
        seen
    });
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), ws.read_to_end(&mut out))
        .await
        .expect("the read ends once the peer has gone quiet")
        .unwrap();
    assert_eq!(out, b"hi\nmore\n");
    assert_eq!(echo.await.unwrap(), ["hi", "close"]);
}
