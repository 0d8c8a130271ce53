//! The room: members, nicks, commands and delivery. No sockets here: a transport joins a
//! member, feeds it the lines it reads, and writes out whatever the member's [`Mailbox`]
//! holds. That is what lets tcp, udp, unix and tls members share one room, and what a
//! later bridge (a message bus, a browser front end) plugs into.
//!
//! Delivery is built for fan-out: the lines one member sends in one read become one shared
//! buffer, queued (not copied) for every other member. Two marks bound each queue. Past the
//! soft mark the *sender* is slowed: its transport waits (reads paused) until the backlog
//! drains, so a fast sender cannot outrun readers that keep up. A member that does not drain
//! within the grace, or reaches the hard limit, is dropped as too slow: nobody waits for it
//! more than once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::text::{check_nick, clean, nick_key};

/// Names one member for as long as it is in the room.
pub type MemberId = u64;

/// The room's limits.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Members at most; `None` for no limit but the system's.
    pub max_members: Option<usize>,
    /// Bytes that may wait in one member's queue; past this it is dropped as too slow.
    pub queue_limit: usize,
    /// Past this many queued bytes a member's backlog slows the sender down.
    pub soft_limit: usize,
    /// How long a sender waits for a backlog to drain before its owner counts as too slow.
    pub grace: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_members: None,
            queue_limit: 1024 * 1024,
            soft_limit: 64 * 1024,
            grace: Duration::from_secs(1),
        }
    }
}

/// One member's queue length in bytes, and a wake-up for senders waiting on it.
#[derive(Debug, Default)]
struct Queue {
    bytes: AtomicUsize,
    drained: Notify,
}

/// Members whose queues passed the soft mark during one [`Room::input`]; hand it to
/// [`Room::settle`] before reading more from that member.
#[derive(Debug, Default)]
#[must_use = "wait with Room::settle, or the sender is never slowed down"]
pub struct Backlog(Vec<(MemberId, Arc<Queue>)>);

impl Backlog {
    /// True when nobody is behind.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a member could not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// `--max-members` reached.
    Full(usize),
    /// The room is shutting down.
    Closed,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Full(n) => write!(f, "the room is full ({n} members); try again later"),
            JoinError::Closed => f.write_str("the room is closing"),
        }
    }
}

/// What happened to a member after its lines were handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Still in the room.
    Stay,
    /// It left (`/quit`, `bye`); its mailbox ends after the goodbye.
    Left,
    /// It is no longer a member (dropped as too slow, or the room closed).
    Gone,
}

/// The result of [`Room::input`].
#[derive(Debug)]
pub struct Outcome {
    /// Whether the member is still in the room.
    pub flow: Flow,
    /// Who fell behind because of these lines.
    pub backlog: Backlog,
}

/// A new member: its id, the nick it got, and where its lines arrive.
#[derive(Debug)]
pub struct Joined {
    /// Pass this back to [`Room::input`] and [`Room::leave`].
    pub id: MemberId,
    /// The nick given on joining (`guestN`).
    pub nick: String,
    /// What the transport writes to the member.
    pub mailbox: Mailbox,
}

/// The receiving end of one member's queue.
#[derive(Debug)]
pub struct Mailbox {
    rx: mpsc::UnboundedReceiver<Bytes>,
    queue: Arc<Queue>,
    soft: usize,
    kick: CancellationToken,
}

impl Mailbox {
    /// Everything queued, up to about `max` bytes, as one buffer (so one write sends many
    /// lines); `None` once the member has left and its queue is empty.
    pub async fn next(&mut self, max: usize) -> Option<Bytes> {
        let first = self.rx.recv().await?;
        let mut total = first.len();
        let mut joined: Option<BytesMut> = None;
        while total < max {
            let Ok(more) = self.rx.try_recv() else { break };
            let buf = joined.get_or_insert_with(|| {
                let mut b = BytesMut::with_capacity(max.max(first.len()));
                b.extend_from_slice(&first);
                b
            });
            buf.extend_from_slice(&more);
            total += more.len();
        }
        let before = self.queue.bytes.fetch_sub(total, Ordering::Relaxed);
        if before > self.soft && before - total <= self.soft {
            self.queue.drained.notify_waiters();
        }
        Some(joined.map_or(first, BytesMut::freeze))
    }

    /// Cancelled when the room drops this member (too slow): stop writing at once.
    pub fn kicked_token(&self) -> CancellationToken {
        self.kick.clone()
    }
}

struct Member {
    nick: String,
    tx: mpsc::UnboundedSender<Bytes>,
    queue: Arc<Queue>,
    kick: CancellationToken,
}

impl Member {
    /// Queues `data` unless that would pass `limit`; a gone receiver is not "slow". Returns
    /// the bytes now queued, or `None` when over the limit.
    fn push(&self, data: &Bytes, limit: usize) -> Option<usize> {
        let queued = self.queue.bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + data.len() > limit {
            return None;
        }
        self.queue.bytes.fetch_add(data.len(), Ordering::Relaxed);
        let _ = self.tx.send(data.clone());
        Some(queued + data.len())
    }
}

#[derive(Default)]
struct State {
    members: HashMap<MemberId, Member>,
    nicks: HashMap<String, MemberId>,
    next_id: MemberId,
    next_guest: u64,
    closed: bool,
    /// Filled by broadcasts, taken by `input`.
    backlog: Vec<(MemberId, Arc<Queue>)>,
}

/// Backlogs remembered per input: enough to slow a sender, bounded for huge rooms.
const MAX_BACKLOG: usize = 64;

/// One chat room. Share it as `Arc<Room>` between every transport.
pub struct Room {
    cfg: RoomConfig,
    state: Mutex<State>,
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.len())
            .finish()
    }
}

fn line(text: impl AsRef<str>) -> Bytes {
    let text = text.as_ref();
    let mut b = BytesMut::with_capacity(text.len() + 1);
    b.extend_from_slice(text.as_bytes());
    b.extend_from_slice(b"\n");
    b.freeze()
}

const HELP: &str = "\
* /nick NAME      change your nick (letters, digits, _ and -, up to 32)
* /who            list the members
* /msg NICK text  a private line to one member
* /me action      tell the room what you do: * NICK action
* /quit [reason]  leave (a line that is just 'bye' does the same)
* //text          send a line that starts with /
";

impl Room {
    /// An empty room.
    pub fn new(cfg: RoomConfig) -> Arc<Room> {
        Arc::new(Room {
            cfg,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many members are in the room.
    pub fn len(&self) -> usize {
        self.lock().members.len()
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a member as `guestN`: it gets the welcome line, the others `* guestN joined`.
    ///
    /// # Errors
    /// The room is full or closing; tell the client with `! ` and close it.
    pub fn join(&self) -> Result<Joined, JoinError> {
        let mut st = self.lock();
        if st.closed {
            return Err(JoinError::Closed);
        }
        if let Some(max) = self.cfg.max_members {
            if st.members.len() >= max {
                return Err(JoinError::Full(max));
            }
        }
        let nick = loop {
            st.next_guest += 1;
            let candidate = format!("guest{}", st.next_guest);
            if !st.nicks.contains_key(&nick_key(&candidate)) {
                break candidate;
            }
        };
        st.next_id += 1;
        let id = st.next_id;
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue::default());
        let kick = CancellationToken::new();
        let others = st.members.len();
        st.members.insert(
            id,
            Member {
                nick: nick.clone(),
                tx,
                queue: queue.clone(),
                kick: kick.clone(),
            },
        );
        st.nicks.insert(nick_key(&nick), id);
        let here = match others {
            0 => "nobody else is here".to_string(),
            1 => "1 other member here".to_string(),
            n => format!("{n} other members here"),
        };
        self.tell(
            &mut st,
            id,
            line(format!(
                "* welcome, you are {nick} ({here}; /help lists the commands)"
            )),
        );
        self.broadcast(&mut st, Some(id), line(format!("* {nick} joined")));
        tracing::info!(%nick, members = st.members.len(), "member joined");
        Ok(Joined {
            id,
            nick,
            mailbox: Mailbox {
                rx,
                queue,
                soft: self.cfg.soft_limit,
                kick,
            },
        })
    }

    /// Handles lines a member sent (raw, without their newlines): text goes to every other
    /// member as `<nick> text`, commands are carried out. Lines of one call that are plain
    /// text reach the others as one buffer.
    pub fn input<'a>(&self, id: MemberId, lines: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut st = self.lock();
        let flow = self.handle(&mut st, id, lines);
        Outcome {
            flow,
            backlog: Backlog(std::mem::take(&mut st.backlog)),
        }
    }

    /// Waits until the members in `backlog` are below the soft mark again; those still
    /// behind after the grace are dropped as too slow.
    pub async fn settle(&self, backlog: Backlog) {
        let deadline = tokio::time::Instant::now() + self.cfg.grace;
        let mut late = Vec::new();
        for (id, q) in backlog.0 {
            loop {
                let drained = q.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if q.bytes.load(Ordering::Relaxed) <= self.cfg.soft_limit {
                    break;
                }
                if tokio::time::timeout_at(deadline, drained).await.is_err() {
                    late.push(id);
                    break;
                }
            }
        }
        if !late.is_empty() {
            let mut st = self.lock();
            let soft = self.cfg.soft_limit;
            late.retain(|id| {
                st.members
                    .get(id)
                    .is_some_and(|m| m.queue.bytes.load(Ordering::Relaxed) > soft)
            });
            self.drop_slow(&mut st, late);
            st.backlog.clear();
        }
    }

    fn handle<'a>(
        &self,
        st: &mut State,
        id: MemberId,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Flow {
        let Some(nick) = st.members.get(&id).map(|m| m.nick.clone()) else {
            return Flow::Gone;
        };
        let mut nick = nick;
        let mut batch = BytesMut::new();
        for raw in lines {
            let text = clean(raw);
            if text.is_empty() {
                continue;
            }
            let plain = match text.strip_prefix("//") {
                Some(_) => Some(&text[1..]),
                None if text.starts_with('/') || text.eq_ignore_ascii_case("bye") => None,
                None => Some(text.as_str()),
            };
            if let Some(plain) = plain {
                batch.extend_from_slice(b"<");
                batch.extend_from_slice(nick.as_bytes());
                batch.extend_from_slice(b"> ");
                batch.extend_from_slice(plain.as_bytes());
                batch.extend_from_slice(b"\n");
                continue;
            }
            if !batch.is_empty() {
                self.broadcast(st, Some(id), batch.split().freeze());
            }
            match self.command(st, id, &nick, &text) {
                Flow::Stay => {}
                other => return other,
            }
            match st.members.get(&id) {
                Some(m) => nick.clone_from(&m.nick),
                None => return Flow::Gone,
            }
        }
        if !batch.is_empty() {
            self.broadcast(st, Some(id), batch.freeze());
        }
        if st.members.contains_key(&id) {
            Flow::Stay
        } else {
            Flow::Gone
        }
    }

    /// Tells one member something went wrong (`! text`); nobody else sees it.
    pub fn error(&self, id: MemberId, text: &str) {
        let mut st = self.lock();
        self.tell(&mut st, id, line(format!("! {text}")));
    }

    /// Removes a member; the others see `* NICK left (reason)`. Leaving twice is harmless.
    pub fn leave(&self, id: MemberId, reason: &str) {
        let mut st = self.lock();
        if let Some(m) = Self::remove(&mut st, id) {
            tracing::info!(nick = %m.nick, reason, members = st.members.len(), "member left");
            self.broadcast(&mut st, None, line(format!("* {} left ({reason})", m.nick)));
        }
    }

    /// Closes the room: every member gets `notice`, then its mailbox ends once drained.
    pub fn close(&self, notice: &str) {
        let mut st = self.lock();
        st.closed = true;
        let data = line(notice);
        for (_, m) in st.members.drain() {
            // Past the limit or not, the last word goes out.
            m.queue.bytes.fetch_add(data.len(), Ordering::Relaxed);
            let _ = m.tx.send(data.clone());
        }
        st.nicks.clear();
    }

    fn remove(st: &mut State, id: MemberId) -> Option<Member> {
        let m = st.members.remove(&id)?;
        st.nicks.remove(&nick_key(&m.nick));
        Some(m)
    }

    /// Queues for one member; one that cannot take even that is dropped as too slow.
    fn tell(&self, st: &mut State, id: MemberId, data: Bytes) {
        let ok = match st.members.get(&id) {
            Some(m) => m.push(&data, self.cfg.queue_limit).is_some(),
            None => return,
        };
        if !ok {
            self.drop_slow(st, vec![id]);
        }
    }

    /// Queues `data` once for every member but `except`; drops the ones over their limit.
    fn broadcast(&self, st: &mut State, except: Option<MemberId>, data: Bytes) {
        let (limit, soft) = (self.cfg.queue_limit, self.cfg.soft_limit);
        let mut slow = Vec::new();
        for (id, m) in &st.members {
            if Some(*id) == except {
                continue;
            }
            match m.push(&data, limit) {
                None => slow.push(*id),
                Some(queued) if queued > soft && st.backlog.len() < MAX_BACKLOG => {
                    if !st.backlog.iter().any(|(b, _)| b == id) {
                        st.backlog.push((*id, m.queue.clone()));
                    }
                }
                Some(_) => {}
            }
        }
        self.drop_slow(st, slow);
    }

    fn drop_slow(&self, st: &mut State, mut slow: Vec<MemberId>) {
        while let Some(id) = slow.pop() {
            let Some(m) = Self::remove(st, id) else {
                continue;
            };
            m.kick.cancel();
            tracing::warn!(nick = %m.nick, "member too slow: its queue is full, dropping it");
            let data = line(format!("* {} left (too slow)", m.nick));
            let limit = self.cfg.queue_limit;
            slow.extend(
                st.members
                    .iter()
                    .filter(|(_, m)| m.push(&data, limit).is_none())
                    .map(|(id, _)| *id),
            );
        }
    }

    fn command(&self, st: &mut State, id: MemberId, nick: &str, text: &str) -> Flow {
        let (cmd, rest) = match text.split_once(' ') {
            Some((c, r)) => (c, r.trim()),
            None => (text, ""),
        };
        match cmd.to_lowercase().as_str() {
            "bye" => self.quit(st, id, nick, "bye"),
            "/quit" => self.quit(st, id, nick, if rest.is_empty() { "quit" } else { rest }),
            "/nick" => {
                self.rename(st, id, nick, rest);
                Flow::Stay
            }
            "/who" => {
                let mut nicks: Vec<&str> = st.members.values().map(|m| m.nick.as_str()).collect();
                nicks.sort_unstable_by_key(|n| n.to_lowercase());
                let total = nicks.len();
                let shown = nicks
                    .iter()
                    .take(100)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if total > 100 {
                    format!(" and {} more", total - 100)
                } else {
                    String::new()
                };
                let text = format!("* {total} here: {shown}{more}");
                self.tell(st, id, line(text));
                Flow::Stay
            }
            "/msg" => {
                let (to, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                let msg = msg.trim();
                if to.is_empty() || msg.is_empty() {
                    self.tell(st, id, line("! usage: /msg NICK text"));
                } else if let Some(&target) = st.nicks.get(&nick_key(to)) {
                    self.tell(st, target, line(format!("<{nick}> (private) {msg}")));
                    let to_nick = st.members.get(&target).map_or(to, |m| m.nick.as_str());
                    let echo = line(format!("* to {to_nick}: {msg}"));
                    self.tell(st, id, echo);
                } else {
                    self.tell(
                        st,
                        id,
                        line(format!(
                            "! nobody here is called {to}; /who lists the members"
                        )),
                    );
                }
                Flow::Stay
            }
            "/me" => {
                if rest.is_empty() {
                    self.tell(st, id, line("! usage: /me action"));
                } else {
                    self.broadcast(st, Some(id), line(format!("* {nick} {rest}")));
                }
                Flow::Stay
            }
            "/help" => {
                self.tell(st, id, Bytes::from_static(HELP.as_bytes()));
                Flow::Stay
            }
            _ => {
                let text = format!("! unknown command {cmd}; /help lists the commands");
                self.tell(st, id, line(text));
                Flow::Stay
            }
        }
    }

    fn quit(&self, st: &mut State, id: MemberId, nick: &str, reason: &str) -> Flow {
        self.tell(st, id, line("* bye"));
        if Self::remove(st, id).is_some() {
            tracing::info!(%nick, reason, members = st.members.len(), "member left");
            self.broadcast(st, None, line(format!("* {nick} left ({reason})")));
        }
        Flow::Left
    }

    fn rename(&self, st: &mut State, id: MemberId, old: &str, new: &str) {
        if let Err(why) = check_nick(new) {
            return self.tell(st, id, line(format!("! {why}")));
        }
        let key = nick_key(new);
        match st.nicks.get(&key) {
            Some(&owner) if owner != id => {
                return self.tell(st, id, line(format!("! the nick {new} is taken")));
            }
            _ => {}
        }
        if old == new {
            return self.tell(st, id, line(format!("* you are already {new}")));
        }
        st.nicks.remove(&nick_key(old));
        st.nicks.insert(key, id);
        if let Some(m) = st.members.get_mut(&id) {
            m.nick = new.to_string();
        }
        tracing::info!(old, new, "nick changed");
        self.tell(st, id, line(format!("* you are now {new}")));
        self.broadcast(st, Some(id), line(format!("* {old} is now {new}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            .starts_with("* welcome, you are guest1"));
        let mut b = room.join().unwrap();
        assert_eq!(text(&mut a.mailbox).await, "* guest2 joined\n");
        assert!(text(&mut b.mailbox)
            .await
            .starts_with("* welcome, you are guest2"));
        let out = room.input(b.id, [&b"one"[..], b"two", b"/me smiles"]);
        assert_eq!(out.flow, Flow::Stay);
        // Plain lines of one input arrive as one buffer, then the action.
        assert_eq!(
            text(&mut a.mailbox).await,
            "<guest2> one\n<guest2> two\n* guest2 smiles\n"
        );
        assert_eq!(room.input(b.id, [&b"bye"[..]]).flow, Flow::Left);
        assert_eq!(text(&mut b.mailbox).await, "* bye\n");
        // Gone from the room: its mailbox ends.
        assert!(b.mailbox.next(1024).await.is_none());
        assert_eq!(text(&mut a.mailbox).await, "* guest2 left (bye)\n");
        assert_eq!(room.input(b.id, [&b"ghost"[..]]).flow, Flow::Gone);
        room.close("* server shutting down");
        assert_eq!(text(&mut a.mailbox).await, "* server shutting down\n");
        assert!(a.mailbox.next(1024).await.is_none());
        assert_eq!(room.join().unwrap_err(), JoinError::Closed);
    }

    #[tokio::test]
    async fn a_member_over_its_limit_is_dropped_and_the_others_told() {
        let room = Room::new(RoomConfig {
            queue_limit: 300,
            soft_limit: 50,
            ..RoomConfig::default()
        });
        let mut reader = room.join().unwrap();
        let stuck = room.join().unwrap();
        let mut sender = room.join().unwrap();
        let _ = sender.mailbox.next(1 << 16).await;
        let _ = reader.mailbox.next(1 << 16).await;
        for _ in 0..20 {
            let out = room.input(sender.id, [&b"0123456789"[..]]);
            assert_eq!(out.flow, Flow::Stay);
            let got = text(&mut reader.mailbox).await;
            assert!(got.starts_with("<guest3> 0123456789\n"), "{got}");
            drop(out.backlog);
        }
        assert!(stuck.mailbox.kick.is_cancelled());
        assert_eq!(room.len(), 2);
    }

    #[tokio::test]
    async fn settle_waits_for_readers_then_drops_who_stays_behind() {
        let room = Room::new(RoomConfig {
            soft_limit: 10,
            grace: Duration::from_millis(100),
            ..RoomConfig::default()
        });
        let mut reader = room.join().unwrap();
        let _ = reader.mailbox.next(1 << 16).await;
        let stuck = room.join().unwrap();
        let sender = room.join().unwrap();
        let _ = reader.mailbox.next(1 << 16).await;
        let out = room.input(sender.id, [&b"a line longer than ten bytes"[..]]);
        assert!(!out.backlog.is_empty());
        let drain = async {
            let _ = reader.mailbox.next(1 << 16).await;
        };
        tokio::join!(room.settle(out.backlog), drain);
        assert!(
            stuck.mailbox.kick.is_cancelled(),
            "the stuck member stays behind"
        );
        assert_eq!(room.len(), 2);
    }
}
