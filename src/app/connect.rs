//! `sockit connect`: the dial's options from the flags (or `-z`'s port check), then the
//! conversation.

use std::time::Duration;

use sockit::dump::Sink;
use sockit::error::{Error, ErrorKind, Result};
use sockit::net::{ws, DialOptions, Dialer, Family, Local};
use sockit::session::{self, Source};
use sockit::stdio::{Input, Output};
use sockit::{connect, scan, Endpoint};
use tokio_util::sync::CancellationToken;

use super::options::{exec, proxy, tls_client_options, ws_options_lingering};
use crate::cli::ConnectArgs;

/// Runs the command to its end.
pub(super) async fn run(
    args: ConnectArgs,
    input: Input,
    output: Output,
    shutdown: CancellationToken,
) -> Result<()> {
    if args.explain {
        sockit::net::explain::enable();
    }
    let local = Local {
        source: args.source,
        port: args.source_port,
        family: match (args.ipv4, args.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        },
        iface: args.iface,
        ttl: args.ttl,
        broadcast: args.broadcast,
    };
    if args.zero_io {
        let target: scan::Target = args.endpoint.parse()?;
        let opts = scan::Options {
            local,
            timeout: args.connect_timeout.unwrap_or(Duration::from_secs(1)),
            concurrency: args.max_conns,
        };
        let any = tokio::select! {
            r = scan::run(&target, &opts, &output) => r?,
            () = shutdown.cancelled() => return Ok(()),
        };
        return if any {
            Ok(())
        } else {
            // netcat's rule: no open port is exit 1, with nothing more to say.
            Err(Error::new(
                ErrorKind::NothingOpen,
                "no port is open",
                "none answered",
            ))
        };
    }
    let endpoint: Endpoint = args.endpoint.parse()?;
    let dialer = Dialer::new(
        endpoint,
        &DialOptions {
            connect_timeout: args.connect_timeout,
            handshake_timeout: args.handshake_timeout,
            tls: tls_client_options(&args.tls, &args.alpn),
            local,
            proxy: proxy(args.proxy.as_deref())?,
            ws: ws_options_lingering(
                if args.binary {
                    ws::Framing::Binary
                } else {
                    ws::Framing::Lines
                },
                &args.ws,
                Some(&args.ws_client),
                // --send-only ends with its input: the Close goes with it.
                (!args.send_only).then_some(args.idle_timeout),
            )?,
        },
    )?;
    let exec = exec(
        &args.exec,
        dialer.endpoint(),
        &[
            ("--send", args.send.is_some()),
            ("--progress", args.progress),
        ],
        &shutdown,
        false,
    )?;
    let source = match args.send {
        Some(text) => Source::Once(text.into_bytes().into()),
        None if args.raw => Source::Lines(super::console::raw_stdin(&shutdown)?),
        None => Source::Lines(input),
    };
    let opts = session::Options {
        idle_timeout: args.idle_timeout,
        crlf: args.crlf,
        binary: args.binary,
        send_only: args.send_only,
        recv_only: args.recv_only,
        dump: Sink::for_run(args.hex_dump.as_deref(), args.pcap.as_deref())?,
        progress: args.progress,
        exec,
        no_shutdown: args.no_shutdown,
        accepted: false,
        stop: None,
    };
    connect::run(&dialer, source, output, &opts, shutdown).await
}
