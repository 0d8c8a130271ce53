//! Binding listeners: SO_REUSEADDR, dual-stack wildcards, stale Unix socket files, and the
//! errors that explain why a bind failed.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use super::unix::UnixListener;

use super::base::{unix_sockaddr, Peer};
use super::explain;
use super::holder;
use super::resolve::resolve;
use super::stream::Stream;
use crate::endpoint::{Endpoint, Host, HostPort, UnixAddr};
use crate::error::{Error, ErrorKind, Result};

/// A bound, listening stream socket.
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    local: Endpoint,
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Unix(UnixListener, #[allow(dead_code)] Option<UnixFile>),
    Quic(super::quic::server::QuicListener),
}

impl Listener {
    /// The endpoint actually bound (the real port when 0 was asked for): the readiness line.
    pub fn local_endpoint(&self) -> &Endpoint {
        &self.local
    }

    /// Waits for the next client.
    ///
    /// # Errors
    /// As `accept(2)`: a full descriptor table (EMFILE) is the one callers must back off from.
    pub async fn accept(&self) -> io::Result<(Stream, Peer)> {
        match &self.inner {
            Inner::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                super::tuning::connected(&s, addr.ip());
                let peer = Peer::from_ip(addr);
                explain::accepted(&peer);
                Ok((Stream::Tcp(s), peer))
            }
            Inner::Unix(l, _) => {
                let (s, addr) = l.accept().await?;
                let peer = Peer::from_unix(&addr);
                explain::accepted(&peer);
                Ok((Stream::Unix(s), peer))
            }
            Inner::Quic(l) => {
                let (s, peer) = l.accept().await?;
                explain::accepted(&peer);
                Ok((Stream::Quic(Box::new(s)), peer))
            }
        }
    }

    /// A QUIC listener starts accepting once it has its TLS server (from the admission);
    /// other kinds accept from the start, and ignore this.
    ///
    /// # Errors
    /// A QUIC listener without a TLS server, or one QUIC cannot use.
    pub(crate) fn start(
        &self,
        tls: Option<&super::tls::Server>,
        deadline: std::time::Duration,
        admit: super::quic::server::Admit,
    ) -> Result<()> {
        let Inner::Quic(l) = &self.inner else {
            return Ok(());
        };
        let tls = tls.ok_or_else(|| {
            Error::new(
                ErrorKind::Tls,
                format!("cannot serve {}", self.local),
                "QUIC needs a certificate: give --cert/--key, or none for a self-signed one",
            )
        })?;
        l.start(tls, deadline, admit)
    }
}

/// Binds a stream endpoint (tcp, the tcp part of tls, ws, wss and http; unix) and starts
/// listening.
///
/// # Errors
/// Worded for people: the port's holder when `/proc` tells, privileged ports, a live or
/// foreign file at a Unix path.
pub async fn bind(endpoint: &Endpoint) -> Result<Listener> {
    let what = format!("cannot listen on {endpoint}");
    match endpoint {
        Endpoint::Tcp(_)
        | Endpoint::Tls(_)
        | Endpoint::Ws(_)
        | Endpoint::Wss(_)
        | Endpoint::Http(_) => {
            let Some(hp) = endpoint.host_port() else {
                return Err(Error::new(ErrorKind::Io, what, "not an IP endpoint"));
            };
            let std = bind_ip(hp, Type::STREAM, &what).await?;
            let addr = std
                .local_addr()
                .map_err(|e| Error::io(what.clone(), &e))?
                .as_socket()
                .ok_or_else(|| Error::new(ErrorKind::Io, what.clone(), "not an IP socket"))?;
            let l = TcpListener::from_std(std::net::TcpListener::from(std))
                .map_err(|e| Error::io(what, &e))?;
            Ok(Listener {
                inner: Inner::Tcp(l),
                local: endpoint.with_addr(addr),
            })
        }
        Endpoint::Unix(addr) => {
            let (sock, file) = bind_unix(addr, Type::STREAM, &what)?;
            explain::serving();
            explain::say(|| explain::call("sk.listen(1024)", "clients may now connect"));
            sock.listen(1024).map_err(|e| Error::io(what.clone(), &e))?;
            let l = super::unix::listener(sock).map_err(|e| Error::io(what, &e))?;
            Ok(Listener {
                inner: Inner::Unix(l, file),
                local: endpoint.clone(),
            })
        }
        Endpoint::Quic(hp) => {
            let sock = bind_ip(hp, Type::DGRAM, &what).await?;
            let addr = sock
                .local_addr()
                .map_err(|e| Error::io(what.clone(), &e))?
                .as_socket()
                .ok_or_else(|| Error::new(ErrorKind::Io, what.clone(), "not an IP socket"))?;
            let udp = std::net::UdpSocket::from(sock);
            let l = super::quic::server::QuicListener::new(udp).map_err(|e| Error::io(what, &e))?;
            Ok(Listener {
                inner: Inner::Quic(l),
                local: endpoint.with_addr(addr),
            })
        }
        Endpoint::Udp(_) | Endpoint::UnixGram(_) => Err(Error::new(
            ErrorKind::BadArgument,
            what,
            "a datagram endpoint does not accept connections",
        )),
    }
}

/// Creates and binds an IP socket; an empty host means `[::]` with IPv4 mapped in, falling
/// back to `0.0.0.0` where IPv6 is off.
pub(crate) async fn bind_ip(hp: &HostPort, ty: Type, what: &str) -> Result<Socket> {
    let addr = *resolve(hp)
        .await?
        .first()
        .ok_or_else(|| Error::new(ErrorKind::NotResolved, what, "no address"))?;
    let sock = match (&hp.host, make_socket(addr, ty, hp)) {
        (Host::Any, Err(_)) => make_socket(
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), hp.port),
            ty,
            hp,
        ),
        (_, r) => r,
    };
    sock.map_err(|e| bind_error(what, &e, hp.port, ty))
}

fn make_socket(addr: SocketAddr, ty: Type, hp: &HostPort) -> io::Result<Socket> {
    let stream = ty == Type::STREAM;
    explain::say(|| {
        format!(
            "sk = socket.socket({}, {})",
            explain::family(Some(&addr)),
            explain::kind(stream)
        )
    });
    let sock = Socket::new(Domain::for_address(addr), ty, None)?;
    if stream {
        // Restart at once on the same port (the tutorial's "address already in use").
        // (Not on Windows, where SO_REUSEADDR lets a second server take a port in use.)
        #[cfg(unix)]
        {
            explain::say(|| "sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)".into());
            sock.set_reuse_address(true)?;
        }
    }
    if ty == Type::DGRAM && addr.ip().is_multicast() {
        // Several receivers of one group on one machine, as multicast is meant.
        explain::say(|| "sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)".into());
        explain::say(|| "sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)".into());
        sock.set_reuse_address(true)?;
        #[cfg(unix)]
        sock.set_reuse_port(true)?;
    }
    if addr.is_ipv6() && matches!(hp.host, Host::Any) {
        explain::say(|| "sk.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)".into());
        sock.set_only_v6(false)?;
    }
    sock.set_nonblocking(true)?;
    let bound = sock.bind(&addr.into());
    explain::say(|| {
        let code = format!("sk.bind({})", explain::addr(&addr));
        match &bound {
            Err(e) => explain::call(&code, &explain::error(e)),
            Ok(()) if addr.port() == 0 => {
                let got = sock.local_addr().ok().and_then(|a| a.as_socket());
                let got = got.map(|a| explain::addr(&a)).unwrap_or_default();
                explain::call(
                    &code,
                    &format!("port 0: the system picks one; bound to {got}"),
                )
            }
            Ok(()) => code,
        }
    });
    bound?;
    if stream {
        explain::serving();
        explain::say(|| explain::call("sk.listen(1024)", "clients may now connect"));
        sock.listen(1024)?;
    }
    Ok(sock)
}

fn bind_error(what: &str, e: &io::Error, port: u16, ty: Type) -> Error {
    let err = Error::io(what, e);
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            let proto = if ty == Type::STREAM { "tcp" } else { "udp" };
            err.with_kind(ErrorKind::AddrInUse {
                holder: holder::find(proto, port),
            })
        }
        // Windows: WSAEACCES (10013, the tutorial's "WinError 10013") on bind is a port
        // that Windows reserved (Hyper-V, WSL and Docker reserve ranges) or that is blocked.
        io::ErrorKind::PermissionDenied if cfg!(windows) => Error::new(
            ErrorKind::PortBlocked,
            what,
            "Windows refused the port (WinError 10013): it is reserved or blocked",
        ),
        io::ErrorKind::PermissionDenied if port < 1024 => err.with_kind(ErrorKind::PrivilegedPort),
        _ => err,
    }
}

/// Binds a Unix socket, replacing a stale socket file but never a live one or a non-socket.
pub(crate) fn bind_unix(
    addr: &UnixAddr,
    ty: Type,
    what: &str,
) -> Result<(Socket, Option<UnixFile>)> {
    if cfg!(not(unix)) {
        return Err(Error::io(what, &super::unix::unsupported()));
    }
    let sockaddr = unix_sockaddr(addr).map_err(|e| Error::io(what, &e))?;
    explain::say(|| {
        format!(
            "sk = socket.socket(socket.AF_UNIX, {})",
            explain::kind(ty == Type::STREAM)
        )
    });
    let sock = Socket::new(Domain::UNIX, ty, None).map_err(|e| Error::io(what, &e))?;
    let path = match addr {
        UnixAddr::Path(p) => Some(p.as_path()),
        UnixAddr::Abstract(_) => None,
    };
    if let Some(p) = path {
        clear_stale(p, ty, what)?;
    }
    explain::say(|| format!("sk.bind('{addr}')"));
    sock.bind(&sockaddr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => Error::io(what, &e).with_kind(ErrorKind::UnixInUse),
        _ => Error::io(what, &e),
    })?;
    sock.set_nonblocking(true)
        .map_err(|e| Error::io(what, &e))?;
    Ok((sock, path.map(|p| UnixFile::new(p.to_path_buf()))))
}

#[cfg(not(unix))]
fn clear_stale(_: &Path, _: Type, _: &str) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn clear_stale(path: &Path, ty: Type, what: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(what, &e)),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::NotASocket,
            what,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    let probe = Socket::new(Domain::UNIX, ty, None).map_err(|e| Error::io(what, &e))?;
    let live = socket2::SockAddr::unix(path)
        .and_then(|a| probe.connect(&a))
        .is_ok();
    if live {
        return Err(Error::new(
            ErrorKind::UnixInUse,
            what,
            "a server is already listening on that socket",
        ));
    }
    tracing::info!(path = %path.display(), "replacing stale socket file");
    std::fs::remove_file(path).map_err(|e| Error::io(what, &e))
}

/// A socket file we created; removed when the socket goes away, so nothing stale is left.
#[derive(Debug)]
pub(crate) struct UnixFile(PathBuf);

impl UnixFile {
    fn new(path: PathBuf) -> Self {
        UnixFile(path)
    }
}

impl Drop for UnixFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
