//! Delivery: how a room line reaches each member without a copy or a queue entry per member.
//!
//! Lines for everybody go once into the room's log (a `tokio::sync::broadcast` ring of
//! shared buffers); each member's writer reads the log at its own pace and counts what it
//! has seen, so a broadcast costs the same for 10 members or 10,000, and a burst of joins
//! leaves no per-member backlog behind. Lines for one member (welcome, errors, `/who`, the
//! goodbye) go to its small private queue. Each writer counts what it took, and the room
//! drops a member as too slow before it can fall a whole log behind, so nobody waits for it
//! and the mailbox never has to call back into the room.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

/// Names one member for as long as it is in the room.
pub type MemberId = u64;

/// One log entry: a buffer of lines and who sent it (members do not get their own lines).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) from: MemberId,
    pub(super) data: Bytes,
}

/// A member's private lines, their size, and the writer's wake-up.
#[derive(Debug, Default)]
pub(super) struct Private {
    items: Mutex<VecDeque<Bytes>>,
    pub(super) bytes: AtomicUsize,
    closed: AtomicBool,
    ready: Notify,
}

impl Private {
    fn items(&self) -> MutexGuard<'_, VecDeque<Bytes>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `data` unless the queue already holds `limit` bytes (a member that asks and
    /// never reads); false then.
    pub(super) fn push(&self, data: Bytes, limit: usize) -> bool {
        let queued = self.bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + data.len() > limit {
            return false;
        }
        self.bytes.fetch_add(data.len(), Ordering::Relaxed);
        self.items().push_back(data);
        self.ready.notify_one();
        true
    }

    /// No more lines: the writer sends what is queued, then ends.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }
}

/// The receiving end of one member: its private queue and its place in the room's log.
#[derive(Debug)]
pub struct Mailbox {
    pub(super) id: MemberId,
    pub(super) private: Arc<Private>,
    pub(super) log: broadcast::Receiver<Entry>,
    /// Log bytes this member has taken (its own lines count when sent), for the room to see
    /// who is behind.
    pub(super) seen: Arc<AtomicU64>,
    /// Log entries taken, its own included (they occupy its slots in the log as well).
    pub(super) taken: Arc<AtomicU64>,
    /// Rung after taking from the log, for senders waiting in `Room::settle`.
    pub(super) progress: Arc<Notify>,
    pub(super) kick: CancellationToken,
}

/// Collects buffers into one write: the first is kept as is, more are copied after it.
struct Batch {
    first: Option<Bytes>,
    rest: Option<BytesMut>,
    len: usize,
}

impl Batch {
    fn add(&mut self, data: Bytes) {
        self.len += data.len();
        match (&self.first, &mut self.rest) {
            (None, _) => self.first = Some(data),
            (Some(first), None) => {
                let mut b = BytesMut::with_capacity(self.len);
                b.extend_from_slice(first);
                b.extend_from_slice(&data);
                self.rest = Some(b);
            }
            (Some(_), Some(b)) => b.extend_from_slice(&data),
        }
    }

    fn finish(self) -> Option<Bytes> {
        match self.rest {
            Some(b) => Some(b.freeze()),
            None => self.first,
        }
    }
}

impl Mailbox {
    /// What is waiting for this member, up to about `max` bytes as one buffer (so one write
    /// carries many lines); `None` once it has left and its last lines are out.
    pub async fn next(&mut self, max: usize) -> Option<Bytes> {
        let private = self.private.clone();
        loop {
            let ready = private.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let mut batch = Batch {
                first: None,
                rest: None,
                len: 0,
            };
            self.take_private(&mut batch, max);
            let gone = private.closed.load(Ordering::Acquire);
            if !gone {
                self.take_log(&mut batch, max);
            }
            if batch.len > 0 {
                return batch.finish();
            }
            if gone {
                // Lines pushed before the close are in; one last look finds a straggler.
                self.take_private(&mut batch, max);
                return batch.finish();
            }
            tokio::select! {
                () = &mut ready => {}
                r = self.log.recv() => match r {
                    // Its own lines were counted as seen when they were sent.
                    Ok(e) if e.from == self.id => {
                        self.taken.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(e) => {
                        // Whatever followed it into the log goes in the same write: a
                        // write per entry costs each member a wake-up per entry.
                        self.taken.fetch_add(1, Ordering::Relaxed);
                        self.seen.fetch_add(e.data.len() as u64, Ordering::Relaxed);
                        self.progress.notify_waiters();
                        batch.add(e.data);
                        self.take_log(&mut batch, max);
                        return batch.finish();
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => self.lagged(),
                    Err(broadcast::error::RecvError::Closed) => private.close(),
                },
            }
        }
    }

    /// Cancelled when the room drops this member (too slow): stop writing at once.
    pub fn kicked_token(&self) -> CancellationToken {
        self.kick.clone()
    }

    fn take_private(&self, batch: &mut Batch, max: usize) {
        let mut items = self.private.items();
        let mut taken = 0;
        while batch.len < max {
            let Some(data) = items.pop_front() else { break };
            taken += data.len();
            batch.add(data);
        }
        if items.is_empty() && items.capacity() > 16 {
            items.shrink_to(4);
        }
        drop(items);
        self.private.bytes.fetch_sub(taken, Ordering::Relaxed);
    }

    fn take_log(&mut self, batch: &mut Batch, max: usize) {
        let (mut taken, mut entries) = (0u64, 0u64);
        while batch.len < max {
            match self.log.try_recv() {
                Ok(e) if e.from == self.id => entries += 1,
                Ok(e) => {
                    entries += 1;
                    taken += e.data.len() as u64;
                    batch.add(e.data);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.lagged();
                    break;
                }
                Err(_) => break,
            }
        }
        self.taken.fetch_add(entries, Ordering::Relaxed);
        if taken > 0 {
            self.seen.fetch_add(taken, Ordering::Relaxed);
            self.progress.notify_waiters();
        }
    }

    /// Lines were lost to this member. The room drops a member before that can happen, so
    /// this one was already out of it: end once what is private has gone.
    fn lagged(&self) {
        self.private.close();
    }
}
