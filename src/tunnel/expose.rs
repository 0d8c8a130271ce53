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
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::datagrams::{self, Sink, Source};
use super::frame::{self, Frame, Kind, Token, VERSION};
use super::secret::Secret;
use super::{DEAD_AFTER, PING_EVERY};
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
        // The spares live as long as this session.
        let spares = CancellationToken::new();
        let _spares_end = spares.clone().drop_guard();
        for _ in 0..SPARES {
            let me = self.clone();
            tokio::spawn(me.spare(token, visitors.clone(), spares.clone(), cut.clone()));
        }
        let reader = async {
            loop {
                match tokio::time::timeout(DEAD_AFTER, frame::read(&mut rd)).await {
                    Ok(Ok(Some(Frame::Ping))) => {}
                    Ok(Ok(Some(Frame::Visitor { id, from, to }))) => {
                        let (me, cut) = (self.clone(), cut.clone());
                        visitors.spawn(async move { me.visitor(token, id, from, to, &cut).await });
                    }
                    Ok(Ok(Some(other))) => {
                        return End::Lost(format!("it sent {other:?} out of turn"))
                    }
                    Ok(Ok(None)) => return End::Lost("it closed the connection".into()),
                    Ok(Err(e)) => return End::Lost(crate::error::describe_io(&e)),
                    Err(_) => {
                        return End::Lost(format!("nothing heard for {} s", DEAD_AFTER.as_secs()))
                    }
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

    /// One visitor: a data connection to the gateway and a connection to LOCAL, joined.
    async fn visitor(
        &self,
        token: Token,
        id: u64,
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
        cut: &CancellationToken,
    ) {
        let data = async {
            let mut s = self.data_connection().await?;
            let join = Frame::Join {
                version: VERSION,
                token,
                id,
            };
            frame::write(&mut s, &join)
                .await
                .map_err(|e| Error::io("cannot open a data connection to the gateway", &e))?;
            Ok::<Stream, Error>(s)
        };
        self.visit(data, from, to, cut).await;
    }

    /// A new connection to the gateway, for a visitor.
    async fn data_connection(&self) -> Result<Stream> {
        Ok(self.gateway.dial().await?.0)
    }

    /// One spare data connection at a time, opened ahead of the visitors (a pool of
    /// [`SPARES`] such tasks): when the gateway names a visitor on it, that visitor is served
    /// and another spare is opened. Ends with the session (`stop`).
    async fn spare(
        self: Arc<Self>,
        token: Token,
        visitors: TaskTracker,
        stop: CancellationToken,
        cut: CancellationToken,
    ) {
        loop {
            let opened = async {
                let mut s = self.data_connection().await?;
                let offer = Frame::Offer {
                    version: VERSION,
                    token,
                };
                frame::write(&mut s, &offer)
                    .await
                    .map_err(|e| Error::io("cannot open a spare connection to the gateway", &e))?;
                Ok::<Stream, Error>(s)
            };
            let named = async {
                let mut s = opened.await?;
                match frame::read(&mut s).await {
                    Ok(Some(Frame::Visitor { from, to, .. })) => Ok((s, from, to)),
                    _ => Err(Error::new(
                        ErrorKind::Io,
                        "a spare connection ended",
                        "the gateway closed it",
                    )),
                }
            };
            let named = tokio::select! {
                r = named => r,
                () = stop.cancelled() => return,
            };
            match named {
                Ok((s, from, to)) => {
                    let (me, cut) = (self.clone(), cut.clone());
                    visitors.spawn(async move {
                        me.visit(std::future::ready(Ok(s)), from, to, &cut).await;
                    });
                }
                Err(e) => {
                    tracing::debug!("{e}; another spare in a second");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }

    /// A visitor whose data connection is `data` (being opened, or ready): LOCAL dialed
    /// meanwhile, then the two joined until both ends are done.
    async fn visit(
        &self,
        data: impl std::future::Future<Output = Result<Stream>>,
        from: std::net::SocketAddr,
        to: std::net::SocketAddr,
        cut: &CancellationToken,
    ) {
        let work = async {
            if self.kind() == Kind::Udp {
                let (data, local) = tokio::join!(data, self.local.dial_datagram());
                let (data, (local, _)) = (data?, local?);
                let local = Arc::new(local);
                let r = datagrams::carry(
                    data,
                    self.idle_timeout,
                    FromLocal(local.clone()),
                    ToLocal(local),
                )
                .await;
                return Ok(r.map(|()| "idle or closed"));
            }
            let header = self
                .proxy_protocol
                .map(|v| proxy_header::encode(v, from, to));
            let local = self
                .local
                .dial_with_preface(header.as_deref().unwrap_or_default());
            let (data, local) = tokio::join!(data, local);
            let (data, (local, _)) = (data?, local?);
            let opts = crate::pump::Options::default();
            Ok(crate::pump::join(data, local, &opts).await.map(|j| j.end))
        };
        let r: Result<io::Result<&str>> = tokio::select! {
            r = work => r,
            () = cut.cancelled() => return,
        };
        match r {
            Ok(Ok(end)) => tracing::info!(visitor = %from, end, "visitor closed"),
            Ok(Err(e)) => {
                tracing::info!(visitor = %from, error = %crate::error::describe_io(&e), "visitor failed")
            }
            Err(e) => tracing::warn!(visitor = %from, "visitor closed: {e}"),
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
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)?;
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
