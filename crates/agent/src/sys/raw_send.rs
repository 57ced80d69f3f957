//! Sends complete outer IPv4/UDP/VXLAN (or IPv6/UDP/VXLAN) datagrams through one raw socket of
//! their family (`IPPROTO_RAW`, header included: `IP_HDRINCL` is implied by the protocol for
//! IPv4 and IPv6 alike), many per `sendmmsg` call. The kernel routes them and
//! resolves the next hop as for any packet of the host, but skips the UDP socket layer, and
//! because the agent writes the UDP header itself every flow keeps its own outer source port.
//! Non-blocking: when the socket's buffer is full the rest of a batch is dropped, never
//! queued, and the caller counts the drops.

use super::mmsg::{fill_headers, send_all};
use std::io;
use std::mem::zeroed;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{FromRawFd, OwnedFd};

use super::ring::OWN_COPY_MARK;
use super::set_int;

/// Copies waiting to be sent: fixed slots, reused for every batch.
pub struct Batch {
    slot_size: usize,
    pub(super) slots: Vec<u8>,
    lens: Vec<usize>,
    dests: Vec<IpAddr>,
    /// Device index per copy, for the AF_PACKET sender (0 for the raw sender).
    pub(super) ifindexes: Vec<u32>,
    /// Caller's tag per copy (the session it belongs to), read back after a send.
    tags: Vec<u32>,
    /// Whether the kernel took each copy, set by [`RawSender::send`].
    pub(super) sent: Vec<bool>,
}

impl Batch {
    /// Room for `capacity` copies of up to `slot_size` bytes each.
    pub fn new(capacity: usize, slot_size: usize) -> Batch {
        Batch {
            slot_size,
            slots: vec![0; capacity * slot_size],
            lens: Vec::with_capacity(capacity),
            dests: Vec::with_capacity(capacity),
            ifindexes: Vec::with_capacity(capacity),
            tags: Vec::with_capacity(capacity),
            sent: Vec::with_capacity(capacity),
        }
    }

    pub fn is_full(&self) -> bool {
        self.lens.len() == self.lens.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// The next free slot; `commit` makes it part of the batch.
    pub fn slot(&mut self) -> &mut [u8] {
        let start = self.lens.len() * self.slot_size;
        &mut self.slots[start..start + self.slot_size]
    }

    /// Adds the datagram written at `offset..offset + len` of the current slot.
    /// `offset` lets the writer skip an Ethernet header it produced.
    pub fn commit(&mut self, offset: usize, len: usize, dest: IpAddr, tag: u32) {
        debug_assert!(offset + len <= self.slot_size);
        self.lens.push(offset << 32 | len);
        self.dests.push(dest);
        self.ifindexes.push(0);
        self.tags.push(tag);
    }

    /// Adds the complete Ethernet frame of `len` bytes written at the start of the current
    /// slot, to leave by device `ifindex` (for the AF_PACKET sender).
    pub fn commit_frame(&mut self, len: usize, ifindex: u32, tag: u32) {
        debug_assert!(len <= self.slot_size);
        self.lens.push(len);
        self.dests.push(Ipv4Addr::UNSPECIFIED.into());
        self.ifindexes.push(ifindex);
        self.tags.push(tag);
    }

    /// Where copy `i` lies in `slots`: start and length.
    pub(super) fn span(&self, i: usize) -> (usize, usize) {
        let offset = self.lens[i] >> 32;
        (i * self.slot_size + offset, self.lens[i] & 0xffff_ffff)
    }

    /// Each copy's tag, byte count and whether it was sent (in order).
    pub fn entries(&self) -> impl Iterator<Item = (u32, usize, bool)> + '_ {
        self.tags
            .iter()
            .zip(&self.lens)
            .zip(&self.sent)
            .map(|((t, l), s)| (*t, l & 0xffff_ffff, *s))
    }

    pub fn clear(&mut self) {
        self.lens.clear();
        self.dests.clear();
        self.ifindexes.clear();
        self.tags.clear();
        self.sent.clear();
    }
}

/// A destination of either family, laid out as the kernel reads a `sockaddr` of it.
#[repr(C)]
#[derive(Clone, Copy)]
union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

/// A raw sender of one address family.
pub struct RawSender {
    fd: OwnedFd,
    ipv6: bool,
    msgs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<SockAddr>,
}

// SAFETY: the raw pointers in `msgs` / `iovs` only ever point into this value's own vectors
// or the batch passed to `send`, and are rebuilt on every call.
unsafe impl Send for RawSender {}

impl RawSender {
    /// Opens the socket: marked with [`OWN_COPY_MARK`] (so captures skip the copies), with a
    /// send buffer of `sndbuf` bytes to absorb bursts; `ipv6` chooses the family.
    pub fn open(sndbuf: usize, capacity: usize, ipv6: bool) -> io::Result<RawSender> {
        let family = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = unsafe {
            libc::socket(
                family,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::IPPROTO_RAW,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            OWN_COPY_MARK as libc::c_int,
        )?;
        // FORCE needs CAP_NET_ADMIN, which the agent has; fall back to the capped option.
        let size = sndbuf.min(i32::MAX as usize) as libc::c_int;
        if set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
            set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, size)?;
        }
        Ok(RawSender {
            fd,
            ipv6,
            msgs: Vec::with_capacity(capacity),
            iovs: Vec::with_capacity(capacity),
            addrs: Vec::with_capacity(capacity),
        })
    }

    /// Sends the batch; returns how many copies the kernel took and marks each in the batch.
    /// A copy the kernel refuses (no route to its target, say) is skipped; when the socket's
    /// buffer is full the rest are dropped. The caller reads the entries, then clears it.
    pub fn send(&mut self, batch: &mut Batch) -> usize {
        let n = batch.len();
        self.msgs.clear();
        self.iovs.clear();
        self.addrs.clear();
        for i in 0..n {
            let (start, len) = batch.span(i);
            self.iovs.push(libc::iovec {
                iov_base: batch.slots[start..start + len].as_mut_ptr().cast(),
                iov_len: len,
            });
            // SAFETY: both members are plain data; zero is valid for every field.
            let mut a: SockAddr = unsafe { zeroed() };
            match batch.dests[i] {
                IpAddr::V4(ip) if !self.ipv6 => {
                    a.v4.sin_family = libc::AF_INET as libc::sa_family_t;
                    a.v4.sin_addr.s_addr = u32::from(ip).to_be();
                }
                IpAddr::V6(ip) if self.ipv6 => {
                    a.v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    a.v6.sin6_addr.s6_addr = ip.octets();
                }
                // A destination of the other family: the caller batches per family, and an
                // unspecified family makes the kernel refuse (and the copy count as dropped).
                _ => {}
            }
            self.addrs.push(a);
        }
        fill_headers(&mut self.msgs, &mut self.addrs, &mut self.iovs);
        // SAFETY: the headers point into `self.addrs` and `self.iovs`, and the iovecs into
        // `batch.slots`; none of them is touched until the call returns.
        unsafe { send_all(&self.fd, &mut self.msgs, &mut batch.sent) }
    }
}
