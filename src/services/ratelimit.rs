//! Per-source rate limit for datagram services: UDP chargen, daytime and time are known
//! reflection vectors, so no source gets more than N answers a second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Sources remembered at most; past this, the stalest half is forgotten.
const MAX_SOURCES: usize = 65_536;

/// A token bucket per source address: `rate` answers a second, bursts up to `rate`.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimit {
    /// `rate` answers per second per source; 0 turns the limit off.
    pub fn new(rate: u32) -> Self {
        RateLimit {
            rate: f64::from(rate),
            buckets: HashMap::new(),
        }
    }

    /// Whether `source` may get one more answer now.
    pub fn allow(&mut self, source: Option<IpAddr>) -> bool {
        let Some(ip) = source else { return true };
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            let mut seen: Vec<Instant> = self.buckets.values().map(|(_, t)| *t).collect();
            seen.sort_unstable();
            let cut = seen[seen.len() / 2];
            self.buckets.retain(|_, (_, t)| *t > cut);
        }
        let rate = self.rate;
        let (tokens, last) = self.buckets.entry(ip).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_source_separately() {
        let mut r = RateLimit::new(3);
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        assert_eq!((0..10).filter(|_| r.allow(a)).count(), 3);
        assert!(r.allow(b));
        assert!(RateLimit::new(0).allow(a));
    }
}
