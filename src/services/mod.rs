//! `sockit serve`: the classic small services (RFC 862-868), the tutorial's strftime time
//! server, and SNTP, on any number of stream (tcp, tls, unix, ws, wss) and datagram endpoints in one
//! process.
//!
//! Stream clients each get a task (thousands at once, no thread per client); datagram
//! services answer from one loop per socket, never more than needed, and at most
//! `--udp-rate` answers a second per source, since UDP chargen, daytime and time are
//! known amplification vectors.

pub mod chargen;
pub mod clock;
mod datagram;
pub mod proxy;
pub mod ratelimit;
pub mod sntp;
mod stream;

use std::fmt;
use std::str::FromStr;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::net;
use crate::server::Admission;

/// Largest daytime answer over UDP: a format such as `%c%c%c...` must not amplify.
pub const DAYTIME_MAX: usize = 512;

/// One of the services `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// RFC 862: send back what arrives.
    Echo,
    /// RFC 863: read and drop.
    Discard,
    /// RFC 864: a stream of rotating printable lines.
    Chargen,
    /// RFC 867: the date as text; over UDP a strftime format gets the date in that format.
    Daytime,
    /// RFC 868: 32-bit seconds since 1900.
    Time,
    /// RFC 4330 SNTP server (UDP only).
    Sntp,
    /// RFC 1928 SOCKS5 proxy (TCP only).
    Socks5,
    /// HTTP CONNECT proxy (TCP only).
    HttpProxy,
    /// A tunnel gateway for `expose` clients (TLS only).
    Tunnel,
}

impl Service {
    /// The name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Service::Echo => "echo",
            Service::Discard => "discard",
            Service::Chargen => "chargen",
            Service::Daytime => "daytime",
            Service::Time => "time",
            Service::Sntp => "sntp",
            Service::Socks5 => "socks5",
            Service::HttpProxy => "http-proxy",
            Service::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "echo" => Service::Echo,
            "discard" => Service::Discard,
            "chargen" => Service::Chargen,
            "daytime" => Service::Daytime,
            "time" => Service::Time,
            "sntp" | "ntp" => Service::Sntp,
            "socks5" | "socks" => Service::Socks5,
            "http-proxy" | "http_proxy" => Service::HttpProxy,
            "tunnel" => Service::Tunnel,
            _ => return Err(Error::new(
                ErrorKind::BadArgument,
                format!("unknown service '{s}'"),
                "services are echo, discard, chargen, daytime, time, sntp, socks5, http-proxy and tunnel",
            )),
        })
    }
}

/// `SERVICE=ENDPOINT` as given on the command line.
#[derive(Debug, Clone)]
pub struct Binding {
    /// What to serve.
    pub service: Service,
    /// Where.
    pub endpoint: Endpoint,
}

impl FromStr for Binding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let Some((service, endpoint)) = s.split_once('=') else {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("bad service '{s}'"),
                "write SERVICE=ENDPOINT, e.g. echo=tcp://:7007 or daytime=udp://127.0.0.1:9000",
            ));
        };
        let service: Service = service.parse()?;
        let endpoint: Endpoint = endpoint.parse()?;
        if service == Service::Sntp && endpoint.is_stream() {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("bad service '{s}'"),
                "sntp runs over datagrams only, e.g. sntp=udp://:123",
            ));
        }
        if matches!(service, Service::Socks5 | Service::HttpProxy)
            && !matches!(endpoint, Endpoint::Tcp(_))
        {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("bad service '{s}'"),
                format!("{service} runs over tcp:// only, e.g. {service}=tcp://127.0.0.1:1080"),
            ));
        }
        if service == Service::Tunnel && !matches!(endpoint, Endpoint::Tls(_)) {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("bad service '{s}'"),
                "tunnel runs over tls:// only (its clients prove a secret and carry visitors' bytes), e.g. tunnel=tls://:7835",
            ));
        }
        Ok(Binding { service, endpoint })
    }
}

/// Options shared by every service.
#[derive(Debug, Clone)]
pub struct Config {
    /// daytime answers in UTC instead of local time.
    pub utc: bool,
    /// Datagram answers per second per source (0: no limit).
    pub udp_rate: u32,
    /// What the SNTP service announces.
    pub sntp: sntp::Options,
    /// Credentials and target rules of the proxy services.
    pub proxy: proxy::Config,
    /// The tunnel gateway's ports and secret (`None` without a tunnel service).
    pub tunnel: Option<crate::tunnel::Gateway>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            utc: false,
            udp_rate: 50,
            sntp: sntp::Options::default(),
            proxy: proxy::Config::default(),
            tunnel: None,
        }
    }
}

/// A bound socket for one service.
#[derive(Debug)]
pub struct Bound {
    /// What it serves.
    pub service: Service,
    /// Where.
    pub socket: net::Bound,
}

impl Bound {
    /// The readiness line: `echo listening on udp://127.0.0.1:7007`.
    pub fn readiness(&self) -> String {
        format!(
            "{} listening on {}",
            self.service,
            self.socket.local_endpoint()
        )
    }
}

/// Binds every service (all or nothing, so a typo never leaves half a server running).
///
/// # Errors
/// The first endpoint that cannot be bound.
pub async fn bind(bindings: &[Binding]) -> Result<Vec<Bound>> {
    let mut bound = Vec::with_capacity(bindings.len());
    for b in bindings {
        bound.push(Bound {
            service: b.service,
            socket: net::Bound::bind(&b.endpoint).await?,
        });
    }
    Ok(bound)
}

/// Serves every bound socket until `shutdown`.
///
/// # Errors
/// None today: failures of single clients are logged, never fatal.
pub async fn run(
    bound: Vec<Bound>,
    admission: Admission,
    cfg: Config,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut tasks = JoinSet::new();
    for Bound { service, socket } in bound {
        let (cfg, admission, shutdown) = (cfg.clone(), admission.clone(), shutdown.clone());
        match socket {
            net::Bound::Stream(listener) if service == Service::Tunnel => {
                let Some(gateway) = cfg.tunnel else {
                    tracing::error!("the tunnel service has no configuration");
                    continue;
                };
                tasks.spawn(async move {
                    crate::tunnel::gateway::serve(listener, admission, gateway, shutdown).await;
                });
            }
            net::Bound::Stream(listener) => {
                tasks.spawn(async move {
                    stream::serve(service, listener, admission, cfg, shutdown).await;
                });
            }
            net::Bound::Datagram(sock) => {
                tasks.spawn(async move {
                    datagram::serve(service, sock, admission, cfg, shutdown).await;
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
