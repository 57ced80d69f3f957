//! Interfaces deleted, as the kernel announces them: RTM_DELLINK on rtnetlink's link group.
//! A deleted interface takes the kernel back-end's attachments with it, and one created again
//! under the same index (and name) is a new device without them; the announcement is how the
//! agent tells the two apart without asking the kernel about each attachment, which would
//! take the RTNL lock from the drain thread.
//!
//! The socket is non-blocking and read when the agent looks at its interfaces: announcements
//! wait in its buffer until then. Should the buffer overflow (the kernel then drops
//! announcements and says so with `ENOBUFS`), the caller is told that some may be missing.

use std::io;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// `RTMGRP_LINK`: the multicast group of link announcements (linux/rtnetlink.h).
const LINK_GROUP: u32 = 1;

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
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind(&SocketAddr::new(0, LINK_GROUP))?;
        socket.set_non_blocking(true)?;
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
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    out.lost = true;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    out.lost = true;
                    break;
                }
            };
            let mut offset = 0;
            while offset < n {
                let Ok(m) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                else {
                    // A message this crate does not know: the datagram's others are skipped
                    // with it (their lengths cannot be trusted), so count them as lost.
                    out.lost = true;
                    break;
                };
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) = &m.payload
                {
                    out.indexes.push(link.header.index);
                }
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
        out
    }
}
