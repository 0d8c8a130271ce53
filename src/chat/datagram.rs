//! UDP and unixgram members: a peer address joins with its first datagram (which may hold
//! several lines), gets every room line as a datagram of its own, and leaves with `bye`,
//! `/quit`, or after the idle timeout.
//!
//! UDP source addresses can be forged, so an address hears the room only once it has proved
//! it receives what is sent to it: its first datagram is answered with a code (`/join
//! CODE`), and until that line comes back the address is no member at all (nobody sees it
//! join, its lines reach nobody) and gets nothing but that answer, never more than three
//! times the bytes it sent (RFC 9000's anti-amplification rule). A forged source therefore
//! can neither turn the room into a reflector nor speak in it. `--udp-open` skips the proof
//! on trusted networks.
//!
//! One socket serves every datagram member, so reads cannot be paused for one of them:
//! lines over `--rate` are refused with a `! ` answer instead of silently lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use super::framing::MemberOptions;
use super::framing::{self, Pace};
use super::room::{Flow, MemberId, Room};
use crate::net::{Datagram, Peer, MAX_DATAGRAM};
use crate::server::{Admission, Incoming};

struct Member {
    id: MemberId,
    last: Instant,
    pace: Pace,
}

/// An address that wrote but has not proved it yet.
struct Pending {
    code: String,
    /// Bytes received from it, and answered to it: answers stay within 3x what came.
    received: usize,
    sent: usize,
    since: Instant,
    /// What it sent before the proof (each datagram as lines), applied once it has proved
    /// its address: `/nick NAME` as a first datagram is not lost.
    kept: Vec<u8>,
    /// Some of it did not fit [`KEEP_MAX`]: the answer says so.
    dropped: bool,
}

/// What an unproven address may have kept for it, at most.
const KEEP_MAX: usize = 1024;

/// Addresses waiting to prove themselves, at most; the oldest gives way to a new one.
const PENDING_MAX: usize = 4096;
/// How long a code stays good.
const PENDING_TTL: Duration = Duration::from_secs(120);
/// What an unproven address may be sent, per byte it sent (RFC 9000, section 8).
const AMPLIFICATION: usize = 3;

/// A code nobody who cannot read what is sent to the address can guess: 32 bits from a
/// keyed hash (SipHash with the process's random keys) of the address, a counter and the
/// time.
fn join_code(peer: &Peer) -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    peer.hash(&mut h);
    SEQ.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    std::time::SystemTime::now().hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}

impl Pending {
    fn new(peer: &Peer) -> Pending {
        Pending {
            code: join_code(peer),
            received: 0,
            sent: 0,
            since: Instant::now(),
            kept: Vec::new(),
            dropped: false,
        }
    }

    /// Keeps an unproven datagram's lines for when the address is proved, within
    /// [`KEEP_MAX`].
    fn keep(&mut self, data: &[u8]) {
        if data.is_empty() || self.dropped {
            return;
        }
        if self.kept.len() + data.len() + 1 > KEEP_MAX {
            self.dropped = true;
            return;
        }
        self.kept.extend_from_slice(data);
        if !data.ends_with(b"\n") {
            self.kept.push(b'\n');
        }
    }

    /// The longest answer that fits what this address has earned, if any does.
    fn answer(&mut self) -> Option<String> {
        let budget = (self.received * AMPLIFICATION).saturating_sub(self.sent);
        let code = &self.code;
        let fate = if self.dropped {
            "what you sent before it is not kept: send it again"
        } else {
            "what you sent before it goes to the room then"
        };
        let answer = [
            format!("*** welcome; send /join {code} to hear the room (it proves your address; {fate})\n"),
            format!("*** welcome; send /join {code} to hear the room (it proves your address)\n"),
            format!("*** send /join {code} to hear the room\n"),
            format!("/join {code}\n"),
        ]
        .into_iter()
        .find(|a| a.len() <= budget)?;
        self.sent += answer.len();
        Some(answer)
    }

    /// The datagram's lines after a correct `/join CODE` first line, if it has one.
    fn proof<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let (first, rest) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &data[data.len()..]),
        };
        let first = std::str::from_utf8(first).ok()?.trim();
        let (cmd, code) = first.split_once(' ')?;
        (cmd.eq_ignore_ascii_case("/join") && code.trim() == self.code).then_some(rest)
    }
}

/// Serves every datagram member of `sock` until the future is dropped.
pub async fn serve(room: Arc<Room>, sock: Datagram, opts: MemberOptions, admission: &Admission) {
    let tracker = admission.tasks();
    sock.watch_unreachable();
    let sock = Arc::new(sock);
    let idle = opts.idle_timeout.unwrap_or(Duration::from_secs(600));
    let mut members: HashMap<Peer, Member> = HashMap::new();
    let mut pending: HashMap<Peer, Pending> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sweep =
        tokio::time::interval((idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)));
    loop {
        let (n, peer) = tokio::select! {
            r = admission.receive_or_unreachable(&sock, &mut buf, "chat") => match r {
                Incoming::Datagram(n, peer) => (n, peer),
                Incoming::Unreachable(gone) => {
                    for peer in gone {
                        pending.remove(&peer);
                        if let Some(m) = members.remove(&peer) {
                            room.leave(m.id, "unreachable");
                        }
                    }
                    continue;
                }
            },
            _ = sweep.tick() => {
                let now = Instant::now();
                members.retain(|_, m| {
                    let alive = now.duration_since(m.last) < idle;
                    if !alive {
                        room.leave(m.id, "idle timeout");
                    }
                    alive
                });
                pending.retain(|_, p| now.duration_since(p.since) < PENDING_TTL);
                continue;
            }
        };
        let earlier: Vec<u8>;
        let mut data = &buf[..n];
        // Only IP sources can be forged; a unixgram peer's address comes from the kernel.
        if !opts.udp_open && peer.ip().is_some() && !members.contains_key(&peer) {
            match prove(&mut pending, &peer, data) {
                Some((kept, rest)) if kept.is_empty() => data = rest,
                Some((mut kept, rest)) => {
                    // What it said before the proof first, then what came with it.
                    kept.extend_from_slice(rest);
                    earlier = kept;
                    data = &earlier;
                }
                None => {
                    if let Some(answer) = pending.get_mut(&peer).and_then(Pending::answer) {
                        let _ = sock.send_to(answer.as_bytes(), &peer).await;
                    }
                    continue;
                }
            }
        }
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

/// An unproven address's datagram: `Some((the lines kept from before, the lines after the
/// proof))` when it carries the right `/join CODE`, else `None` (the address is now
/// pending, its bytes counted and its lines kept).
fn prove<'a>(
    pending: &mut HashMap<Peer, Pending>,
    peer: &Peer,
    data: &'a [u8],
) -> Option<(Vec<u8>, &'a [u8])> {
    if let Some(rest) = pending.get(peer).and_then(|p| p.proof(data)) {
        let kept = pending.remove(peer).map(|p| p.kept).unwrap_or_default();
        tracing::debug!(%peer, "datagram address proved");
        return Some((kept, rest));
    }
    if !pending.contains_key(peer) && pending.len() >= PENDING_MAX {
        // Forged sources in bulk: the oldest code gives way.
        if let Some(oldest) = pending
            .iter()
            .min_by_key(|(_, p)| p.since)
            .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
    }
    let p = pending
        .entry(peer.clone())
        .or_insert_with(|| Pending::new(peer));
    p.received += data.len().max(1);
    p.keep(data);
    None
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
                        tracing::debug!(peer = %to, error = %crate::error::describe_io(&e), "chat datagram send failed");
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
