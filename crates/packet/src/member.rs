//! Which member of a load-balanced target receives a flow's copies: weighted rendezvous
//! (highest-random-weight) hashing over the healthy members, keyed by the direction-symmetric
//! [`flow_hash`](crate::flow_hash).
//!
//! Every agent must pick the same member for a flow (both directions of a conversation, and
//! copies of it taken at two sources on two hosts, belong on one collector), so the choice is a
//! pure function of the flow hash and the member list the control plane sends; it uses only
//! integer arithmetic and the IEEE-754 basic operations (no platform `ln`), which give the same
//! bits on every machine. Rendezvous hashing moves only the flows of a member that leaves, and
//! a member's share of the flows is proportional to its weight.
//!
//! Members with weight 0 take no flows (Huawei's "0 = no new flows"). When no member with a
//! positive weight is healthy, the choice *fails open*: it hashes over all positive-weight
//! members, as a cloud network load balancer does, and says so in [`Choice::FailOpen`] so the
//! caller can count and report it.

use std::net::IpAddr;

/// One member as the chooser sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member<T> {
    /// The member's identity in the hash: [`member_key`] of its address and port, so that
    /// every agent (and a member removed and added again) hashes alike.
    pub key: u64,
    /// 0–100; 0 takes no flows.
    pub weight: u8,
    /// The control plane's health verdict.
    pub healthy: bool,
    /// The caller's payload (an address, an index into a sender table, ...).
    pub target: T,
}

/// The outcome of a choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice<'a, T> {
    /// A healthy member.
    Healthy(&'a Member<T>),
    /// No positive-weight member is healthy: a member chosen among all positive-weight ones.
    FailOpen(&'a Member<T>),
    /// No member has a positive weight (or there are none): the copy has nowhere to go.
    Nowhere,
}

impl<'a, T> Choice<'a, T> {
    /// The chosen member, if any.
    pub fn member(self) -> Option<&'a Member<T>> {
        match self {
            Choice::Healthy(m) | Choice::FailOpen(m) => Some(m),
            Choice::Nowhere => None,
        }
    }
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's finaliser: a strong, fixed 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(K1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A member's identity for the hash: its address (IPv4 as the IPv4-mapped IPv6 address) and
/// port, mixed to 64 bits.
pub fn member_key(address: IpAddr, port: u16) -> u64 {
    let a = match address {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let h = mix64((a >> 64) as u64);
    let h = mix64(h ^ a as u64);
    mix64(h ^ u64::from(port))
}

/// 1/1, 1/3, …, 1/23: the series' coefficients.
const ODD_RECIPROCALS: [f64; 12] = {
    let mut r = [0.0; 12];
    let mut k = 0;
    while k < 12 {
        r[k] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    r
};

/// The natural logarithm of `x` in (0, 1], from the basic operations only (so it gives the
/// same bits everywhere): `x = m · 2^e` with `m` in [√½, √2), `ln m = 2·atanh((m-1)/(m+1))` by
/// its series, which converges to double precision in 12 terms since `|s| < 0.172`.
fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x <= 1.0);
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1022;
    // The mantissa as a number in [0.5, 1).
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FE0_0000_0000_0000);
    if m < std::f64::consts::FRAC_1_SQRT_2 {
        m *= 2.0;
        e -= 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    // Multiplying by the reciprocals (correctly rounded at compile time) rather than dividing
    // by the odd numbers: a division costs as much as the rest of a term, and a choice scores
    // every member.
    for inv in ODD_RECIPROCALS {
        sum += term * inv;
        term *= s2;
    }
    2.0 * sum + e as f64 * std::f64::consts::LN_2
}

/// The member's score for a flow; the highest wins. `-w / ln(u)` with `u` uniform in (0, 1)
/// from the hash of (flow, member): the weighted rendezvous score, whose winner is member `i`
/// with probability `w_i / Σw`.
fn score(flow: u32, key: u64, weight: u8) -> f64 {
    // 53 random bits, offset by a half so that u is never 0 nor 1.
    let u = (draw(flow, key) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / ln(u)
}

/// The 53 random bits of (flow, member) that `u` is made of.
fn draw(flow: u32, key: u64) -> u64 {
    mix64(key ^ mix64(u64::from(flow))) >> 11
}

/// [`best`] when every member has the same weight: the score only grows with `u`, so the
/// highest draw wins — the same member, for a fraction of the cost (no logarithm), which is
/// what a choice per copy wants in the common case of equal weights.
fn best_equal<'a, T>(
    flow: u32,
    members: impl Iterator<Item = &'a Member<T>>,
) -> Option<&'a Member<T>> {
    let mut winner: Option<(&Member<T>, u64)> = None;
    for m in members {
        let d = draw(flow, m.key);
        let better = match winner {
            None => true,
            Some((w, wd)) => d > wd || (d == wd && m.key < w.key),
        };
        if better {
            winner = Some((m, d));
        }
    }
    winner.map(|(m, _)| m)
}

fn best<'a, T>(flow: u32, members: impl Iterator<Item = &'a Member<T>>) -> Option<&'a Member<T>> {
    let mut winner: Option<(&Member<T>, f64)> = None;
    for m in members {
        let s = score(flow, m.key, m.weight);
        // Ties (same score) go to the smaller key, so the order of the list never matters.
        let better = match winner {
            None => true,
            Some((w, ws)) => s > ws || (s == ws && m.key < w.key),
        };
        if better {
            winner = Some((m, s));
        }
    }
    winner.map(|(m, _)| m)
}

fn best_of<'a, T>(
    flow: u32,
    equal_weights: bool,
    members: impl Iterator<Item = &'a Member<T>>,
) -> Option<&'a Member<T>> {
    if equal_weights {
        best_equal(flow, members)
    } else {
        best(flow, members)
    }
}

/// The member for the flow whose [`flow_hash`](crate::flow_hash) is `flow`.
pub fn choose<T>(flow: u32, members: &[Member<T>]) -> Choice<'_, T> {
    let eligible = || members.iter().filter(|m| m.weight > 0);
    // Equal weights (the common case) take the cheap path; it picks the same member.
    let mut weights = eligible().map(|m| m.weight);
    let first = weights.next();
    let equal = weights.all(|w| Some(w) == first);
    if let Some(m) = best_of(flow, equal, eligible().filter(|m| m.healthy)) {
        return Choice::Healthy(m);
    }
    match best_of(flow, equal, eligible()) {
        Some(m) => Choice::FailOpen(m),
        None => Choice::Nowhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn members(weights: &[u8]) -> Vec<Member<usize>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Member {
                key: member_key(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), 4789),
                weight,
                healthy: true,
                target: i,
            })
            .collect()
    }

    /// Flow hashes spread like real ones.
    fn flows(n: u32) -> impl Iterator<Item = u32> {
        (0..n).map(|i| mix64(u64::from(i)) as u32)
    }

    fn pick(flow: u32, m: &[Member<usize>]) -> usize {
        choose(flow, m).member().unwrap().target
    }

    #[test]
    fn ln_matches_the_library_to_double_precision() {
        for &x in &[
            1.0,
            0.999_999,
            0.75,
            0.5,
            0.1,
            1e-3,
            1e-9,
            1.1e-16,
            f64::MIN_POSITIVE,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 4.0 * f64::EPSILON * std.abs().max(1.0),
                "{x}: {ours} vs {std}"
            );
        }
    }

    #[test]
    fn the_order_of_the_members_does_not_matter() {
        let m = members(&[1, 1, 1, 1]);
        let mut r = m.clone();
        r.reverse();
        for f in flows(2000) {
            assert_eq!(pick(f, &m), pick(f, &r));
        }
    }

    #[test]
    fn a_failed_member_moves_only_its_own_flows() {
        let m = members(&[1, 1, 1]);
        let mut down = m.clone();
        down[1].healthy = false;
        let (mut moved, mut kept) = (0, 0);
        for f in flows(3000) {
            let before = pick(f, &m);
            let after = pick(f, &down);
            if before == 1 {
                assert_ne!(after, 1);
                moved += 1;
            } else {
                assert_eq!(after, before, "flow {f:#x} moved off a healthy member");
                kept += 1;
            }
        }
        assert!(moved > 0 && kept > 0);
    }

    #[test]
    fn a_removed_member_moves_only_its_own_flows_and_a_new_one_takes_only_flows() {
        let three = members(&[1, 1, 1]);
        let two: Vec<_> = three.iter().filter(|m| m.target != 2).cloned().collect();
        for f in flows(3000) {
            let with = pick(f, &three);
            let without = pick(f, &two);
            if with != 2 {
                assert_eq!(with, without);
            }
        }
    }

    #[test]
    fn shares_follow_the_weights() {
        let m = members(&[10, 30, 60]);
        let n = 60_000;
        let mut count = [0u32; 3];
        for f in flows(n) {
            count[pick(f, &m)] += 1;
        }
        // Expected 6000, 18000, 36000; a binomial's standard deviation here is under 120, so
        // 1000 is a margin the fixed inputs never come near by chance.
        for (i, &w) in [10u32, 30, 60].iter().enumerate() {
            let expected = n * w / 100;
            assert!(count[i].abs_diff(expected) < 1000, "{count:?}");
        }
    }

    #[test]
    fn weight_zero_takes_no_flows() {
        let m = members(&[1, 0, 1]);
        assert!(flows(3000).all(|f| pick(f, &m) != 1));
    }

    #[test]
    fn fails_open_over_all_members_when_none_is_healthy() {
        let mut m = members(&[1, 1, 0]);
        for x in &mut m {
            x.healthy = false;
        }
        let mut seen = [0u32; 3];
        for f in flows(1000) {
            match choose(f, &m) {
                Choice::FailOpen(x) => seen[x.target] += 1,
                other => panic!("expected fail-open, got {other:?}"),
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0 && seen[2] == 0, "{seen:?}");
        // Failing open picks what the healthy choice would have picked with all members up.
        let up = members(&[1, 1, 0]);
        for f in flows(1000) {
            assert_eq!(pick(f, &m), pick(f, &up));
        }
    }

    #[test]
    fn equal_weights_pick_what_the_weighted_score_picks() {
        for weight in [1u8, 7, 100] {
            let m = members(&[weight; 7]);
            for f in flows(50_000) {
                let fast = best_equal(f, m.iter()).unwrap().target;
                let scored = best(f, m.iter()).unwrap().target;
                assert_eq!(fast, scored, "flow {f:#x}, weight {weight}");
                assert_eq!(pick(f, &m), fast);
            }
        }
        // A zero weight among equal ones leaves the others equal.
        let mut m = members(&[3, 3, 0, 3]);
        m[0].healthy = false;
        for f in flows(5_000) {
            let p = pick(f, &m);
            assert!(p == 1 || p == 3, "{p}");
            assert_eq!(
                p,
                best(f, m.iter().filter(|x| x.weight > 0 && x.healthy))
                    .unwrap()
                    .target
            );
        }
    }

    #[test]
    fn nowhere_without_a_positive_weight() {
        assert_eq!(choose::<usize>(7, &[]), Choice::Nowhere);
        assert_eq!(choose(7, &members(&[0, 0])), Choice::Nowhere);
    }

    #[test]
    fn both_directions_of_a_flow_pick_the_same_member() {
        use crate::{flow_hash, parse};
        let m = members(&[1, 1, 1, 1, 1]);
        for i in 0..200u16 {
            let a = udp_frame([10, 1, 0, 1], [10, 2, 0, 1], 1000 + i, 53);
            let b = udp_frame([10, 2, 0, 1], [10, 1, 0, 1], 53, 1000 + i);
            let (pa, pb) = (parse(&a).unwrap(), parse(&b).unwrap());
            assert_eq!(pick(flow_hash(&pa), &m), pick(flow_hash(&pb), &m));
        }
    }

    fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }
}
