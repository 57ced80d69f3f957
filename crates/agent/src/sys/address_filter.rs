//! The in-kernel selection of one address's packets, for `eip` sessions (`docs/eips.md`): a
//! gateway's external interface carries the traffic of every public address on it, and only
//! that of the mirrored EIP may reach user space. A classic BPF socket filter, built from the
//! address alone, keeps untagged Ethernet frames of the address's family whose source or
//! destination is the address, and drops the agent's own copies as every capture filter does.

use std::net::IpAddr;

/// Ethernet header length: the IP header starts here (untagged frames only).
const ETH_HLEN: u32 = 14;
const ETHERTYPE_OFFSET: u32 = 12;

/// A jump target inside the program being assembled.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Label {
    Next,
    CheckDestination,
    Accept,
    Drop,
}

enum Op {
    /// Load the 32-bit word at this offset (or an ancillary field, `SKF_AD_OFF + …`).
    LoadWord(u32),
    LoadHalf(u32),
    /// Compare the accumulator with `k`, jumping to `yes` or `no`.
    JumpIfEqual {
        k: u32,
        yes: Label,
        no: Label,
    },
    Return(u32),
    /// Where a label points (emits nothing).
    Here(Label),
}

/// The 32-bit words of `ip` in network order, as `BPF_LD|BPF_W|BPF_ABS` loads them.
fn words(ip: IpAddr) -> Vec<u32> {
    match ip {
        IpAddr::V4(a) => vec![u32::from_be_bytes(a.octets())],
        IpAddr::V6(a) => a
            .octets()
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

/// Compares the words of the address at `offset`: all equal goes to `Accept`, the first
/// difference to `otherwise`.
fn match_address(ops: &mut Vec<Op>, offset: u32, words: &[u32], otherwise: Label) {
    for (i, &w) in words.iter().enumerate() {
        ops.push(Op::LoadWord(offset + 4 * i as u32));
        let last = i + 1 == words.len();
        ops.push(Op::JumpIfEqual {
            k: w,
            yes: if last { Label::Accept } else { Label::Next },
            no: otherwise,
        });
    }
}

/// The filter program for `addr`: frames of the agent's own copies (`own_mark`) and frames
/// not to or from `addr` return 0 (dropped); the others keep their first `snap_len` bytes.
pub fn address_filter(addr: IpAddr, own_mark: u32, snap_len: u32) -> Vec<libc::sock_filter> {
    let (ethertype, source, destination) = match addr {
        // IPv4: source at 12, destination at 16 of the IP header.
        IpAddr::V4(_) => (0x0800, ETH_HLEN + 12, ETH_HLEN + 16),
        // IPv6: source at 8, destination at 24 of the fixed header.
        IpAddr::V6(_) => (0x86dd, ETH_HLEN + 8, ETH_HLEN + 24),
    };
    let words = words(addr);
    let mut ops = vec![
        Op::LoadWord((libc::SKF_AD_OFF + libc::SKF_AD_MARK) as u32),
        Op::JumpIfEqual {
            k: own_mark,
            yes: Label::Drop,
            no: Label::Next,
        },
        Op::LoadHalf(ETHERTYPE_OFFSET),
        Op::JumpIfEqual {
            k: ethertype,
            yes: Label::Next,
            no: Label::Drop,
        },
    ];
    match_address(&mut ops, source, &words, Label::CheckDestination);
    ops.push(Op::Here(Label::CheckDestination));
    match_address(&mut ops, destination, &words, Label::Drop);
    ops.push(Op::Here(Label::Accept));
    ops.push(Op::Return(snap_len));
    ops.push(Op::Here(Label::Drop));
    ops.push(Op::Return(0));
    assemble(&ops)
}

/// Resolves the labels into the relative jumps of classic BPF.
fn assemble(ops: &[Op]) -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut position = std::collections::HashMap::new();
    let mut n = 0usize;
    for op in ops {
        match op {
            Op::Here(label) => {
                position.insert(*label, n);
            }
            _ => n += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    for op in ops {
        let here = out.len();
        // The programs here are a few dozen instructions: every jump fits in a u8.
        let jump = |label: Label| -> u8 {
            match label {
                Label::Next => 0,
                other => (position[&other] - here - 1) as u8,
            }
        };
        let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        match *op {
            Op::LoadWord(k) => out.push(insn(LD_W_ABS, 0, 0, k)),
            Op::LoadHalf(k) => out.push(insn(LD_H_ABS, 0, 0, k)),
            Op::JumpIfEqual { k, yes, no } => out.push(insn(JEQ_K, jump(yes), jump(no), k)),
            Op::Return(k) => out.push(insn(RET_K, 0, 0, k)),
            Op::Here(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_program_checks_mark_ethertype_source_then_destination() {
        let p = address_filter("198.51.100.7".parse().unwrap(), 0x746d6972, 96);
        let k: Vec<u32> = p.iter().map(|i| i.k).collect();
        let addr = u32::from_be_bytes([198, 51, 100, 7]);
        assert_eq!(
            k,
            [
                (libc::SKF_AD_OFF + libc::SKF_AD_MARK) as u32,
                0x746d6972,
                12,
                0x0800,
                26,
                addr,
                30,
                addr,
                96,
                0
            ]
        );
        // Source equal: accept (index 8); else the destination (index 6).
        assert_eq!((p[5].jt, p[5].jf), (2, 0));
        // Destination equal: accept; else drop (index 9).
        assert_eq!((p[7].jt, p[7].jf), (0, 1));
        // Own copies and other ethertypes: drop.
        assert_eq!(p[1].jt as usize + 2, 9);
        assert_eq!(p[3].jf as usize + 4, 9);
    }

    #[test]
    fn ipv6_program_compares_four_words_each_way() {
        let p = address_filter("2001:db8::5".parse().unwrap(), 1, 256);
        assert_eq!(p.len(), 4 + 8 + 8 + 2);
        assert_eq!(p[3].k, 0x86dd);
        assert_eq!(p[4].k, 22);
        assert_eq!(p[12].k, 38);
        // A difference in the first source word goes to the destination check.
        assert_eq!(p[5].jf as usize + 6, 12);
        // The last destination word: equal accepts, else drops.
        assert_eq!((p[19].jt, p[19].jf), (0, 1));
    }
}
