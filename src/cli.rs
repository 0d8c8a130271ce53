//! The command line: clap derive, where each `///` is the help text. No I/O here.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// sockit: talk to any socket. connect, listen, chat, serve and relay over TCP, UDP,
/// Unix sockets, TLS and WebSocket, IPv4 and IPv6.
#[derive(Debug, Parser)]
#[command(name = "sockit", version, propagate_version = true, after_help = ENDPOINTS)]
pub struct Cli {
    /// More logs on stderr: -v connections and byte counts, -vv details (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only: hides the readiness line and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

const ENDPOINTS: &str = "\
Endpoints:
  tcp://HOST:PORT or HOST:PORT   TCP            udp://HOST:PORT   UDP
  tls://HOST:PORT                TLS over TCP   unix:PATH         Unix stream (unix:@NAME: abstract)
  unixgram:PATH                  Unix datagram
  ws://HOST:PORT/PATH            WebSocket      wss://HOST:PORT/PATH   WebSocket over TLS
  http://HOST:PORT               chat only: a web page at /, its WebSocket at /ws
  IPv6 goes in brackets (tcp://[::1]:8898); an empty host listens everywhere (tcp://:8898);
  port 0 picks a free port.";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to an endpoint: stdin goes to the peer, the peer goes to stdout.
    #[command(after_help = "Examples:
  sockit connect tcp://127.0.0.1:8898                 talk to a TCP server
  sockit connect 127.0.0.1:8898 < file > answer        send a file, keep the whole answer
  printf 'GET / HTTP/1.0\\n\\n' | sockit connect --crlf example.org:80
  echo '%Y-%m-%d' | sockit connect udp://127.0.0.1:9000   one datagram per line
  sockit connect unix:/tmp/app.sock
  sockit connect tls://example.org:443                 TLS, verified against the system's roots
  sockit connect --pin AB:CD:...:EF tls://127.0.0.1:8443   trust one (self-signed) certificate
  sockit connect --ca ca.pem --client-cert me.pem --client-key me.key tls://host:8443   mutual TLS
  sockit connect -z 127.0.0.1:20-25,80                 which ports answer (nc -z)
  sockit connect --explain 127.0.0.1:8898              show the socket calls, in Python
  sockit connect --exec 'cat /etc/hostname' 127.0.0.1:8898   a program talks to the peer
  sockit connect --proxy socks5h://127.0.0.1:1080 example.org:80    through a SOCKS5 proxy
  sockit connect --proxy http://user:pass@proxy:3128 tls://example.org:443   TLS through CONNECT
  sockit connect ws://127.0.0.1:9000/echo              WebSocket: a line is a text message
  sockit connect --header 'Authorization: Bearer T' --ping 30 wss://host/feed")]
    Connect(ConnectArgs),
    /// Wait for clients and talk to them: one conversation, or many with -k.
    #[command(after_help = "Examples:
  sockit listen tcp://127.0.0.1:8898                  one client, then exit
  echo hi | sockit listen tcp://:8898                 answer the first client with 'hi'
  sockit listen -k --show-peer tcp://:8898            many clients, lines tagged with who wrote
  sockit listen -k --broker tcp://:8898 < /dev/null   relay every client to all the others
  sockit listen -k udp://127.0.0.1:8081               answer whoever wrote last (QQ-style)
  sockit listen -k --allow 127.0.0.0/8 --max-conns 100 tcp://:8898
  sockit listen tls://:8443                           TLS; prints the certificate's fingerprint
  sockit listen --cert cert.pem --key key.pem tls://:8443
  sockit listen --cert cert.pem --key key.pem --client-ca ca.pem tls://:8443   mutual TLS
  sockit listen --explain tcp://127.0.0.1:8898        the tutorial's calls, as they happen
  sockit listen -k --exec 'tr a-z A-Z' tcp://:8898     a program per client (inetd, ncat -e)
  sockit listen -k --sh-exec 'echo $TCPREMOTEIP; date' tcp://:8898
  sockit listen -k --exec 'cat' udp://:8898            a program per UDP peer, a line a datagram
  sockit listen -k ws://:8080/feed                     WebSocket clients, a text message a line")]
    Listen(ListenArgs),
    /// Measure an endpoint: throughput, request/response latency, connection rate, fan-out;
    /// every byte that comes back is checked.
    #[command(after_help = "Examples:
  sockit serve echo=tcp://127.0.0.1:7007 &   then:
  sockit bench --mode rr --conns 10 --duration 5 tcp://127.0.0.1:7007
  sockit bench --mode stream --size 65536 tcp://127.0.0.1:7007
  sockit bench --mode stream --sink tcp://127.0.0.1:9009            (a discard server)
  sockit bench --mode rr --rate 1000 --json udp://127.0.0.1:7007   (open loop, for scripts)
  sockit bench --mode connect --conns 4 tcp://127.0.0.1:7007
  sockit bench --mode connect --hold 1000 --duration 10 tcp://127.0.0.1:8898
  sockit bench --mode fanout --conns 100 --count 1000 tcp://127.0.0.1:8898   (a chat room)
  sockit bench --mode rr ws://127.0.0.1:9000/echo     (against serve echo=ws://)")]
    Bench(BenchArgs),
    /// Host one chat room on any number of endpoints; join it with any line client
    /// (sockit connect, nc, ncat, telnet).
    #[command(
        after_help = "Commands in the room: /nick NAME, /who, /msg NICK text, /me action, /help,
/quit [reason]; a line that is just 'bye' leaves too. --idle-timeout applies to datagram
members (default 600 s); stream members stay while connected.

Examples:
  sockit chat                                          tcp://127.0.0.1:8898
  sockit chat tcp://:8898 udp://:8898 unix:/tmp/chat.sock   one room, three ways in
  sockit connect tcp://127.0.0.1:8898                  join (or: nc 127.0.0.1 8898)
  sockit chat --rate 0 --max-members 500 tcp://:8898   no rate limit, at most 500 members
  sockit chat --bus redis://10.0.0.5:6379 --room ops tcp://:8898   one room on several machines
  sockit chat http://:8080 tcp://:8898                 a web page (open http://HOST:8080/) beside nc"
    )]
    Chat(ChatArgs),
    /// Run the classic small services (echo, discard, chargen, daytime, time), SNTP, and
    /// proxies (socks5, http-proxy), on any number of TCP, TLS, WebSocket, UDP and Unix
    /// endpoints in one process.
    #[command(
        after_help = "Services: echo (RFC 862), discard (863), chargen (864), daytime (867; a UDP
datagram holding a strftime format such as '%Y %m %d' gets the date in that format),
time (868: 32-bit seconds since 1900), sntp (RFC 4330, UDP only), socks5 (RFC 1928 proxy:
CONNECT and UDP ASSOCIATE; TCP only), http-proxy (HTTP CONNECT; TCP only), tunnel (a
gateway for `sockit expose` clients; TLS only).

Examples:
  sockit serve echo=tcp://:7007 echo=udp://:7007 daytime=udp://:9000 time=tcp://:3737
  sockit serve daytime=udp://127.0.0.1:9000          the tutorial's time server
  sockit serve time=tcp://:3737 time=udp://:3737     then: rdate -p -o 3737 HOST
  sockit serve sntp=udp://:1123                      then: rdate -n -p -o 1123 HOST
  sockit serve echo=tls://:7443                      then: sockit connect --pin FP tls://HOST:7443
  sockit serve echo=ws://:9000/echo                  WebSocket: each message back as it came
  sockit serve socks5=tcp://127.0.0.1:1080           then: curl -x socks5h://127.0.0.1:1080 URL
  sockit serve --proxy-user alice:s3cret http-proxy=tcp://:3128 --deny-target 10.0.0.0/8
  sockit serve tunnel=tls://:7835 --tunnel-ports 20000-20999 --secret-file secret
                                                     a gateway for `sockit expose`"
    )]
    Serve(ServeArgs),
    /// Make LOCAL reachable at a public port of a tunnel gateway (`serve tunnel=`), from
    /// behind NAT: each visitor of the public port is carried to LOCAL over its own TLS
    /// connection.
    #[command(
        after_help = "The secret comes from --secret-file FILE or the SOCKIT_SECRET variable,
never from the command line (ps shows it). The readiness line, on stderr:
exposed tcp://127.0.0.1:3000 at tcp://GATEWAY:20001

Examples:
  sockit expose tcp://127.0.0.1:3000 --via tls://gw.example:7835 --pin FP --secret-file secret
  sockit expose tcp://127.0.0.1:22 --via tls://gw.example:7835 --pin FP --port 20022
  sockit expose udp://127.0.0.1:53 --via tls://gw.example:7835 --pin FP   a UDP port
  sockit expose --proxy-protocol v2 tcp://127.0.0.1:8080 --via ...   the app sees who came
  sockit expose --client-cert me.pem --client-key me.key --ca ca.pem tcp://127.0.0.1:3000 --via ..."
    )]
    Expose(ExposeArgs),
    /// Forward each client of LISTEN to its own connection to TARGET, both ways, half-close
    /// included (any of tcp, tls, unix, ws, wss to any of them; udp to udp).
    #[command(after_help = "Examples:
  sockit relay tcp://:8080 tcp://127.0.0.1:80              a TCP port forward
  sockit relay unix:/tmp/db.sock tcp://127.0.0.1:5432      a Unix socket in front of TCP
  sockit relay tcp://127.0.0.1:2222 unix:/run/app.sock     a TCP port in front of a Unix socket
  sockit relay udp://:5353 udp://127.0.0.1:53              UDP, one upstream socket per client
  sockit relay --cert c.pem --key k.pem tls://:443 tcp://127.0.0.1:8080   terminate TLS
  sockit relay --ca ca.pem tcp://127.0.0.1:5433 tls://db.internal:5432    originate TLS
  sockit relay --proxy socks5h://127.0.0.1:1080 tcp://127.0.0.1:2222 tcp://host.internal:22
  sockit relay ws://:6080 tcp://127.0.0.1:5900            websockify's job (noVNC to VNC)
  sockit relay tcp://:2222 wss://gw.example/ssh          a TCP service over WebSocket")]
    Relay(RelayArgs),
    /// Print a shell completion script (from the same definitions as --help).
    #[command(after_help = "Examples:
  sockit completions bash > /etc/bash_completion.d/sockit
  sockit completions zsh > \"${fpath[1]}/_sockit\"
  sockit completions fish > ~/.config/fish/completions/sockit.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff), from the same definitions as --help: the overview, or one
    /// command's page with its options and examples.
    #[command(after_help = "Examples:
  sockit man > sockit.1 && man ./sockit.1
  sockit man connect | man -l -                 one command's page
  sockit man --dir /usr/local/share/man/man1    every page: sockit.1, sockit-connect.1, ...")]
    Man {
        /// The command whose page to print (connect, listen, chat, serve, bench, relay, expose,
        /// completions, man); the overview without.
        command: Option<String>,
        /// Write every page into DIR (sockit.1 and sockit-COMMAND.1) instead of printing one.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<std::path::PathBuf>,
    },
}

/// Arguments of `connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Where to connect, e.g. tcp://127.0.0.1:8898, udp://[::1]:9000, unix:/tmp/s.sock.
    pub endpoint: String,
    /// Reach the target through a proxy: socks5://HOST:PORT (names resolved here),
    /// socks5h:// (names resolved by the proxy), socks4://, socks4a://, or http://HOST:PORT
    /// (HTTP CONNECT), each with optional USER:PASS@. TLS runs inside the tunnel.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Send TEXT instead of reading stdin (then half-close, as at the end of stdin).
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// Give up connecting after SECS seconds (each address tried gets that long).
    #[arg(short = 'w', long, value_name = "SECS", value_parser = seconds)]
    pub connect_timeout: Option<Duration>,
    /// End after SECS seconds without traffic (datagrams: default 2 after stdin ends).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: Option<Duration>,
    /// Send LF as CRLF (for line protocols such as HTTP, SMTP, telnet).
    #[arg(long)]
    pub crlf: bool,
    /// Give up a handshake after SECS seconds: the proxy's negotiation (--proxy), TLS, the
    /// WebSocket upgrade.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10")]
    pub handshake_timeout: Duration,
    /// Only send: stdin goes to the peer, what it sends is ignored, and sockit ends at the
    /// end of stdin (after the half-close), as ncat --send-only.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,
    /// Only receive: the peer's bytes go to stdout until it ends; stdin is never read and
    /// nothing is sent (no half-close either), as ncat --recv-only.
    #[arg(long)]
    pub recv_only: bool,
    /// For a remote terminal (a peer running `--pty`): the local terminal goes into raw
    /// mode, so Ctrl-C, Ctrl-Z, Tab and the arrows go to the peer as bytes; Ctrl-] leaves;
    /// the terminal is restored at every exit.
    #[arg(long, conflicts_with_all = ["send", "exec", "sh_exec", "progress"])]
    pub raw: bool,
    #[command(flatten)]
    pub edit: EditArgs,
    /// At the end of stdin keep the connection open (no half-close) and end when the peer
    /// closes or at --idle-timeout: for proxies and servers that end the whole connection
    /// at a half-close and drop their answer (microsocks, ncat's HTTP proxy), as ncat's
    /// --no-shutdown.
    #[arg(long, conflicts_with_all = ["recv_only", "send_only"])]
    pub no_shutdown: bool,
    /// Show bytes each way, the rate, and percent and ETA when stdin is a file, on stderr.
    #[arg(long)]
    pub progress: bool,
    /// Write every chunk both ways to FILE (`-` for stderr) as xxd shows bytes: direction
    /// (`>` sent, `<` received), time, peer, length, offset, then hex and ASCII.
    #[arg(short = 'x', long, value_name = "FILE")]
    pub hex_dump: Option<String>,
    /// Write the session as a packet capture to FILE (pcap, raw IP) that Wireshark and
    /// tshark open: a TCP handshake, segments whose sequence numbers count the bytes, FIN
    /// or RST as it happened, UDP datagrams, the real addresses and ports. For TLS and
    /// WebSocket the capture holds the plaintext between the same ports.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Datagrams: each read of stdin is one datagram as it is, and datagrams are written
    /// raw (no newline added), for protocols that are not text. WebSocket: stdin chunks go
    /// as binary messages (default: a UTF-8 line is a text message); either way a text
    /// message received is written as a line, a binary one as it is.
    #[arg(long)]
    pub binary: bool,
    /// Check which ports answer, sending no data: ENDPOINT is HOST:PORTS or udp://HOST:PORTS,
    /// PORTS as 22, 20-25 or 22,80,8000-8010. Open ports go to stdout, closed ones to
    /// stderr with -v; exit 0 when any is open, 1 when none is.
    #[arg(short = 'z')]
    pub zero_io: bool,
    /// With -z: ports checked at once (default 100).
    #[arg(long, value_name = "N", value_parser = at_least_one, default_value = "100")]
    pub max_conns: usize,
    /// Multicast: send through the interface with this address (IPv4 groups: its IPv4
    /// address, e.g. 127.0.0.1; IPv6 groups: any of its addresses, e.g. ::1).
    #[arg(long, value_name = "ADDR")]
    pub iface: Option<std::net::IpAddr>,
    /// Multicast: hops a datagram may take (default 1: this network only).
    #[arg(long, value_name = "N")]
    pub ttl: Option<u32>,
    /// Allow sending to a broadcast address (SO_BROADCAST).
    #[arg(long)]
    pub broadcast: bool,
    /// Bind to this local address before connecting (netcat's -s).
    #[arg(short = 's', long, value_name = "ADDR")]
    pub source: Option<std::net::IpAddr>,
    /// Bind to this local port before connecting (netcat's -p).
    #[arg(short = 'p', long, value_name = "PORT")]
    pub source_port: Option<u16>,
    /// Use IPv4 addresses only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 addresses only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Print the socket calls as they happen, as the tutorial's Python writes them
    /// (socket(), bind(), listen(), accept(), connect(), recv(), send(), close()), on stderr.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub ws_client: WsClientArgs,
    #[command(flatten)]
    pub tls: TlsClientArgs,
    #[command(flatten)]
    pub alpn: AlpnArgs,
}

/// WebSocket options, the same on every command (`ws://`, `wss://`).
#[derive(Debug, Args)]
pub struct WsArgs {
    /// WebSocket: send a ping every SECS seconds, so an idle connection stays open through
    /// proxies and NATs (pings from the peer are always answered).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub ping: Option<Duration>,
    /// WebSocket: refuse a message bigger than BYTES with close code 1009 (fragments are
    /// reassembled first).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub max_message: u64,
}

/// What a WebSocket client adds to its upgrade request.
#[derive(Debug, Args)]
pub struct WsClientArgs {
    /// WebSocket: an extra header of the upgrade request, 'Name: value' (repeatable), e.g.
    /// 'Authorization: Bearer TOKEN'.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// WebSocket: the Origin header of the upgrade request, for servers that check it.
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
}

/// A program on the connection instead of stdio (`connect` and `listen`).
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run PROGRAM for the connection instead of using stdio: what the peer sends goes to
    /// its stdin, what it writes goes to the peer (over UDP a line is a datagram). ARGS are
    /// split as a shell splits words; no shell runs. It gets PROTO, TCPREMOTEIP,
    /// TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT and SOCKIT_PEER.
    #[arg(long, value_name = "PROGRAM ARGS", conflicts_with = "sh_exec")]
    pub exec: Option<String>,
    /// As --exec, for a shell command run by /bin/sh -c (pipes, redirections, &).
    #[arg(long, value_name = "COMMAND")]
    pub sh_exec: Option<String>,
    /// Run the program on a pseudo-terminal, as the leader of its own session (a shell gets
    /// job control; vi and top work; a Ctrl-C byte from the peer interrupts its foreground
    /// job). Pair with `connect --raw` on the other end. Never on a public port without
    /// --client-ca or --allow: it is a shell for whoever connects.
    #[arg(long)]
    pub pty: bool,
    /// With --pty: the TERM the program sees.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "xterm-256color",
        requires = "pty"
    )]
    pub term: String,
    /// With --pty: the terminal's size, COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", default_value = "80x24", value_parser = pty_size, requires = "pty")]
    pub pty_size: (u16, u16),
}

/// Line editing at a terminal (connect, and listen's one conversation).
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Read the terminal as a plain pipe: no line editing, no history (editing is on only
    /// when stdin and stdout are both terminals).
    #[arg(long, conflicts_with = "history")]
    pub no_edit: bool,
    /// Keep the typed lines' history in FILE across sessions (Up/Down, Ctrl-R); without
    /// it the history lasts for the session.
    #[arg(long, value_name = "FILE")]
    pub history: Option<std::path::PathBuf>,
}

/// Arguments of `listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to listen, e.g. tcp://127.0.0.1:8898, tcp://:8898 (everywhere), udp://:9000.
    pub endpoint: String,
    /// Keep listening: serve clients concurrently and never stop at the end of stdin. Lines
    /// of up to 64 KiB from different clients never mix on stdout; longer ones are passed on
    /// in 64 KiB pieces.
    #[arg(short, long)]
    pub keep_open: bool,
    /// Pass what any client sends to all the other clients (implies -k).
    #[arg(long)]
    pub broker: bool,
    /// Prefix each received line with "[PEER] ", to show who wrote.
    #[arg(long)]
    pub show_peer: bool,
    /// One conversation with a remote terminal: the local terminal goes into raw mode
    /// (Ctrl-C, Ctrl-Z, Tab and the arrows go to the peer as bytes); Ctrl-] leaves; the
    /// terminal is restored at every exit.
    #[arg(long, conflicts_with_all = ["keep_open", "broker", "exec", "sh_exec", "progress"])]
    pub raw: bool,
    #[command(flatten)]
    pub edit: EditArgs,
    /// Show bytes each way, the rate, and percent and ETA when stdin is a file, on stderr.
    #[arg(long)]
    pub progress: bool,
    /// Write every chunk both ways to FILE (`-` for stderr) as xxd shows bytes: direction
    /// (`>` sent, `<` received), time, peer, length, offset, then hex and ASCII.
    #[arg(short = 'x', long, value_name = "FILE")]
    pub hex_dump: Option<String>,
    /// Write the session as a packet capture to FILE (pcap, raw IP) that Wireshark and
    /// tshark open: a TCP handshake, segments whose sequence numbers count the bytes, FIN
    /// or RST as it happened, UDP datagrams, the real addresses and ports. For TLS and
    /// WebSocket the capture holds the plaintext between the same ports.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Print the socket calls as they happen, as the tutorial's Python writes them
    /// (socket(), bind(), listen(), accept(), connect(), recv(), send(), close()), on stderr.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Multicast (udp://GROUP:PORT): join the group on the interface with this address
    /// (IPv4 groups: its IPv4 address; IPv6 groups: any of its addresses, e.g. ::1).
    #[arg(long, value_name = "ADDR")]
    pub iface: Option<std::net::IpAddr>,
    #[command(flatten)]
    pub limits: Limits,
    /// Send LF as CRLF.
    #[arg(long)]
    pub crlf: bool,
    #[command(flatten)]
    pub tls: TlsServerArgs,
    /// WebSocket: binary messages (each read is one) and messages written raw; by default
    /// a text message is a line.
    #[arg(long)]
    pub binary: bool,
    #[command(flatten)]
    pub ws: WsArgs,
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SERVICE=ENDPOINT pairs, e.g. echo=tcp://:7007 daytime=udp://127.0.0.1:9000
    /// socks5=tcp://127.0.0.1:1080; SERVICE is echo, discard, chargen, daytime, time, sntp,
    /// socks5 or http-proxy.
    #[arg(required = true, value_name = "SERVICE=ENDPOINT")]
    pub services: Vec<String>,
    /// daytime answers in UTC rather than local time.
    #[arg(long)]
    pub utc: bool,
    /// Datagram answers per second per source address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub udp_rate: u32,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub tls: TlsServerArgs,
    /// Stratum the sntp service announces (10: an unsynchronised local clock).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=15))]
    pub stratum: u8,
    /// Reference id the sntp service announces (up to 4 ASCII characters).
    #[arg(long, value_name = "ID", default_value = "LOCL")]
    pub refid: String,
    /// socks5, http-proxy: accept only this user (repeatable); without it, no
    /// authentication is asked.
    #[arg(long, value_name = "USER:PASS")]
    pub proxy_user: Vec<String>,
    /// socks5, http-proxy: clients may go only to targets in CIDR (repeatable). Without
    /// it: everywhere but this machine's own addresses, unless the proxy listens on loopback.
    #[arg(long, value_name = "CIDR")]
    pub allow_target: Vec<String>,
    /// socks5, http-proxy: never to targets in CIDR (repeatable; wins over --allow-target),
    /// checked on the resolved address, so a name cannot smuggle one through.
    #[arg(long, value_name = "CIDR")]
    pub deny_target: Vec<String>,
    /// tunnel: the public ports clients may have, FIRST-LAST.
    #[arg(long, value_name = "A-B", value_parser = port_range, default_value = "1024-65535")]
    pub tunnel_ports: (u16, u16),
    /// tunnel: the address public ports are bound to (default: every interface); also the
    /// host clients are told their port is at.
    #[arg(long, value_name = "ADDR")]
    pub tunnel_host: Option<std::net::IpAddr>,
    /// tunnel: the secret clients must prove, read from FILE (one trailing newline is not
    /// part of it); else the SOCKIT_SECRET variable. Never given on the command line.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub ws: WsArgs,
}

/// Arguments of `expose`.
#[derive(Debug, Args)]
pub struct ExposeArgs {
    /// What visitors reach: tcp://127.0.0.1:3000, unix:/run/app.sock, tls://, ws://, or
    /// udp://HOST:PORT for a UDP port.
    pub local: String,
    /// The gateway's tunnel endpoint, tls://HOST:PORT.
    #[arg(long, value_name = "ENDPOINT")]
    pub via: String,
    /// The public port to ask for (default: any free one of the gateway's range; a restart
    /// of the same command asks for the one it had).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
    /// The gateway's secret, read from FILE; else the SOCKIT_SECRET variable.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    /// Start each connection to LOCAL with a PROXY protocol header (v1 or v2) carrying the
    /// visitor's address, so the local service sees who connected.
    #[arg(long, value_name = "v1|v2")]
    pub proxy_protocol: Option<sockit::net::proxy_header::Version>,
    /// Give up connecting (to the gateway, to LOCAL) after SECS seconds.
    #[arg(short = 'w', long, value_name = "SECS", value_parser = seconds)]
    pub connect_timeout: Option<Duration>,
    /// Registering with the gateway (TLS, the challenge) must finish within SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10")]
    pub handshake_timeout: Duration,
    /// A UDP visitor quiet this long is forgotten (default 60).
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "60")]
    pub idle_timeout: Duration,
    /// At SIGTERM or Ctrl-C the public port closes at once; open visitors get up to SECS
    /// seconds to finish; a second Ctrl-C cuts them.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10")]
    pub drain: Duration,
    #[command(flatten)]
    pub tls: TlsClientArgs,
    #[command(flatten)]
    pub alpn: AlpnArgs,
}

/// TLS for a server on a `tls://` endpoint.
#[derive(Debug, Args)]
pub struct TlsServerArgs {
    /// tls:// servers: certificate chain (PEM). Without --cert/--key a self-signed
    /// certificate is made at start and its SHA-256 fingerprint printed.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// tls:// servers: private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// tls:// servers: admit only clients presenting a certificate issued by this CA
    /// (PEM): mutual TLS.
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub alpn: AlpnArgs,
}

/// The application protocols (ALPN) of TLS and QUIC, on both sides.
#[derive(Debug, Args, Clone, Default)]
pub struct AlpnArgs {
    /// tls://, wss://, quic://: an application protocol (ALPN) a client offers (in order of
    /// preference) or a server accepts; repeat for more. QUIC uses `sockit` when none is
    /// given, TLS none.
    #[arg(long = "alpn", value_name = "PROTO")]
    pub alpn: Vec<String>,
}

/// How a client trusts a `tls://` server.
#[derive(Debug, Args)]
pub struct TlsClientArgs {
    /// tls://: trust certificates issued by this CA (PEM) instead of the system's roots.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pin", "insecure"])]
    pub ca: Option<std::path::PathBuf>,
    /// tls://: trust exactly the certificate with this SHA-256 fingerprint (as a sockit
    /// server prints it), self-signed or not.
    #[arg(long, value_name = "SHA256", conflicts_with = "insecure")]
    pub pin: Option<String>,
    /// tls://: do not verify the server's certificate at all (says so on stderr).
    #[arg(long)]
    pub insecure: bool,
    /// tls://: present this certificate chain (PEM) to the server: mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<std::path::PathBuf>,
    /// tls://: private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<std::path::PathBuf>,
    /// tls://, wss://, quic://: the server name to send (SNI) and verify the certificate
    /// against, for when the endpoint's host is an address.
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
}

/// Arguments of `chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Where members join: tcp, tls, udp, unix, unixgram, ws, wss endpoints, and http for
    /// the room's web page (default tcp://127.0.0.1:8898).
    #[arg(value_name = "ENDPOINT")]
    pub endpoints: Vec<String>,
    /// Longest line in bytes; longer ones are refused with '! ' and the member stays.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub max_line: u64,
    /// Lines per second per member after a burst of twice as many (0: no limit). A stream
    /// member past it is slowed down (reads paused); a datagram member is told '! too fast'.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub rate: u32,
    /// At most N members in the room (1 or more; leave it out for no limit); more are told
    /// the room is full.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_members: Option<usize>,
    /// Let datagram (udp, unixgram) addresses join without proving they receive what is
    /// sent to them (by sending back `/join CODE`). Trusted networks only: UDP sources can
    /// be forged.
    #[arg(long)]
    pub udp_open: bool,
    /// One room across machines: every chat with the same bus and --room is one room,
    /// through Redis pub/sub (redis://[USER:PASS@]HOST:PORT[/DB]).
    #[arg(long, value_name = "URL")]
    pub bus: Option<String>,
    /// The room's name on the bus.
    #[arg(long, value_name = "NAME", default_value = "lobby", requires = "bus")]
    pub room: String,
    /// How a rediss:// bus is trusted (as connect trusts a tls:// server).
    #[command(flatten)]
    pub bus_tls: TlsClientArgs,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub tls: TlsServerArgs,
    #[command(flatten)]
    pub ws: WsArgs,
}

/// Access and limits, the same on every server command.
#[derive(Debug, Args)]
pub struct Limits {
    /// Accept only peers in CIDR (repeatable), e.g. 127.0.0.0/8 or ::1.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Refuse peers in CIDR (repeatable); wins over --allow.
    #[arg(long, value_name = "CIDR")]
    pub deny: Vec<String>,
    /// Every stream connection must start with a PROXY protocol header (v1 or v2, as
    /// HAProxy sends it): its client address is the peer everywhere (logs, --show-peer,
    /// --allow/--deny, the program's TCPREMOTEIP, chat). A connection without one is closed.
    #[arg(long)]
    pub accept_proxy: bool,
    /// With --accept-proxy: take headers only from proxies in CIDR (repeatable; default
    /// loopback), so a client cannot claim another address.
    #[arg(long, value_name = "CIDR", requires = "accept_proxy")]
    pub proxy_from: Vec<String>,
    /// At most N clients at once (1 or more; leave it out for no limit); more are closed at
    /// once and logged.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_conns: Option<usize>,
    /// Close a client after SECS seconds without traffic. Defaults: none for stream clients;
    /// 600 for chat's datagram members, 60 for relay's UDP clients and listen -k --exec's UDP
    /// peers, 10 for a --broker
    /// receiver that takes nothing.
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: Option<Duration>,
    /// A client must finish its handshake (TLS, the WebSocket upgrade, a SOCKS or HTTP
    /// CONNECT request) within SECS seconds, or it is closed; HTTP headers are limited to
    /// 16 KiB.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10")]
    pub handshake_timeout: Duration,
    /// At SIGTERM or Ctrl-C, stop accepting at once and give open connections (relay
    /// pairs, clients, --exec programs, proxy tunnels) up to SECS seconds to finish; a second
    /// Ctrl-C cuts them at once.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "10")]
    pub drain: Duration,
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The target, e.g. tcp://127.0.0.1:7007 or udp://127.0.0.1:7007.
    pub endpoint: String,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = BenchMode::Rr)]
    pub mode: BenchMode,
    /// Concurrent connections (fanout: receivers), 1 or more.
    #[arg(short = 'c', long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    pub conns: usize,
    /// Run for SECS seconds at most, connecting included (rr and stream connections not
    /// open by then do not run).
    #[arg(short = 'd', long, value_name = "SECS", value_parser = seconds, default_value = "5")]
    pub duration: Duration,
    /// Stop after N operations in all (fanout: lines; default 1000 there).
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Bytes per request or write (default: rr 64, stream 65536, datagram stream 1024).
    #[arg(short = 's', long, value_name = "BYTES")]
    pub size: Option<usize>,
    /// Open loop: N requests (fanout: lines) per second in all, so stalls show in latency.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// stream: write only and check nothing (for discard servers and sinks).
    #[arg(long)]
    pub sink: bool,
    /// connect: open N connections and hold them until the end.
    #[arg(long, value_name = "N")]
    pub hold: Option<usize>,
    /// Seconds one answer may take before it counts as lost.
    #[arg(long, value_name = "SECS", value_parser = seconds, default_value = "2")]
    pub timeout: Duration,
    /// Print one JSON object with every figure instead of the table.
    #[arg(long)]
    pub json: bool,
    /// fanout: the sender joins at ENDPOINT instead (another node of a room on a bus), the
    /// receivers at the target.
    #[arg(long, value_name = "ENDPOINT")]
    pub send_to: Option<String>,
    /// fanout: spread the receivers over the target and ENDPOINT (repeatable), in turn: the
    /// nodes of one room on a bus.
    #[arg(long, value_name = "ENDPOINT")]
    pub receivers_also: Vec<String>,
    /// Reach the target through a proxy: socks5://HOST:PORT (names resolved here),
    /// socks5h:// (names resolved by the proxy), socks4://, socks4a://, or http://HOST:PORT
    /// (HTTP CONNECT), each with optional USER:PASS@. TLS runs inside the tunnel.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    #[command(flatten)]
    pub tls: TlsClientArgs,
    #[command(flatten)]
    pub alpn: AlpnArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub ws_client: WsClientArgs,
}

/// `bench --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// Throughput, verified (or written only, with --sink).
    Stream,
    /// Request/response: ops/s and latency percentiles.
    Rr,
    /// Connections per second, or --hold N open.
    Connect,
    /// One sender, N receivers of numbered lines (chat rooms).
    Fanout,
}

/// Arguments of `relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Where clients arrive, e.g. tcp://:8080, unix:/tmp/front.sock, udp://:5353.
    pub listen: String,
    /// Where each client is forwarded to, e.g. tcp://127.0.0.1:80.
    pub target: String,
    /// Start each connection to TARGET with a PROXY protocol header (v1 text or v2 binary,
    /// as HAProxy reads it) carrying the client's address and the address it reached, so
    /// the server behind sees who connected.
    #[arg(long, value_name = "v1|v2")]
    pub send_proxy: Option<sockit::net::proxy_header::Version>,
    #[command(flatten)]
    pub limits: Limits,
    /// Write every chunk both ways to FILE (`-` for stderr) as xxd shows bytes: direction
    /// (`>` client to target, `<` back), time, peer, length, offset, then hex and ASCII.
    #[arg(short = 'x', long, value_name = "FILE")]
    pub hex_dump: Option<String>,
    /// Write the session as a packet capture to FILE (pcap, raw IP) that Wireshark and
    /// tshark open: a TCP handshake, segments whose sequence numbers count the bytes, FIN
    /// or RST as it happened, UDP datagrams, the real addresses and ports. For TLS and
    /// WebSocket the capture holds the plaintext between the same ports.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Print the socket calls as they happen, as the tutorial's Python writes them
    /// (socket(), bind(), listen(), accept(), connect(), recv(), send(), close()), on stderr.
    #[arg(long)]
    pub explain: bool,
    /// Reach TARGET through a proxy: socks5://HOST:PORT (names resolved here),
    /// socks5h:// (names resolved by the proxy), socks4://, socks4a://, or http://HOST:PORT
    /// (HTTP CONNECT), each with optional USER:PASS@. TLS runs inside the tunnel.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Give up connecting to the target after SECS seconds.
    #[arg(short = 'w', long, value_name = "SECS", value_parser = seconds)]
    pub connect_timeout: Option<Duration>,
    #[command(flatten)]
    pub server_tls: TlsServerArgs,
    #[command(flatten)]
    pub client_tls: TlsClientArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub ws_client: WsClientArgs,
}

/// A count that 0 would make meaningless (a limit of 0 refuses everybody).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("use 1 or more (0 would refuse everybody, or run nothing)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// `FIRST-LAST`, such as `20000-20999` (one port alone is a range of one).
fn port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{s}' is not a port range; give it as 20000-20999");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// `COLSxROWS`, such as `80x24`.
fn pty_size(s: &str) -> Result<(u16, u16), String> {
    let bad =
        || format!("'{s}' is not COLSxROWS; give it as 80x24 (columns, then rows, each 1 to 1000)");
    let (cols, rows) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let size = |n: &str| {
        n.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
    };
    match (size(cols), size(rows)) {
        (Some(c), Some(r)) => Ok((c, r)),
        _ => Err(bad()),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=1e9).contains(&v) {
        return Err(format!("'{s}' is not a sensible number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(seconds("-1").is_err());
        assert!(seconds("x").is_err());
    }
}
