//! One room across nodes (`--bus redis://... --room NAME`): every node publishes its room's
//! events on one Redis pub/sub channel and delivers what the others publish to its own
//! members, as Socket.IO's Redis adapter does. The room stays transport-free; this is one more
//! adapter, next to the socket ones.
//!
//! - Events: lines as the room formatted them (text, `/me`, joins, leaves, renames), private
//!   lines for a nick elsewhere, and a roster of each node's nicks every [`ROSTER_EVERY`]
//!   (what `/who` shows of the others, and how a node that died is noticed: no roster for
//!   [`NODE_LOST_AFTER`] and its members are announced `left (node lost)`).
//! - Nicks: a registry in Redis, one key per nick with a lease ([`LEASE`]) that its node
//!   renews with every roster; a claim that loses (`SET NX` refused) sends the member back.
//! - Redis down, restarted, or cutting a slow subscriber off: the node goes on serving its
//!   own members, tells them once that the room is cut off, reconnects with a growing pause,
//!   claims its nicks again and says when the room is whole. Events meanwhile are dropped,
//!   never queued without bound: across nodes delivery is at most once, and there is no
//!   history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::room::{Outgoing, Room};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{DialOptions, Dialer};

/// How often a node says who is here and renews its nicks' leases.
pub const ROSTER_EVERY: Duration = Duration::from_secs(3);
/// A node not heard from for this long is lost (its members are announced gone).
pub const NODE_LOST_AFTER: Duration = Duration::from_secs(10);
/// How often a node looks for nodes it has not heard from.
const LOST_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The lease of a nick in the registry (renewed every roster).
pub const LEASE: Duration = Duration::from_secs(12);
/// Events waiting for the bus at most; beyond, they are dropped (see the module notes).
pub const OUTBOX: usize = 4096;

/// `--bus` and `--room`.
#[derive(Clone)]
pub struct BusConfig {
    /// The Redis URL (may hold a password: never shown).
    pub url: String,
    /// The room's name: nodes with the same bus and name are one room.
    pub room: String,
    /// This node's id, unique per process.
    pub node: String,
}

impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BusConfig({}, room {})", shown(&self.url), self.room)
    }
}

/// The URL without its credentials, for logs and errors.
pub fn shown(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_string(),
    }
}

/// A node id: random enough to tell processes apart, short enough for nicks (`guest3-4f1a`).
pub fn node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// A bus ready to run: what it joins, and how it reaches Redis: through the one dial, so
/// `rediss://` is TLS with sockit's own trust options (`--ca`, `--pin`, `--insecure`, a
/// client certificate), as for `connect tls://`.
#[derive(Debug, Clone)]
pub struct Bus {
    /// What it joins.
    pub cfg: BusConfig,
    dialer: Dialer,
    info: redis::RedisConnectionInfo,
    joined: CancellationToken,
}

impl Bus {
    /// Checks the URL and the TLS options now: bad ones are one error at start.
    ///
    /// # Errors
    /// A URL that is not `redis://` or `rediss://` with a host, or unusable TLS options.
    pub fn new(cfg: BusConfig, dial: &DialOptions) -> Result<Bus> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::BadArgument,
                format!("bad --bus {}", shown(&cfg.url)),
                format!("{why}; write redis://[USER:PASS@]HOST:PORT[/DB] or rediss://..."),
            )
        };
        let (secure, rest) = match cfg.url.split_once("://") {
            Some(("redis", rest)) => (false, rest),
            Some(("rediss", rest)) => (true, rest),
            _ => return Err(bad("the scheme is redis:// or rediss://".into())),
        };
        // Parsed as redis:// (the crate's own parser), dialled by us.
        let parsed: redis::ConnectionInfo =
            format!("redis://{rest}")
                .parse()
                .map_err(|e: redis::RedisError| {
                    bad(e.detail().unwrap_or("not a Redis URL").to_string())
                })?;
        let redis::ConnectionAddr::Tcp(host, port) = &parsed.addr else {
            return Err(bad("it names no host".into()));
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let scheme = if secure { "tls" } else { "tcp" };
        let endpoint: crate::Endpoint = format!("{scheme}://{host}:{port}").parse()?;
        let dialer = Dialer::new(
            endpoint,
            &DialOptions {
                connect_timeout: Some(dial.connect_timeout.unwrap_or(CONNECT_TIMEOUT)),
                ..dial.clone()
            },
        )?;
        Ok(Bus {
            cfg,
            dialer,
            info: parsed.redis,
            joined: CancellationToken::new(),
        })
    }

    /// Fired once the node has joined the room on the bus the first time (subscribed, its
    /// nicks claimed, its roster out): from then on a member who joins here is seen on
    /// every node, so that is when its readiness line is printed. A first attempt that
    /// fails fires it too (the node serves its own members and says the bus is cut off).
    pub fn joined(&self) -> CancellationToken {
        self.joined.clone()
    }

    /// Runs the bus for `room` until `stop`, reconnecting with back-off whenever Redis is
    /// lost (members are told once that the room is cut off, and when it is whole again).
    pub async fn run(self, room: Arc<Room>, stop: CancellationToken) {
        run(room, self, stop).await;
    }

    /// A subscriber and a command connection, each over its own dial.
    async fn connect(&self) -> std::result::Result<(redis::aio::PubSub, Conn), redis::RedisError> {
        let dial = || async {
            self.dialer
                .dial()
                .await
                .map(|(s, _)| s)
                .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))
        };
        let pubsub = redis::aio::PubSub::new(&self.info, dial().await?).await?;
        let (conn, driver) =
            redis::aio::MultiplexedConnection::new(&self.info, dial().await?).await?;
        tokio::spawn(driver);
        Ok((pubsub, conn))
    }
}

/// The command connection.
type Conn = redis::aio::MultiplexedConnection;

/// How long a starting node waits to join the room on the bus before it says it is ready
/// anyway (serving its own members, and reconnecting).
pub const JOIN_WAIT: Duration = Duration::from_secs(10);

/// How long reaching Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the bus for `room` until `stop`: reconnects as long as it runs.
async fn run(room: Arc<Room>, bus: Bus, stop: CancellationToken) {
    let cfg = &bus.cfg;
    let (tx, mut outbox) = mpsc::channel(OUTBOX);
    room.attach_bus(tx);
    let channel = format!("sockit:chat:{}", cfg.room);
    let mut pause = Duration::from_millis(250);
    // Whether the members were told the room is cut off (and so must hear it is whole).
    let mut cut_off = false;
    loop {
        let ended = connected(
            &room,
            &bus,
            &channel,
            &mut outbox,
            &stop,
            (&mut cut_off, &mut pause),
        )
        .await;
        if stop.is_cancelled() {
            return;
        }
        let why = match &ended {
            Err(e) => e.to_string(),
            Ok(()) => "its connection ended".into(),
        };
        tracing::debug!(error = %why, "bus session ended");
        if !cut_off {
            room.notice(
                "*** the room is cut off from its other nodes (its bus is unreachable); reconnecting",
            );
            tracing::warn!(bus = %shown(&cfg.url), error = %why, "the bus is unreachable; serving this node's members, reconnecting");
            cut_off = true;
            // Not joined, but waiting longer would not help: the node is ready for its own.
            bus.joined.cancel();
        }
        // Nothing waits for a bus that is not there: events meanwhile are dropped.
        let until = Instant::now() + pause;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                () = stop.cancelled() => return,
                o = outbox.recv() => if o.is_none() { return },
            }
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// One connected stretch: subscribe, claim this node's nicks, then publish and deliver until
/// the connection fails. `Ok` when it had connected before failing (or `stop`).
async fn connected(
    room: &Arc<Room>,
    bus: &Bus,
    channel: &str,
    outbox: &mut mpsc::Receiver<Outgoing>,
    stop: &CancellationToken,
    (cut_off, pause): (&mut bool, &mut Duration),
) -> std::result::Result<(), redis::RedisError> {
    let cfg = &bus.cfg;
    let connect = async {
        let (mut pubsub, conn) = bus.connect().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>((pubsub, conn))
    };
    let (pubsub, mut conn) = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
        })??;
    let mut messages = pubsub.into_on_message();
    // Claim every nick this node has (again, after a cut): one taken meanwhile is given up.
    for nick in room.local_nicks() {
        let key = nick_key(cfg, &nick);
        let won: bool = claim(&mut conn, &key, &cfg.node).await?;
        if !won {
            tracing::warn!(%nick, "nick taken on another node while the bus was cut");
        }
    }
    publish_roster(room, cfg, &mut conn, channel, true).await?;
    tracing::info!(bus = %shown(&cfg.url), room = %cfg.room, node = %cfg.node, "bus connected");
    if *cut_off {
        room.notice("*** the room is whole again: its other nodes are reachable");
        *cut_off = false;
    }
    // Connected: a later cut starts the pauses over.
    *pause = Duration::from_millis(250);
    bus.joined.cancel();
    let mut heard: HashMap<String, Instant> = HashMap::new();
    let mut roster = tokio::time::interval(ROSTER_EVERY);
    roster.tick().await;
    // Lost nodes are looked for on their own clock, so a slow roster round trip never
    // pushes the announcement past NODE_LOST_AFTER + a second.
    let mut lost_check = tokio::time::interval(LOST_CHECK_EVERY);
    lost_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let bye = serde_json::json!({"n": cfg.node, "t": "bye"}).to_string();
                let _: std::result::Result<(), _> = conn.publish(channel, bye).await;
                for nick in room.local_nicks() {
                    let _: std::result::Result<(), _> = conn.del(nick_key(cfg, &nick)).await;
                }
                return Ok(());
            }
            m = messages.next() => {
                let Some(m) = m else {
                    return Err(redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
                };
                deliver(room, cfg, m.get_payload_bytes(), &mut heard);
            }
            o = outbox.recv() => {
                let Some(o) = o else { return Ok(()) };
                for o in batched(o, outbox) {
                    send(room, cfg, &mut conn, channel, o).await?;
                }
            }
            _ = roster.tick() => {
                publish_roster(room, cfg, &mut conn, channel, true).await?;
            }
            _ = lost_check.tick() => {
                let now = Instant::now();
                heard.retain(|node, at| {
                    let alive = now.duration_since(*at) < NODE_LOST_AFTER;
                    if !alive {
                        tracing::warn!(%node, "a node of the room is lost");
                        room.node_lost(node, "node lost");
                    }
                    alive
                });
            }
        }
    }
}

/// Largest payload one publication carries when lines waiting together are merged.
const BATCH: usize = 64 * 1024;

/// `first` and whatever else is waiting, with neighbouring lines merged into one
/// publication (one round trip to Redis instead of one per event), order kept.
fn batched(first: Outgoing, outbox: &mut mpsc::Receiver<Outgoing>) -> Vec<Outgoing> {
    let mut out: Vec<Outgoing> = vec![first];
    while out.len() < 256 {
        let Ok(next) = outbox.try_recv() else { break };
        match (out.last_mut(), next) {
            (Some(Outgoing::Say(acc)), Outgoing::Say(d)) if acc.len() + d.len() <= BATCH => {
                let mut joined = bytes::BytesMut::with_capacity(acc.len() + d.len());
                joined.extend_from_slice(acc);
                joined.extend_from_slice(&d);
                *acc = joined.freeze();
            }
            (_, next) => out.push(next),
        }
    }
    out
}

fn nick_key(cfg: &BusConfig, nick: &str) -> String {
    format!(
        "sockit:chat:{}:nick:{}",
        cfg.room,
        super::text::nick_key(nick)
    )
}

/// `SET key node NX PX lease`; true when this node holds it (now, or already).
async fn claim(
    conn: &mut Conn,
    key: &str,
    node: &str,
) -> std::result::Result<bool, redis::RedisError> {
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(node)
        .arg("NX")
        .arg("PX")
        .arg(LEASE.as_millis() as u64)
        .query_async(conn)
        .await?;
    if set.is_some() {
        return Ok(true);
    }
    let owner: Option<String> = conn.get(key).await?;
    Ok(owner.as_deref() == Some(node))
}

/// Says who is here; with `renew`, also renews the leases of this node's nicks (claiming
/// again what lapsed). A join or a rename only announces: renewing a hundred leases per
/// join would hold up delivery while a crowd arrives.
async fn publish_roster(
    room: &Room,
    cfg: &BusConfig,
    conn: &mut Conn,
    channel: &str,
    renew: bool,
) -> std::result::Result<(), redis::RedisError> {
    let nicks = room.local_nicks();
    for n in nicks.iter().filter(|_| renew) {
        // Renew the lease of what this node holds (claim again what lapsed).
        let key = nick_key(cfg, n);
        let owner: Option<String> = conn.get(&key).await?;
        match owner.as_deref() {
            Some(o) if o == cfg.node => {
                let _: () = conn.pexpire(&key, LEASE.as_millis() as i64).await?;
            }
            None => {
                let _ = claim(conn, &key, &cfg.node).await?;
            }
            Some(_) => {}
        }
    }
    let msg = serde_json::json!({"n": cfg.node, "t": "roster", "nicks": nicks}).to_string();
    conn.publish(channel, msg).await
}

async fn send(
    room: &Room,
    cfg: &BusConfig,
    conn: &mut Conn,
    channel: &str,
    out: Outgoing,
) -> std::result::Result<(), redis::RedisError> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match out {
        Outgoing::Say(data) => {
            let msg = serde_json::json!({"n": cfg.node, "t": "say", "d": text(&data)});
            conn.publish(channel, msg.to_string()).await
        }
        Outgoing::Private { to, data } => {
            let msg = serde_json::json!({"n": cfg.node, "t": "msg", "to": to, "d": text(&data)});
            conn.publish(channel, msg.to_string()).await
        }
        Outgoing::Claim { id, nick, old } => {
            // The others learn the new roster first (for /who, their own claims, and whom
            // to announce if this node is lost), then the registry decides.
            publish_roster(room, cfg, conn, channel, false).await?;
            if !claim(conn, &nick_key(cfg, &nick), &cfg.node).await? {
                room.claim_lost(id, &nick, old.as_deref());
            } else if let Some(o) = old {
                release(conn, cfg, &o).await?;
            }
            Ok(())
        }
        Outgoing::Release(nick) => release(conn, cfg, &nick).await,
    }
}

/// Frees `nick` in the registry if this node holds it.
async fn release(
    conn: &mut Conn,
    cfg: &BusConfig,
    nick: &str,
) -> std::result::Result<(), redis::RedisError> {
    let key = nick_key(cfg, nick);
    let owner: Option<String> = conn.get(&key).await?;
    if owner.as_deref() == Some(cfg.node.as_str()) {
        let _: () = conn.del(&key).await?;
    }
    Ok(())
}

/// Applies what another node published; our own publications are ignored.
fn deliver(room: &Room, cfg: &BusConfig, payload: &[u8], heard: &mut HashMap<String, Instant>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        tracing::debug!("a message on the bus that is not ours; ignored");
        return;
    };
    let Some(node) = v.get("n").and_then(|n| n.as_str()) else {
        return;
    };
    if node == cfg.node {
        return;
    }
    heard.insert(node.to_string(), Instant::now());
    let data = || {
        v.get("d")
            .and_then(|d| d.as_str())
            .map(|d| Bytes::copy_from_slice(d.as_bytes()))
    };
    match v.get("t").and_then(|t| t.as_str()) {
        Some("say") => {
            if let Some(d) = data() {
                room.remote_say(d);
            }
        }
        Some("msg") => {
            if let (Some(to), Some(d)) = (v.get("to").and_then(|t| t.as_str()), data()) {
                room.remote_private(to, d);
            }
        }
        Some("roster") => {
            let nicks = v
                .get("nicks")
                .and_then(|n| n.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            room.remote_roster(node, nicks);
        }
        Some("bye") => {
            heard.remove(node);
            room.node_lost(node, "node stopped");
        }
        _ => {}
    }
}
