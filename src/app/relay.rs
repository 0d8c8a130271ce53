//! `sockit relay`: each client of LISTEN to its own connection to TARGET.

use sockit::dump::Sink;
use sockit::error::Result;
use sockit::net::{ws, Bound, DialOptions, Dialer, Local};
use sockit::{relay, Endpoint};
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::options::{admission, proxy, tls_client_options, ws_options_lingering};
use crate::cli::RelayArgs;

/// Runs the command to its end.
pub(super) async fn run(args: RelayArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    if args.explain {
        sockit::net::explain::enable();
    }
    let from: Endpoint = args.listen.parse()?;
    let to: Endpoint = args.target.parse()?;
    relay::check_kinds(&from, &to)?;
    if args.send_proxy.is_some() && (!to.is_stream() || matches!(to, Endpoint::Quic(_))) {
        return Err(sockit::error::Error::new(
            sockit::error::ErrorKind::BadArgument,
            format!("--send-proxy does not go with {to}"),
            "a PROXY protocol header goes first on a TCP or Unix stream (tcp, tls, ws, wss, unix)",
        ));
    }
    let target = Dialer::new(
        to,
        &DialOptions {
            connect_timeout: args.connect_timeout,
            handshake_timeout: args.limits.handshake_timeout,
            tls: tls_client_options(&args.client_tls, &args.server_tls.alpn),
            local: Local::default(),
            proxy: proxy(args.proxy.as_deref())?,
            ws: ws_options_lingering(
                ws::Framing::Binary,
                &args.ws,
                Some(&args.ws_client),
                Some(args.limits.idle_timeout),
            )?,
        },
    )?;
    let ws = ws_options_lingering(
        ws::Framing::Binary,
        &args.ws,
        None,
        Some(args.limits.idle_timeout),
    )?;
    let admission = admission(&args.limits, &args.server_tls, &[&from], ws, None, quiet)?;
    let bound = Bound::bind(&from).await?;
    if !quiet {
        say(format_args!("listening on {}", bound.local_endpoint()));
    }
    match bound {
        Bound::Stream(listener) => {
            let dump = Sink::for_run(args.hex_dump.as_deref(), args.pcap.as_deref())?;
            let target = relay::Target {
                dialer: target,
                send_proxy: args.send_proxy,
            };
            relay::run_stream(listener, &admission, target, dump, shutdown).await
        }
        Bound::Datagram(sock) => relay::run_datagram(sock, &admission, target, shutdown).await,
    }
}
