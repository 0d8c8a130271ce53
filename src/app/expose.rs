//! `sockit expose`: LOCAL reachable at a public port of a tunnel gateway.

use sockit::error::{Error, ErrorKind, Result};
use sockit::net::{DialOptions, Dialer, Local};
use sockit::tunnel::{expose, Expose, Secret};
use sockit::Endpoint;
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::options::tls_client_options;
use super::signals::cut;
use crate::cli::ExposeArgs;

/// Runs the command to its end.
pub(super) async fn run(args: ExposeArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    let local: Endpoint = args.local.parse()?;
    let via: Endpoint = args.via.parse()?;
    if !matches!(via, Endpoint::Tls(_)) {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("cannot reach a gateway at {via}"),
            "a tunnel gateway is reached over TLS: --via tls://HOST:PORT (as `serve tunnel=tls://...` runs it)",
        ));
    }
    if matches!(
        local,
        Endpoint::UnixGram(_) | Endpoint::Http(_) | Endpoint::Quic(_)
    ) {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("cannot expose {local}"),
            "LOCAL is a stream (tcp, tls, unix, ws, wss) or udp://HOST:PORT",
        ));
    }
    if args.proxy_protocol.is_some() && !local.is_stream() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("--proxy-protocol does not go with {local}"),
            "a PROXY protocol header goes first on a stream; UDP visitors have none",
        ));
    }
    let secret = Secret::load(args.secret_file.as_deref())?;
    if secret.is_none() && args.tls.client_cert.is_none() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "expose needs a way to prove who it is",
            "give the gateway's secret with --secret-file FILE or the SOCKIT_SECRET variable, or a client certificate (--client-cert/--client-key)",
        ));
    }
    let dial = |endpoint: Endpoint, tls: bool| {
        Dialer::new(
            endpoint,
            &DialOptions {
                connect_timeout: args.connect_timeout,
                handshake_timeout: args.handshake_timeout,
                tls: if tls {
                    tls_client_options(&args.tls, &args.alpn)
                } else {
                    Default::default()
                },
                local: Local::default(),
                proxy: None,
                ws: Default::default(),
            },
        )
    };
    let state = expose::state_path(&via, &local, args.port);
    let expose = Expose {
        // LOCAL is this machine's: the gateway's trust options are not for it.
        local: dial(local.clone(), false)?,
        gateway: dial(via, true)?,
        secret,
        port: args.port,
        proxy_protocol: args.proxy_protocol,
        handshake_timeout: args.handshake_timeout,
        idle_timeout: args.idle_timeout,
        state,
    };
    let ready = move |line: String| {
        if !quiet {
            say(line);
        }
    };
    expose.run(ready, shutdown, cut()).await
}
