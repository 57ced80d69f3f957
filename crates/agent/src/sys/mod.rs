//! The only code of tmirror that talks to the kernel below the socket API: the capture ring,
//! the senders, the next-hop lookup and the link announcements. Every `unsafe` block states why it is sound.

pub mod address_filter;
pub mod bpf;
pub mod link_watch;
pub mod mmsg;
pub mod nexthop;
pub mod packet_send;
pub mod raw_send;
pub mod ring;

/// Names of the network interfaces of the agent's network namespace.
pub fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry (or null on failure),
    // which is read and then freed exactly once.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return names;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            names.push(
                std::ffi::CStr::from_ptr((*p).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    names.sort();
    names
}
