//! Sends complete outer Ethernet/IP/UDP/VXLAN frames straight to the underlay device through
//! one AF_PACKET socket, many per `sendmmsg` call. Compared with the raw IPv4 socket this skips
//! the kernel's per-packet route lookup, netfilter hooks and neighbour output, and with
//! `PACKET_QDISC_BYPASS` the device's queueing discipline and taps too: the frame goes to the
//! driver as written. The caller supplies the next hop's MAC address (see `nexthop`).
//! Non-blocking like the raw sender: a full buffer or a busy device drops the rest of a batch,
//! and the caller counts the drops.

use super::mmsg::{fill_headers, send_all};
use std::io;
use std::mem::zeroed;
use std::os::fd::{FromRawFd, OwnedFd};

use super::raw_send::Batch;
use super::ring::OWN_COPY_MARK;
use super::set_int;

/// An AF_PACKET sender, not bound to a device: each frame names its device's index.
pub struct PacketSender {
    fd: OwnedFd,
    msgs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    addrs: Vec<libc::sockaddr_ll>,
}

// SAFETY: the raw pointers in `msgs` / `iovs` only ever point into this value's own vectors
// or the batch passed to `send`, and are rebuilt on every call.
unsafe impl Send for PacketSender {}

impl PacketSender {
    /// Opens the socket (protocol 0: it receives nothing), marked with [`OWN_COPY_MARK`], with
    /// a send buffer of `sndbuf` bytes; `qdisc_bypass` hands frames to the driver directly.
    pub fn open(sndbuf: usize, capacity: usize, qdisc_bypass: bool) -> io::Result<PacketSender> {
        // SAFETY: plain socket(2); the result is checked and owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
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
        let size = sndbuf.min(i32::MAX as usize) as libc::c_int;
        if set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
            set_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUF, size)?;
        }
        if qdisc_bypass {
            set_int(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1)?;
        }
        Ok(PacketSender {
            fd,
            msgs: Vec::with_capacity(capacity),
            iovs: Vec::with_capacity(capacity),
            addrs: Vec::with_capacity(capacity),
        })
    }

    /// Sends the batch's frames, each to the device index it was committed with; returns how
    /// many the kernel took and marks each in the batch, like [`super::raw_send::RawSender`].
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
            // SAFETY: sockaddr_ll is plain data.
            let mut a: libc::sockaddr_ll = unsafe { zeroed() };
            a.sll_family = libc::AF_PACKET as u16;
            // The frame's own EtherType (IPv4 or IPv6), in network order as written.
            a.sll_protocol = u16::from_ne_bytes([batch.slots[start + 12], batch.slots[start + 13]]);
            a.sll_ifindex = batch.ifindexes[i] as i32;
            a.sll_halen = 6;
            a.sll_addr[..6].copy_from_slice(&batch.slots[start..start + 6]);
            self.addrs.push(a);
        }
        fill_headers(&mut self.msgs, &mut self.addrs, &mut self.iovs);
        // SAFETY: the headers point into `self.addrs` and `self.iovs`, and the iovecs into
        // `batch.slots`; none of them is touched until the call returns.
        unsafe { send_all(&self.fd, &mut self.msgs, &mut batch.sent) }
    }
}
