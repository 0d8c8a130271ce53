//! A bound server socket of either kind ([`Bound`]), as every server command binds its
//! endpoints.

use super::base::Local;
use super::datagram::{bind_datagram_on, Datagram};
use super::listener::{bind, Listener};
use crate::endpoint::Endpoint;
use crate::error::Result;

/// A bound server socket of either kind, as every server command binds its endpoints.
#[derive(Debug)]
pub enum Bound {
    /// tcp, tls, unix, ws, wss, http: a listening socket.
    Stream(Listener),
    /// udp, unixgram: a bound datagram socket.
    Datagram(Datagram),
}

impl Bound {
    /// Binds `endpoint` as the kind it is.
    ///
    /// # Errors
    /// As [`bind`] and [`bind_datagram`](super::bind_datagram).
    pub async fn bind(endpoint: &Endpoint) -> Result<Bound> {
        Bound::bind_on(endpoint, &Local::default()).await
    }

    /// As [`Bound::bind`], a multicast group joined on `local.iface`.
    ///
    /// # Errors
    /// As [`bind`] and [`bind_datagram_on`].
    pub async fn bind_on(endpoint: &Endpoint, local: &Local) -> Result<Bound> {
        Ok(if endpoint.is_stream() {
            Bound::Stream(bind(endpoint).await?)
        } else {
            Bound::Datagram(bind_datagram_on(endpoint, local).await?)
        })
    }

    /// Binds every endpoint before any is served (all or nothing, so a typo never leaves
    /// half a server running).
    ///
    /// # Errors
    /// The first endpoint that cannot be bound.
    pub async fn bind_all(endpoints: &[&Endpoint]) -> Result<Vec<Bound>> {
        let mut bound = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            bound.push(Bound::bind(e).await?);
        }
        Ok(bound)
    }

    /// The endpoint actually bound (the real port when 0 was asked for).
    pub fn local_endpoint(&self) -> &Endpoint {
        match self {
            Bound::Stream(l) => l.local_endpoint(),
            Bound::Datagram(d) => d.local_endpoint(),
        }
    }
}
