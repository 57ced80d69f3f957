//! The two rule evaluators behind a [`MirrorPlan`](crate::MirrorPlan).
//!
//! Both see all sessions' rules of one direction as one list ordered by (session priority,
//! rule priority) and answer "the first session whose first matching rule is an accept".
//!
//! * Linear: scan the list (one per IP version, IPv4 rules holding `u32` masks); on a
//!   session's first match, stop (accept) or jump to the next session (reject).
//! * Bit sets: for each field (source address, destination address, source port, destination
//!   port, protocol) the rules' ranges cut the field's value space into elementary intervals;
//!   each interval stores the set of rules whose range covers it. A packet costs one binary
//!   search per field plus an AND of the found sets, then a find-first-set within each
//!   session's bit range. The cost grows with log(distinct boundaries) and rules/64 words,
//!   not with the number of rules.

use tmirror_model::Direction;

use crate::filter::{CompiledFilter, CompiledRule};
use crate::parse::{IpVersion, Packet};
use crate::plan::Evaluation;

/// The evaluator of each direction, chosen per direction.
#[derive(Clone, Debug)]
pub(crate) struct Classifier {
    ingress: DirClassifier,
    egress: DirClassifier,
}

#[derive(Clone, Debug)]
enum DirClassifier {
    Linear(LinearDir),
    Bitset(Box<BitDir>),
}

/// `Auto`'s cost model, in units of 0.05 ns of CPU per packet, fitted to the measurements in
/// docs/packet-engine.md: a linear scan pays about 0.35 ns for a rule the packet's addresses
/// reject at once and 1.4 ns for a rule it must test in full — at worst every rule sharing the
/// most common (addresses, protocol) key; the bit sets pay about 12 ns more than a scan's fixed
/// cost plus 0.1 ns per rule (more boundaries to search, more words).
fn prefers_bitsets(filters: &[&CompiledFilter], d: Direction) -> bool {
    [IpVersion::V4, IpVersion::V6].into_iter().any(|v| {
        let mut keys: Vec<(u128, u128, u128, u128, Option<u8>)> = filters
            .iter()
            .flat_map(|f| f.rules(d))
            .filter(|r| r.live && r.version == v)
            .map(|r| (r.src_net, r.src_mask, r.dst_net, r.dst_mask, r.protocol))
            .collect();
        let n = keys.len();
        keys.sort_unstable();
        let shared = keys
            .chunk_by(|a, b| a == b)
            .map(<[_]>::len)
            .max()
            .unwrap_or(0);
        let linear = 7 * (n - shared) + 28 * shared;
        let bitset = 240 + 2 * n;
        linear > bitset
    })
}

impl DirClassifier {
    fn new(filters: &[&CompiledFilter], d: Direction, evaluation: Evaluation) -> Self {
        let bitset = match evaluation {
            Evaluation::Linear => false,
            Evaluation::Bitset => true,
            Evaluation::Auto => prefers_bitsets(filters, d),
        };
        if bitset {
            DirClassifier::Bitset(Box::new(BitDir::new(filters, d)))
        } else {
            DirClassifier::Linear(LinearDir::new(filters, d))
        }
    }

    #[inline]
    fn decide(&self, p: &Packet) -> Option<usize> {
        match self {
            DirClassifier::Linear(l) => l.decide(p),
            DirClassifier::Bitset(b) => b.decide(p),
        }
    }
}

impl Classifier {
    pub(crate) fn new(filters: &[&CompiledFilter], evaluation: Evaluation) -> Self {
        Classifier {
            ingress: DirClassifier::new(filters, Direction::Ingress, evaluation),
            egress: DirClassifier::new(filters, Direction::Egress, evaluation),
        }
    }

    pub(crate) fn is_bitset(&self, d: Direction) -> bool {
        let c = match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        matches!(c, DirClassifier::Bitset(_))
    }

    #[inline]
    pub(crate) fn decide(&self, p: &Packet, d: Direction) -> Option<usize> {
        match d {
            Direction::Ingress => self.ingress.decide(p),
            Direction::Egress => self.egress.decide(p),
        }
    }
}

/// One rule lowered for the linear scan of one IP version: addresses in the version's width,
/// tests short-circuited, most selective (source address) first. (A branch-free version was
/// measured: about twice as slow, since most rules fail on the first comparison.)
#[derive(Clone, Copy, Debug)]
struct LinRule<K> {
    src_net: K,
    src_mask: K,
    dst_net: K,
    dst_mask: K,
    sport: (u16, u16),
    dport: (u16, u16),
    protocol: u8,
    any_protocol: bool,
    ports: bool,
    accept: bool,
}

impl<K: Key> LinRule<K> {
    #[inline(always)]
    fn matches(&self, src: K, dst: K, protocol: u8, sp: u16, dp: u16, has_ports: bool) -> bool {
        (src & self.src_mask) == self.src_net
            && (dst & self.dst_mask) == self.dst_net
            && (self.any_protocol || self.protocol == protocol)
            && (!self.ports
                || (has_ports
                    && sp >= self.sport.0
                    && sp <= self.sport.1
                    && dp >= self.dport.0
                    && dp <= self.dport.1))
    }
}

/// Linear scan of one IP version: all sessions' rules of that version, flattened in order;
/// `ends[s]` is one past session `s`'s last rule.
#[derive(Clone, Debug)]
struct LinVersion<K> {
    rules: Vec<LinRule<K>>,
    ends: Vec<usize>,
}

impl<K: Key> LinVersion<K> {
    fn new(
        filters: &[&CompiledFilter],
        d: Direction,
        version: IpVersion,
        key: impl Fn(u128) -> K,
    ) -> Self {
        let mut rules = Vec::new();
        let mut ends = Vec::with_capacity(filters.len());
        for f in filters {
            rules.extend(
                f.rules(d)
                    .iter()
                    .filter(|r| r.live && r.version == version)
                    .map(|r| LinRule {
                        src_net: key(r.src_net),
                        src_mask: key(r.src_mask),
                        dst_net: key(r.dst_net),
                        dst_mask: key(r.dst_mask),
                        sport: r.sport,
                        dport: r.dport,
                        protocol: r.protocol.unwrap_or(0),
                        any_protocol: r.protocol.is_none(),
                        ports: r.ports,
                        accept: r.accept,
                    }),
            );
            ends.push(rules.len());
        }
        LinVersion { rules, ends }
    }

    #[inline]
    fn decide(&self, p: &Packet, src: K, dst: K) -> Option<usize> {
        let (sp, dp) = p.ports.unwrap_or((0, 0));
        let has_ports = p.ports.is_some();
        let mut start = 0;
        for (s, &end) in self.ends.iter().enumerate() {
            let rules = &self.rules[start..end];
            if let Some(r) = rules
                .iter()
                .find(|r| r.matches(src, dst, p.protocol, sp, dp, has_ports))
            {
                if r.accept {
                    return Some(s);
                }
            }
            start = end;
        }
        None
    }
}

/// The linear evaluator of one direction.
#[derive(Clone, Debug)]
pub(crate) struct LinearDir {
    v4: LinVersion<u32>,
    v6: LinVersion<u128>,
}

impl LinearDir {
    fn new(filters: &[&CompiledFilter], d: Direction) -> Self {
        LinearDir {
            v4: LinVersion::new(filters, d, IpVersion::V4, |a| a as u32),
            v6: LinVersion::new(filters, d, IpVersion::V6, |a| a),
        }
    }

    #[inline]
    fn decide(&self, p: &Packet) -> Option<usize> {
        match p.version {
            IpVersion::V4 => self.v4.decide(p, p.src as u32, p.dst as u32),
            IpVersion::V6 => self.v6.decide(p, p.src, p.dst),
        }
    }
}

trait Key: Copy + Ord + Default + std::ops::BitAnd<Output = Self> {
    fn succ(self) -> Option<Self>;
}
impl Key for u16 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl Key for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}
impl Key for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Elementary intervals of one field: `points[j]..points[j+1]` maps to the rule set
/// `sets[j*words..(j+1)*words]`. `points[0]` is 0, so every value falls in one interval.
#[derive(Clone, Debug)]
struct Intervals<K> {
    points: Vec<K>,
    sets: Vec<u64>,
    words: usize,
}

impl<K: Key> Intervals<K> {
    fn new(ranges: &[(K, K)], words: usize) -> Self {
        let mut points = vec![K::default()];
        for &(lo, hi) in ranges {
            points.push(lo);
            if let Some(n) = hi.succ() {
                points.push(n);
            }
        }
        points.sort_unstable();
        points.dedup();
        let mut sets = vec![0u64; points.len() * words];
        for (j, &pt) in points.iter().enumerate() {
            for (i, &(lo, hi)) in ranges.iter().enumerate() {
                if lo <= pt && pt <= hi {
                    sets[j * words + i / 64] |= 1 << (i % 64);
                }
            }
        }
        Intervals {
            points,
            sets,
            words,
        }
    }

    #[inline(always)]
    fn find(&self, x: K) -> &[u64] {
        // points[0] == 0 <= x, so the partition point is at least 1.
        let j = self.points.partition_point(|&p| p <= x) - 1;
        &self.sets[j * self.words..(j + 1) * self.words]
    }
}

/// Bit-set classifier of one IP version and direction.
#[derive(Clone, Debug)]
struct BitVersion<K> {
    words: usize,
    /// Session `s` owns bits `bounds[s]..bounds[s + 1]`.
    bounds: Vec<usize>,
    accept: Vec<u64>,
    src: Intervals<K>,
    dst: Intervals<K>,
    sport: Intervals<u16>,
    dport: Intervals<u16>,
    /// Rules that do not constrain ports (what a packet without ports can match).
    portless: Vec<u64>,
    /// `256 * words`: rules matching each protocol number.
    proto: Vec<u64>,
}

impl<K: Key> BitVersion<K> {
    fn new(
        filters: &[&CompiledFilter],
        d: Direction,
        version: IpVersion,
        key: impl Fn(u128) -> K,
    ) -> Self {
        let mut bounds = vec![0];
        let mut rules: Vec<&CompiledRule> = Vec::new();
        for f in filters {
            rules.extend(f.rules(d).iter().filter(|r| r.live && r.version == version));
            bounds.push(rules.len());
        }
        let words = rules.len().div_ceil(64).max(1);
        let max = match version {
            IpVersion::V4 => u128::from(u32::MAX),
            IpVersion::V6 => u128::MAX,
        };
        let cidr = |net: u128, mask: u128| (key(net), key(net | (!mask & max)));
        let src: Vec<(K, K)> = rules.iter().map(|r| cidr(r.src_net, r.src_mask)).collect();
        let dst: Vec<(K, K)> = rules.iter().map(|r| cidr(r.dst_net, r.dst_mask)).collect();
        let sport: Vec<(u16, u16)> = rules.iter().map(|r| r.sport).collect();
        let dport: Vec<(u16, u16)> = rules.iter().map(|r| r.dport).collect();
        let mut accept = vec![0u64; words];
        let mut portless = vec![0u64; words];
        let mut proto = vec![0u64; 256 * words];
        for (i, r) in rules.iter().enumerate() {
            let bit = 1u64 << (i % 64);
            if r.accept {
                accept[i / 64] |= bit;
            }
            if !r.ports {
                portless[i / 64] |= bit;
            }
            for n in 0..256usize {
                if r.protocol.is_none_or(|p| usize::from(p) == n) {
                    proto[n * words + i / 64] |= bit;
                }
            }
        }
        BitVersion {
            words,
            bounds,
            accept,
            src: Intervals::new(&src, words),
            dst: Intervals::new(&dst, words),
            sport: Intervals::new(&sport, words),
            dport: Intervals::new(&dport, words),
            portless,
            proto,
        }
    }

    #[inline]
    fn decide(&self, p: &Packet, src: K, dst: K) -> Option<usize> {
        let w = self.words;
        let s = self.src.find(src);
        let d = self.dst.find(dst);
        let pr = &self.proto[usize::from(p.protocol) * w..][..w];
        let (sp, dp) = match p.ports {
            Some((a, b)) => (self.sport.find(a), self.dport.find(b)),
            None => (&self.portless[..], &self.portless[..]),
        };
        if w == 1 {
            // up to 64 rules: one word, one mask per session
            let m = s[0] & d[0] & pr[0] & sp[0] & dp[0];
            if m == 0 {
                return None;
            }
            for (sess, b) in self.bounds.windows(2).enumerate() {
                let (lo, hi) = (b[0], b[1]);
                let width = hi - lo;
                if width == 0 {
                    continue;
                }
                // 0 <= lo < 64 and 1 <= width <= 64 - lo
                let range = (u64::MAX >> (64 - width)) << lo;
                let hit = m & range;
                if hit != 0 && (self.accept[0] >> hit.trailing_zeros()) & 1 != 0 {
                    return Some(sess);
                }
            }
            return None;
        }
        let word = |i: usize| s[i] & d[i] & pr[i] & sp[i] & dp[i];
        for (sess, b) in self.bounds.windows(2).enumerate() {
            let (lo, hi) = (b[0], b[1]);
            if lo == hi {
                continue;
            }
            let mut i = lo / 64;
            while i * 64 < hi {
                let mut m = word(i);
                if i == lo / 64 {
                    m &= u64::MAX << (lo % 64);
                }
                let top = hi - i * 64;
                if top < 64 {
                    m &= (1u64 << top) - 1;
                }
                if m != 0 {
                    let bit = m.trailing_zeros() as usize;
                    if self.accept[i] & (1 << bit) != 0 {
                        return Some(sess);
                    }
                    break;
                }
                i += 1;
            }
        }
        None
    }
}

#[derive(Clone, Debug)]
pub(crate) struct BitDir {
    v4: BitVersion<u32>,
    v6: BitVersion<u128>,
}

impl BitDir {
    fn new(filters: &[&CompiledFilter], d: Direction) -> Self {
        BitDir {
            v4: BitVersion::new(filters, d, IpVersion::V4, |a| a as u32),
            v6: BitVersion::new(filters, d, IpVersion::V6, |a| a),
        }
    }

    #[inline]
    fn decide(&self, p: &Packet) -> Option<usize> {
        match p.version {
            IpVersion::V4 => self.v4.decide(p, p.src as u32, p.dst as u32),
            IpVersion::V6 => self.v6.decide(p, p.src, p.dst),
        }
    }
}
