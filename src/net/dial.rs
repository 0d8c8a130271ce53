//! The one dial: every command that connects (connect, relay's target, bench, the examples)
//! reaches its peer through [`Dialer`], so a layer (a proxy hop, TLS, WebSocket framing, in
//! that order) is added here once and every command has it.
//!
//! The run of types: an [`Endpoint`] and plain [`DialOptions`] make a [`Dialer`] (TLS trust
//! built once, bad options refused at start); each [`Dialer::dial`] gives a [`Stream`] with
//! every layer applied, and the [`Peer`] it reached.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use super::unix::UnixStream;

use super::base::{unix_error, unix_sockaddr, Local, Peer};
use super::datagram::{connect_datagram_from, Datagram};
use super::explain;
use super::resolve::resolve;
use super::stream::Stream;
use super::tls;
use super::ws;
use crate::endpoint::{Endpoint, Host, HostPort, UnixAddr};
use crate::error::{Error, ErrorKind, Result};

/// How to reach a peer: plain values, as a command line gives them.
#[derive(Debug, Clone)]
pub struct DialOptions {
    /// Bound on each connection attempt (`-w`); every address a name resolves to gets it.
    pub connect_timeout: Option<Duration>,
    /// Bound on a layer's handshake (TLS), `--handshake-timeout`.
    pub handshake_timeout: Duration,
    /// How a `tls://` server is trusted, and the client certificate (mutual TLS).
    pub tls: tls::ClientOptions,
    /// `-s`, `-p`, `-4`/`-6`: where the client's socket comes from.
    pub local: Local,
    /// `--proxy URL`: the hop every stream connection goes through first.
    pub proxy: Option<super::proxy::Proxy>,
    /// `ws://`, `wss://`: framing, pings, the message limit, the upgrade's headers.
    pub ws: ws::Options,
}

impl Default for DialOptions {
    fn default() -> Self {
        DialOptions {
            connect_timeout: None,
            handshake_timeout: tls::HANDSHAKE_TIMEOUT,
            tls: tls::ClientOptions::default(),
            local: Local::default(),
            proxy: None,
            ws: ws::Options::default(),
        }
    }
}

/// A ready way to one endpoint: dial it as often as needed (bench opens thousands).
#[derive(Debug, Clone)]
pub struct Dialer {
    endpoint: Endpoint,
    connect_timeout: Option<Duration>,
    handshake_timeout: Duration,
    tls: Option<tls::Client>,
    quic: Option<super::quic::client::QuicClient>,
    local: Local,
    proxy: Option<super::proxy::Proxy>,
    ws: ws::Options,
}

impl Dialer {
    /// Prepares the layers `endpoint` needs: TLS trust for `tls://` (said out loud when it
    /// is `--insecure`); TLS options given for a plain endpoint are ignored, out loud.
    ///
    /// # Errors
    /// A bad `--pin`, an unreadable `--ca` or client certificate; `--proxy` for an endpoint
    /// a proxy cannot carry.
    pub fn new(endpoint: Endpoint, opts: &DialOptions) -> Result<Dialer> {
        if let Some(p) = &opts.proxy {
            if !matches!(
                endpoint,
                Endpoint::Tcp(_) | Endpoint::Tls(_) | Endpoint::Ws(_) | Endpoint::Wss(_)
            ) {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    format!("cannot reach {endpoint} through {p}"),
                    "--proxy carries TCP connections (tcp://, tls://, ws://, wss://), not datagrams or Unix sockets",
                ));
            }
        }
        if let Endpoint::Http(hp) = &endpoint {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("cannot connect to {endpoint}"),
                format!("http:// is chat's web page; its room is reached at ws://{hp}/ws"),
            ));
        }
        let tls = if endpoint.uses_tls() {
            let client = tls::Client::new(&opts.tls)?;
            if client.is_insecure() {
                tracing::warn!(
                    "--insecure: the server's certificate is not verified; anybody on the path can read and change this connection"
                );
            }
            Some(client)
        } else {
            if opts.tls.is_set() {
                tracing::warn!(
                    "--ca, --pin, --insecure, --client-cert, --alpn and --sni apply to tls://, wss:// and quic:// endpoints only; ignored here"
                );
            }
            None
        };
        let quic = match (&endpoint, &tls) {
            (Endpoint::Quic(_), Some(client)) => {
                Some(super::quic::client::QuicClient::new(client)?)
            }
            _ => None,
        };
        Ok(Dialer {
            endpoint,
            connect_timeout: opts.connect_timeout,
            handshake_timeout: opts.handshake_timeout,
            tls: if quic.is_some() { None } else { tls },
            quic,
            local: opts.local,
            proxy: opts.proxy.clone(),
            ws: opts.ws.clone(),
        })
    }

    /// The endpoint this dials.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connects a stream endpoint with every layer applied.
    ///
    /// # Errors
    /// Worded for people and naming the endpoint as written (`cannot connect to
    /// tls://host:443: connection refused`, `TLS handshake with ... failed: ...`).
    pub async fn dial(&self) -> Result<(Stream, Peer)> {
        self.dial_with_preface(&[]).await
    }

    /// As [`Dialer::dial`], with `preface` written on the connection before any layer (a
    /// PROXY protocol header goes before TLS and the WebSocket upgrade).
    ///
    /// # Errors
    /// As [`Dialer::dial`], and a connection that fails while the preface is written.
    pub async fn dial_with_preface(&self, preface: &[u8]) -> Result<(Stream, Peer)> {
        use tokio::io::AsyncWriteExt;
        let what = || format!("cannot connect to {}", self.endpoint);
        let (hp, ws) = match &self.endpoint {
            Endpoint::Tcp(hp) | Endpoint::Tls(hp) => (hp, None),
            Endpoint::Ws(a) | Endpoint::Wss(a) => (&a.hp, Some(a)),
            Endpoint::Unix(addr) => {
                let mut s = with_timeout(self.connect_timeout, connect_unix(addr))
                    .await
                    .map_err(|e| unix_error(what(), &e))?;
                s.write_all(preface)
                    .await
                    .map_err(|e| Error::io(what(), &e))?;
                return Ok((Stream::Unix(s), Peer::Unix(Some(addr.clone()))));
            }
            Endpoint::Quic(hp) => {
                let Some(quic) = &self.quic else {
                    return Err(Error::new(ErrorKind::Tls, what(), "QUIC was not set up"));
                };
                let endpoint = self.endpoint.to_string();
                let (s, peer) = quic
                    .connect(hp, &self.local, self.handshake_timeout, &endpoint)
                    .await?;
                return Ok((Stream::Quic(Box::new(s)), peer));
            }
            Endpoint::Udp(_) | Endpoint::UnixGram(_) | Endpoint::Http(_) => {
                return Err(Error::new(
                    ErrorKind::BadArgument,
                    what(),
                    "a datagram endpoint has no stream connection",
                ))
            }
        };
        let (mut tcp, peer) = self.tcp(hp, what).await?;
        tcp.write_all(preface)
            .await
            .map_err(|e| Error::io(what(), &e))?;
        let stream = match &self.tls {
            Some(client) => self.tls(client, &hp.host, tcp, &peer).await?,
            None => Stream::Tcp(tcp),
        };
        let Some(addr) = ws else {
            return Ok((stream, peer));
        };
        let r = tokio::time::timeout(
            self.handshake_timeout,
            ws::client::upgrade(stream, addr, &self.ws, &what()),
        )
        .await
        .unwrap_or_else(|_| {
            // Not `TimedOut`: its hint is about -w, and the TCP connect is done by now.
            Err(Error::new(
                ErrorKind::Ws,
                what(),
                format!(
                    "no answer to the WebSocket upgrade within {} s (raise it with --handshake-timeout)",
                    self.handshake_timeout.as_secs_f64()
                ),
            ))
        });
        explain::say(|| {
            let sk = explain::name_of(&peer);
            let code = format!("{sk} = websocket.connect('{}')", self.endpoint);
            match &r {
                Ok(_) => explain::call(
                    &code,
                    "101 Switching Protocols: WebSocket frames from now on",
                ),
                Err(e) => explain::call(&code, &e.to_string()),
            }
        });
        Ok((Stream::Ws(Box::new(r?)), peer))
    }

    /// The TLS layer over `tcp`, said under `--explain`.
    async fn tls(
        &self,
        client: &tls::Client,
        host: &Host,
        tcp: TcpStream,
        peer: &Peer,
    ) -> Result<Stream> {
        let endpoint = self.endpoint.to_string();
        let r = client
            .handshake(host, tcp, self.handshake_timeout, &endpoint)
            .await;
        explain::say(|| {
            let sk = explain::name_of(peer);
            let code = format!("{sk} = ctx.wrap_socket({sk}, server_hostname='{host}')");
            match &r {
                Ok(s) => explain::call(&code, &format!("TLS handshake done: {}", tls::summary(s))),
                Err(e) => explain::call(&code, &format!("ssl.SSLError: {e}")),
            }
        });
        Ok(Stream::Tls(Box::new(r?)))
    }

    /// The TCP part: straight to `hp`, or a tunnel through the proxy (whose address is then
    /// the socket's peer).
    async fn tcp(&self, hp: &HostPort, what: impl Fn() -> String) -> Result<(TcpStream, Peer)> {
        let Some(proxy) = &self.proxy else {
            return connect_tcp(hp, self.connect_timeout, &self.local, what).await;
        };
        // The proxy is reached as any host is (each address in turn), then asked for `hp`.
        let through = || format!("cannot connect to {hp} through {proxy}");
        let (tcp, _) = connect_tcp(&proxy.addr, self.connect_timeout, &self.local, through)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotResolved | ErrorKind::WrongFamily => Error::new(
                    e.kind().clone(),
                    through(),
                    format!("the proxy's name does not resolve ({})", e.why()),
                ),
                _ => Error::new(
                    ErrorKind::ProxyUnreachable,
                    through(),
                    format!("the proxy does not answer ({})", e.why()),
                ),
            })?;
        let tcp =
            super::proxy::through(proxy, hp, tcp, &self.local, self.handshake_timeout).await?;
        let peer = tcp
            .peer_addr()
            .map(Peer::from_ip)
            .map_err(|e| Error::io(what(), &e))?;
        tracing::debug!(%proxy, target = %hp, "tunnel open");
        Ok((tcp, peer))
    }

    /// Opens a datagram socket aimed at a datagram endpoint.
    ///
    /// # Errors
    /// Name resolution, or a socket the system refuses.
    pub async fn dial_datagram(&self) -> Result<(Datagram, Peer)> {
        connect_datagram_from(&self.endpoint, &self.local).await
    }
}

/// One stream connection to `endpoint`: [`Dialer::new`] and [`Dialer::dial`] at once.
///
/// # Errors
/// As those two.
pub async fn dial(endpoint: &Endpoint, opts: &DialOptions) -> Result<(Stream, Peer)> {
    Dialer::new(endpoint.clone(), opts)?.dial().await
}

/// TCP to every address `hp` resolves to, in turn, until one answers.
async fn connect_tcp(
    hp: &HostPort,
    timeout: Option<Duration>,
    local: &Local,
    what: impl Fn() -> String,
) -> Result<(TcpStream, Peer)> {
    let mut last = None;
    let addrs = local.usable(resolve(hp).await?);
    if addrs.is_empty() {
        return Err(Error::new(
            local.none_left_kind(),
            what(),
            local.none_left(),
        ));
    }
    for addr in addrs {
        match connect_addr(addr, local, timeout).await {
            Ok(s) => return Ok((s, Peer::from_ip(addr))),
            Err(e) => {
                tracing::debug!(%addr, error = %crate::error::describe_io(&e), "connect attempt failed");
                last = Some(e);
            }
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("no address to try"));
    Err(Error::io(what(), &e))
}

/// One TCP connection to `addr` from where `local` says, within `timeout`, Nagle off: what
/// every TCP attempt of the crate is (the dial's, and each port of `connect -z`).
pub(crate) async fn connect_addr(
    addr: std::net::SocketAddr,
    local: &Local,
    timeout: Option<Duration>,
) -> io::Result<TcpStream> {
    let sk = explain::dial_name();
    let r = with_timeout(
        timeout,
        connect_keeping_early_bytes(addr, local.bind_for(addr), &sk),
    )
    .await;
    explain::say(|| {
        let code = format!("{sk}.connect({})", explain::addr(&addr));
        match &r {
            Ok(s) => {
                let me = s
                    .local_addr()
                    .map(|a| explain::addr(&a))
                    .unwrap_or_default();
                explain::call(&code, &format!("connected, from {me}"))
            }
            Err(e) => explain::call(&code, &explain::error(e)),
        }
    });
    let s = r?;
    explain::connected(&Peer::from_ip(addr), sk);
    super::tuning::connected(&s, addr.ip());
    Ok(s)
}

/// A TCP connect that keeps what a peer sent before resetting at once (a greeting, then
/// RST). `TcpStream::connect` checks SO_ERROR after the handshake and, finding the reset
/// there, reports a failed connect and drops the greeting; here a socket whose handshake
/// completed is a connection, and its reads give the greeting first, then the reset.
async fn connect_keeping_early_bytes(
    addr: std::net::SocketAddr,
    bind: Option<std::net::SocketAddr>,
    sk: &str,
) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    explain::say(|| {
        format!(
            "{sk} = socket.socket({}, socket.SOCK_STREAM)",
            explain::family(Some(&addr))
        )
    });
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    #[cfg(unix)]
    sock.set_cloexec(true)?;
    if let Some(local) = bind {
        // `-p PORT` again and again (netcat users do): the old connection's TIME_WAIT must
        // not refuse the port.
        explain::say(|| format!("{sk}.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)"));
        explain::say(|| format!("{sk}.bind({})", explain::addr(&local)));
        sock.set_reuse_address(true)?;
        sock.bind(&local.into())?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if connect_in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
    stream.writable().await?;
    // Windows reports a refused connect as writable with the error pending (and wine has
    // a peer address even then): the pending error is the answer.
    #[cfg(not(unix))]
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    if stream.peer_addr().is_ok() {
        return Ok(stream);
    }
    // Not connected now: refused (never connected), or connected and already gone. A peek
    // tells them apart without consuming the error that reads must still report.
    let mut probe = [0u8; 1];
    match stream.peek(&mut probe).await {
        Ok(_) => Ok(stream),
        Err(e) => Err(e),
    }
}

async fn connect_unix(addr: &UnixAddr) -> io::Result<UnixStream> {
    let sk = explain::dial_name();
    explain::say(|| format!("{sk} = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)"));
    let r = connect_unix_at(addr).await;
    explain::say(|| {
        let code = format!("{sk}.connect('{addr}')");
        match &r {
            Ok(_) => explain::call(&code, "connected"),
            Err(e) => explain::call(&code, &explain::error(e)),
        }
    });
    if r.is_ok() {
        explain::connected(&Peer::Unix(Some(addr.clone())), sk);
    }
    r
}

async fn connect_unix_at(addr: &UnixAddr) -> io::Result<UnixStream> {
    match addr {
        #[cfg(unix)]
        UnixAddr::Path(p) => UnixStream::connect(p).await,
        #[cfg(not(unix))]
        UnixAddr::Path(_) => Err(super::unix::unsupported()),
        UnixAddr::Abstract(_) => {
            // A local connect completes at once, so a blocking connect is fine here.
            let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
            sock.connect(&unix_sockaddr(addr)?)?;
            sock.set_nonblocking(true)?;
            super::unix::stream(sock)
        }
    }
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))),
        None => fut.await,
    }
}

/// A non-blocking connect that has begun (EINPROGRESS; WSAEWOULDBLOCK on Windows).
fn connect_in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error());
    #[cfg(not(unix))]
    return e.kind() == io::ErrorKind::WouldBlock;
}
