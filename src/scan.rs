//! `sockit connect -z HOST:PORTS`: which ports answer, without sending data (netcat's `-z`).
//!
//! Each port gets its own attempt through the one dial's TCP connect (so `-s`, `-p`, `-4`,
//! `-6` and `-w` apply), at most `--max-conns` at once. Results come out in port order as soon
//! as every lower port is known. Over UDP a port counts as `open|filtered` unless an ICMP
//! port unreachable comes back within the timeout (UDP cannot tell open from filtered).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::endpoint::{Endpoint, Host, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::net::{resolve, Local};
use crate::stdio::Output;

/// The most ports one check takes (a whole range).
const MAX_PORTS: usize = 65_536;

/// What to check: a host and its ports, over TCP or UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// UDP instead of TCP.
    pub udp: bool,
    /// The host.
    pub host: Host,
    /// The ports, in the order given, without repeats.
    pub ports: Vec<u16>,
}

impl std::str::FromStr for Target {
    type Err = Error;

    /// `HOST:PORTS`, `tcp://HOST:PORTS` or `udp://HOST:PORTS`; PORTS is `22`, `20-25` or
    /// `22,80,8000-8010`.
    fn from_str(s: &str) -> Result<Target> {
        let bad = |why: String| {
            Error::new(
                ErrorKind::BadPortCheck,
                format!("bad port check '{s}'"),
                why,
            )
        };
        if s.starts_with("unix:") || s.starts_with("unixgram:") {
            return Err(bad(
                "-z checks TCP and UDP ports; a Unix socket has no port".into(),
            ));
        }
        let (udp, rest) = match s.split_once("://") {
            Some(("tcp", r)) => (false, r),
            Some(("udp", r)) => (true, r),
            Some((other, _)) => {
                return Err(bad(format!("-z checks tcp:// or udp://, not {other}://")))
            }
            None => (false, s),
        };
        let (host, ports) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("missing ports (HOST:PORTS)".into()))?;
        // The host is parsed as an endpoint's would be, with a placeholder port.
        let probe: Endpoint = format!("tcp://{host}:1").parse()?;
        let Endpoint::Tcp(HostPort { host, .. }) = probe else {
            return Err(bad("not an IP host".into()));
        };
        if matches!(host, Host::Any) {
            return Err(bad("give the host to check".into()));
        }
        let ports = parse_ports(ports).map_err(bad)?;
        Ok(Target { udp, host, ports })
    }
}

/// `22`, `20-25`, `22,80,8000-8010`: every port once, in the order written.
fn parse_ports(spec: &str) -> std::result::Result<Vec<u16>, String> {
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{p}' is not a port (1-65535)"))
    };
    let mut seen = vec![false; MAX_PORTS];
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(part)?, port(part)?),
        };
        if lo > hi {
            return Err(format!("the range {lo}-{hi} runs backwards"));
        }
        for p in lo..=hi {
            if !std::mem::replace(&mut seen[usize::from(p)], true) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// How a check runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the probes come from (`-s`, `-p`, `-4`, `-6`).
    pub local: Local,
    /// Bound on each probe (`-w`; 1 s by default).
    pub timeout: Duration,
    /// Probes at once (`--max-conns`; 100 by default).
    pub concurrency: usize,
}

/// Checks every port; open ones are written to `output` as `tcp://HOST:PORT open`.
/// Returns whether any port was open (netcat's exit status: 0 when one was).
///
/// # Errors
/// A host that does not resolve, or stdout closed by its reader.
pub async fn run(target: &Target, opts: &Options, output: &Output) -> Result<bool> {
    let hp = HostPort {
        host: target.host.clone(),
        port: 1,
    };
    let addr = *opts
        .local
        .usable(resolve(&hp).await?)
        .first()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotResolved,
                format!("cannot check {}", target.host),
                opts.local.none_left(),
            )
        })?;
    let limit = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut probes = JoinSet::new();
    for (i, &port) in target.ports.iter().enumerate() {
        let (limit, opts, udp) = (limit.clone(), opts.clone(), target.udp);
        // The resolved address with this port (a zone id stays).
        let mut at = addr;
        at.set_port(port);
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let open = if udp {
                probe_udp(at, &opts).await
            } else {
                probe_tcp(at, &opts).await
            };
            (i, open)
        });
    }
    // Results in port order, each as soon as every earlier one is known.
    let mut known: Vec<Option<bool>> = vec![None; target.ports.len()];
    let (mut next, mut any) = (0usize, false);
    while let Some(done) = probes.join_next().await {
        let Ok((i, open)) = done else { continue };
        known[i] = Some(open);
        while let Some(Some(open)) = known.get(next) {
            let scheme = if target.udp { "udp" } else { "tcp" };
            let hp = HostPort {
                host: target.host.clone(),
                port: target.ports[next],
            };
            let name = format!("{scheme}://{hp}");
            if *open {
                any = true;
                let word = if target.udp { "open|filtered" } else { "open" };
                output
                    .write(format!("{name} {word}\n").into())
                    .await
                    .map_err(|_| Error::stdout_closed())?;
            } else if tracing::enabled!(tracing::Level::INFO) {
                // On stderr with -v, a plain line as netcat prints it (not a log line).
                use std::io::Write;
                let _ = writeln!(std::io::stderr().lock(), "{name} closed");
            }
            next += 1;
        }
    }
    Ok(any)
}

/// A TCP port is open when a connection completes; it is closed again at once. A fixed
/// source port cannot serve many probes at once: only the source address is kept.
async fn probe_tcp(at: SocketAddr, opts: &Options) -> bool {
    let local = Local {
        port: None,
        ..opts.local
    };
    crate::net::connect_addr(at, &local, Some(opts.timeout))
        .await
        .is_ok()
}

/// A UDP port is closed only when ICMP port unreachable comes back in time.
async fn probe_udp(at: SocketAddr, opts: &Options) -> bool {
    let host = match at {
        SocketAddr::V6(a) if a.scope_id() != 0 => Host::Scoped(*a.ip(), a.scope_id().to_string()),
        a => Host::Ip(a.ip()),
    };
    let endpoint = Endpoint::Udp(HostPort {
        host,
        port: at.port(),
    });
    let local = Local {
        port: None,
        ..opts.local
    };
    let Ok((sock, _)) = crate::net::connect_datagram_from(&endpoint, &local).await else {
        return false;
    };
    if sock.send(b"").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(opts.timeout, sock.recv(&mut buf)).await {
        Err(_) | Ok(Ok(_)) => true,
        Ok(Err(e)) => e.kind() != std::io::ErrorKind::ConnectionRefused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_parse() {
        assert_eq!(parse_ports("22").unwrap(), vec![22]);
        assert_eq!(parse_ports("20-23").unwrap(), vec![20, 21, 22, 23]);
        assert_eq!(
            parse_ports("22,80,8000-8002,80").unwrap(),
            vec![22, 80, 8000, 8001, 8002]
        );
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("25-20").is_err());
        assert!(parse_ports("http").is_err());
    }

    #[test]
    fn targets_parse() {
        let t: Target = "udp://127.0.0.1:53,123".parse().unwrap();
        assert!(t.udp);
        assert_eq!(t.ports, vec![53, 123]);
        let t: Target = "[::1]:20-21".parse().unwrap();
        assert!(!t.udp && t.ports.len() == 2);
        assert!("tls://h:1".parse::<Target>().is_err());
        assert!(":22".parse::<Target>().is_err());
    }
}
