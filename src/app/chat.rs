//! `sockit chat`: the room on every endpoint, and on the bus when one is given.

use sockit::error::Result;
use sockit::net::{ws, Bound, DialOptions};
use sockit::{chat, Endpoint};
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::options::{admission, tls_client_options, ws_options};
use crate::cli::ChatArgs;

/// Runs the command to its end.
pub(super) async fn run(args: ChatArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    let endpoints = if args.endpoints.is_empty() {
        vec!["tcp://127.0.0.1:8898".parse()?]
    } else {
        args.endpoints
            .iter()
            .map(|e| e.parse())
            .collect::<Result<Vec<Endpoint>>>()?
    };
    let node = chat::bus::node_id();
    let bus = args
        .bus
        .as_ref()
        .map(|url| {
            chat::bus::Bus::new(
                chat::bus::BusConfig {
                    url: url.clone(),
                    room: args.room.clone(),
                    node: node.clone(),
                },
                &DialOptions {
                    tls: tls_client_options(&args.bus_tls, &crate::cli::AlpnArgs::default()),
                    ..DialOptions::default()
                },
            )
        })
        .transpose()?;
    let guest_suffix = bus.as_ref().map(|_| node[..4].to_string());
    let cfg = chat::Config {
        bus,
        member: chat::MemberOptions {
            max_line: usize::try_from(args.max_line).unwrap_or(usize::MAX),
            rate: args.rate,
            burst: args.rate.saturating_mul(2).max(1),
            idle_timeout: args.limits.idle_timeout,
            udp_open: args.udp_open,
        },
    };
    let endpoints: Vec<&Endpoint> = endpoints.iter().collect();
    let ws = ws_options(ws::Framing::Lines, &args.ws, None)?;
    let page = Some(chat::web::PAGE);
    let admission = admission(&args.limits, &args.tls, &endpoints, ws, page, quiet)?;
    let room = chat::Room::new(chat::RoomConfig {
        max_members: args.max_members,
        guest_suffix,
        ..chat::RoomConfig::default()
    });
    let bound = Bound::bind_all(&endpoints).await?;
    let readiness: Vec<String> = bound.iter().map(chat::readiness).collect();
    // With a bus, ready means joined on it (a member who comes now is seen on every node);
    // a bus that cannot be reached in time is warned about, and the node serves its own.
    let joined = cfg.bus.as_ref().map(chat::bus::Bus::joined);
    let ready = async {
        if let Some(j) = joined {
            let _ = tokio::time::timeout(chat::bus::JOIN_WAIT, j.cancelled()).await;
        }
        if !quiet {
            for line in &readiness {
                say(line);
            }
        }
    };
    let run = chat::run(room, bound, admission, cfg, shutdown);
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => return r,
        () = ready => {}
    }
    run.await
}
