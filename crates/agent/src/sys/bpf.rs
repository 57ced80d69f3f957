//! The kernel program's map layouts (bpf/select.bpf.c), as plain-old-data for the loader,
//! and the waits on the ring buffer's descriptor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Limits of the kernel program; a plan beyond them stays with the AF_PACKET back-end.
pub const MAX_SESSIONS: usize = 16;
pub const MAX_RULES: usize = 64;
pub const MAX_IFACES: u32 = 4096;
/// Longest copy the kernel makes.
pub const MAX_COPY: usize = 9216;
/// Bytes of the ring buffer shared by all interfaces, by default (the agent's
/// `--kernel-ring-mb`; the object's own size, which the loader replaces).
pub const RING_BYTES: usize = 32 << 20;
/// Unread bytes past which a copy wakes a drain thread that polls on its own (the program's
/// `wake_bytes`, set at load): a sixteenth of the ring, but at least 512 KiB, and at most a
/// quarter of the ring (256 KiB in the smallest, 1 MiB). Above what flows between two polls a
/// millisecond apart (300 KiB at 200,000 copies of 1,500 bytes a second, when a fixed 256 KiB
/// woke the thread once a millisecond: an interrupt on the source's core each time), and far
/// below a full ring; the smallest rings keep the old 256 KiB, a quarter of their room.
pub fn wake_bytes(ring_bytes: usize) -> usize {
    (ring_bytes / 16).max(512 << 10).min(ring_bytes / 4)
}
/// Interfaces the kernel program takes by default (the agent's `--kernel-max-interfaces`):
/// every plan array has room for this many (bpf/select.bpf.c `plan_array`, which has the
/// same default). One size for all lets the verifier inline the program's look-ups in them.
pub const KERNEL_INTERFACES: u32 = 256;
/// The rooms for interfaces the program is built with (build.rs), smallest first; the plan
/// arrays of each take 10 KiB per interface of room.
pub const KERNEL_ROOMS: [u32; 3] = [KERNEL_INTERFACES, 1024, MAX_IFACES];
/// The open-addressed table at the head of a plan array, from interface index to the entry of
/// the interface's plan: `TABLE_ENTRIES` entries of `TABLE_SLOTS` (index, entry) pairs; an
/// interface sits within `PROBES` slots of one of its two places ([`table_slots`]).
pub const TABLE_SLOTS: u32 = 1024;
pub const TABLE_ENTRIES: u32 = 16;
pub const PROBES: u32 = 16;

/// The two places in a plan's table where a search for `ifindex` starts, as (table entry,
/// slot): Fibonacci hashing, then a second multiplier, as the program computes them
/// (`HASH_FIRST`, `HASH_SECOND` in bpf/select.bpf.c).
pub fn table_slots(ifindex: u32) -> [(u32, u32); 2] {
    [2_654_435_769u32, 2_246_822_519].map(|m| {
        let h = ifindex.wrapping_mul(m);
        (h >> 28, (h >> 18) & (TABLE_SLOTS - 1))
    })
}

/// `struct rule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KRule {
    pub src_net: [u32; 4],
    pub src_mask: [u32; 4],
    pub dst_net: [u32; 4],
    pub dst_mask: [u32; 4],
    pub sport_lo: u16,
    pub sport_hi: u16,
    pub dport_lo: u16,
    pub dport_hi: u16,
    pub version: u8,
    pub protocol: u8,
    pub any_protocol: u8,
    pub ports: u8,
    pub accept: u8,
    pub session: u8,
    pub pad: [u8; 2],
}

/// `struct iface`: one interface's plan.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KIface {
    pub generation: u32,
    pub host_side: u8,
    pub n_sessions: u8,
    pub max_copy: u16,
    pub n_rules: [u16; 2],
    pub packet_length: [u16; MAX_SESSIONS],
    /// The interface's entry in the per-CPU counters array (set by
    /// [`KernelSelector::install`](crate::kernel::KernelSelector::install)).
    pub stats_slot: u32,
    pub rules: [[KRule; MAX_RULES]; 2],
}

const _: () = assert!(std::mem::size_of::<KRule>() == 80);
const _: () = assert!(std::mem::size_of::<KIface>() == 48 + 2 * MAX_RULES * 80);
const _: () = assert!(std::mem::offset_of!(KIface, stats_slot) == 44);
// A part of the table (`TABLE_SLOTS` pairs of `u32`) is an entry of the plan array.
const _: () = assert!(TABLE_SLOTS as usize * 8 <= std::mem::size_of::<KIface>());
const _: () = assert!(TABLE_ENTRIES * TABLE_SLOTS >= 4 * MAX_IFACES);

impl KIface {
    /// A part of a plan's table (`TABLE_SLOTS` pairs (interface index, entry), `struct
    /// slot`), in an entry's form.
    pub fn table_part(slots: &[(u32, u32)]) -> Box<KIface> {
        assert!(slots.len() <= TABLE_SLOTS as usize);
        let mut part = Box::new(KIface::default());
        let bytes = slots
            .iter()
            .flat_map(|&(ifindex, entry)| {
                let mut pair = [0u8; 8];
                pair[..4].copy_from_slice(&ifindex.to_ne_bytes());
                pair[4..].copy_from_slice(&entry.to_ne_bytes());
                pair
            })
            .chain(std::iter::repeat(0));
        // SAFETY: `KIface` is plain integers (`repr(C)`, no padding, any bit pattern valid);
        // the whole entry is written.
        let raw = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut *part as *mut KIface).cast::<u8>(),
                std::mem::size_of::<KIface>(),
            )
        };
        for (to, from) in raw.iter_mut().zip(bytes) {
            *to = from;
        }
        part
    }
}

impl Default for KIface {
    fn default() -> Self {
        KIface {
            generation: 0,
            host_side: 0,
            n_sessions: 0,
            max_copy: 0,
            n_rules: [0; 2],
            packet_length: [0; MAX_SESSIONS],
            stats_slot: 0,
            rules: [[KRule::default(); MAX_RULES]; 2],
        }
    }
}

/// `struct counters`, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KCounters {
    pub seen: u64,
    pub selected: u64,
    pub ring_full: u64,
}

// SAFETY: plain `repr(C)` integers and arrays of them, no padding the kernel could read
// uninitialised that matters (the kernel copies the bytes as they are), valid for any bits.
unsafe impl aya::Pod for KRule {}
// SAFETY: as above.
unsafe impl aya::Pod for KIface {}
// SAFETY: as above.
unsafe impl aya::Pod for KCounters {}

/// Bytes of `struct record` in front of each copy in the ring.
pub const RECORD_LEN: usize = 72;

/// `BPF_OBJ_GET_INFO_BY_FD` and `BPF_LINK_TYPE_TCX` (linux/bpf.h).
const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const LINK_TYPE_TCX: u32 = 11;

/// The index of the interface a TCX link is attached to; 0 once the interface is gone (the
/// kernel detaches the links of an unregistered device, and a new device of the same index
/// does not inherit them). The kernel takes the RTNL lock to answer.
pub fn tcx_link_ifindex(link: BorrowedFd<'_>) -> io::Result<u32> {
    // `struct bpf_link_info`: type, id, prog_id, then (8-aligned, from byte 16) the union whose `tcx`
    // arm is (ifindex, attach_type). Room for any kernel's struct; the kernel writes what it has.
    let mut info = [0u32; 32];
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = InfoAttr {
        bpf_fd: link.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: `attr` is the command's attribute, valid for the call; `info` has the
    // `info_len` bytes the kernel may write.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoAttr,
            std::mem::size_of::<InfoAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let link_type = info[0];
    if link_type != LINK_TYPE_TCX {
        return Err(io::Error::other(format!(
            "descriptor {} is a BPF link of type {link_type}, not TCX",
            link.as_raw_fd()
        )));
    }
    Ok(info[4])
}

/// Waits until one of `fds` is readable or `timeout` passed.
pub fn wait_readable(fds: [BorrowedFd<'_>; 2], timeout: Duration) -> io::Result<()> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `pfds` is a valid array of as many pollfds as told, for the duration of the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Ends the drain thread's wait from another thread: an eventfd its waits include, rung when
/// the data plane hands it a new table (or stops it), so that it does not sleep out its tick
/// first.
pub struct Doorbell {
    fd: OwnedFd,
}

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        // SAFETY: no pointer arguments; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor owned by nothing else.
        Ok(Doorbell {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Makes the descriptor readable until [`Doorbell::answer`].
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: 8 readable bytes, as an eventfd write takes. It fails only when the count
        // would overflow, and then the bell is rung already.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears a ring (the descriptor is no longer readable); nothing if none waits.
    pub fn answer(&self) {
        let mut count: u64 = 0;
        // SAFETY: 8 writable bytes, as an eventfd read takes; non-blocking.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits for the ring's wake-ups rather than for its data: an edge-triggered epoll on the
/// ring's descriptor reports only that the program woke the ring's readers since the last
/// report. While copies flow the ring always holds a few, so waiting for data would return at
/// once and drain them one by one; this waits out its timeout unless the program asked for a
/// wake-up (the ring filling up).
pub struct WakeWait {
    epoll: OwnedFd,
}

impl WakeWait {
    /// Waits on `ring`'s wake-ups, and on `doorbell` being readable.
    pub fn new(ring: BorrowedFd<'_>, doorbell: BorrowedFd<'_>) -> io::Result<WakeWait> {
        // SAFETY: no pointer arguments; the result is checked before use.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor owned by nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `ev` is valid for the call.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                ring.as_raw_fd(),
                &mut ev,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // Level-triggered: readable until answered.
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 1,
        };
        // SAFETY: both descriptors are open; `ev` is valid for the call.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                doorbell.as_raw_fd(),
                &mut ev,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(WakeWait { epoll })
    }

    /// Waits until the program wakes the ring's readers, the doorbell rings, or `timeout`
    /// passed.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: room for one event, as told to the kernel.
        let rc = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }
}
