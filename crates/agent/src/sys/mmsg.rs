//! The `sendmmsg` loop both senders share: one header per datagram or frame, non-blocking,
//! and the kernel's answer turned into "which ones went".

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, OwnedFd};

/// Rebuilds `msgs` with one header per entry of `addrs` and `iovs` (same length).
pub fn fill_headers<A>(msgs: &mut Vec<libc::mmsghdr>, addrs: &mut [A], iovs: &mut [libc::iovec]) {
    debug_assert_eq!(addrs.len(), iovs.len());
    msgs.clear();
    for (addr, iov) in addrs.iter_mut().zip(iovs.iter_mut()) {
        // SAFETY: mmsghdr is plain data; zero is a valid value for every field.
        let mut m: libc::mmsghdr = unsafe { zeroed() };
        m.msg_hdr.msg_name = (addr as *mut A).cast();
        m.msg_hdr.msg_namelen = size_of::<A>() as libc::socklen_t;
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        msgs.push(m);
    }
}

/// Sends every message without waiting and marks in `sent` the ones the kernel took; returns
/// how many. A message the kernel refuses (no route, device down, ...) is skipped; when the
/// socket's buffer or the device is full the rest are dropped rather than waited for.
///
/// # Safety
///
/// Every header in `msgs` must point at an address and a buffer that stay alive and unmoved
/// for the duration of the call (as [`fill_headers`] builds them from live slices).
pub unsafe fn send_all(fd: &OwnedFd, msgs: &mut [libc::mmsghdr], sent: &mut Vec<bool>) -> usize {
    let n = msgs.len();
    sent.clear();
    sent.resize(n, false);
    let mut next = 0;
    let mut taken = 0;
    while next < n {
        // SAFETY: the caller guarantees the headers' pointers; `next < n` keeps the slice in
        // bounds.
        let rc = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs[next..].as_mut_ptr(),
                (n - next) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EBUSY) => break,
                _ => {
                    next += 1;
                    continue;
                }
            }
        }
        let rc = rc as usize;
        sent[next..next + rc].fill(true);
        taken += rc;
        next += rc.max(1);
    }
    taken
}
