//! What the AF_PACKET sender needs to write a complete outer frame to a target: the device
//! the main routing table sends it by, that device's MAC address, the next hop's MAC address
//! from the kernel's neighbour table, and the source address. Read from `/proc/net/route` and
//! `/proc/net/arp` of the agent's network namespace. Anything not simply answered there (no
//! route, an unresolved neighbour, a non-Ethernet device, a local target) gives `None`, and
//! the copies take the raw-socket path, which lets the kernel resolve the neighbour.

use std::net::{Ipv4Addr, UdpSocket};

use super::packet_send::hardware_address;
use super::ring::interface_index;

/// How to reach one target at layer 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub interface: String,
    pub ifindex: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
}

/// One IPv4 route of `/proc/net/route`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    interface: String,
    destination: u32,
    gateway: Option<Ipv4Addr>,
    mask: u32,
    metric: u32,
}

const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;
const ATF_COM: u32 = 0x2;

/// `/proc/net/route` prints addresses as the hexadecimal of their in-memory (network order)
/// u32, read here on a little- or big-endian host alike.
fn proc_addr(hex: &str) -> Option<u32> {
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some(u32::from_be_bytes(v.to_ne_bytes()))
}

fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & RTF_UP == 0 {
                return None;
            }
            let gateway = proc_addr(f[2])?;
            Some(Route {
                interface: f[0].to_string(),
                destination: proc_addr(f[1])?,
                gateway: (flags & RTF_GATEWAY != 0 && gateway != 0)
                    .then(|| Ipv4Addr::from(gateway)),
                metric: f[6].parse().ok()?,
                mask: proc_addr(f[7])?,
            })
        })
        .collect()
}

/// The most specific route to `target` (lowest metric among equals).
fn best_route(routes: &[Route], target: Ipv4Addr) -> Option<&Route> {
    let t = u32::from(target);
    routes
        .iter()
        .filter(|r| t & r.mask == r.destination & r.mask)
        .min_by_key(|r| (std::cmp::Reverse(r.mask.count_ones()), r.metric))
}

/// The completed neighbour entry for `ip` on `interface`.
fn parse_neighbour(text: &str, ip: Ipv4Addr, interface: &str) -> Option<[u8; 6]> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[5] != interface || f[0].parse::<Ipv4Addr>().ok()? != ip {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
        if flags & ATF_COM == 0 {
            return None;
        }
        let mut mac = [0u8; 6];
        let mut parts = f[3].split(':');
        for b in &mut mac {
            *b = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        (mac != [0; 6]).then_some(mac)
    })
}

/// How to reach `target` at layer 2 now, or `None` (see the module's comment). `src_ip`:
/// the outer source address; `None`: the kernel's choice for the target.
pub fn resolve(target: Ipv4Addr, src_ip: Option<Ipv4Addr>) -> Option<NextHop> {
    let routes = parse_routes(&std::fs::read_to_string("/proc/net/route").ok()?);
    let route = best_route(&routes, target)?;
    if route.interface == "lo" {
        return None;
    }
    let hop = route.gateway.unwrap_or(target);
    let arp = std::fs::read_to_string("/proc/net/arp").ok()?;
    let dst_mac = parse_neighbour(&arp, hop, &route.interface)?;
    let src_mac = hardware_address(&route.interface).ok()?;
    let ifindex = interface_index(&route.interface).ok()?;
    let src_ip = match src_ip {
        Some(ip) if !ip.is_unspecified() => ip,
        // The address the kernel would pick: connect a UDP socket (no packet is sent).
        _ => {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
            s.connect((target, 4789)).ok()?;
            match s.local_addr().ok()?.ip() {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => return None,
            }
        }
    };
    Some(NextHop {
        interface: route.interface.clone(),
        ifindex,
        src_mac,
        dst_mac,
        src_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    #[test]
    fn picks_the_most_specific_route_and_its_gateway() {
        let text = format!(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t{}\t{}\t0003\t0\t0\t100\t{}\t0\t0\t0\n\
             ul0\t{}\t{}\t0001\t0\t0\t0\t{}\t0\t0\t0\n\
             down0\t{}\t{}\t0000\t0\t0\t0\t{}\t0\t0\t0\n",
            hex(Ipv4Addr::UNSPECIFIED),
            hex(Ipv4Addr::new(10, 0, 0, 1)),
            hex(Ipv4Addr::UNSPECIFIED),
            hex(Ipv4Addr::new(192, 168, 77, 0)),
            hex(Ipv4Addr::UNSPECIFIED),
            hex(Ipv4Addr::new(255, 255, 255, 0)),
            hex(Ipv4Addr::new(192, 168, 77, 0)),
            hex(Ipv4Addr::UNSPECIFIED),
            hex(Ipv4Addr::new(255, 255, 255, 128)),
        );
        let routes = parse_routes(&text);
        assert_eq!(routes.len(), 2, "routes not up are skipped");
        let r = best_route(&routes, Ipv4Addr::new(192, 168, 77, 2)).unwrap();
        assert_eq!((r.interface.as_str(), r.gateway), ("ul0", None));
        let r = best_route(&routes, Ipv4Addr::new(8, 8, 8, 8)).unwrap();
        assert_eq!(
            (r.interface.as_str(), r.gateway),
            ("eth0", Some(Ipv4Addr::new(10, 0, 0, 1)))
        );
    }

    #[test]
    fn takes_only_completed_neighbours_of_the_device() {
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
                    192.168.77.2     0x1         0x2         aa:bb:cc:dd:ee:0f     *        ul0\n\
                    192.168.77.3     0x1         0x0         00:00:00:00:00:00     *        ul0\n\
                    10.0.0.1         0x1         0x2         01:02:03:04:05:06     *        eth0\n";
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            parse_neighbour(text, ip("192.168.77.2"), "ul0"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
        );
        assert_eq!(parse_neighbour(text, ip("192.168.77.3"), "ul0"), None);
        assert_eq!(parse_neighbour(text, ip("10.0.0.1"), "ul0"), None);
    }
}
