//! `sockit listen`: bind, say the readiness line, serve one conversation or many.

use sockit::dump::Sink;
use sockit::error::Result;
use sockit::net::{ws, Bound, Local};
use sockit::stdio::{Input, Output};
use sockit::{listen, Endpoint};
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::options::{admission, exec, ws_options_lingering};
use crate::cli::ListenArgs;

/// Runs the command to its end.
pub(super) async fn run(
    args: ListenArgs,
    input: Input,
    output: Output,
    quiet: bool,
    shutdown: CancellationToken,
) -> Result<()> {
    let endpoint: Endpoint = args.endpoint.parse()?;
    if args.explain {
        sockit::net::explain::enable();
    }
    // Only a stream server drains: one conversation, and datagram sessions (nothing in
    // flight), end their programs at the signal.
    let exec = exec(
        &args.exec,
        &endpoint,
        &[
            ("--broker", args.broker),
            ("--progress", args.progress),
            ("--show-peer", args.show_peer),
        ],
        &shutdown,
        (args.keep_open || args.broker) && endpoint.is_stream(),
    )?;
    let cfg = listen::Config {
        exec,
        keep_open: args.keep_open || args.broker,
        broker: args.broker,
        show_peer: args.show_peer,
        crlf: args.crlf,
        dump: Sink::for_run(args.hex_dump.as_deref(), args.pcap.as_deref())?,
        progress: args.progress,
    };
    let framing = if args.binary {
        ws::Framing::Binary
    } else {
        ws::Framing::Lines
    };
    let ws = ws_options_lingering(framing, &args.ws, None, Some(args.limits.idle_timeout))?;
    let admission = admission(&args.limits, &args.tls, &[&endpoint], ws, None, quiet)?;
    let local = Local {
        iface: args.iface,
        ..Local::default()
    };
    let bound = Bound::bind_on(&endpoint, &local).await?;
    if !quiet {
        say(format_args!("listening on {}", bound.local_endpoint()));
    }
    match bound {
        Bound::Stream(listener) => {
            let input = if args.raw {
                super::console::raw_stdin(&shutdown)?
            } else {
                input
            };
            listen::run_stream(listener, &admission, input, output, &cfg, shutdown).await
        }
        Bound::Datagram(sock) => {
            listen::run_datagram(sock, &admission, input, output, &cfg, shutdown).await
        }
    }
}
