//! Sends complete outer IPv4/UDP/VXLAN datagrams through one raw IPv4 socket
//! (`IPPROTO_RAW`, header included), many per `sendmmsg` call. The kernel routes them and
//! resolves the next hop as for any packet of the host, but skips the UDP socket layer, and
//! because the agent writes the UDP header itself every flow keeps its own outer source port.
//! Non-blocking: when the socket's buffer is full the rest of a batch is dropped, never
//! queued, and the caller counts the drops.

use super::mmsg::{fill_headers, send_all};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::ring::OWN_COPY_MARK;

/// Copies waiting to be sent: fixed slots, reused for every batch.
pub struct Batch {
    slot_size: usize,
    pub(super) slots: Vec<u8>,
    lens: Vec<usize>,
    dests: Vec<Ipv4Addr>,
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
    pub fn commit(&mut self, offset: usize, len: usize, dest: Ipv4Addr, tag: u32) {
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
        self.dests.push(Ipv4Addr::UNSPECIFIED);
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

/// A raw IPv4 sender.
pub struct RawSender {
    fd: OwnedFd,
    msgs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_in>,
}

// SAFETY: the raw pointers in `msgs` / `iovs` only ever point into this value's own vectors
// or the batch passed to `send`, and are rebuilt on every call.
unsafe impl Send for RawSender {}

impl RawSender {
    /// Opens the socket: marked with [`OWN_COPY_MARK`] (so captures skip the copies), with a
    /// send buffer of `sndbuf` bytes to absorb bursts.
    pub fn open(sndbuf: usize, capacity: usize) -> io::Result<RawSender> {
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
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
            // SAFETY: sockaddr_in is plain data.
            let mut a: libc::sockaddr_in = unsafe { zeroed() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_addr.s_addr = u32::from(batch.dests[i]).to_be();
            self.addrs.push(a);
        }
        fill_headers(&mut self.msgs, &mut self.addrs, &mut self.iovs);
        // SAFETY: the headers point into `self.addrs` and `self.iovs`, and the iovecs into
        // `batch.slots`; none of them is touched until the call returns.
        unsafe { send_all(&self.fd, &mut self.msgs, &mut batch.sent) }
    }
}

pub(super) fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
