//! The next-hop lookup over rtnetlink, as root, in network namespaces this test creates: a
//! gateway route and an on-link target, IPv4 and IPv6 (the IPv6 gateway link-local), a
//! neighbour the kernel does not know, a configured source, and a route chosen by an `ip rule`
//! on the copies' own mark.

use std::ffi::CString;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use tmirror_agent::sys::nexthop::{Neighbour, Netlink, NextHop, Way};
use tmirror_netlab::Lab;

const A_MAC: [u8; 6] = [2, 0, 0, 0, 0x90, 1];
const A1_MAC: [u8; 6] = [2, 0, 0, 0, 0x91, 1];
const B_MAC: [u8; 6] = [2, 0, 0, 0, 0x90, 2];
const B1_MAC: [u8; 6] = [2, 0, 0, 0, 0x91, 2];

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs `f` on a thread that entered namespace `ns` (only that thread changes namespace).
fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(format!("/run/netns/{ns}")).expect("namespace file");
    std::thread::spawn(move || {
        // SAFETY: setns(2) on a descriptor we hold open; it changes this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("lookup thread")
}

fn index(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs `ip ARGS` in the lab's namespace `ns`, the arguments written as on a command line.
fn ip_in(lab: &Lab, ns: &str, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    lab.ip(ns, &args).unwrap();
}

/// A neighbour namespace `a` knows without traffic (`nud permanent`), of either family.
fn permanent_neighbour(lab: &Lab, addr: &str, m: [u8; 6], dev: &str) {
    let family = if addr.contains(':') { "-6 " } else { "" };
    let lladdr = mac(m);
    ip_in(
        lab,
        "a",
        &format!("{family}neigh replace {addr} lladdr {lladdr} dev {dev} nud permanent"),
    );
}

#[test]
fn the_kernel_answers_routes_neighbours_and_sources() {
    if !tmirror_netlab::is_root() {
        eprintln!("SKIPPED nexthop: needs root for network namespaces");
        return;
    }
    let mut lab = Lab::new("tmnh").unwrap();
    lab.add_namespace("a").unwrap();
    lab.add_namespace("b").unwrap();
    lab.add_veth("a", "eth0", "b", "eth0").unwrap();
    lab.add_veth("a", "eth1", "b", "eth1").unwrap();
    let a = lab.ns("a");
    for (ns, dev, m) in [
        ("a", "eth0", A_MAC),
        ("a", "eth1", A1_MAC),
        ("b", "eth0", B_MAC),
        ("b", "eth1", B1_MAC),
    ] {
        lab.ip(ns, &["link", "set", dev, "address", &mac(m)])
            .unwrap();
    }
    lab.add_address("a", "eth0", "192.168.90.1/24").unwrap();
    lab.add_address("a", "eth0", "fd90::1/64").unwrap();
    lab.add_address("a", "eth1", "192.168.91.1/24").unwrap();
    lab.add_address("b", "eth0", "192.168.90.2/24").unwrap();
    lab.add_address("b", "eth0", "fd90::2/64").unwrap();
    lab.add_address("b", "eth0", "fe80::b/64").unwrap();
    lab.add_address("b", "eth1", "192.168.91.2/24").unwrap();
    // Collectors behind b: by a gateway for IPv4, by b's link-local address for IPv6.
    ip_in(&lab, "a", "route add 10.90.0.9 via 192.168.90.2");
    ip_in(&lab, "a", "-6 route add fd99::9 via fe80::b dev eth0");
    // The neighbours a knows (permanent: no traffic needed); fd90::2 it does not know.
    permanent_neighbour(&lab, "192.168.90.2", B_MAC, "eth0");
    permanent_neighbour(&lab, "fe80::b", B_MAC, "eth0");
    permanent_neighbour(&lab, "192.168.91.2", B1_MAC, "eth1");
    // One nothing answered.
    ip_in(&lab, "a", "neigh add 192.168.90.77 dev eth0 nud failed");

    let answers = in_namespace(&a, || {
        let mut nl = Netlink::open().unwrap();
        let eth0 = index("eth0");
        let hop = |src: &str| NextHop {
            ifindex: eth0,
            src_mac: A_MAC,
            dst_mac: B_MAC,
            src_ip: ip(src),
        };
        // by a gateway
        assert_eq!(
            nl.resolve(ip("10.90.0.9"), None),
            Way::Frame(hop("192.168.90.1"))
        );
        let r = nl.route(ip("10.90.0.9"), None).unwrap();
        assert_eq!(r.gateway, Some(ip("192.168.90.2")));
        // on-link, and by a link-local IPv6 gateway
        assert_eq!(
            nl.resolve(ip("192.168.90.2"), None),
            Way::Frame(hop("192.168.90.1"))
        );
        assert_eq!(nl.resolve(ip("fd99::9"), None), Way::Frame(hop("fd90::1")));
        // a configured source is kept
        assert_eq!(
            nl.resolve(ip("fd99::9"), Some(ip("fd90::1"))),
            Way::Frame(hop("fd90::1"))
        );
        // a neighbour the kernel does not know: the raw socket, with the source to use
        assert_eq!(
            nl.resolve(ip("fd90::2"), None),
            Way::Raw(Some(ip("fd90::1")))
        );
        // a neighbour whose resolution failed: the raw socket would say sent, and the
        // kernel drop
        assert_eq!(
            nl.neighbour(eth0, ip("192.168.90.77")).unwrap(),
            Neighbour::Failed
        );
        assert_eq!(
            nl.resolve(ip("192.168.90.77"), None),
            Way::Unreachable(ip("192.168.90.1"))
        );
        assert_eq!(
            nl.neighbour(eth0, ip("192.168.90.2")).unwrap(),
            Neighbour::Usable(B_MAC)
        );
        // no route at all
        assert!(nl.route(ip("203.0.113.9"), None).is_err());
        assert_eq!(nl.resolve(ip("203.0.113.9"), None), Way::Raw(None));
        index("eth1")
    });

    // Copies carry the mark 0x746d6972: a rule on it sends them by table 200, over eth1.
    ip_in(
        &lab,
        "a",
        "route add 10.90.0.9 via 192.168.91.2 dev eth1 table 200",
    );
    ip_in(&lab, "a", "rule add fwmark 0x746d6972 lookup 200 pref 100");
    let eth1 = answers;
    let way = in_namespace(&a, || {
        Netlink::open().unwrap().resolve(ip("10.90.0.9"), None)
    });
    assert_eq!(
        way,
        Way::Frame(NextHop {
            ifindex: eth1,
            src_mac: A1_MAC,
            dst_mac: B1_MAC,
            src_ip: ip("192.168.91.1"),
        }),
        "the rule on the copies' mark chooses table 200"
    );
}
