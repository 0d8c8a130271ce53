//! From parsed arguments to a running command: the runtime, stdio, signals, readiness line.

use std::io::IsTerminal;
use std::time::Duration;

use sockit::dump::Sink;
use sockit::endpoint::Host;
use sockit::error::{Error, ErrorKind, Result};
use sockit::net::{tls, ws, Bound, DialOptions, Dialer, Family, Local};
use sockit::server::{Access, Admission, Limits};
use sockit::session::{self, Source};
use sockit::stdio::{Input, Output};
use sockit::{bench, chat, connect, listen, relay, scan, services, Endpoint};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    self, BenchArgs, BenchMode, ChatArgs, Cli, Command, ConnectArgs, ExecArgs, ListenArgs,
    RelayArgs, ServeArgs, TlsClientArgs, TlsServerArgs,
};

/// Writes one line to stderr. A stderr that cannot take it (`2>/dev/full`, a closed pipe)
/// costs the line, never the run: eprintln! would panic there.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// stderr for logs, where a failed write is dropped: a log line must never stop the task
/// that logs it (the signal watcher among them).
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Logs go to stderr (stdout is data): warnings by default, -v info, -vv debug.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("sockit={level},{level}")));
    let _ = tracing_subscriber::fmt()
        .with_writer(|| LossyStderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Servers hold a descriptor per client: lift the soft open-file limit to the hard one (as
/// Go programs do), so `listen -k` or `chat` do not stop at 1,024 clients on a default system.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
        }
    }
}

/// The signal that interrupted the run (0: none): the exit status is 128 + it.
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The number of the signal that ended the run, if one did.
pub fn interrupted_by() -> Option<u8> {
    match SIGNAL.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        n => u8::try_from(n).ok(),
    }
}

/// The end of the drain, fired by the signal watcher: process-wide, as signals are.
static CUT: std::sync::OnceLock<CancellationToken> = std::sync::OnceLock::new();

fn cut() -> CancellationToken {
    CUT.get_or_init(CancellationToken::new).clone()
}

/// Runs the command to its end; stdout is flushed before this returns.
pub fn run(cli: Cli) -> Result<()> {
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the runtime", &e))?;
    let (output, stdout_thread) = Output::stdout();
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let cut = CancellationToken::new();
        let drain = match &cli.command {
            Command::Listen(a) => Some(a.limits.drain),
            Command::Relay(a) => Some(a.limits.drain),
            Command::Serve(a) => Some(a.limits.drain),
            Command::Chat(a) => Some(a.limits.drain),
            _ => None,
        };
        tokio::spawn(watch_signals(shutdown.clone(), cut.clone(), drain));
        let _ = CUT.set(cut);
        let quiet = cli.quiet;
        match cli.command {
            Command::Connect(args) => run_connect(args, output, shutdown).await,
            Command::Listen(args) => run_listen(args, output, quiet, shutdown).await,
            Command::Chat(args) => run_chat(args, quiet, shutdown).await,
            Command::Serve(args) => run_serve(args, quiet, shutdown).await,
            Command::Bench(args) => run_bench(args, output, quiet, shutdown).await,
            Command::Relay(args) => run_relay(args, quiet, shutdown).await,
            Command::Completions { shell } => print_generated(&output, completions(shell)).await,
            Command::Man { command, dir } => match dir {
                Some(dir) => write_man_pages(&dir),
                None => print_generated(&output, man_page(command.as_deref())?).await,
            },
        }
    });
    // Client tasks still hold stdout handles; ending the runtime drops them.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match (stdout_thread.finish(), result) {
        // Output that could not be written is lost data: say so, whatever else happened.
        (Some(e), Ok(())) => Err(Error::io("cannot write stdout", &e)),
        (Some(e), Err(r)) if *r.kind() == ErrorKind::StdoutClosed => {
            Err(Error::io("cannot write stdout", &e))
        }
        (_, result) => result,
    }
}

/// The TLS trust a client asked for, as the dial takes it.
fn tls_client_options(args: &TlsClientArgs) -> tls::ClientOptions {
    tls::ClientOptions {
        ca: args.ca.clone(),
        pin: args.pin.clone(),
        insecure: args.insecure,
        cert: args.client_cert.clone(),
        key: args.client_key.clone(),
    }
}

/// `--proxy URL`, parsed (its error never shows the URL's password).
fn proxy(url: Option<&str>) -> Result<Option<sockit::net::proxy::Proxy>> {
    url.map(str::parse).transpose()
}

/// `--proxy-user USER:PASS` (the error never repeats the password).
fn proxy_user(s: &str) -> Result<sockit::net::proxy::Credentials> {
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
fn ws_options(
    framing: ws::Framing,
    args: &cli::WsArgs,
    client: Option<&cli::WsClientArgs>,
) -> Result<ws::Options> {
    ws_options_lingering(framing, args, client, None)
}

/// [`ws_options`] for a command whose end of input is a half-close (connect, listen,
/// relay): a peer without one is read until it closes or is quiet for `idle` (or 2 s).
fn ws_options_lingering(
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
fn limits(args: &cli::Limits) -> Result<Limits> {
    Ok(Limits {
        access: Access::parse(&args.allow, &args.deny)?,
        max_conns: args.max_conns,
        idle_timeout: args.idle_timeout,
        handshake_timeout: args.handshake_timeout,
        drain: args.drain,
        cut: cut(),
    })
}

/// The one admission of a server command: its limits, TLS for its `tls://` and `wss://`
/// endpoints, and the WebSocket options of its `ws://` and `wss://` ones.
fn admission(
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
fn tls_server(
    args: &TlsServerArgs,
    endpoints: &[&Endpoint],
    quiet: bool,
) -> Result<Option<tls::Server>> {
    let hosts: Vec<&Host> = endpoints
        .iter()
        .filter_map(|e| match e {
            Endpoint::Tls(hp) => Some(&hp.host),
            Endpoint::Wss(a) => Some(&a.hp.host),
            _ => None,
        })
        .collect();
    if hosts.is_empty() {
        if args.cert.is_some() || args.client_ca.is_some() {
            tracing::warn!(
                "--cert, --key and --client-ca apply to tls:// and wss:// endpoints only; ignored here"
            );
        }
        return Ok(None);
    }
    // The names a self-signed certificate is made for (an empty host adds none).
    let names: Vec<String> = hosts
        .iter()
        .filter_map(|h| match h {
            Host::Ip(ip) => Some(ip.to_string()),
            Host::Scoped(ip, _) => Some(ip.to_string()),
            Host::Name(n) => Some(n.clone()),
            Host::Any => None,
        })
        .collect();
    let server = tls::Server::new(
        &tls::ServerOptions {
            cert: args.cert.clone(),
            key: args.key.clone(),
            client_ca: args.client_ca.clone(),
        },
        &names,
    )?;
    if !quiet {
        let kind = if server.self_signed {
            "self-signed certificate"
        } else {
            "certificate"
        };
        say(format_args!(
            "tls {kind}, SHA-256 fingerprint {} (clients: --pin {})",
            server.fingerprint, server.fingerprint
        ));
    }
    Ok(Some(server))
}

/// Ctrl-C, SIGTERM and SIGHUP all stop the run the same way: stop accepting, tell chat
/// members, flush, remove Unix socket files (SIGHUP's default would leave the files behind
/// and the members without a word). A server's open connections then get `drain` to finish
/// (`cut` fires at its end); a second signal cuts them at once.
async fn watch_signals(
    shutdown: CancellationToken,
    cut: CancellationToken,
    drain: Option<Duration>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM and SIGHUP");
            return;
        }
    };
    let (mut term, mut hup) = (term, hup);
    let signo = tokio::select! {
        _ = tokio::signal::ctrl_c() => rustix::process::Signal::INT,
        _ = term.recv() => rustix::process::Signal::TERM,
        _ = hup.recv() => rustix::process::Signal::HUP,
    };
    SIGNAL.store(signo.as_raw(), std::sync::atomic::Ordering::Relaxed);
    shutdown.cancel();
    tracing::info!("signal received; shutting down");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("second signal: cutting open connections"),
        _ = term.recv() => tracing::info!("second signal: cutting open connections"),
        _ = hup.recv() => {}
        () = tokio::time::sleep(drain.unwrap_or_default()) => {}
    }
    cut.cancel();
}

/// A completion script for `shell`, from the clap definitions.
fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sockit", &mut out);
    out
}

/// The command tree as the man pages see it: built, so each subcommand is named as its
/// page is (`sockit-connect`).
fn man_tree() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// A man page in roff, from the clap definitions: the overview, or `command`'s own page.
fn man_page(command: Option<&str>) -> Result<Vec<u8>> {
    let tree = man_tree();
    let page = match command {
        None => tree,
        Some(name) => tree.find_subcommand(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::BadArgument,
                format!("no command '{name}'"),
                "sockit man takes connect, listen, chat, serve, bench, relay, completions or man",
            )
        })?,
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| Error::io("cannot render the man page", &e))?;
    Ok(out)
}

/// Every man page (`sockit.1`, `sockit-connect.1`, ...) into `dir`.
fn write_man_pages(dir: &std::path::Path) -> Result<()> {
    clap_mangen::generate_to(man_tree(), dir).map_err(|e| {
        Error::io(
            format!("cannot write the man pages into {}", dir.display()),
            &e,
        )
    })
}

async fn print_generated(output: &Output, text: Vec<u8>) -> Result<()> {
    output
        .write(text.into())
        .await
        .map_err(|_| Error::stdout_closed())
}

/// `--exec`/`--sh-exec`, checked now (a program that cannot run is one error at start);
/// `stdio_options` names the options that make no sense without stdio.
fn exec(
    args: &ExecArgs,
    stdio_options: &[(&str, bool)],
    shutdown: &CancellationToken,
    server: bool,
) -> Result<Option<sockit::exec::Exec>> {
    let program = match (&args.exec, &args.sh_exec) {
        (Some(words), _) => sockit::exec::Program::exec(words)?,
        (None, Some(cmd)) => sockit::exec::Program::shell(cmd)?,
        (None, None) => return Ok(None),
    };
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
    }))
}

async fn run_connect(args: ConnectArgs, output: Output, shutdown: CancellationToken) -> Result<()> {
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
            tls: tls_client_options(&args.tls),
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
        &[
            ("--send", args.send.is_some()),
            ("--progress", args.progress),
        ],
        &shutdown,
        false,
    )?;
    let source = match args.send {
        Some(text) => Source::Once(text.into_bytes().into()),
        None => Source::Lines(Input::stdin()),
    };
    let opts = session::Options {
        idle_timeout: args.idle_timeout,
        crlf: args.crlf,
        binary: args.binary,
        send_only: args.send_only,
        recv_only: args.recv_only,
        dump: args.hex_dump.as_deref().map(Sink::open).transpose()?,
        progress: args.progress,
        exec,
        no_shutdown: args.no_shutdown,
        stop: None,
    };
    connect::run(&dialer, source, output, &opts, shutdown).await
}

async fn run_listen(
    args: ListenArgs,
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
        dump: args.hex_dump.as_deref().map(Sink::open).transpose()?,
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
            listen::run_stream(listener, &admission, Input::stdin(), output, &cfg, shutdown).await
        }
        Bound::Datagram(sock) => {
            listen::run_datagram(sock, &admission, Input::stdin(), output, &cfg, shutdown).await
        }
    }
}

async fn run_serve(args: ServeArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    let bindings = args
        .services
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<services::Binding>>>()?;
    let refid = args.refid.as_bytes();
    if refid.is_empty() || refid.len() > 4 || !args.refid.is_ascii() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("bad --refid '{}'", args.refid),
            "use 1 to 4 ASCII characters, such as LOCL or GPS",
        ));
    }
    let mut id = [0u8; 4];
    id[..refid.len()].copy_from_slice(refid);
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

async fn run_chat(args: ChatArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
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
                tls_client_options(&args.bus_tls),
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

async fn run_bench(
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
    let size = args.size.unwrap_or(match (mode, endpoint.is_stream()) {
        (bench::Mode::Stream, true) => 65_536,
        (bench::Mode::Stream, false) => 1024,
        _ => 64,
    });
    if size == 0 {
        return Err(Error::new(
            ErrorKind::BadArgument,
            "bad --size 0",
            "use at least 1 byte",
        ));
    }
    if matches!(endpoint, Endpoint::Udp(_)) && size > session::MAX_UDP_PAYLOAD {
        // Every mode: a stream of datagrams that cannot be sent is no benchmark.
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("bad --size {size} for {endpoint}"),
            "a UDP datagram holds at most 65,507 bytes; use a smaller --size, or a stream (tcp://)",
        ));
    }
    let target = Dialer::new(
        endpoint,
        &DialOptions {
            connect_timeout: Some(args.timeout),
            handshake_timeout: tls::HANDSHAKE_TIMEOUT,
            tls: tls_client_options(&args.tls),
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

async fn run_relay(args: RelayArgs, quiet: bool, shutdown: CancellationToken) -> Result<()> {
    if args.explain {
        sockit::net::explain::enable();
    }
    let from: Endpoint = args.listen.parse()?;
    let to: Endpoint = args.target.parse()?;
    if from.is_stream() != to.is_stream() {
        return Err(Error::new(
            ErrorKind::BadArgument,
            format!("cannot relay {from} to {to}"),
            "both sides must be streams (tcp, tls, unix, ws, wss) or both datagrams (udp, unixgram)",
        ));
    }
    let target = Dialer::new(
        to,
        &DialOptions {
            connect_timeout: args.connect_timeout,
            handshake_timeout: args.limits.handshake_timeout,
            tls: tls_client_options(&args.client_tls),
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
            let dump = args.hex_dump.as_deref().map(Sink::open).transpose()?;
            relay::run_stream(listener, &admission, target, dump, shutdown).await
        }
        Bound::Datagram(sock) => relay::run_datagram(sock, &admission, target, shutdown).await,
    }
}
