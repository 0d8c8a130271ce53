//! From the common flags to the library's options: TLS trust and certificates, proxies,
//! WebSocket, limits, the admission, programs (`--exec`). Every command builds its layers here.

use std::time::Duration;

use sockit::error::{Error, ErrorKind, Result};
use sockit::net::{tls, ws};
use sockit::server::{Access, Admission, Limits};
use sockit::session::{self};
use sockit::Endpoint;
use tokio_util::sync::CancellationToken;

use super::console::say;
use super::signals::cut;
use crate::cli::{self, ExecArgs, TlsClientArgs, TlsServerArgs};

/// The TLS trust a client asked for, as the dial takes it.
pub(super) fn tls_client_options(args: &TlsClientArgs, alpn: &cli::AlpnArgs) -> tls::ClientOptions {
    tls::ClientOptions {
        ca: args.ca.clone(),
        pin: args.pin.clone(),
        insecure: args.insecure,
        cert: args.client_cert.clone(),
        key: args.client_key.clone(),
        alpn: alpn.alpn.clone(),
        sni: args.sni.clone(),
    }
}

/// `--proxy URL`, parsed (its error never shows the URL's password).
pub(super) fn proxy(url: Option<&str>) -> Result<Option<sockit::net::proxy::Proxy>> {
    url.map(str::parse).transpose()
}

/// `--proxy-user USER:PASS` (the error never repeats the password).
pub(super) fn proxy_user(s: &str) -> Result<sockit::net::proxy::Credentials> {
    match s.split_once(':') {
        Some((user, pass)) if !user.is_empty() => Ok(sockit::net::proxy::Credentials {
            user: user.to_string(),
            pass: pass.to_string(),
        }),
        _ => Err(Error::new(
            ErrorKind::BadArgument,
            "bad --proxy-user",
            "write USER:PASS, e.g. --proxy-user alice:s3cret",
        )),
    }
}

/// The WebSocket options of a command: its framing, `--ping`, `--max-message`, and for
/// clients the upgrade's `--header`s and `--origin`.
pub(super) fn ws_options(
    framing: ws::Framing,
    args: &cli::WsArgs,
    client: Option<&cli::WsClientArgs>,
) -> Result<ws::Options> {
    ws_options_lingering(framing, args, client, None)
}

/// [`ws_options`] for a command whose end of input is a half-close (connect, listen,
/// relay): a peer without one is read until it closes or is quiet for `idle` (or 2 s).
pub(super) fn ws_options_lingering(
    framing: ws::Framing,
    args: &cli::WsArgs,
    client: Option<&cli::WsClientArgs>,
    idle: Option<Option<Duration>>,
) -> Result<ws::Options> {
    let headers = client
        .map(|c| {
            c.headers
                .iter()
                .map(|h| {
                    ws::parse_header(h).map_err(|why| {
                        Error::new(ErrorKind::BadArgument, format!("bad --header '{h}'"), why)
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(ws::Options {
        framing,
        ping: args.ping,
        max_message: usize::try_from(args.max_message).unwrap_or(usize::MAX),
        headers,
        read_buffer: match framing {
            ws::Framing::Binary => ws::TUNNEL_READ_BUFFER,
            ws::Framing::Lines => ws::READ_BUFFER,
        },
        origin: client
            .and_then(|c| c.origin.as_deref())
            .map(|o| {
                ws::check_origin(o).map_err(|why| {
                    Error::new(ErrorKind::BadArgument, format!("bad --origin '{o}'"), why)
                })
            })
            .transpose()?,
        linger: idle.map(|t| t.unwrap_or(session::DATAGRAM_IDLE)),
    })
}

/// The common server options as the admission takes them.
pub(super) fn limits(args: &cli::Limits) -> Result<Limits> {
    let proxied = if args.accept_proxy {
        let from = if args.proxy_from.is_empty() {
            vec!["127.0.0.0/8".to_string(), "::1/128".to_string()]
        } else {
            args.proxy_from.clone()
        };
        Some(Access::parse_flags(
            &from,
            &[],
            ("--proxy-from", "--proxy-from"),
        )?)
    } else {
        None
    };
    Ok(Limits {
        access: Access::parse(&args.allow, &args.deny)?,
        proxied,
        max_conns: args.max_conns,
        idle_timeout: args.idle_timeout,
        handshake_timeout: args.handshake_timeout,
        drain: args.drain,
        cut: cut(),
    })
}

/// The one admission of a server command: its limits, TLS for its `tls://` and `wss://`
/// endpoints, and the WebSocket options of its `ws://` and `wss://` ones.
pub(super) fn admission(
    limits_args: &cli::Limits,
    tls_args: &TlsServerArgs,
    endpoints: &[&Endpoint],
    ws: ws::Options,
    page: Option<&'static str>,
    quiet: bool,
) -> Result<Admission> {
    if let Some(e) = endpoints
        .iter()
        .find(|e| matches!(e, Endpoint::Http(_)) && page.is_none())
    {
        let hp = e.host_port().map(ToString::to_string).unwrap_or_default();
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("cannot serve {e} here"),
            format!("http:// is chat's web page (sockit chat {e}); a WebSocket endpoint is ws://{hp}/PATH"),
        ));
    }
    if limits_args.accept_proxy {
        if let Some(e) = endpoints
            .iter()
            .find(|e| !e.is_stream() || matches!(e, Endpoint::Quic(_)))
        {
            return Err(Error::new(
                ErrorKind::BadArgument,
                format!("--accept-proxy does not go with {e}"),
                "a PROXY protocol header comes first on a TCP or Unix stream (tcp, tls, ws, wss, http, unix)",
            ));
        }
    }
    let admission = Admission::new(
        limits(limits_args)?,
        tls_server(tls_args, endpoints, quiet)?,
    )
    .with_ws(ws);
    Ok(match page {
        Some(p) => admission.with_page(p),
        None => admission,
    })
}

/// TLS for the `tls://` endpoints among `endpoints` (none: `None`), with the certificate's
/// fingerprint on stderr so clients can `--pin` it.
pub(super) fn tls_server(
    args: &TlsServerArgs,
    endpoints: &[&Endpoint],
    quiet: bool,
) -> Result<Option<tls::Server>> {
    let Some(names) = tls::names_for(endpoints) else {
        if args.cert.is_some() || args.client_ca.is_some() || !args.alpn.alpn.is_empty() {
            tracing::warn!(
                "--cert, --key, --client-ca and --alpn apply to tls://, wss:// and quic:// endpoints only; ignored here"
            );
        }
        return Ok(None);
    };
    let server = tls::Server::new(
        &tls::ServerOptions {
            cert: args.cert.clone(),
            key: args.key.clone(),
            client_ca: args.client_ca.clone(),
            alpn: args.alpn.alpn.clone(),
        },
        &names,
    )?;
    if !quiet {
        say(server.fingerprint_line());
    }
    Ok(Some(server))
}

/// `--exec`/`--sh-exec`, checked now (a program that cannot run is one error at start);
/// `stdio_options` names the options that make no sense without stdio.
pub(super) fn exec(
    args: &ExecArgs,
    endpoint: &sockit::Endpoint,
    stdio_options: &[(&str, bool)],
    shutdown: &CancellationToken,
    server: bool,
) -> Result<Option<sockit::exec::Exec>> {
    let program = match (&args.exec, &args.sh_exec) {
        (Some(words), _) => sockit::exec::Program::exec(words)?,
        (None, Some(cmd)) => sockit::exec::Program::shell(cmd)?,
        (None, None) if args.pty => {
            return Err(Error::new(
                ErrorKind::BadArgument,
                "--pty needs a program",
                "give it with --exec or --sh-exec, such as --pty --exec bash",
            ))
        }
        (None, None) => return Ok(None),
    };
    if args.pty && cfg!(not(unix)) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "--pty is not available on this system",
            "it needs Unix pseudo-terminals; drop --pty (the program then talks through pipes)",
        ));
    }
    if args.pty && !endpoint.is_stream() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("--pty does not go with {endpoint}"),
            "a terminal needs a stream (tcp, tls, unix, ws, wss); datagrams can lose keys",
        ));
    }
    if let Some((name, _)) = stdio_options.iter().find(|(_, on)| *on) {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("--exec and {name} do not go together"),
            "with --exec the program, not stdio, talks to the peer",
        ));
    }
    // One conversation ends its program at the signal; a stream server at the drain's end.
    let stop = if server { cut() } else { shutdown.clone() };
    Ok(Some(sockit::exec::Exec {
        program: std::sync::Arc::new(program),
        stop,
        pty: args.pty.then(|| sockit::exec::Terminal {
            term: args.term.clone(),
            size: args.pty_size,
        }),
    }))
}
