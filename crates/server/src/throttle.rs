//! Throttling: token buckets per credential, per client address, and for failed
//! authentications per client address.
//!
//! Each bucket is a GCRA (the "generic cell rate algorithm", the token bucket written as one
//! instant per key: its theoretical arrival time). A key whose instant is past holds a full
//! bucket, so it is forgotten: the maps keep only keys that used their bucket recently, and
//! never more than [`MAX_KEYS`] of them (see [`Buckets`]).
//!
//! Addresses are counted per IPv4 address and per IPv6 /64 (what one host is usually given).
//! A leaf: it knows no face; [`crate::app`] and the authentication answer a [`Throttled`] in
//! the face's own format.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys one set of buckets tracks. Past it, keys not yet tracked are not throttled until
/// the stale ones are swept (failing open: a flood from more addresses than this is not a
/// per-address problem, and refusing new addresses would refuse everyone).
pub const MAX_KEYS: usize = 65_536;

/// How often the full buckets are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One kind of bucket: `rate` tokens come back per `per`, up to `burst`. A rate of 0 turns
/// it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub rate: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    /// `rate` per second, bursts of `burst`.
    pub const fn per_second(rate: u32, burst: u32) -> Rate {
        Rate {
            rate,
            per: Duration::from_secs(1),
            burst,
        }
    }

    /// `rate` per minute, bursts of as many.
    pub const fn per_minute(rate: u32) -> Rate {
        Rate {
            rate,
            per: Duration::from_secs(60),
            burst: rate,
        }
    }

    pub const OFF: Rate = Rate::per_second(0, 0);

    fn is_off(&self) -> bool {
        self.rate == 0 || self.burst == 0
    }

    /// Time for one token to come back.
    fn interval(&self) -> Duration {
        self.per / self.rate
    }
}

/// The throttling configuration of `tmirror serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Requests per verified credential (access key).
    pub per_key: Rate,
    /// Requests per client address, before any authentication.
    pub per_address: Rate,
    /// Failed authentications per client address; when they are used up, every request from
    /// the address is refused before its signature is looked at.
    pub auth_failures: Rate,
}

impl Default for ThrottleConfig {
    /// Generous enough for Terraform (10 requests in parallel) and the SDK conformance suites
    /// (one address, one key, bursts of a few hundred requests), strict enough that guessing
    /// keys or flooding costs the server little.
    fn default() -> Self {
        ThrottleConfig {
            per_key: Rate::per_second(1000, 5000),
            per_address: Rate::per_second(2000, 10000),
            auth_failures: Rate::per_minute(100),
        }
    }
}

/// Which bucket refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The credential's.
    Key,
    /// The client address's.
    Address,
    /// The client address's failed authentications.
    AuthFailures,
}

/// A refusal: which bucket, its rate, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub scope: Scope,
    pub rate: Rate,
    pub wait: Duration,
}

impl Throttled {
    /// Whole seconds to wait (`Retry-After`), at least 1.
    pub fn retry_after_secs(&self) -> u32 {
        let ms = self.wait.as_millis();
        u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1)
    }

    /// The period of the rate, as the clouds word it: "1 second", "1 minute".
    pub fn period(&self) -> String {
        match self.rate.per.as_secs() {
            1 => "1 second".to_owned(),
            60 => "1 minute".to_owned(),
            s => format!("{s} seconds"),
        }
    }
}

struct Map<K> {
    /// Key → theoretical arrival time: when the bucket is full again.
    tat: HashMap<K, Instant>,
    last_sweep: Instant,
}

/// Buckets of one [`Rate`] by key, in a map of at most [`MAX_KEYS`] keys.
pub struct Buckets<K> {
    rate: Rate,
    scope: Scope,
    map: Mutex<Map<K>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rate: Rate, scope: Scope) -> Self {
        Buckets {
            rate,
            scope,
            map: Mutex::new(Map {
                tat: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Takes a token for `key`, or says how long until there is one.
    pub fn take(&self, key: &K) -> Result<(), Throttled> {
        self.measure(key, true)
    }

    /// Whether `key` has a token, without taking it.
    pub fn peek(&self, key: &K) -> Result<(), Throttled> {
        self.measure(key, false)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.lock().tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<K>> {
        self.map.lock().expect("throttle map poisoned")
    }

    fn measure(&self, key: &K, take: bool) -> Result<(), Throttled> {
        if self.rate.is_off() {
            return Ok(());
        }
        let now = Instant::now();
        let interval = self.rate.interval();
        // A full bucket holds `burst` tokens: the arrival time may run that far ahead of now.
        let tolerance = interval * self.rate.burst;
        let mut map = self.lock();
        if now.duration_since(map.last_sweep) >= SWEEP_EVERY {
            sweep(&mut map, now);
        }
        let tat = map
            .tat
            .get(key)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        let next = tat + interval;
        let ahead = next - now;
        if ahead > tolerance {
            return Err(Throttled {
                scope: self.scope,
                rate: self.rate,
                wait: ahead - tolerance,
            });
        }
        if take {
            if !map.tat.contains_key(key) && map.tat.len() >= MAX_KEYS {
                sweep(&mut map, now);
                if map.tat.len() >= MAX_KEYS {
                    tracing::warn!(
                        scope = ?self.scope,
                        "throttling tracks {MAX_KEYS} keys: new ones are not throttled until some are idle"
                    );
                    return Ok(());
                }
            }
            map.tat.insert(key.clone(), next);
        }
        Ok(())
    }
}

/// Forgets the keys whose bucket is full again.
fn sweep<K: Hash + Eq>(map: &mut Map<K>, now: Instant) {
    map.tat.retain(|_, tat| *tat > now);
    if map.tat.capacity() > 2 * map.tat.len() + 1024 {
        map.tat.shrink_to_fit();
    }
    map.last_sweep = now;
}

/// The key of a client address: IPv4 addresses (IPv4-mapped ones included) as they are,
/// IPv6 addresses by their /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Every bucket of a server.
pub struct Throttle {
    keys: Buckets<String>,
    addresses: Buckets<IpAddr>,
    failures: Buckets<IpAddr>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            keys: Buckets::new(config.per_key, Scope::Key),
            addresses: Buckets::new(config.per_address, Scope::Address),
            failures: Buckets::new(config.auth_failures, Scope::AuthFailures),
        }
    }

    /// A request from `ip`, before anything else is done with it: refused if the address has
    /// used up its failed authentications (nothing is taken then) or its requests.
    pub fn request(&self, ip: IpAddr) -> Result<(), Throttled> {
        let key = address_key(ip);
        self.failures.peek(&key)?;
        self.addresses.take(&key)
    }

    /// A request signed by `access_key`, once the signature is verified.
    pub fn key(&self, access_key: &str) -> Result<(), Throttled> {
        self.keys.take(&access_key.to_owned())
    }

    /// An authentication from `ip` was refused.
    pub fn auth_failed(&self, ip: IpAddr) {
        // Once the bucket is empty the address is refused before authentication, so there is
        // nothing more to count.
        let _ = self.failures.take(&address_key(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusals_with_the_wait() {
        let b = Buckets::new(Rate::per_second(2, 3), Scope::Key);
        for _ in 0..3 {
            b.take(&"k").unwrap();
        }
        let t = b.take(&"k").unwrap_err();
        assert_eq!(t.scope, Scope::Key);
        assert!(t.wait > Duration::ZERO && t.wait <= Duration::from_millis(500));
        assert_eq!(t.retry_after_secs(), 1);
        // Other keys have their own bucket.
        b.take(&"other").unwrap();
    }

    #[test]
    fn peeking_takes_nothing() {
        let b = Buckets::new(Rate::per_minute(2), Scope::AuthFailures);
        for _ in 0..10 {
            b.peek(&1).unwrap();
        }
        b.take(&1).unwrap();
        b.take(&1).unwrap();
        let t = b.peek(&1).unwrap_err();
        assert!(t.wait > Duration::from_secs(29) && t.wait <= Duration::from_secs(30));
        assert_eq!(t.period(), "1 minute");
    }

    #[test]
    fn off_is_never_throttled() {
        let b = Buckets::new(Rate::OFF, Scope::Address);
        for _ in 0..10_000 {
            b.take(&1).unwrap();
        }
        assert!(b.is_empty());
    }

    #[test]
    fn the_map_is_bounded_and_full_buckets_are_forgotten() {
        // Slow: every bucket stays in the map; keys past the bound are let through untracked.
        let slow = Buckets::new(Rate::per_minute(1), Scope::Address);
        for i in 0..(MAX_KEYS + 10) {
            slow.take(&i).unwrap();
        }
        assert_eq!(slow.len(), MAX_KEYS);
        slow.take(&(MAX_KEYS + 5)).unwrap();
        assert!(slow.take(&0).is_err(), "tracked keys stay throttled");

        // Fast: buckets are full again within microseconds; a new key past the bound sweeps them.
        let fast = Buckets::new(Rate::per_second(1_000_000, 1), Scope::Address);
        for i in 0..100 {
            fast.take(&i).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
        fast.lock().last_sweep -= SWEEP_EVERY;
        fast.take(&usize::MAX).unwrap();
        assert_eq!(fast.len(), 1);
    }

    #[test]
    fn addresses_by_ipv4_and_ipv6_slash_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn failed_authentications_close_the_address_before_its_requests_count() {
        let t = Throttle::new(ThrottleConfig {
            per_key: Rate::OFF,
            per_address: Rate::per_second(1000, 1000),
            auth_failures: Rate::per_minute(2),
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        t.request(ip).unwrap();
        t.auth_failed(ip);
        t.request(ip).unwrap();
        t.auth_failed(ip);
        assert_eq!(t.request(ip).unwrap_err().scope, Scope::AuthFailures);
        t.request("192.0.2.2".parse().unwrap()).unwrap();
    }
}
