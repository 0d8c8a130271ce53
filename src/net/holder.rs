//! Who holds a port: read from `/proc/net/*` (socket inode) and `/proc/PID/fd` (owner), so
//! "address already in use" can name the process to stop.

use std::fs;

/// `name (pid N)` of the process bound to `port` over `proto` ("tcp" or "udp"), if `/proc`
/// shows it to us. Best effort: any failure just means no name.
pub(crate) fn find(proto: &str, port: u16) -> Option<String> {
    let inodes: Vec<String> = [proto.to_string(), format!("{proto}6")]
        .iter()
        .filter_map(|f| fs::read_to_string(format!("/proc/net/{f}")).ok())
        .flat_map(|table| socket_inodes(&table, port, proto == "tcp"))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            if targets.iter().any(|t| link.as_os_str() == t.as_str()) {
                let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(format!("{} (pid {pid})", name.trim()));
            }
        }
    }
    None
}

/// Inodes of sockets bound to `port` in one `/proc/net` table; for TCP only listeners.
fn socket_inodes(table: &str, port: u16, listening_only: bool) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && (!listening_only || *state == "0A") && *inode != "0")
                .then(|| inode.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listening_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:22C2 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n   1: 0100007F:22C2 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        assert_eq!(socket_inodes(table, 8898, true), vec!["4242"]);
        assert_eq!(socket_inodes(table, 8898, false).len(), 2);
        assert!(socket_inodes(table, 80, true).is_empty());
    }

    #[test]
    fn names_our_own_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let who = find("tcp", port).expect("our own listener is visible in /proc");
        assert!(
            who.contains(&format!("pid {}", std::process::id())),
            "{who}"
        );
    }
}
