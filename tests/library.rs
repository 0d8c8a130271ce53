//! The library, in-process: relay, serve and chat run as `lib.rs` shows, on port 0, with
//! their shutdown token, and are driven with plain tokio sockets. No binary is involved.

#![allow(clippy::unwrap_used)] // reason: a failed unwrap is a failed test, with its message

use std::time::Duration;

use sockit::chat::{self, Room, RoomConfig};
use sockit::net::{self, Bound, DialOptions, Dialer};
use sockit::server::Admission;
use sockit::services::{self, Binding};
use sockit::Endpoint;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Every wait in these tests ends by then.
const DEADLINE: Duration = Duration::from_secs(20);

fn ep(s: &str) -> Endpoint {
    s.parse().unwrap()
}

/// `serve echo` on port 0, started through the library; returns its port.
async fn echo_server(shutdown: &CancellationToken) -> u16 {
    let bindings: Vec<Binding> = vec!["echo=tcp://127.0.0.1:0".parse().unwrap()];
    let bound = services::bind(&bindings).await.unwrap();
    let port = port_of(bound[0].socket.local_endpoint());
    tokio::spawn(services::run(
        bound,
        Admission::default(),
        services::Config::default(),
        shutdown.clone(),
    ));
    port
}

fn port_of(e: &Endpoint) -> u16 {
    e.to_string().rsplit(':').next().unwrap().parse().unwrap()
}

async fn echo_once(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(data).await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    back
}

#[tokio::test]
async fn serve_runs_in_process_and_stops_on_its_token() {
    let shutdown = CancellationToken::new();
    let port = echo_server(&shutdown).await;
    assert_eq!(echo_once(port, b"in process\n").await, b"in process\n");
    shutdown.cancel();
    // Once stopped, nobody listens there any more.
    let refused = tokio::time::timeout(DEADLINE, async {
        loop {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    refused.await.unwrap();
}

#[tokio::test]
async fn relay_runs_in_process_through_the_one_dial() {
    let shutdown = CancellationToken::new();
    let echo = echo_server(&shutdown).await;
    let Bound::Stream(listener) = Bound::bind(&ep("tcp://127.0.0.1:0")).await.unwrap() else {
        panic!("a tcp endpoint binds a listener");
    };
    let port = port_of(listener.local_endpoint());
    let target = Dialer::new(
        ep(&format!("tcp://127.0.0.1:{echo}")),
        &DialOptions::default(),
    )
    .unwrap();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        sockit::relay::run_stream(listener, &Admission::default(), target.into(), None, stop).await
    });
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo_once(port, &data).await, data);
    // The one dial also reaches the relay from the library side.
    let (mut s, _) = net::dial(
        &ep(&format!("tcp://127.0.0.1:{port}")),
        &DialOptions::default(),
    )
    .await
    .unwrap();
    s.write_all(b"dialed\n").await.unwrap();
    let mut line = [0u8; 7];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&line, b"dialed\n");
    shutdown.cancel();
}

/// The next line a chat member gets, within the deadline.
async fn next(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, r.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    line
}

#[tokio::test]
async fn chat_runs_in_process_and_says_goodbye_at_shutdown() {
    let shutdown = CancellationToken::new();
    let endpoint = ep("tcp://127.0.0.1:0");
    let bound = Bound::bind_all(&[&endpoint]).await.unwrap();
    let port = port_of(bound[0].local_endpoint());
    let room = Room::new(RoomConfig::default());
    let served = tokio::spawn(chat::run(
        room.clone(),
        bound,
        Admission::default(),
        chat::Config::default(),
        shutdown.clone(),
    ));
    let connect = || async {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (r, w) = s.into_split();
        (BufReader::new(r), w)
    };
    let (mut a, _wa) = connect().await;
    assert!(next(&mut a)
        .await
        .starts_with("*** welcome, you are guest1"));
    let (mut b, mut wb) = connect().await;
    assert!(next(&mut b)
        .await
        .starts_with("*** welcome, you are guest2"));
    assert_eq!(next(&mut a).await, "*** guest2 joined\n");
    wb.write_all(b"hello from b\n").await.unwrap();
    assert_eq!(next(&mut a).await, "<guest2> hello from b\n");
    assert_eq!(room.len(), 2);
    shutdown.cancel();
    assert_eq!(next(&mut a).await, "*** server shutting down\n");
    assert_eq!(next(&mut b).await, "*** server shutting down\n");
    tokio::time::timeout(DEADLINE, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
