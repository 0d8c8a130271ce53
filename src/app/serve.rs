//! `sockit serve`: the services named on the command line, in one process.

use sockit::error::{Error, ErrorKind, Result};
use sockit::net::ws;
use sockit::server::Access;
use sockit::{services, Endpoint};
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::options::{admission, proxy_user, ws_options};
use crate::cli::ServeArgs;

/// Runs the command to its end.
pub(super) async fn run(args: ServeArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    let bindings = args
        .services
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<services::Binding>>>()?;
    let id = services::sntp::Options::refid(&args.refid)?;
    let tunnel = bindings
        .iter()
        .any(|b| b.service == services::Service::Tunnel)
        .then(|| gateway(&args))
        .transpose()?;
    let cfg = services::Config {
        utc: args.utc,
        udp_rate: args.udp_rate,
        sntp: services::sntp::Options {
            stratum: args.stratum,
            refid: id,
        },
        proxy: services::proxy::Config {
            users: args
                .proxy_user
                .iter()
                .map(|u| proxy_user(u))
                .collect::<Result<_>>()?,
            targets: services::proxy::Targets::new(Access::parse_flags(
                &args.allow_target,
                &args.deny_target,
                ("--allow-target", "--deny-target"),
            )?),
        },
        tunnel,
    };
    let endpoints: Vec<&Endpoint> = bindings.iter().map(|b| &b.endpoint).collect();
    // echo mirrors messages; chargen and daytime send lines, so text messages.
    let ws = ws_options(ws::Framing::Lines, &args.ws, None)?;
    let admission = admission(&args.limits, &args.tls, &endpoints, ws, None, quiet)?;
    let bound = services::bind(&bindings).await?;
    if !quiet {
        for b in &bound {
            say(b.readiness());
        }
    }
    services::run(bound, admission, cfg, shutdown).await
}

/// The tunnel gateway's options: its ports, where they are bound, and how clients prove
/// who they are (a secret, a client certificate, or both).
fn gateway(args: &ServeArgs) -> Result<sockit::tunnel::Gateway> {
    let secret = sockit::tunnel::Secret::load(args.secret_file.as_deref())?;
    if secret.is_none() && args.tls.client_ca.is_none() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "a tunnel gateway needs a way to know its clients",
            "give a secret with --secret-file FILE or the SOCKIT_SECRET variable (never on the command line), or --client-ca FILE for client certificates",
        ));
    }
    Ok(sockit::tunnel::Gateway {
        ports: args.tunnel_ports,
        host: args
            .tunnel_host
            .map_or(sockit::endpoint::Host::Any, sockit::endpoint::Host::Ip),
        secret,
    })
}
