//! The client, `expose LOCAL --via tls://GATEWAY:PORT`: registers with the gateway, keeps
//! the control connection alive, and for each visitor the gateway announces opens a data
//! connection to the gateway and a connection to LOCAL, and joins them.
//!
//! When the gateway is lost it reconnects with back-off and presents its token, so the
//! reserved port comes back; the token is also kept in a small file (under
//! `$XDG_STATE_HOME/sockit/tunnels/`), so a restart of the same command after a crash
//! (`kill -9`) gets its port back too.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::datagrams::{self, Sink, Source};
use super::frame::{self, Frame, Kind, Token, PING_EVERY, VERSION};
use super::lane;
use super::secret::Secret;
use crate::endpoint::{Endpoint, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::net::proxy_header;
use crate::net::{Datagram, Dialer, Stream};

/// The first pause before reconnecting; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// The longest pause between reconnections.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Spare data connections kept open at the gateway, so a visitor's data connection is there
/// before the visitor is (what rathole and frp call a pool); a burst beyond them asks for
/// more on the control connection.
pub const SPARES: usize = 4;

/// What `expose` does: plain values from the command line.
#[derive(Debug)]
pub struct Expose {
    /// LOCAL: what visitors reach (any stream kind, or udp).
    pub local: Dialer,
    /// `--via`: the gateway's tunnel endpoint, with its TLS trust.
    pub gateway: Dialer,
    /// The shared secret, when the gateway asks for one.
    pub secret: Option<Secret>,
    /// `--port`: the public port asked for (0: any).
    pub port: u16,
    /// `--proxy-protocol`: each connection to LOCAL starts with a header naming the visitor.
    pub proxy_protocol: Option<proxy_header::Version>,
    /// `--handshake-timeout`: the bound on registering.
    pub handshake_timeout: Duration,
    /// `--idle-timeout`: a UDP visitor quiet this long is forgotten.
    pub idle_timeout: Duration,
    /// Where the token is kept between runs (`None`: nowhere).
    pub state: Option<PathBuf>,
}

/// The lanes of one session with the gateway.
struct Lanes {
    /// The session's token, presented by every data connection.
    token: Token,
    /// Lanes waiting for a visitor.
    idle: AtomicUsize,
    /// Fires when the session ends: idle lanes close (busy ones finish their visitor).
    stop: CancellationToken,
    /// Visitors in flight, for the drain.
    visitors: TaskTracker,
    /// The drain's end.
    cut: CancellationToken,
}

impl Lanes {
    /// A pause before opening another lane after one failed; false if the session ended.
    async fn pause(&self) -> bool {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

/// A registration in force.
struct Registered {
    control: Stream,
    port: u16,
    token: Token,
    host: String,
}

/// How a session with the gateway ended.
enum End {
    /// The gateway is gone or silent.
    Lost(String),
    /// Our own shutdown (a signal): the goodbye was sent.
    Shutdown,
}

impl Expose {
    fn kind(&self) -> Kind {
        if self.local.endpoint().is_stream() {
            Kind::Tcp
        } else {
            Kind::Udp
        }
    }

    /// Runs until `shutdown`, then lets open visitors finish until `cut`. `ready` is told
    /// the public address each time the port is open (the readiness line).
    ///
    /// # Errors
    /// The first registration failing (the gateway unreachable, not trusted, or refusing:
    /// a wrong secret, a port held by another client); a refusal later.
    pub async fn run(
        self,
        ready: impl Fn(String),
        shutdown: CancellationToken,
        cut: CancellationToken,
    ) -> Result<()> {
        let me = Arc::new(self);
        let visitors = TaskTracker::new();
        let mut remembered = me.load_state();
        let mut backoff = BACKOFF_START;
        let mut first = true;
        loop {
            let asked = if me.port != 0 {
                me.port
            } else {
                remembered.map_or(0, |(p, _)| p)
            };
            let attempt = tokio::select! {
                r = me.register(asked, remembered.map(|(_, t)| t)) => r,
                () = shutdown.cancelled() => break,
            };
            match attempt {
                Ok(reg) => {
                    backoff = BACKOFF_START;
                    remembered = Some((reg.port, reg.token));
                    me.save_state(reg.port, &reg.token);
                    ready(me.public_address(&reg));
                    first = false;
                    match me.session(reg, &visitors, &shutdown, &cut).await {
                        End::Shutdown => break,
                        End::Lost(why) => {
                            tracing::warn!(
                                "lost the gateway ({why}); reconnecting in {} s",
                                backoff.as_secs_f64()
                            );
                        }
                    }
                }
                Err(e)
                    if *e.kind() == ErrorKind::TunnelRefused
                        && me.port == 0
                        && remembered.is_some() =>
                {
                    // The port of an earlier run went to somebody else: any port will do.
                    tracing::info!(
                        "the earlier port is not ours any more ({}); asking for any",
                        e.why()
                    );
                    remembered = None;
                    continue;
                }
                Err(e) if first || *e.kind() == ErrorKind::TunnelRefused => return Err(e),
                Err(e) => {
                    tracing::warn!("{e}; trying again in {} s", backoff.as_secs_f64());
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => break,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        visitors.close();
        if !visitors.is_empty() && !cut.is_cancelled() {
            tracing::warn!(
                open = visitors.len(),
                "letting open visitors finish (Ctrl-C again to stop now)"
            );
        }
        tokio::select! {
            () = visitors.wait() => {}
            () = cut.cancelled() => {}
        }
        Ok(())
    }

    /// `tcp://GATEWAY:PORT`: the gateway's `--tunnel-host` when it names one, else the
    /// host of `--via`.
    fn public_address(&self, reg: &Registered) -> String {
        let scheme = self.kind().scheme();
        let host = match reg.host.parse::<std::net::IpAddr>() {
            Ok(ip) => crate::endpoint::Host::Ip(ip),
            Err(_) if !reg.host.is_empty() => crate::endpoint::Host::Name(reg.host.clone()),
            Err(_) => match self.gateway.endpoint().host_port() {
                Some(hp) => hp.host.clone(),
                None => crate::endpoint::Host::Any,
            },
        };
        let hp = HostPort {
            host,
            port: reg.port,
        };
        format!("exposed {} at {scheme}://{hp}", self.local.endpoint())
    }

    /// Connects to the gateway, proves the secret, asks for the port.
    async fn register(&self, port: u16, token: Option<Token>) -> Result<Registered> {
        let via = self.gateway.endpoint().to_string();
        let (mut control, _) = self.gateway.dial().await?;
        let failed =
            |e: io::Error| Error::io(format!("cannot register with the gateway {via}"), &e);
        let exchange = async {
            frame::write(&mut control, &Frame::Hello { version: VERSION }).await?;
            let nonce = match frame::read(&mut control).await? {
                Some(Frame::Challenge { nonce }) => nonce,
                Some(Frame::Refused { reason }) => return Ok(Err(reason)),
                other => return Err(unexpected(other.as_ref())),
            };
            let register = Frame::Register {
                proof: self.secret.as_ref().map(|s| s.proof(&nonce)),
                kind: self.kind(),
                port,
                token,
            };
            frame::write(&mut control, &register).await?;
            match frame::read(&mut control).await? {
                Some(Frame::Registered { port, token, host }) => Ok(Ok((port, token, host))),
                Some(Frame::Refused { reason }) => Ok(Err(reason)),
                other => Err(unexpected(other.as_ref())),
            }
        };
        let answer = tokio::time::timeout(self.handshake_timeout, exchange)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::TimedOut,
                    format!("cannot register with the gateway {via}"),
                    format!(
                        "no answer within {} s",
                        self.handshake_timeout.as_secs_f64()
                    ),
                )
            })?
            .map_err(failed)?;
        match answer {
            Ok((port, token, host)) => Ok(Registered {
                control,
                port,
                token,
                host,
            }),
            Err(reason) => Err(Error::new(
                ErrorKind::TunnelRefused,
                format!("the gateway {via} refused us"),
                reason,
            )),
        }
    }

    /// Pings and visitors until the gateway is lost or we stop.
    async fn session(
        self: &Arc<Self>,
        reg: Registered,
        visitors: &TaskTracker,
        shutdown: &CancellationToken,
        cut: &CancellationToken,
    ) -> End {
        let token = reg.token;
        let (mut rd, mut wr) = tokio::io::split(reg.control);
        // Idle lanes wait as long as this session lasts (visitors on lanes go on after it).
        let lanes = Arc::new(Lanes {
            token,
            idle: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            visitors: visitors.clone(),
            cut: cut.clone(),
        });
        let _lanes_end = lanes.stop.clone().drop_guard();
        for _ in 0..SPARES {
            self.lane(&lanes, None);
        }
        let reader = async {
            loop {
                match frame::next_on_control(&mut rd).await {
                    Ok(Frame::Visitor { id, from, to }) => {
                        let (me, lanes) = (self.clone(), lanes.clone());
                        visitors.spawn(async move { me.visitor(&lanes, id, from, to).await });
                    }
                    Ok(other) => return End::Lost(format!("it sent {other:?} out of turn")),
                    Err(why) => return End::Lost(why),
                }
            }
        };
        let writer = async {
            let mut tick = tokio::time::interval(PING_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = frame::write(&mut wr, &Frame::Ping).await {
                            return End::Lost(crate::error::describe_io(&e));
                        }
                    }
                    () = shutdown.cancelled() => {
                        // The gateway closes the public port at once and reserves nothing.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            frame::write(&mut wr, &Frame::Bye).await?;
                            wr.shutdown().await
                        })
                        .await;
                        return End::Shutdown;
                    }
                }
            }
        };
        tokio::select! {
            e = reader => e,
            e = writer => e,
        }
    }

    /// A visitor the gateway announced on the control connection (every lane was busy): a
    /// new data connection for it, which then stays as a lane.
    async fn visitor(
        self: Arc<Self>,
        lanes: &Arc<Lanes>,
        id: u64,
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
    ) {
        let join = Frame::Join {
            version: VERSION,
            token: lanes.token,
            id,
        };
        let data = match self.data_connection(&join).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(visitor = %from, "visitor closed: {e}");
                return;
            }
        };
        let keep = lanes.idle.load(Ordering::Relaxed) < 2 * SPARES;
        if let Some(lane) = self.visit(data, from, to, keep, &lanes.cut).await {
            self.lane(lanes, Some(lane));
        }
    }

    /// A new connection to the gateway whose first frame is `first` (`Join`, `Offer`).
    async fn data_connection(&self, first: &Frame) -> Result<Stream> {
        let (mut s, _) = self.gateway.dial().await?;
        frame::write(&mut s, first)
            .await
            .map_err(|e| Error::io("cannot open a data connection to the gateway", &e))?;
        Ok(s)
    }

    /// Starts a lane: `conn` (a data connection a visitor has just left), or a new one
    /// offered to the gateway.
    fn lane(self: &Arc<Self>, lanes: &Arc<Lanes>, conn: Option<Stream>) {
        tokio::spawn(self.clone().lane_life(lanes.clone(), conn));
    }

    /// A lane's life: wait for the gateway to name a visitor on it, carry the visitor,
    /// again, until the session ends (while idle), a side retires it, or it fails. When
    /// fewer than [`SPARES`] lanes are left idle, another is opened, so the next visitor's
    /// data connection is ready before the visitor is.
    async fn lane_life(self: Arc<Self>, lanes: Arc<Lanes>, mut conn: Option<Stream>) {
        let offer = Frame::Offer {
            version: VERSION,
            token: lanes.token,
        };
        loop {
            let mut lane = match conn.take() {
                Some(c) => c,
                None => {
                    let opened = tokio::select! {
                        r = self.data_connection(&offer) => r,
                        () = lanes.stop.cancelled() => return,
                    };
                    match opened {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::debug!("cannot open a lane: {e}");
                            if !lanes.pause().await {
                                return;
                            }
                            continue;
                        }
                    }
                }
            };
            lanes.idle.fetch_add(1, Ordering::Relaxed);
            let named = tokio::select! {
                f = frame::read(&mut lane) => f,
                () = lanes.stop.cancelled() => {
                    lanes.idle.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            };
            let idle = lanes.idle.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
            let Ok(Some(Frame::Visitor { from, to, .. })) = named else {
                // The gateway let it go (its spares were full, or it is stopping).
                if !lanes.pause().await {
                    return;
                }
                continue;
            };
            if idle < SPARES {
                self.lane(&lanes, None);
            }
            let visit = self.visit(lane, from, to, idle < 2 * SPARES, &lanes.cut);
            match lanes.visitors.track_future(visit).await {
                Some(l) if !lanes.stop.is_cancelled() => conn = Some(l),
                _ => return,
            }
        }
    }

    /// One visitor on `lane`: LOCAL dialed (with the PROXY header when asked), then the two
    /// carried until both ends are done. Returns the lane when it may carry another.
    async fn visit(
        &self,
        mut lane: Stream,
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
        keep: bool,
        cut: &CancellationToken,
    ) -> Option<Stream> {
        let work = async {
            if self.kind() == Kind::Udp {
                // A UDP visitor's lane is its own until it goes quiet, then closed.
                let (local, _) = self.local.dial_datagram().await?;
                let local = Arc::new(local);
                let (from_local, to_local) = (FromLocal(local.clone()), ToLocal(local));
                let r = datagrams::carry(lane, self.idle_timeout, from_local, to_local).await;
                return Ok((None, r.map(|()| "idle or closed")));
            }
            let header = self
                .proxy_protocol
                .map(|v| proxy_header::encode(v, from, to));
            let (local, _) = self
                .local
                .dial_with_preface(header.as_deref().unwrap_or_default())
                .await?;
            let r = lane::carry(local, &mut lane, keep, None).await;
            let reusable = matches!(&r, Ok(p) if p.reusable);
            Ok::<_, Error>((reusable.then_some(lane), r.map(|_| "both ends closed")))
        };
        let r = tokio::select! {
            r = work => r,
            () = cut.cancelled() => return None,
        };
        match r {
            Ok((lane, Ok(end))) => {
                tracing::info!(visitor = %from, end, "visitor closed");
                lane
            }
            Ok((_, Err(e))) => {
                tracing::info!(visitor = %from, error = %crate::error::describe_io(&e), "visitor failed");
                None
            }
            Err(e) => {
                tracing::warn!(visitor = %from, "visitor closed: {e}");
                None
            }
        }
    }

    /// The port and token of an earlier run of the same command, if kept.
    fn load_state(&self) -> Option<(u16, Token)> {
        let text = std::fs::read_to_string(self.state.as_ref()?).ok()?;
        let (port, token) = text.trim().split_once(' ')?;
        let port = port.parse().ok()?;
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()?;
        Some((port, bytes.try_into().ok()?))
    }

    /// Keeps the port and token for a restart (readable by this user only).
    fn save_state(&self, port: u16, token: &Token) {
        let Some(path) = &self.state else { return };
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let write = || -> io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(path)?;
            std::io::Write::write_all(&mut f, format!("{port} {hex}\n").as_bytes())
        };
        if let Err(e) = write() {
            tracing::debug!(path = %path.display(), error = %e, "cannot keep the tunnel's token");
        }
    }
}

/// Where an `expose` keeps its token: one file per gateway, LOCAL and asked port, under
/// `$XDG_STATE_HOME` (or `~/.local/state`); `None` without either.
pub fn state_path(via: &Endpoint, local: &Endpoint, port: u16) -> Option<PathBuf> {
    use sha2::Digest;
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    let digest = sha2::Sha256::digest(format!("{via} {local} {port}").as_bytes());
    let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Some(base.join("sockit").join("tunnels").join(name))
}

fn unexpected(f: Option<&Frame>) -> io::Error {
    let what = match f {
        None => "the gateway closed the connection".to_string(),
        Some(f) => format!("the gateway sent {f:?} out of turn"),
    };
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Datagrams from LOCAL, for the visitor.
struct FromLocal(Arc<Datagram>);

impl Source for FromLocal {
    async fn next(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf).await
    }
}

/// Datagrams from the visitor, to LOCAL.
struct ToLocal(Arc<Datagram>);

impl Sink for ToLocal {
    async fn put(&self, datagram: &[u8]) -> io::Result<()> {
        self.0.send(datagram).await.map(|_| ())
    }
}
