//! Interfaces deleted, as the kernel announces them: RTM_DELLINK on rtnetlink's link group.
//! A deleted interface takes the kernel back-end's attachments with it, and one created again
//! under the same index (and name) is a new device without them; the announcement is how the
//! agent tells the two apart without asking the kernel about each attachment, which would
//! take the RTNL lock from the drain thread.
//!
//! The socket is non-blocking and read when the agent looks at its interfaces: announcements
//! wait in its buffer until then. Should the buffer overflow (the kernel then drops
//! announcements and says so with `ENOBUFS`), the caller is told that some may be missing.
//! Only the messages' fixed headers are read, by hand: a deletion is a type and an index, and
//! an attribute the netlink crates could not parse must not hide one.

use std::io;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::set_int;

/// `RTMGRP_LINK`: the multicast group of link announcements (linux/rtnetlink.h).
const LINK_GROUP: u32 = 1;
/// `RTM_DELLINK`.
const DEL_LINK: u16 = 17;
/// Bytes of `struct nlmsghdr`, and of `struct ifinfomsg` up to its index.
const HEADER: usize = 16;
const INDEX_END: usize = HEADER + 8;
/// Receive buffer asked for: a burst of announcements (taps created as VMs boot, each an
/// RTM_NEWLINK of a kilobyte or so) waits here for up to a tick.
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// A subscription to the kernel's link announcements.
pub struct LinkWatch {
    socket: Socket,
    buf: Vec<u8>,
}

/// What was announced since the last look.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Indexes of the interfaces deleted (or moved to another network namespace).
    pub indexes: Vec<u32>,
    /// Announcements were lost: any interface may have been deleted as well.
    pub lost: bool,
}

impl LinkWatch {
    pub fn open() -> io::Result<LinkWatch> {
        LinkWatch::open_with(RECEIVE_BUFFER)
    }

    /// [`LinkWatch::open`] with a receive buffer of `buffer` bytes.
    fn open_with(buffer: libc::c_int) -> io::Result<LinkWatch> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, LINK_GROUP))?;
        socket.set_non_blocking(true)?;
        // SO_RCVBUF is capped at net.core.rmem_max (208 KiB by default: a couple of hundred
        // announcements, fewer than a hypervisor booting its VMs makes in a tick); the agent
        // has CAP_NET_ADMIN, which lifts the cap. Without it, the capped buffer: lost
        // announcements are reported, and every attachment is then checked with the kernel.
        if set_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, buffer).is_err() {
            let _ = set_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUF, buffer);
        }
        Ok(LinkWatch {
            socket,
            buf: vec![0; 64 << 10],
        })
    }

    /// The interfaces deleted since the last call (reads what waits, never blocks).
    pub fn deleted(&mut self) -> Deleted {
        let mut out = Deleted::default();
        // Bounded: a burst larger than this is left for the next look.
        for _ in 0..1024 {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => deleted_in(&self.buf[..n.min(self.buf.len())], &mut out.indexes),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ENOBUFS: the kernel dropped announcements; read on, what follows is new.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => out.lost = true,
                Err(_) => {
                    out.lost = true;
                    break;
                }
            }
        }
        out
    }
}

/// Adds to `indexes` the interfaces whose deletion one datagram of announcements tells.
/// Only the headers are read (`struct nlmsghdr`, then `struct ifinfomsg`): nothing in an
/// announcement's attributes can make it unreadable. A deletion of family `AF_UNSPEC` only:
/// a bridge announces a port leaving it as an `RTM_DELLINK` of family `AF_BRIDGE`, for an
/// interface that stays.
fn deleted_in(mut datagram: &[u8], indexes: &mut Vec<u32>) {
    while datagram.len() >= HEADER {
        let len = u32::from_ne_bytes(datagram[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(datagram[4..6].try_into().expect("2 bytes"));
        if len < HEADER || len > datagram.len() {
            return;
        }
        if kind == DEL_LINK && len >= INDEX_END && datagram[HEADER] == libc::AF_UNSPEC as u8 {
            let index = i32::from_ne_bytes(datagram[HEADER + 4..INDEX_END].try_into().expect("4"));
            if let Ok(index) = u32::try_from(index) {
                indexes.push(index);
            }
        }
        // Messages start at multiples of 4 (NLMSG_ALIGN).
        datagram = datagram.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::{deleted_in, LinkWatch, DEL_LINK};
    use crate::sys::get_int;

    /// The buffer is the one asked for, beyond net.core.rmem_max's cap (208 KiB by default,
    /// below the 4 MiB asked for): the agent runs as root (CAP_NET_ADMIN).
    #[test]
    fn the_buffer_is_not_capped_by_the_systems_limit() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: the link watch's buffer test needs root (CAP_NET_ADMIN)");
            return;
        }
        let cap: libc::c_int = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("read net.core.rmem_max")
            .trim()
            .parse()
            .expect("a number");
        let asked = cap.saturating_mul(2).min(256 << 20);
        let watch = LinkWatch::open_with(asked).expect("subscribe to the link announcements");
        let got = get_int(&watch.socket, libc::SOL_SOCKET, libc::SO_RCVBUF).expect("getsockopt");
        // The kernel reports twice the size set, its bookkeeping included.
        assert!(
            got / 2 >= asked,
            "{got} / 2 bytes of receive buffer, {asked} asked for, cap {cap}"
        );
    }

    /// A link message of `kind`, family and index, with `extra` bytes of attributes.
    fn message(kind: u16, family: u8, index: i32, extra: usize) -> Vec<u8> {
        let len = 16 + 16 + extra;
        let mut m = vec![0u8; len];
        m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[16] = family;
        m[20..24].copy_from_slice(&index.to_ne_bytes());
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    #[test]
    fn deletions_are_read_from_the_headers_and_a_bridge_port_leaving_is_not_one() {
        let mut datagram = message(DEL_LINK, 0, 7, 3);
        datagram.extend(message(16, 0, 8, 0)); // RTM_NEWLINK
        datagram.extend(message(DEL_LINK, libc::AF_BRIDGE as u8, 9, 0));
        datagram.extend(message(DEL_LINK, 0, 10, 40));
        let mut indexes = Vec::new();
        deleted_in(&datagram, &mut indexes);
        assert_eq!(indexes, [7, 10]);
        // A message that claims more than the datagram holds ends the reading.
        let mut cut = message(DEL_LINK, 0, 11, 0);
        cut[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        deleted_in(&cut, &mut indexes);
        assert_eq!(indexes, [7, 10]);
    }
}
