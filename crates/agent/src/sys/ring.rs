//! A passive AF_PACKET capture socket with a TPACKET_V3 receive ring, bound to one interface,
//! seeing both directions. The kernel fills whole blocks of frames and hands each block over
//! at once (or when the retire timeout expires), so one wake-up serves many frames; when the
//! reader falls behind the kernel drops frames and counts them, and the source never waits.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use super::address_filter::address_filter;
use super::setsockopt;

/// Geometry of the receive ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block (a power of two, a multiple of the page size).
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Milliseconds after which a partly filled block is handed over anyway.
    pub retire_ms: u32,
}

impl Default for RingConfig {
    /// 64 × 1 MiB blocks, 5 ms: absorbs ~45,000 full-size frames of burst, a copy is at most
    /// 5 ms late.
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 20,
            block_count: 64,
            retire_ms: 5,
        }
    }
}

/// The `skb->mark` the agent's own copies carry; the capture filter drops frames with it, so
/// the agent never mirrors its own output even when a source is also the underlay interface.
pub const OWN_COPY_MARK: u32 = 0x746d_6972; // "tmir"

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The captured bytes, Ethernet first (VLAN tag stripped by the kernel, see `vlan`).
    pub data: &'a [u8],
    /// The frame's length on the wire (may exceed `data` when the ring cut it).
    pub wire_len: u32,
    /// Sent by the interface (`PACKET_OUTGOING`), rather than received.
    pub outgoing: bool,
    /// The VLAN tag the kernel took off the frame (TPID, TCI), to be put back in the copy.
    pub vlan: Option<(u16, u16)>,
}

/// The ring's drop counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames the kernel handed to the socket.
    pub packets: u64,
    /// Frames dropped because the ring was full.
    pub drops: u64,
}

/// An open capture ring.
pub struct RxRing {
    fd: OwnedFd,
    map: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    next_block: usize,
    stats: RingStats,
    /// The socket's filter, which decides which frames reach the ring and how much of each.
    filter: Filter,
}

/// The socket filter of a ring.
#[derive(Clone, Copy, Debug)]
enum Filter {
    /// The agent's classic BPF: own copies dropped, the snap length kept; with an address,
    /// only the frames to or from it (an EIP's, `docs/eips.md`).
    Classic(Option<IpAddr>),
    /// An eBPF socket program chosen by the caller, whose return value is the snap length
    /// of each frame (0: not captured): the snap length is the program's, not the ring's.
    Program,
}

/// A PACKET_FANOUT group the ring's socket joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// The group's id, unique in the network namespace among groups of other bindings.
    pub group: u16,
    /// How the kernel picks a member for each frame.
    pub mode: FanoutMode,
}

/// The kernel's choice of a fan-out member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FanoutMode {
    /// By a symmetric hash of the flow (`PACKET_FANOUT_HASH`): a flow's frames all go to one
    /// member, so they stay in order; the kernel dissects every frame to hash it.
    #[default]
    Hash,
    /// By the CPU that handles the frame (`PACKET_FANOUT_CPU`): no hash, but a flow's frames
    /// stay in order only while the flow stays on one CPU.
    Cpu,
}

// SAFETY: the mapping belongs to this value alone; blocks are handed out only through
// `&mut self`, so moving the ring to another thread is sound.
unsafe impl Send for RxRing {}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The index of interface `name`, or `NotFound`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name}"),
        ))
    } else {
        Ok(index)
    }
}

/// Classic BPF that drops frames whose `skb->mark` is [`OWN_COPY_MARK`] and keeps the first
/// `snap_len` bytes of the rest (the kernel copies no more than that into the ring: the copy
/// into the ring is paid on the source's CPU, so a short snap length spares the source).
fn own_copy_filter(snap_len: u32) -> [libc::sock_filter; 4] {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let mark_offset = (libc::SKF_AD_OFF + libc::SKF_AD_MARK) as u32;
    [
        libc::sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: mark_offset,
        },
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: OWN_COPY_MARK,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: snap_len,
        },
    ]
}

/// Attaches (or atomically replaces) the capture filter of `fd`: with `select`, only the
/// frames to or from that address (see [`address_filter`]).
fn attach_filter(fd: &OwnedFd, snap_len: u32, select: Option<IpAddr>) -> io::Result<()> {
    let mut program = match select {
        Some(addr) => address_filter(addr, OWN_COPY_MARK, snap_len),
        None => own_copy_filter(snap_len).to_vec(),
    };
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

impl RxRing {
    /// Opens a ring on interface `name`: both directions, every protocol, promiscuous off
    /// (the agent sees what the interface sends and receives, not the segment), keeping the
    /// first `snap_len` bytes of each frame; with `select`, only the frames to or from that
    /// address ever reach the ring (selected in the kernel, from before the socket is bound).
    pub fn open(
        name: &str,
        config: RingConfig,
        snap_len: u32,
        select: Option<IpAddr>,
    ) -> io::Result<RxRing> {
        let index = interface_index(name)?;
        Self::open_with(index, config, None, |fd| {
            attach_filter(fd, snap_len, select).map(|()| Filter::Classic(select))
        })
    }

    /// Opens a ring filtered by the eBPF socket program `program` (its return value is each
    /// frame's snap length, 0 drops it), bound to interface `ifindex` (0: every interface of
    /// the network namespace), and joins it to the fanout group `fanout`. The program is
    /// attached before the socket is bound, so no unfiltered frame reaches the ring. Used by
    /// the benchmark-only PACKET_FANOUT prototype (`examples/fanout.rs`, docs/dataplane.md),
    /// not by the agent.
    pub fn open_program(
        ifindex: u32,
        config: RingConfig,
        program: BorrowedFd<'_>,
        fanout: Option<Fanout>,
    ) -> io::Result<RxRing> {
        Self::open_with(ifindex, config, fanout, |fd| {
            let prog: libc::c_int = program.as_raw_fd();
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_BPF, &prog).map(|()| Filter::Program)
        })
    }

    fn open_with(
        index: u32,
        config: RingConfig,
        fanout: Option<Fanout>,
        attach: impl FnOnce(&OwnedFd) -> io::Result<Filter>,
    ) -> io::Result<RxRing> {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked and owned at once.
        let raw = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // Filter before binding, so no frame of our own copies ever reaches the ring.
        let filter = attach(&fd)?;
        let version: libc::c_int = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        // SAFETY: tpacket_req3 is plain data; zero is a valid value for every field.
        let mut req: libc::tpacket_req3 = unsafe { zeroed() };
        req.tp_block_size = config.block_size;
        req.tp_block_nr = config.block_count;
        req.tp_frame_size = 2048; // only checked for alignment in V3: frames are variable
        req.tp_frame_nr = (config.block_size / 2048) * config.block_count;
        req.tp_retire_blk_tov = config.retire_ms;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;

        let map_len = config.block_size as usize * config.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = RxRing {
            fd,
            map: NonNull::new(map.cast()).expect("mmap returned a non-null mapping"),
            map_len,
            block_size: config.block_size as usize,
            block_count: config.block_count as usize,
            next_block: 0,
            stats: RingStats::default(),
            filter,
        };

        // SAFETY: sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = index as i32;
        // SAFETY: `addr` is a valid sockaddr_ll of the given length.
        check(unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        if let Some(f) = fanout {
            // After bind: the kernel joins only running sockets, and only those bound to the
            // same interface (or all of them) with the same protocol share a group.
            let mode = match f.mode {
                FanoutMode::Hash => libc::PACKET_FANOUT_HASH,
                FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            };
            let arg: u32 = u32::from(f.group) | (mode << 16);
            setsockopt(&ring.fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
        }
        Ok(ring)
    }

    /// Keeps the first `snap_len` bytes of each frame from now on (still only the selected
    /// address's frames, when the ring has one).
    pub fn set_snap_len(&mut self, snap_len: u32) -> io::Result<()> {
        match self.filter {
            Filter::Classic(select) => attach_filter(&self.fd, snap_len, select),
            // The program returns each frame's snap length itself.
            Filter::Program => Ok(()),
        }
    }

    /// Waits up to `timeout_ms` for a block. `Err` when the interface went away or down.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        if self.block_ready(self.next_block) {
            return Ok(());
        }
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            let mut err: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: reads the pending socket error into `err`.
            unsafe {
                libc::getsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            return Err(io::Error::from_raw_os_error(if err == 0 {
                libc::ENETDOWN
            } else {
                err
            }));
        }
        Ok(())
    }

    fn block(&self, i: usize) -> *mut libc::tpacket_block_desc {
        // SAFETY: `i < block_count`, so the offset stays inside the mapping.
        unsafe { self.map.as_ptr().add(i * self.block_size).cast() }
    }

    fn block_ready(&self, i: usize) -> bool {
        // SAFETY: the block header lies inside the mapping; the kernel writes block_status
        // last, so a volatile read and an acquire fence order the frame reads after it.
        let status = unsafe {
            std::ptr::read_volatile(std::ptr::addr_of!((*self.block(i)).hdr.bh1.block_status))
        };
        fence(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0
    }

    /// Hands every frame of the next filled block to `each`, then gives the block back to the
    /// kernel. Returns the number of frames, 0 when no block is ready.
    pub fn drain_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> usize {
        let i = self.next_block;
        if !self.block_ready(i) {
            return 0;
        }
        let block = self.block(i);
        let base = block.cast::<u8>();
        // SAFETY: the block is ours until we set its status back to TP_STATUS_KERNEL; the
        // kernel wrote `num_pkts` frames chained by `tp_next_offset`, all inside the block.
        let count = unsafe {
            let bh = &(*block).hdr.bh1;
            let count = bh.num_pkts as usize;
            let mut offset = bh.offset_to_first_pkt as usize;
            for _ in 0..count {
                let hdr = &*base.add(offset).cast::<libc::tpacket3_hdr>();
                let sll = &*base
                    .add(offset + tpacket_align(size_of::<libc::tpacket3_hdr>()))
                    .cast::<libc::sockaddr_ll>();
                let data = std::slice::from_raw_parts(
                    base.add(offset + hdr.tp_mac as usize),
                    hdr.tp_snaplen as usize,
                );
                let vlan = if hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        hdr.hv1.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    Some((tpid, hdr.hv1.tp_vlan_tci as u16))
                } else {
                    None
                };
                each(Frame {
                    data,
                    wire_len: hdr.tp_len,
                    outgoing: sll.sll_pkttype == libc::PACKET_OUTGOING,
                    vlan,
                });
                offset += hdr.tp_next_offset as usize;
            }
            fence(Ordering::Release);
            std::ptr::write_volatile(
                std::ptr::addr_of_mut!((*block).hdr.bh1.block_status),
                libc::TP_STATUS_KERNEL,
            );
            count
        };
        self.next_block = (i + 1) % self.block_count;
        count
    }

    /// The kernel's counters since the ring was opened (reading resets the kernel's own, so
    /// they are accumulated here).
    pub fn stats(&mut self) -> io::Result<RingStats> {
        // SAFETY: tpacket_stats_v3 is plain data.
        let mut s: libc::tpacket_stats_v3 = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `s` is large enough for the kernel's answer of `len` bytes.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut s as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        })?;
        self.stats.packets += u64::from(s.tp_packets);
        self.stats.drops += u64::from(s.tp_drops);
        Ok(self.stats)
    }
}

fn tpacket_align(x: usize) -> usize {
    (x + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1)
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`; no frame borrow outlives
        // `drain_block`.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}
