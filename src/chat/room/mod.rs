//! The room: members, nicks, commands and delivery. No sockets here: a transport joins a
//! member, feeds it the lines it reads, and writes out whatever the member's [`Mailbox`]
//! holds. That is what lets tcp, udp, unix and tls members share one room, and what a
//! later bridge (a message bus, a browser front end) plugs into.
//!
//! Delivery (see `mailbox`) is built for fan-out: the lines one member sends in one read
//! become one shared buffer in the room's log, which every other member's writer reads at
//! its own pace. A sender whose lines leave members far behind is slowed (its reads paused)
//! until they catch up; a member still behind after the grace, or a whole log behind, is
//! dropped as too slow, so nobody waits for it more than once.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::mailbox::{Entry, Mailbox, Private};
use super::text::nick_key;

pub use super::mailbox::MemberId;

mod bus;
mod commands;
#[cfg(test)]
mod tests;

/// The room's limits.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Members at most; `None` for no limit but the system's.
    pub max_members: Option<usize>,
    /// Buffers the room's log can hold (a buffer is one read's worth of lines, or one
    /// notice); a buffer leaves memory once every member has taken it.
    pub log_len: usize,
    /// Bytes a member may be behind the log before it is dropped as too slow.
    pub lag_limit: u64,
    /// A sender whose lines leave a member more than this many bytes behind waits.
    pub soft_lag: u64,
    /// How long a sender waits for members to catch up before they count as too slow.
    pub grace: Duration,
    /// Bytes of private lines (answers, errors) one member may leave unread.
    pub private_limit: usize,
    /// Appended to default nicks (`guest3-4f1a`) so that they are unique across the nodes
    /// of a room shared through a bus; none for a room on one node.
    pub guest_suffix: Option<String>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            max_members: None,
            log_len: 32 * 1024,
            lag_limit: 1024 * 1024,
            soft_lag: 256 * 1024,
            grace: Duration::from_secs(1),
            private_limit: 256 * 1024,
            guest_suffix: None,
        }
    }
}

/// The log position a sender waits for, when somebody was behind after its lines.
#[derive(Debug, Default)]
#[must_use = "wait with Room::settle, or the sender is never slowed down"]
pub struct Backlog(Option<u64>);

impl Backlog {
    /// True when nobody is behind.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
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

struct Member {
    nick: String,
    private: Arc<Private>,
    seen: Arc<AtomicU64>,
    /// Log entries its writer has taken (its own included: they fill its slots too).
    taken: Arc<AtomicU64>,
    kick: CancellationToken,
}

impl Drop for Member {
    /// Out of the room means its mailbox ends once its private lines are out.
    fn drop(&mut self) {
        self.private.close();
    }
}

#[derive(Default)]
struct State {
    members: HashMap<MemberId, Member>,
    nicks: HashMap<String, MemberId>,
    next_id: MemberId,
    next_guest: u64,
    closed: bool,
    /// Bytes sent to the log so far.
    sent: u64,
    /// Entries sent to the log so far.
    entries: u64,
    /// Where this room's own events go to reach the other nodes (`--bus`); none on one node.
    bus: Option<mpsc::Sender<Outgoing>>,
    /// The members of the other nodes, as their latest rosters said, by node.
    remote: HashMap<String, Vec<String>>,
}

/// What a room on several nodes tells the others through its bus (see `chat::bus`).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Lines every member elsewhere gets, as they are (text, `/me`, joins, leaves, renames).
    Say(Bytes),
    /// A line for the member called `to`, wherever it is.
    Private {
        /// The nick.
        to: String,
        /// The line.
        data: Bytes,
    },
    /// A local member wants `nick` (a join or `/nick`): claim it in the registry.
    Claim {
        /// Who.
        id: MemberId,
        /// The nick wanted.
        nick: String,
        /// The nick it had (to go back to if the claim fails).
        old: Option<String>,
    },
    /// A local nick is free again.
    Release(String),
}

/// One chat room. Share it as `Arc<Room>` between every transport.
pub struct Room {
    cfg: RoomConfig,
    state: Mutex<State>,
    log: broadcast::Sender<Entry>,
    /// Entries the log holds: a member this far behind would lose lines, so the room drops
    /// it before that can happen (the mailbox never has to call back).
    log_len: u64,
    progress: Arc<Notify>,
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

impl Room {
    /// An empty room.
    pub fn new(cfg: RoomConfig) -> Arc<Room> {
        let log_len = cfg.log_len.max(16);
        let (log, _) = broadcast::channel(log_len);
        Arc::new(Room {
            cfg,
            state: Mutex::new(State::default()),
            log,
            log_len: log_len as u64,
            progress: Arc::new(Notify::new()),
        })
    }

    /// The next free guest nick (`guest7`, or `guest7-4f1a` on a bus), free here and on the
    /// other nodes: for a member who joins, and for one whose nick another node won.
    fn guest_nick(&self, st: &mut State) -> String {
        loop {
            st.next_guest += 1;
            let candidate = match &self.cfg.guest_suffix {
                Some(s) => format!("guest{}-{s}", st.next_guest),
                None => format!("guest{}", st.next_guest),
            };
            if !st.nicks.contains_key(&nick_key(&candidate)) && !Self::remote_has(st, &candidate) {
                return candidate;
            }
        }
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
        let nick = self.guest_nick(&mut st);
        st.next_id += 1;
        let id = st.next_id;
        let private = Arc::new(Private::default());
        let seen = Arc::new(AtomicU64::new(st.sent));
        let taken = Arc::new(AtomicU64::new(st.entries));
        let log = self.log.subscribe();
        let kick = CancellationToken::new();
        let others = st.members.len() + st.remote.values().map(Vec::len).sum::<usize>();
        st.members.insert(
            id,
            Member {
                nick: nick.clone(),
                private: private.clone(),
                seen: seen.clone(),
                taken: taken.clone(),
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
                "*** welcome, you are {nick} ({here}; /help lists the commands)"
            )),
        );
        self.broadcast(&mut st, Some(id), line(format!("*** {nick} joined")));
        Self::publish(
            &st,
            Outgoing::Claim {
                id,
                nick: nick.clone(),
                old: None,
            },
        );
        tracing::info!(%nick, members = st.members.len(), "member joined");
        Ok(Joined {
            id,
            nick,
            mailbox: Mailbox {
                id,
                private,
                log,
                seen,
                taken,
                progress: self.progress.clone(),
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
        let soft = self.cfg.soft_lag;
        let behind = st
            .members
            .values()
            .any(|m| st.sent.saturating_sub(m.seen.load(Ordering::Relaxed)) > soft);
        Outcome {
            flow,
            backlog: Backlog(behind.then_some(st.sent)),
        }
    }

    /// Waits until every member is within the soft lag of `backlog`'s position; those
    /// still behind after the grace are dropped as too slow.
    pub async fn settle(&self, backlog: Backlog) {
        let Some(target) = backlog.0 else { return };
        let deadline = tokio::time::Instant::now() + self.cfg.grace;
        let soft = self.cfg.soft_lag;
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            let behind: Vec<MemberId> = {
                let st = self.lock();
                st.members
                    .iter()
                    .filter(|(_, m)| target.saturating_sub(m.seen.load(Ordering::Relaxed)) > soft)
                    .map(|(id, _)| *id)
                    .collect()
            };
            if behind.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let mut st = self.lock();
                self.drop_slow(&mut st, behind);
                return;
            }
            // Writers ring `progress` as they take from the log.
            let _ = tokio::time::timeout_at(deadline, progress).await;
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
            // Never to the leaver itself, whose writer may still be reading the log.
            self.broadcast(
                &mut st,
                Some(id),
                line(format!("*** {} left ({reason})", m.nick)),
            );
        }
    }

    /// Closes the room: every member gets `notice`, then its mailbox ends once drained.
    pub fn close(&self, notice: &str) {
        let mut st = self.lock();
        st.closed = true;
        let data = line(notice);
        for (_, m) in st.members.drain() {
            // Past the limit or not, the last word goes out.
            m.private.push(data.clone(), usize::MAX);
        }
        st.nicks.clear();
    }

    fn remove(st: &mut State, id: MemberId) -> Option<Member> {
        let m = st.members.remove(&id)?;
        st.nicks.remove(&nick_key(&m.nick));
        Self::publish(st, Outgoing::Release(m.nick.clone()));
        Some(m)
    }

    /// Queues for one member; one that cannot take even that is dropped as too slow.
    fn tell(&self, st: &mut State, id: MemberId, data: Bytes) {
        let ok = match st.members.get(&id) {
            Some(m) => m.private.push(data, self.cfg.private_limit),
            None => return,
        };
        if !ok {
            self.drop_slow(st, vec![id]);
        }
    }

    /// Puts `data` in the log once, for every member but `except`; drops members that are
    /// now more than the lag limit behind, or about to lose lines from the log.
    fn broadcast(&self, st: &mut State, except: Option<MemberId>, data: Bytes) {
        self.send_log(st, except, data);
        self.drop_laggards(st);
    }

    /// Drops every member past the lag limit (bytes) or nearly a whole log behind
    /// (entries); their farewells are entries too, so it looks again until nobody is.
    fn drop_laggards(&self, st: &mut State) {
        let limit = self.cfg.lag_limit;
        // Headroom for the farewells of one round, sent before the next look.
        let entries_limit = self.log_len.saturating_sub(8).max(1);
        loop {
            let slow: Vec<MemberId> = st
                .members
                .iter()
                .filter(|(_, m)| {
                    st.sent.saturating_sub(m.seen.load(Ordering::Relaxed)) > limit
                        || st.entries.saturating_sub(m.taken.load(Ordering::Relaxed))
                            >= entries_limit
                })
                .map(|(id, _)| *id)
                .collect();
            if slow.is_empty() {
                return;
            }
            self.drop_slow(st, slow);
        }
    }

    /// Puts `data` in the log and, on a room of several nodes, on the bus.
    fn send_log(&self, st: &mut State, except: Option<MemberId>, data: Bytes) {
        Self::publish(st, Outgoing::Say(data.clone()));
        self.log_only(st, except, data);
    }

    /// Hands `out` to the bus, if there is one. A full bus (it is reconnecting) drops it:
    /// across nodes delivery is at most once, and nothing waits or queues without bound.
    fn publish(st: &State, out: Outgoing) {
        if let Some(bus) = &st.bus {
            if bus.try_send(out).is_err() {
                tracing::debug!("the bus is behind; an event for the other nodes is dropped");
            }
        }
    }

    fn remote_has(st: &State, nick: &str) -> bool {
        let key = nick_key(nick);
        st.remote.values().flatten().any(|n| nick_key(n) == key)
    }

    fn log_only(&self, st: &mut State, except: Option<MemberId>, data: Bytes) {
        st.sent += data.len() as u64;
        st.entries += 1;
        // Lines are never for their sender: it is not behind on them (its writer skips them
        // without counting), however long its own reads keep its writer waiting.
        if let Some(m) = except.and_then(|id| st.members.get(&id)) {
            m.seen.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        // No receiver (an empty room) is not an error.
        let _ = self.log.send(Entry {
            from: except.unwrap_or(0),
            data,
        });
    }

    fn drop_slow(&self, st: &mut State, slow: Vec<MemberId>) {
        for id in slow {
            let Some(m) = Self::remove(st, id) else {
                continue;
            };
            m.kick.cancel();
            tracing::warn!(nick = %m.nick, "member too slow: it fell behind, dropping it");
            self.send_log(
                st,
                Some(id),
                line(format!("*** {} left (too slow)", m.nick)),
            );
        }
    }

    /// Every member's nick, on this node and the others, sorted as `/who` lists them.
    fn everyone(st: &State) -> Vec<String> {
        let mut nicks: Vec<String> = st
            .members
            .values()
            .map(|m| m.nick.clone())
            .chain(st.remote.values().flatten().cloned())
            .collect();
        nicks.sort_unstable_by_key(|n| n.to_lowercase());
        nicks
    }

    /// Who is here (every node), and the nick of member `id` (if still here): what the web
    /// page shows, given to it as data.
    pub fn roster(&self, id: MemberId) -> (Option<String>, Vec<String>) {
        let st = self.lock();
        (
            st.members.get(&id).map(|m| m.nick.clone()),
            Self::everyone(&st),
        )
    }

    /// The nicks of this node's members, for its roster.
    pub fn local_nicks(&self) -> Vec<String> {
        self.lock()
            .members
            .values()
            .map(|m| m.nick.clone())
            .collect()
    }

    /// Every member here hears `text` (a notice about the room, such as its bus).
    pub fn notice(&self, text: &str) {
        let mut st = self.lock();
        self.log_only(&mut st, None, line(text));
        self.drop_laggards(&mut st);
    }
}
