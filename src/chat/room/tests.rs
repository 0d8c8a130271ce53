//! The room without any socket.

use super::*;
use crate::chat::Mailbox;

async fn text(m: &mut Mailbox) -> String {
    let b = m.next(1 << 16).await.unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

#[tokio::test]
async fn a_room_works_without_any_socket() {
    let room = Room::new(RoomConfig::default());
    let mut a = room.join().unwrap();
    assert!(text(&mut a.mailbox)
        .await
        .starts_with("*** welcome, you are guest1"));
    let mut b = room.join().unwrap();
    assert_eq!(text(&mut a.mailbox).await, "*** guest2 joined\n");
    assert!(text(&mut b.mailbox)
        .await
        .starts_with("*** welcome, you are guest2"));
    let out = room.input(b.id, [&b"one"[..], b"two", b"/me smiles"]);
    assert_eq!(out.flow, Flow::Stay);
    // Plain lines of one input arrive as one buffer, then the action.
    assert_eq!(
        text(&mut a.mailbox).await,
        "<guest2> one\n<guest2> two\n* guest2 smiles\n"
    );
    assert_eq!(room.input(b.id, [&b"bye"[..]]).flow, Flow::Left);
    assert_eq!(text(&mut b.mailbox).await, "*** bye\n");
    // Gone from the room: its mailbox ends.
    assert!(b.mailbox.next(1024).await.is_none());
    assert_eq!(text(&mut a.mailbox).await, "*** guest2 left (bye)\n");
    assert_eq!(room.input(b.id, [&b"ghost"[..]]).flow, Flow::Gone);
    room.close("*** server shutting down");
    assert_eq!(text(&mut a.mailbox).await, "*** server shutting down\n");
    assert!(a.mailbox.next(1024).await.is_none());
    assert_eq!(room.join().unwrap_err(), JoinError::Closed);
}

#[tokio::test]
async fn settle_waits_for_readers_then_drops_who_stays_behind() {
    let room = Room::new(RoomConfig {
        soft_lag: 40,
        grace: Duration::from_millis(100),
        ..RoomConfig::default()
    });
    let mut reader = room.join().unwrap();
    let stuck = room.join().unwrap();
    let mut sender = room.join().unwrap();
    let _ = sender.mailbox.next(1 << 16).await;
    let _ = reader.mailbox.next(1 << 16).await;
    let mut backlog = Backlog::default();
    for n in 0..10 {
        let out = room.input(sender.id, [format!("line {n}").as_bytes()]);
        backlog = out.backlog;
    }
    assert!(!backlog.is_empty());
    // The sender's own writer passes over its lines (they are not for it).
    let own = tokio::time::timeout(Duration::from_millis(10), sender.mailbox.next(1 << 16));
    assert!(own.await.is_err());
    let drain = async {
        let mut got = String::new();
        while !got.contains("line 9") {
            got.push_str(&text(&mut reader.mailbox).await);
        }
    };
    tokio::join!(room.settle(backlog), drain);
    assert!(
        stuck.mailbox.kick.is_cancelled(),
        "the stuck member stays behind"
    );
    assert_eq!(room.len(), 2);
    assert_eq!(
        text(&mut reader.mailbox).await,
        "*** guest2 left (too slow)\n"
    );
}

#[tokio::test]
async fn a_member_a_whole_log_behind_is_dropped() {
    let room = Room::new(RoomConfig {
        log_len: 16,
        ..RoomConfig::default()
    });
    let mut stuck = room.join().unwrap();
    let mut sender = room.join().unwrap();
    for n in 0..40 {
        drop(
            room.input(sender.id, [format!("line {n}").as_bytes()])
                .backlog,
        );
        // The sender's writer runs as a transport's would: its own lines fill its
        // slots of the log too, and it passes over them.
        let _ = tokio::time::timeout(Duration::from_millis(1), sender.mailbox.next(1 << 16)).await;
    }
    // Its own lines (the welcome) still go out; then it is gone.
    assert!(text(&mut stuck.mailbox).await.starts_with("*** welcome"));
    assert!(stuck.mailbox.kick.is_cancelled());
    assert!(stuck.mailbox.next(1024).await.is_none());
    assert_eq!(room.len(), 1);
}

#[tokio::test]
async fn a_member_past_the_lag_limit_is_dropped_at_once() {
    let room = Room::new(RoomConfig {
        lag_limit: 200,
        ..RoomConfig::default()
    });
    let mut reader = room.join().unwrap();
    let stuck = room.join().unwrap();
    let mut sender = room.join().unwrap();
    for n in 0..40 {
        drop(
            room.input(sender.id, [format!("line {n}").as_bytes()])
                .backlog,
        );
        let _ = tokio::time::timeout(Duration::from_millis(1), sender.mailbox.next(1 << 16)).await;
        let _ = reader.mailbox.next(1 << 16).await;
    }
    assert!(stuck.mailbox.kick.is_cancelled());
    assert_eq!(room.len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiting_writer_takes_every_entry_behind_the_one_that_woke_it() {
    let room = Room::new(RoomConfig::default());
    let mut reader = room.join().unwrap();
    let sender = room.join().unwrap();
    // The welcome and the join notice.
    assert!(text(&mut reader.mailbox)
        .await
        .ends_with("*** guest2 joined\n"));
    let writer = tokio::spawn(async move { reader.mailbox.next(1 << 16).await });
    // Let it park in its wait for the log.
    tokio::task::yield_now().await;
    assert!(!writer.is_finished());
    // Two entries land before it runs again: one write carries both.
    drop(room.input(sender.id, [&b"one"[..]]).backlog);
    drop(room.input(sender.id, [&b"two"[..]]).backlog);
    let got = writer.await.unwrap().unwrap();
    assert_eq!(&got[..], b"<guest2> one\n<guest2> two\n");
}
