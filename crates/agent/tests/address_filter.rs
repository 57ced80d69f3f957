//! The EIP address filter in the kernel: attached to a real AF_PACKET socket on the loopback
//! interface (on its own socket, on the agent's capture ring through a snap length change, and
//! by the AF_PACKET capture back-end for a source with a selector), it lets through exactly the
//! frames to or from the address. Needs root (AF_PACKET); skips, saying so, otherwise. Uses
//! only loopback addresses of its own (127.83.16.0/24).

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tmirror_agent::capture::{AddressSelector, AfPacket, CaptureBackend, CaptureSource};
use tmirror_agent::sys::address_filter::address_filter;
use tmirror_agent::sys::ring::{interface_index, RingConfig, RxRing, OWN_COPY_MARK};

const EIP: Ipv4Addr = Ipv4Addr::new(127, 83, 16, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 83, 16, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 83, 16, 9);
/// The ring test's EIP: the tests run at once on the same loopback, each with its address.
const RING_EIP: Ipv4Addr = Ipv4Addr::new(127, 83, 16, 3);
/// The capture back-end test's EIP.
const SEAM_EIP: Ipv4Addr = Ipv4Addr::new(127, 83, 16, 4);

fn capture_socket() -> OwnedFd {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut program = address_filter(EIP.into(), OWN_COPY_MARK, 256);
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, alive for the call; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "SO_ATTACH_FILTER: {}",
        std::io::Error::last_os_error()
    );
    // A bound on every read: the test never waits more than this for a frame.
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: plain setsockopt with a timeval.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: sockaddr_ll is plain data; zero is valid for every field.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = all;
    sll.sll_ifindex = interface_index("lo").unwrap() as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
    fd
}

/// The next frame the loopback interface received (not the copy of what it sent), or `None`
/// when none came within the socket's timeout.
fn next_frame(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    loop {
        // SAFETY: sockaddr_ll is plain data.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are valid for the sizes given.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return None;
        }
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            return Some(buf[..n as usize].to_vec());
        }
    }
}

fn addresses(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    let ip = &frame[14..];
    (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
    )
}

fn payload(frame: &[u8]) -> String {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    String::from_utf8_lossy(&frame[14 + ihl + 8..]).into_owned()
}

#[test]
fn only_frames_to_or_from_the_address_reach_the_socket() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the EIP address filter test needs root (AF_PACKET)");
        return;
    }
    let capture = capture_socket();
    // Receivers, so that no ICMP port-unreachable adds frames.
    let at_eip = UdpSocket::bind((EIP, 0)).unwrap();
    let at_other = UdpSocket::bind((OTHER, 0)).unwrap();
    let from_client = UdpSocket::bind((CLIENT, 0)).unwrap();
    let from_eip = UdpSocket::bind((EIP, 0)).unwrap();
    let to_eip = at_eip.local_addr().unwrap();
    let to_other = at_other.local_addr().unwrap();

    // Loopback delivers in order: what is sent before the end marker arrives before it.
    let mut expected = Vec::new();
    for i in 0..3 {
        from_client
            .send_to(format!("other-{i}").as_bytes(), to_other)
            .unwrap();
        let ingress = format!("to-eip-{i}");
        from_client.send_to(ingress.as_bytes(), to_eip).unwrap();
        expected.push(ingress);
        let egress = format!("from-eip-{i}");
        from_eip.send_to(egress.as_bytes(), to_other).unwrap();
        expected.push(egress);
    }
    from_client.send_to(b"end", to_eip).unwrap();
    expected.push("end".into());

    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("end") {
        assert!(
            seen.len() <= expected.len(),
            "more frames than sent: {seen:?}"
        );
        let frame = next_frame(&capture).expect("the end marker within 5 s");
        let (src, dst) = addresses(&frame);
        assert!(src == EIP || dst == EIP, "{src} -> {dst} passed the filter");
        seen.push(payload(&frame));
    }
    assert_eq!(seen, expected);
}

/// Frames the ring's interface received (not its own sent copies) up to the `end` marker, as
/// (payload, captured length); fails after 5 s.
fn ring_frames_until_end(ring: &mut RxRing, eip: Ipv4Addr) -> Vec<(String, usize)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(p, _): &(String, usize)| p.starts_with("end"))
    {
        assert!(
            Instant::now() < deadline,
            "no end marker within 5 s: {seen:?}"
        );
        ring.wait(100).unwrap();
        ring.drain_block(|f| {
            if !f.outgoing {
                let (src, dst) = addresses(f.data);
                assert!(src == eip || dst == eip, "{src} -> {dst} reached the ring");
                seen.push((payload(f.data), f.data.len()));
            }
        });
    }
    seen
}

#[test]
fn a_ring_keeps_its_address_filter_when_the_snap_length_changes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the EIP capture ring test needs root (AF_PACKET)");
        return;
    }
    let config = RingConfig {
        block_size: 1 << 16,
        block_count: 4,
        retire_ms: 5,
    };
    let mut ring = RxRing::open("lo", config, 256, Some(RING_EIP.into())).unwrap();
    let at_eip = UdpSocket::bind((RING_EIP, 0)).unwrap();
    let at_other = UdpSocket::bind((OTHER, 0)).unwrap();
    let from_client = UdpSocket::bind((CLIENT, 0)).unwrap();
    let to_eip = at_eip.local_addr().unwrap();
    let to_other = at_other.local_addr().unwrap();
    let long = "x".repeat(200);
    let round = |tag: &str| {
        from_client
            .send_to(format!("other-{tag}-{long}").as_bytes(), to_other)
            .unwrap();
        from_client
            .send_to(format!("eip-{tag}-{long}").as_bytes(), to_eip)
            .unwrap();
        from_client
            .send_to(format!("end-{tag}").as_bytes(), to_eip)
            .unwrap();
    };
    round("a");
    let seen = ring_frames_until_end(&mut ring, RING_EIP);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].0.starts_with("eip-a-"));
    assert_eq!(seen[0].1, 14 + 20 + 8 + 6 + 200, "shorter than 256: whole");

    // A shorter snap length: still only the address's frames, now cut.
    ring.set_snap_len(64).unwrap();
    round("b");
    let seen = ring_frames_until_end(&mut ring, RING_EIP);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].0.starts_with("eip-b-"));
    assert_eq!(seen[0].1, 64, "cut at the new snap length");
}

#[test]
fn the_af_packet_back_end_applies_a_sources_address_selector() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the capture back-end selector test needs root (AF_PACKET)");
        return;
    }
    let backend = AfPacket {
        ring: RingConfig {
            block_size: 1 << 16,
            block_count: 4,
            retire_ms: 5,
        },
    };
    let source = CaptureSource {
        interface: "lo".into(),
        snap_len: 256,
        selector: Some(AddressSelector {
            address: SEAM_EIP.into(),
        }),
    };
    let mut capture = backend.open(&source).unwrap();
    let at_eip = UdpSocket::bind((SEAM_EIP, 0)).unwrap();
    let at_other = UdpSocket::bind((OTHER, 0)).unwrap();
    let from_client = UdpSocket::bind((CLIENT, 0)).unwrap();
    from_client
        .send_to(b"other", at_other.local_addr().unwrap())
        .unwrap();
    from_client
        .send_to(b"eip", at_eip.local_addr().unwrap())
        .unwrap();
    from_client
        .send_to(b"end", at_eip.local_addr().unwrap())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen: Vec<String> = Vec::new();
    while !seen.iter().any(|p| p == "end") {
        assert!(
            Instant::now() < deadline,
            "no end marker within 5 s: {seen:?}"
        );
        capture.wait(Duration::from_millis(100)).unwrap();
        capture.drain(&mut |f| {
            if !f.outgoing {
                let (src, dst) = addresses(f.data);
                assert!(
                    src == SEAM_EIP || dst == SEAM_EIP,
                    "{src} -> {dst} reached the capture"
                );
                seen.push(payload(f.data));
            }
        });
    }
    assert_eq!(seen, ["eip", "end"]);
}
