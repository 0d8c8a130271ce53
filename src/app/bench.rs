//! `sockit bench`: the load, its defaults, and the report.

use sockit::error::{Error, ErrorKind, Result};
use sockit::net::{tls, ws, DialOptions, Dialer, Local};
use sockit::stdio::Output;
use sockit::{bench, Endpoint};
use tokio_util::sync::CancellationToken;

use super::options::{proxy, tls_client_options, ws_options};
use crate::cli::{BenchArgs, BenchMode};

/// Runs the command to its end.
pub(super) async fn run(
    args: BenchArgs,
    output: Output,
    quiet: bool,
    shutdown: CancellationToken,
) -> Result<()> {
    let endpoint: Endpoint = args.endpoint.parse()?;
    let mode = match args.mode {
        BenchMode::Stream => bench::Mode::Stream,
        BenchMode::Rr => bench::Mode::Rr,
        BenchMode::Connect => bench::Mode::Connect,
        BenchMode::Fanout => bench::Mode::Fanout,
    };
    let size = mode.size(args.size, &endpoint)?;
    let target = Dialer::new(
        endpoint,
        &DialOptions {
            connect_timeout: Some(args.timeout),
            handshake_timeout: tls::HANDSHAKE_TIMEOUT,
            tls: tls_client_options(&args.tls, &args.alpn),
            local: Local::default(),
            proxy: proxy(args.proxy.as_deref())?,
            // A fan-out's receivers read a room's lines; the other modes carry bytes, and
            // only a stream is bulk (small requests read best through a small buffer).
            ws: ws::Options {
                read_buffer: if mode == bench::Mode::Stream {
                    ws::TUNNEL_READ_BUFFER
                } else {
                    ws::READ_BUFFER
                },
                ..ws_options(
                    if mode == bench::Mode::Fanout {
                        ws::Framing::Lines
                    } else {
                        ws::Framing::Binary
                    },
                    &args.ws,
                    Some(&args.ws_client),
                )?
            },
        },
    )?;
    let cfg = bench::Config {
        target,
        mode,
        conns: args.conns.max(1),
        duration: args.duration,
        count: args.count,
        size,
        rate: args.rate,
        sink: args.sink,
        hold: args.hold,
        timeout: args.timeout,
        progress: !quiet && !args.json,
        sender: args
            .send_to
            .as_deref()
            .map(|e| -> Result<Dialer> { Dialer::new(e.parse()?, &DialOptions::default()) })
            .transpose()?,
        receivers_also: args
            .receivers_also
            .iter()
            .map(|e| Dialer::new(e.parse()?, &DialOptions::default()))
            .collect::<Result<_>>()?,
    };
    let report = bench::run(&cfg, shutdown).await?;
    let text = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.table()
    };
    output
        .write(text.into())
        .await
        .map_err(|_| Error::stdout_closed())?;
    if report.is_clean() {
        Ok(())
    } else if mode == bench::Mode::Fanout && report.lost > 0 && report.errors == 0 {
        Err(Error::new(
            ErrorKind::Io,
            "the benchmark found problems",
            format!(
                "{} lines did not arrive in time, {} duplicated, {} reordered; a room that limits each member's rate (sockit chat's default --rate 10) slows a fast sender down instead of dropping its lines, so they come after the run has ended: benchmark the room with --rate 0, or give bench a longer --timeout",
                report.lost, report.duplicated, report.reordered
            ),
        ))
    } else {
        Err(Error::new(
            ErrorKind::Io,
            "the benchmark found problems",
            format!(
                "{} errors, {} lost, {} duplicated, {} reordered{}",
                report.errors,
                report.lost,
                report.duplicated,
                report.reordered,
                report
                    .first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        ))
    }
}
