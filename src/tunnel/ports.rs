//! The gateway's public ports: who holds which, and which are reserved for a client that
//! vanished. One lock, held only for map lookups, never across an await.
//!
//! The rules (SPEC): a client gets the port it asks for, or any free one of the range; no
//! client takes a port another holds or has reserved; a client that dies without a word
//! keeps its port reserved for [`RESERVED_FOR`], for whoever presents its token; one that
//! says goodbye releases it at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::frame::{Kind, Token};
use crate::net::Stream;

/// How long a dead client's port waits for it.
pub const RESERVED_FOR: Duration = Duration::from_secs(60);

/// Spare data connections a client may keep at the gateway: more are closed (a client
/// cannot make the gateway hold many connections for nobody).
pub const SPARES_MAX: usize = 32;
/// A spare kept longer than this is closed (and expose opens a fresh one): an idle
/// connection may have been dropped on the way by a NAT or a firewall without a word, and a
/// visitor must never be handed one.
pub const SPARE_MAX_AGE: Duration = Duration::from_secs(30);

/// A registered client's visitors waiting for their data connections, and the spare data
/// connections it opened ahead of its visitors.
#[derive(Debug, Default)]
pub struct Session {
    pending: Mutex<HashMap<u64, oneshot::Sender<Stream>>>,
    spares: Mutex<std::collections::VecDeque<(Instant, Stream)>>,
    next: AtomicU64,
}

impl Session {
    /// Keeps a spare data connection for the next visitor; false (and it is closed) when
    /// the client already has [`SPARES_MAX`].
    pub fn offer(&self, data: Stream) -> bool {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() >= SPARES_MAX {
            return false;
        }
        spares.push_back((Instant::now(), data));
        true
    }

    /// The oldest spare data connection kept less than [`SPARE_MAX_AGE`], if any (older
    /// ones, at the front, are closed on the way).
    pub fn spare(&self) -> Option<Stream> {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((since, s)) = spares.pop_front() {
            if since.elapsed() < SPARE_MAX_AGE {
                return Some(s);
            }
        }
        None
    }

    /// Closes the spares kept longer than `age`.
    pub fn sweep(&self, age: Duration) {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        spares.retain(|(since, _)| since.elapsed() < age);
    }

    /// A new visitor's number and where its data connection will arrive.
    pub fn expect(&self) -> (u64, oneshot::Receiver<Stream>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        (id, rx)
    }

    /// The visitor gave up waiting.
    pub fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Hands a data connection to visitor `id`; false when nobody waits for it.
    pub fn deliver(&self, id: u64, data: Stream) -> bool {
        match self.lock().remove(&id) {
            Some(tx) => tx.send(data).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Stream>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
enum Slot {
    Held {
        token: Token,
        stop: CancellationToken,
    },
    Reserved {
        token: Token,
        until: Instant,
    },
}

/// Who takes a port: the new session.
#[derive(Debug)]
pub struct Holder {
    /// The token the session is issued.
    pub token: Token,
    /// Ends the session (a reconnect of the same client replaces it).
    pub stop: CancellationToken,
    /// Where its visitors wait.
    pub session: Arc<Session>,
}

/// A port granted.
#[derive(Debug)]
pub struct Claimed {
    /// The port.
    pub port: u16,
    /// True when the same client still held it (a reconnect before the gateway noticed the
    /// old connection die): the old session was told to stop, and its listener may take a
    /// moment to close.
    pub replaced: bool,
}

/// Every public port of one gateway.
#[derive(Debug)]
pub struct Ports {
    first: u16,
    last: u16,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<(Kind, u16), Slot>,
    sessions: HashMap<Token, Arc<Session>>,
}

impl Ports {
    /// The ports `first..=last`.
    pub fn new(first: u16, last: u16) -> Ports {
        Ports {
            first,
            last,
            inner: Mutex::default(),
        }
    }

    /// Decides the port for a registration (`asked`, 0 for any; `token` from an earlier
    /// one) and marks it held by `holder`; `tried` are ports that could not be bound.
    ///
    /// # Errors
    /// The sentence the client is refused with.
    pub fn claim(
        &self,
        kind: Kind,
        asked: u16,
        token: Option<&Token>,
        holder: Holder,
        tried: &HashSet<u16>,
    ) -> Result<Claimed, String> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner
            .slots
            .retain(|_, s| !matches!(s, Slot::Reserved { until, .. } if *until <= now));
        let mine = |s: &Slot| match s {
            Slot::Held { token: t, .. } | Slot::Reserved { token: t, .. } => Some(t) == token,
        };
        let port = if asked != 0 {
            if !(self.first..=self.last).contains(&asked) {
                return Err(format!(
                    "port {asked} is outside this gateway's range {}-{}",
                    self.first, self.last
                ));
            }
            asked
        } else if let Some((&(_, p), _)) = inner
            .slots
            .iter()
            .find(|((k, p), s)| *k == kind && mine(s) && !tried.contains(p))
        {
            p
        } else {
            (self.first..=self.last)
                .find(|p| !tried.contains(p) && !inner.slots.contains_key(&(kind, *p)))
                .ok_or_else(|| {
                    format!(
                        "no free {} port left in this gateway's range {}-{}",
                        kind.scheme(),
                        self.first,
                        self.last
                    )
                })?
        };
        let mut replaced = false;
        match inner.slots.get(&(kind, port)) {
            None => {}
            Some(s) if mine(s) => {
                if let Slot::Held { stop, .. } = s {
                    stop.cancel();
                    replaced = true;
                }
            }
            Some(Slot::Held { .. }) => {
                return Err(format!("port {port} is held by another client"));
            }
            Some(Slot::Reserved { until, .. }) => {
                return Err(format!(
                    "port {port} is reserved for the client that had it, for {} s more",
                    until.saturating_duration_since(now).as_secs() + 1
                ));
            }
        }
        inner.slots.insert(
            (kind, port),
            Slot::Held {
                token: holder.token,
                stop: holder.stop,
            },
        );
        inner.sessions.insert(holder.token, holder.session);
        Ok(Claimed { port, replaced })
    }

    /// The session `token` names, for a data connection.
    pub fn session(&self, token: &Token) -> Option<Arc<Session>> {
        self.lock().sessions.get(token).cloned()
    }

    /// The session of `token` is over: its port is free, or with `reserve` kept for the
    /// token's holder for [`RESERVED_FOR`]. A port another session has taken over since
    /// is left alone.
    pub fn release(&self, kind: Kind, port: u16, token: &Token, reserve: bool) {
        let mut inner = self.lock();
        inner.sessions.remove(token);
        let ours = matches!(inner.slots.get(&(kind, port)), Some(Slot::Held { token: t, .. }) if t == token);
        if !ours {
            return;
        }
        if reserve {
            inner.slots.insert(
                (kind, port),
                Slot::Reserved {
                    token: *token,
                    until: Instant::now() + RESERVED_FOR,
                },
            );
        } else {
            inner.slots.remove(&(kind, port));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(token: u8) -> Holder {
        Holder {
            token: [token; 16],
            stop: CancellationToken::new(),
            session: Arc::default(),
        }
    }

    #[test]
    fn a_held_or_reserved_port_goes_to_nobody_else() {
        let ports = Ports::new(20000, 20002);
        let none = HashSet::new();
        let a = ports
            .claim(Kind::Tcp, 20001, None, holder(1), &none)
            .unwrap();
        assert_eq!(a.port, 20001);
        let e = ports
            .claim(Kind::Tcp, 20001, None, holder(2), &none)
            .unwrap_err();
        assert_eq!(e, "port 20001 is held by another client");
        // The same number over UDP is another port.
        assert!(ports
            .claim(Kind::Udp, 20001, None, holder(3), &none)
            .is_ok());
        // Client 1 dies: reserved for its token.
        ports.release(Kind::Tcp, 20001, &[1; 16], true);
        let e = ports
            .claim(Kind::Tcp, 20001, None, holder(2), &none)
            .unwrap_err();
        assert!(
            e.starts_with("port 20001 is reserved for the client that had it"),
            "{e}"
        );
        // Any port: the reserved one is skipped.
        assert_eq!(
            ports
                .claim(Kind::Tcp, 0, None, holder(4), &none)
                .unwrap()
                .port,
            20000
        );
        // The token brings it back, asked for or not.
        let back = ports
            .claim(Kind::Tcp, 0, Some(&[1; 16]), holder(5), &none)
            .unwrap();
        assert_eq!(back.port, 20001);
        assert!(!back.replaced);
        assert!(ports.session(&[5; 16]).is_some());
        assert!(ports.session(&[1; 16]).is_none());
    }

    #[test]
    fn a_reconnect_replaces_its_own_live_session() {
        let ports = Ports::new(20000, 20000);
        let none = HashSet::new();
        let first = holder(1);
        let stop = first.stop.clone();
        ports.claim(Kind::Tcp, 0, None, first, &none).unwrap();
        let again = ports
            .claim(Kind::Tcp, 20000, Some(&[1; 16]), holder(2), &none)
            .unwrap();
        assert!(again.replaced && stop.is_cancelled());
        // The old session's late release leaves the new holder alone.
        ports.release(Kind::Tcp, 20000, &[1; 16], true);
        assert!(ports
            .claim(Kind::Tcp, 20000, None, holder(3), &none)
            .is_err());
        // A goodbye frees it at once.
        ports.release(Kind::Tcp, 20000, &[2; 16], false);
        assert!(ports
            .claim(Kind::Tcp, 20000, None, holder(3), &none)
            .is_ok());
    }

    #[tokio::test]
    async fn spares_are_taken_oldest_first_and_old_ones_closed() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let session = Session::default();
        for _ in 0..2 {
            let s = tokio::net::TcpStream::connect(l.local_addr().unwrap())
                .await
                .unwrap();
            assert!(session.offer(Stream::Tcp(s)));
        }
        let first = session.spare().unwrap();
        assert!(first.local_addr().is_some());
        session.sweep(Duration::ZERO);
        assert!(
            session.spare().is_none(),
            "an old spare is never handed out"
        );
    }

    #[test]
    fn the_range_is_kept_and_its_end_said() {
        let ports = Ports::new(20000, 20000);
        let none = HashSet::new();
        let e = ports
            .claim(Kind::Tcp, 80, None, holder(1), &none)
            .unwrap_err();
        assert_eq!(e, "port 80 is outside this gateway's range 20000-20000");
        ports.claim(Kind::Tcp, 0, None, holder(1), &none).unwrap();
        let e = ports
            .claim(Kind::Tcp, 0, None, holder(2), &none)
            .unwrap_err();
        assert_eq!(
            e,
            "no free tcp port left in this gateway's range 20000-20000"
        );
        let tried: HashSet<u16> = [20000].into();
        assert!(ports.claim(Kind::Udp, 0, None, holder(3), &tried).is_err());
    }
}
