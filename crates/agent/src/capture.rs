//! The seam between the data plane and the kernel mechanism that hands it packets: a capture
//! back-end opens a [`Capture`] for a [`CaptureSource`]; the pipeline waits on it, drains what
//! it captured and reads its statistics. The AF_PACKET TPACKET_V3 ring ([`AfPacket`]) sits
//! behind it; an eBPF back-end that selects in the kernel sits behind the same seam.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use crate::sys::ring::{RingConfig, RxRing};

/// What one source asks of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureSource {
    /// The interface to capture, both directions.
    pub interface: String,
    /// Bytes of each frame to keep (the plan's snap length).
    pub snap_len: u32,
    /// Keep only the packets to or from this address, decided in the kernel (a gateway
    /// interface carrying many addresses, of which one is the source). `None`: every packet.
    pub selector: Option<AddressSelector>,
}

/// A kernel-side filter on one IP address: packets whose source or destination it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSelector {
    pub address: IpAddr,
}

/// One captured frame, as a back-end hands it over.
#[derive(Clone, Copy, Debug)]
pub struct Captured<'a> {
    /// The captured bytes, Ethernet first (VLAN tag taken off by the kernel, see `vlan`).
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data` when the capture cut it).
    pub wire_len: u32,
    /// Sent by the interface rather than received.
    pub outgoing: bool,
    /// The VLAN tag the kernel took off the frame (TPID, TCI), to be put back in the copy.
    pub vlan: Option<(u16, u16)>,
}

/// A capture's counters since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames the kernel handed over.
    pub packets: u64,
    /// Frames the kernel dropped because the reader fell behind.
    pub drops: u64,
}

/// An open capture of one source.
pub trait Capture: Send {
    /// Waits up to `timeout` for frames. `Err` when the source went away or down.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
    /// Hands the next batch of frames to `each`; returns how many, 0 when none is ready.
    fn drain(&mut self, each: &mut dyn FnMut(Captured<'_>)) -> usize;
    /// The capture's counters.
    fn stats(&mut self) -> io::Result<CaptureStats>;
    /// Keeps the first `snap_len` bytes of each frame from now on.
    fn set_snap_len(&mut self, snap_len: u32) -> io::Result<()>;
}

/// A way of capturing sources.
pub trait CaptureBackend: Send + Sync {
    /// The name reported at start and in `/metrics`.
    fn name(&self) -> &'static str;
    /// Opens a capture of `source`. `Err(NotFound)` while the interface does not exist.
    fn open(&self, source: &CaptureSource) -> io::Result<Box<dyn Capture>>;
}

/// AF_PACKET sockets with a TPACKET_V3 receive ring, one per source.
#[derive(Clone, Copy, Debug, Default)]
pub struct AfPacket {
    pub ring: RingConfig,
}

impl CaptureBackend for AfPacket {
    fn name(&self) -> &'static str {
        "af_packet"
    }

    fn open(&self, source: &CaptureSource) -> io::Result<Box<dyn Capture>> {
        // A selector is applied as the socket's classic BPF filter (`sys::address_filter`),
        // attached before the socket is bound: no frame of another address reaches the ring.
        Ok(Box::new(RxRing::open(
            &source.interface,
            self.ring,
            source.snap_len,
            source.selector.map(|s| s.address),
        )?))
    }
}

impl Capture for RxRing {
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        RxRing::wait(self, timeout.as_millis().min(i32::MAX as u128) as i32)
    }

    fn drain(&mut self, each: &mut dyn FnMut(Captured<'_>)) -> usize {
        self.drain_block(|f| {
            each(Captured {
                data: f.data,
                wire_len: f.wire_len,
                outgoing: f.outgoing,
                vlan: f.vlan,
            })
        })
    }

    fn stats(&mut self) -> io::Result<CaptureStats> {
        RxRing::stats(self).map(|s| CaptureStats {
            packets: s.packets,
            drops: s.drops,
        })
    }

    fn set_snap_len(&mut self, snap_len: u32) -> io::Result<()> {
        RxRing::set_snap_len(self, snap_len)
    }
}
