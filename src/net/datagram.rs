//! Datagram sockets (udp, unixgram): one type for both, addressed by [`Peer`].

use super::explain;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};

use socket2::{SockRef, Type};
#[cfg(unix)]
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::unix::UnixDatagram;

use super::base::{unix_error, unix_sockaddr, Local, Peer};
use super::listener::{bind_ip, bind_unix, UnixFile};
use super::resolve::resolve;
use crate::endpoint::{Endpoint, UnixAddr};
use crate::error::{Error, ErrorKind, Result};

/// A bound datagram socket of either kind.
#[derive(Debug)]
pub struct Datagram {
    inner: Inner,
    local: Endpoint,
}

/// True when `udp` is an IPv6 socket (dual-stack peers then need IPv4-mapped addresses).
fn is_v6(udp: &UdpSocket) -> bool {
    udp.local_addr().is_ok_and(|a| a.is_ipv6())
}

#[derive(Debug)]
enum Inner {
    /// The flag caches `is_v6`, so sending costs no `getsockname` per datagram.
    Udp(UdpSocket, bool),
    Unix(UnixDatagram, #[allow(dead_code)] Option<UnixFile>),
}

/// Binds a datagram endpoint to receive from anybody.
///
/// # Errors
/// As [`crate::net::bind`]: port holder, privileged port, live or foreign Unix path.
pub async fn bind_datagram(endpoint: &Endpoint) -> Result<Datagram> {
    bind_datagram_on(endpoint, &Local::default()).await
}

/// As [`bind_datagram`]; a multicast address (`udp://239.1.1.1:5000`, `udp://[ff02::1234]:5000`)
/// is bound so that only that group's datagrams arrive, and the group is joined on
/// `local.iface` (the system's choice without it).
///
/// # Errors
/// As [`bind_datagram`]; a group that cannot be joined on that interface.
pub async fn bind_datagram_on(endpoint: &Endpoint, local: &Local) -> Result<Datagram> {
    let what = format!("cannot listen on {endpoint}");
    match endpoint {
        Endpoint::Udp(hp) => {
            let hp = &scoped_group(hp, local).map_err(|e| Error::io(what.clone(), &e))?;
            let sock = bind_ip(hp, Type::DGRAM, &what).await?;
            join_group(&sock, local)
                .map_err(|e| Error::io(format!("cannot join the group of {endpoint}"), &e))?;
            let addr = sock
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| Error::new(ErrorKind::Io, what.clone(), "not an IP socket"))?;
            let udp = UdpSocket::from_std(std::net::UdpSocket::from(sock))
                .map_err(|e| Error::io(what, &e))?;
            let v6 = is_v6(&udp);
            Ok(Datagram {
                inner: Inner::Udp(udp, v6),
                local: endpoint.with_addr(addr),
            })
        }
        Endpoint::UnixGram(addr) => {
            let (sock, file) = bind_unix(addr, Type::DGRAM, &what)?;
            let u = super::unix::datagram(sock).map_err(|e| Error::io(what, &e))?;
            Ok(Datagram {
                inner: Inner::Unix(u, file),
                local: endpoint.clone(),
            })
        }
        _ => Err(Error::new(
            ErrorKind::BadArgument,
            what,
            "not a datagram endpoint (use udp:// or unixgram:)",
        )),
    }
}

/// Joins the multicast group a socket is bound to, if it is bound to one.
fn join_group(sock: &socket2::Socket, local: &Local) -> io::Result<()> {
    let Some(bound) = sock.local_addr()?.as_socket() else {
        return Ok(());
    };
    match bound.ip() {
        std::net::IpAddr::V4(group) if group.is_multicast() => {
            let iface = match local.iface {
                Some(std::net::IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            explain::say(|| {
                format!("sk.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton('{group}') + socket.inet_aton('{iface}'))")
            });
            sock.join_multicast_v4(&group, &iface)
        }
        std::net::IpAddr::V6(group) if group.is_multicast() => {
            let index = local.iface.map(iface_index).transpose()?.unwrap_or(0);
            explain::say(|| {
                format!("sk.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, socket.inet_pton(socket.AF_INET6, '{group}') + struct.pack('@I', {index}))")
            });
            sock.join_multicast_v6(&group, index)
        }
        _ => Ok(()),
    }
}

/// An IPv6 group of interface- or link-local scope (`ff01::`, `ff02::`) is only an address
/// together with its interface: the one `--iface` names, unless the endpoint has a zone.
fn scoped_group(
    hp: &crate::endpoint::HostPort,
    local: &Local,
) -> io::Result<crate::endpoint::HostPort> {
    use crate::endpoint::{Host, HostPort};
    match (&hp.host, local.iface) {
        (Host::Ip(std::net::IpAddr::V6(g)), Some(iface))
            if g.is_multicast() && (g.segments()[0] & 0x000f) <= 2 =>
        {
            let index = iface_index(iface)?;
            let name = iface_name(index)?;
            Ok(HostPort {
                host: Host::Scoped(*g, name),
                port: hp.port,
            })
        }
        _ => Ok(hp.clone()),
    }
}

/// The index of the interface that has `addr` (IPv6 multicast names interfaces by index;
/// `--iface` takes an address, as for IPv4).
#[cfg(not(unix))]
fn iface_index(_: std::net::IpAddr) -> io::Result<u32> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--iface with IPv6 multicast is not supported on this system",
    ))
}

/// The name of interface `index` (the zone of a scoped address).
#[cfg(unix)]
fn iface_name(index: u32) -> io::Result<String> {
    let name = nix::net::if_::if_indextoname(index).map_err(io::Error::from)?;
    Ok(name.to_string_lossy().into_owned())
}

#[cfg(not(unix))]
fn iface_name(index: u32) -> io::Result<String> {
    Ok(index.to_string())
}

#[cfg(unix)]
fn iface_index(addr: std::net::IpAddr) -> io::Result<u32> {
    let not_here = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface of this machine has the address {addr} (--iface)"),
        )
    };
    let addrs = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    for a in addrs {
        let has = a.address.as_ref().is_some_and(|s| {
            s.as_sockaddr_in().map(|v4| std::net::IpAddr::V4(v4.ip())) == Some(addr)
                || s.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())) == Some(addr)
        });
        if has {
            return nix::net::if_::if_nametoindex(a.interface_name.as_str())
                .map_err(io::Error::from);
        }
    }
    Err(not_here())
}

/// Multicast and broadcast sending: the interface, the hops (1 unless told), our own
/// datagrams looped back (so a receiver on this machine hears them), SO_BROADCAST.
fn prepare_sender(udp: &UdpSocket, to: SocketAddr, local: &Local) -> io::Result<()> {
    let sock = SockRef::from(udp);
    if local.broadcast {
        sock.set_broadcast(true)?;
    }
    match to.ip() {
        std::net::IpAddr::V4(g) if g.is_multicast() => {
            if let Some(std::net::IpAddr::V4(a)) = local.iface {
                sock.set_multicast_if_v4(&a)?;
            }
            sock.set_multicast_ttl_v4(local.ttl.unwrap_or(1))?;
            sock.set_multicast_loop_v4(true)
        }
        std::net::IpAddr::V6(g) if g.is_multicast() => {
            if let Some(a) = local.iface {
                sock.set_multicast_if_v6(iface_index(a)?)?;
            }
            sock.set_multicast_hops_v6(local.ttl.unwrap_or(1))?;
            sock.set_multicast_loop_v6(true)
        }
        _ => Ok(()),
    }
}

/// Opens a datagram socket whose default destination is `endpoint`.
///
/// A unixgram client binds itself an abstract name, because a peer can only answer a
/// datagram socket that has an address.
///
/// # Errors
/// Name resolution, or a socket the system refuses.
pub async fn connect_datagram(endpoint: &Endpoint) -> Result<(Datagram, Peer)> {
    connect_datagram_from(endpoint, &Local::default()).await
}

/// As [`connect_datagram`], from the local address, port and family `local` asks for
/// (`-s`, `-p`, `-4`/`-6`).
///
/// # Errors
/// As [`connect_datagram`]; a source address this machine does not have.
pub async fn connect_datagram_from(endpoint: &Endpoint, local: &Local) -> Result<(Datagram, Peer)> {
    let what = format!("cannot connect to {endpoint}");
    match endpoint {
        Endpoint::Udp(hp) => {
            let hp = &scoped_group(hp, local).map_err(|e| Error::io(what.clone(), &e))?;
            let addr = *local.usable(resolve(hp).await?).first().ok_or_else(|| {
                Error::new(local.none_left_kind(), what.clone(), local.none_left())
            })?;
            let bind_at: SocketAddr = local.bind_for(addr).unwrap_or(if addr.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            });
            explain::say(|| {
                format!(
                    "sk = socket.socket({}, socket.SOCK_DGRAM)",
                    explain::family(Some(&addr))
                )
            });
            if local.bind_for(addr).is_some() {
                explain::say(|| format!("sk.bind({})", explain::addr(&bind_at)));
            }
            let udp = UdpSocket::bind(bind_at)
                .await
                .map_err(|e| Error::io(what.clone(), &e))?;
            prepare_sender(&udp, addr, local).map_err(|e| Error::io(what.clone(), &e))?;
            explain::say(|| {
                explain::call(
                    &format!("sk.connect({})", explain::addr(&addr)),
                    "no packet is sent: send() now goes there, and only its answers arrive",
                )
            });
            udp.connect(addr).await.map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied if !local.broadcast => Error::new(
                    ErrorKind::BadArgument,
                    what.clone(),
                    "that is a broadcast address; sending to it takes --broadcast",
                ),
                _ => Error::io(what.clone(), &e),
            })?;
            let local = udp.local_addr().unwrap_or(bind_at);
            let v6 = is_v6(&udp);
            Ok((
                Datagram {
                    inner: Inner::Udp(udp, v6),
                    local: endpoint.with_addr(local),
                },
                Peer::from_ip(addr),
            ))
        }
        Endpoint::UnixGram(addr) => {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "sockit-client-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let me = UnixAddr::Abstract(name);
            let (sock, _) = bind_unix(&me, Type::DGRAM, &what)?;
            let target = unix_sockaddr(addr).map_err(|e| Error::io(what.clone(), &e))?;
            sock.connect(&target)
                .map_err(|e| unix_error(what.clone(), &e))?;
            let u = super::unix::datagram(sock).map_err(|e| Error::io(what, &e))?;
            Ok((
                Datagram {
                    inner: Inner::Unix(u, None),
                    local: Endpoint::UnixGram(me),
                },
                Peer::Unix(Some(addr.clone())),
            ))
        }
        _ => Err(Error::new(
            ErrorKind::BadArgument,
            what,
            "not a datagram endpoint (use udp:// or unixgram:)",
        )),
    }
}

impl Datagram {
    /// Asks the kernel to report ICMP errors (port unreachable) for datagrams this socket
    /// sent to any address, not only to a connected peer (IP_RECVERR): a server can then
    /// drop a peer that went away at once. Best effort; Unix sockets have nothing to report.
    pub fn watch_unreachable(&self) {
        #[cfg(target_os = "linux")]
        if let Inner::Udp(s, v6) = &self.inner {
            use nix::sys::socket::{setsockopt, sockopt};
            let r = if *v6 {
                setsockopt(s, sockopt::Ipv6RecvErr, &true)
                    .and_then(|()| setsockopt(s, sockopt::Ipv4RecvErr, &true))
            } else {
                setsockopt(s, sockopt::Ipv4RecvErr, &true)
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "cannot watch for unreachable peers");
            }
        }
    }

    /// The peers the kernel reported unreachable since the last call (read from the error
    /// queue, which also clears it); empty unless [`Datagram::watch_unreachable`] was called.
    #[cfg(not(target_os = "linux"))]
    pub fn take_unreachable(&self) -> Vec<Peer> {
        Vec::new()
    }

    /// The peers the kernel reported unreachable since the last call (read from the error
    /// queue, which also clears it); empty unless [`Datagram::watch_unreachable`] was called.
    #[cfg(target_os = "linux")]
    pub fn take_unreachable(&self) -> Vec<Peer> {
        use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvFlags};
        let Inner::Udp(s, _) = &self.inner else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        // Bounded: the queue is as long as the socket buffer allows.
        for _ in 0..1024 {
            let mut byte = [0u8; 1];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut control = RecvAncillaryBuffer::default();
            let flags = RecvFlags::ERRQUEUE | RecvFlags::DONTWAIT;
            match recvmsg(s, &mut iov, &mut control, flags) {
                // The address of an error-queue message is where the failed datagram went.
                Ok(m) => {
                    if let Some(a) = m.address.and_then(|a| SocketAddr::try_from(a).ok()) {
                        gone.push(Peer::from_ip(a));
                    }
                }
                Err(_) => break,
            }
        }
        gone
    }

    /// Our own address, for an IP socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.inner {
            Inner::Udp(s, _) => s.local_addr().ok(),
            Inner::Unix(..) => None,
        }
    }

    /// The kind as UCSPI's `PROTO` names it (`UDP`; `UNIX` for unixgram).
    pub fn proto(&self) -> &'static str {
        match &self.inner {
            Inner::Udp(..) => "UDP",
            Inner::Unix(..) => "UNIX",
        }
    }

    /// The endpoint actually bound: the readiness line.
    pub fn local_endpoint(&self) -> &Endpoint {
        &self.local
    }

    /// Receives one datagram and who sent it.
    ///
    /// # Errors
    /// As `recvfrom(2)`; over UDP an earlier send may surface here as "connection refused".
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, Peer)> {
        let r = self.recv_from_inner(buf).await;
        explain::say(|| {
            let code = format!("data, addr = sk.recvfrom({})", buf.len().min(65535));
            match &r {
                Ok((n, p)) => explain::call(
                    &code,
                    &format!(
                        "{n} bytes from {}: {}",
                        explain::peer(p),
                        explain::bytes(&buf[..*n])
                    ),
                ),
                Err(e) => explain::call(&code, &explain::error(e)),
            }
        });
        r
    }

    async fn recv_from_inner(&self, buf: &mut [u8]) -> io::Result<(usize, Peer)> {
        match &self.inner {
            Inner::Udp(s, _) => {
                let (n, a) = s.recv_from(buf).await?;
                Ok((n, Peer::from_ip(a)))
            }
            Inner::Unix(s, _) => {
                let (n, a) = s.recv_from(buf).await?;
                Ok((n, Peer::from_unix(&a)))
            }
        }
    }

    /// Sends one datagram to `peer`.
    ///
    /// # Errors
    /// As `sendto(2)`, or `InvalidInput` for a peer of the other kind or without an address.
    pub async fn send_to(&self, buf: &[u8], peer: &Peer) -> io::Result<usize> {
        let r = self.send_to_inner(buf, peer).await;
        explain::say(|| {
            let code = format!(
                "sk.sendto({}, {})",
                explain::bytes(buf),
                explain::peer(peer)
            );
            match &r {
                Ok(n) => explain::call(&code, &format!("{n} bytes")),
                Err(e) => explain::call(&code, &explain::error(e)),
            }
        });
        r
    }

    async fn send_to_inner(&self, buf: &[u8], peer: &Peer) -> io::Result<usize> {
        match (&self.inner, peer) {
            (Inner::Udp(s, _), Peer::Ip(a)) => s.send_to(buf, self.map_addr(*a)).await,
            #[cfg(unix)]
            (Inner::Unix(s, _), Peer::Unix(Some(a))) => {
                let addr = unix_sockaddr(a)?;
                s.async_io(Interest::WRITABLE, || SockRef::from(s).send_to(buf, &addr))
                    .await
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "that peer has no address to answer",
            )),
        }
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    /// As `send(2)`.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let r = match &self.inner {
            Inner::Udp(s, _) => s.send(buf).await,
            Inner::Unix(s, _) => s.send(buf).await,
        };
        explain::say(|| {
            let code = format!("sk.send({})", explain::bytes(buf));
            match &r {
                Ok(n) => explain::call(&code, &format!("{n} bytes")),
                Err(e) => explain::call(&code, &explain::error(e)),
            }
        });
        r
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    /// As `recv(2)`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &self.inner {
            Inner::Udp(s, _) => s.recv(buf).await,
            Inner::Unix(s, _) => s.recv(buf).await,
        };
        explain::say(|| {
            let code = format!("data = sk.recv({})", buf.len().min(65535));
            match &r {
                Ok(n) => {
                    explain::call(&code, &format!("{n} bytes: {}", explain::bytes(&buf[..*n])))
                }
                Err(e) => explain::call(&code, &explain::error(e)),
            }
        });
        r
    }

    /// Restricts the socket to one peer (what a server does once its first client wrote).
    ///
    /// # Errors
    /// As `connect(2)`.
    pub async fn connect(&self, peer: &Peer) -> io::Result<()> {
        explain::say(|| {
            explain::call(
                &format!("sk.connect({})", explain::peer(peer)),
                "from now on only this peer is heard and answered",
            )
        });
        match (&self.inner, peer) {
            (Inner::Udp(s, _), Peer::Ip(a)) => s.connect(self.map_addr(*a)).await,
            #[cfg(unix)]
            (Inner::Unix(s, _), Peer::Unix(Some(a))) => {
                SockRef::from(s).connect(&unix_sockaddr(a)?)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "that peer has no address to answer",
            )),
        }
    }

    /// Peers are kept canonical (IPv4 as IPv4); a dual-stack socket needs them mapped back.
    fn map_addr(&self, a: SocketAddr) -> SocketAddr {
        match (&self.inner, a) {
            (Inner::Udp(_, true), SocketAddr::V4(v4)) => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            _ => a,
        }
    }
}
