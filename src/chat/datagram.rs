//! UDP and unixgram members: a peer address joins with its first datagram (which may hold
//! several lines), gets every room line as a datagram of its own, and leaves with `bye`,
//! `/quit`, or after the idle timeout.
//!
//! One socket serves every datagram member, so reads cannot be paused for one of them:
//! lines over `--rate` are refused with a `! ` answer instead of silently lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use super::framing::{self, Pace};
use super::room::{Flow, MemberId, Room};
use super::MemberOptions;
use crate::net::{Datagram, Peer, MAX_DATAGRAM};
use crate::server::Admission;

struct Member {
    id: MemberId,
    last: Instant,
    pace: Pace,
}

/// Serves every datagram member of `sock` until the future is dropped.
pub async fn serve(room: Arc<Room>, sock: Datagram, opts: MemberOptions, admission: &Admission) {
    let tracker = admission.tasks();
    let sock = Arc::new(sock);
    let idle = opts.idle_timeout.unwrap_or(Duration::from_secs(600));
    let mut members: HashMap<Peer, Member> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sweep =
        tokio::time::interval((idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)));
    loop {
        let (n, peer) = tokio::select! {
            r = admission.receive(&sock, &mut buf, "chat") => r,
            _ = sweep.tick() => {
                let now = Instant::now();
                members.retain(|_, m| {
                    let alive = now.duration_since(m.last) < idle;
                    if !alive {
                        room.leave(m.id, "idle timeout");
                    }
                    alive
                });
                continue;
            }
        };
        let data = &buf[..n];
        for _attempt in 0..2 {
            let member = match members.get_mut(&peer) {
                Some(m) => m,
                None => match join(&room, &sock, &peer, &opts, tracker).await {
                    Some(m) => members.entry(peer.clone()).or_insert(m),
                    None => break,
                },
            };
            member.last = Instant::now();
            match handle(&room, member, data, &opts) {
                Flow::Stay => break,
                Flow::Left => {
                    members.remove(&peer);
                    break;
                }
                // Dropped meanwhile (too slow): this datagram joins it again.
                Flow::Gone => {
                    members.remove(&peer);
                }
            }
        }
    }
}

async fn join(
    room: &Arc<Room>,
    sock: &Arc<Datagram>,
    peer: &Peer,
    opts: &MemberOptions,
    tracker: &TaskTracker,
) -> Option<Member> {
    let joined = match room.join() {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(%peer, "refused: {e}");
            let _ = sock.send_to(format!("! {e}\n").as_bytes(), peer).await;
            return None;
        }
    };
    tracing::debug!(%peer, nick = %joined.nick, "datagram member joined");
    let (sock, to, mut mailbox) = (sock.clone(), peer.clone(), joined.mailbox);
    let kick = mailbox.kicked_token();
    tracker.spawn(async move {
        let send_all = async {
            while let Some(batch) = mailbox.next(16 * 1024).await {
                for line in batch.split_inclusive(|b| *b == b'\n') {
                    if let Err(e) = sock.send_to(line, &to).await {
                        tracing::debug!(peer = %to, error = %e, "chat datagram send failed");
                    }
                }
            }
        };
        tokio::select! {
            () = send_all => {}
            () = kick.cancelled() => {}
        }
    });
    Some(Member {
        id: joined.id,
        last: Instant::now(),
        pace: Pace::new(opts.rate, opts.burst),
    })
}

/// The datagram's lines (a last line may lack its newline) go to the room, within the rate.
fn handle(room: &Room, member: &mut Member, data: &[u8], opts: &MemberOptions) -> Flow {
    let mut lines = Vec::new();
    let mut over_rate = 0usize;
    for l in framing::lines(data, opts.max_line) {
        match l {
            Err(_) => room.error(member.id, &framing::too_long(opts.max_line)),
            Ok(_) if member.pace.take().is_some() => over_rate += 1,
            Ok(l) => lines.push(l),
        }
    }
    // One socket serves every datagram member: its reads cannot wait for a backlog, so the
    // room's lag limit alone protects it here.
    let flow = room.input(member.id, lines).flow;
    if over_rate > 0 && flow == Flow::Stay {
        room.error(
            member.id,
            &format!("too fast: {over_rate} line(s) not sent; slow down"),
        );
    }
    flow
}
