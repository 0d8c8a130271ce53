//! Who may connect (`--allow`/`--deny` CIDR rules) and how many at once (`--max-conns`).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind, Result};
use crate::net::Peer;

/// Allow and deny rules. With no `--allow`, everybody not denied may connect; a deny rule
/// always wins. Unix-domain peers have no IP and are governed by file permissions instead.
#[derive(Debug, Clone, Default)]
pub struct Access {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Access {
    /// Parses rules as given on the command line (`10.0.0.0/8`, `::1`, `192.168.1.7`).
    ///
    /// # Errors
    /// [`ErrorKind::BadArgument`] naming the rule that is not a CIDR or an address.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<Access> {
        Access::parse_flags(allow, deny, ("--allow", "--deny"))
    }

    /// As [`Access::parse`], for rules given under other flags (`--allow-target`).
    ///
    /// # Errors
    /// As [`Access::parse`], naming `flags`.
    pub fn parse_flags(allow: &[String], deny: &[String], flags: (&str, &str)) -> Result<Access> {
        let parse = |flag: &str, rules: &[String]| -> Result<Vec<IpNet>> {
            rules
                .iter()
                .map(|r| {
                    r.parse::<IpNet>()
                        .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            Error::new(
                                ErrorKind::BadArgument,
                                format!("bad {flag} '{r}'"),
                                "expected an address or a CIDR such as 192.168.1.0/24 or ::1/128",
                            )
                        })
                })
                .collect()
        };
        Ok(Access {
            allow: parse(flags.0, allow)?,
            deny: parse(flags.1, deny)?,
        })
    }

    /// Whether no rule was given at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `ip` is denied by a rule.
    pub fn denies(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.deny.iter().any(|n| n.contains(&ip))
    }

    /// Whether `ip` passes the rules: not denied, and allowed when there are allow rules.
    pub fn permits_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !self.denies(ip) && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip)))
    }

    /// Whether there are allow rules (which then replace any default).
    pub fn has_allow(&self) -> bool {
        !self.allow.is_empty()
    }

    /// Whether `peer` may talk to us.
    pub fn permits(&self, peer: &Peer) -> bool {
        let Some(ip) = peer.ip() else {
            return true;
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// `--max-conns`: a permit per live connection; none left means refuse at once.
#[derive(Debug, Clone, Default)]
pub struct ConnLimit(Option<Arc<Semaphore>>);

impl ConnLimit {
    /// At most `max` connections at once; `None` means no limit.
    pub fn new(max: Option<usize>) -> Self {
        ConnLimit(max.map(|n| Arc::new(Semaphore::new(n))))
    }

    /// A permit for one more connection, held for its lifetime; `Err` when the limit is reached.
    #[allow(clippy::result_unit_err)]
    pub fn try_acquire(&self) -> std::result::Result<Option<OwnedSemaphorePermit>, ()> {
        match &self.0 {
            None => Ok(None),
            Some(s) => s.clone().try_acquire_owned().map(Some).map_err(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Peer {
        Peer::Ip(s.parse().unwrap())
    }

    #[test]
    fn deny_wins_and_allow_restricts() {
        let a = Access::parse(&["127.0.0.0/8".into()], &["127.0.0.2".into()]).unwrap();
        assert!(a.permits(&peer("127.0.0.1:5")));
        assert!(!a.permits(&peer("127.0.0.2:5")));
        assert!(!a.permits(&peer("10.0.0.1:5")));
        assert!(a.permits(&Peer::Unix(None)));
        assert!(Access::default().permits(&peer("[::1]:5")));
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_rules() {
        let a = Access::parse(&[], &["127.0.0.1/32".into()]).unwrap();
        assert!(!a.permits(&Peer::from_ip("[::ffff:127.0.0.1]:5".parse().unwrap())));
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Access::parse(&["nonsense".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("bad --allow 'nonsense'"));
    }

    #[test]
    fn limit_counts_permits() {
        let l = ConnLimit::new(Some(1));
        let p = l.try_acquire().unwrap();
        assert!(l.try_acquire().is_err());
        drop(p);
        assert!(l.try_acquire().is_ok());
    }
}
