//! The collector on loopback: real VXLAN datagrams in, pcapng files out.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pcap_file::pcapng::{Block, PcapNgReader};
use tmirror_collector::{CaptureConfig, Collector};
use tmirror_model::Vni;
use tmirror_packet::vxlan::encapsulate_payload;

fn frame(i: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[12] = 0x08; // IPv4 ethertype; the collector does not care what the inner frame is
    f[..4].copy_from_slice(&i.to_be_bytes());
    f
}

fn datagram(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; inner.len() + 8];
    let n = encapsulate_payload(Vni::new(i64::from(vni)).unwrap(), inner, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Every Ethernet frame of a pcapng file, after checking its interface is Ethernet.
fn frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(block) = r.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(i) => assert_eq!(i.linktype, pcap_file::DataLink::ETHERNET),
            Block::EnhancedPacket(p) => {
                assert_eq!(p.original_len as usize, p.data.len());
                out.push(p.data.into_owned());
            }
            _ => {}
        }
    }
    out
}

/// The complete frames of a file that may still be being written.
fn frames_so_far(path: &std::path::Path) -> Vec<Vec<u8>> {
    let Ok(mut r) = PcapNgReader::new(std::fs::File::open(path).unwrap()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(Ok(block)) = r.next_block() {
        if let Block::EnhancedPacket(p) = block {
            out.push(p.data.into_owned());
        }
    }
    out
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<tmirror_collector::CaptureReport>>,
    addr: std::net::SocketAddr,
}

impl Running {
    fn start(config: CaptureConfig) -> Running {
        let collector = Collector::bind(config).unwrap();
        let addr = collector.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || collector.run(s).unwrap());
        Running {
            stop,
            handle: Some(handle),
            addr,
        }
    }

    fn finish(mut self) -> tmirror_collector::CaptureReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn send_all(to: std::net::SocketAddr, datagrams: &[Vec<u8>]) {
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        tx.send_to(d, to).unwrap();
    }
}

#[test]
fn frames_land_in_one_file_series_per_vni_and_garbage_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::new(dir.path().join("out"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let c = Running::start(config);
    let a: Vec<Vec<u8>> = (0..50).map(|i| frame(i, 60 + i as usize)).collect();
    let b: Vec<Vec<u8>> = (0..20).map(|i| frame(1000 + i, 96)).collect();
    let mut datagrams = Vec::new();
    for (i, f) in a.iter().enumerate() {
        datagrams.push(datagram(7, f));
        if let Some(g) = b.get(i) {
            datagrams.push(datagram(16_777_215, g));
        }
    }
    datagrams.push(vec![0u8; 4]); // too short
    datagrams.push({
        let mut d = datagram(7, &a[0]);
        d[0] = 0; // I flag clear
        d
    });
    datagrams.push(datagram(7, &[]).into_iter().take(8).collect()); // nothing inside
    send_all(c.addr, &datagrams);
    // Readable while the collector runs: flushed once the socket is quiet.
    let file_a = dir.path().join("out/vni-7-0.pcapng");
    let mut seen = Vec::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if file_a.exists() {
            seen = frames_so_far(&file_a);
            if seen.len() == a.len() {
                break;
            }
        }
    }
    assert_eq!(
        seen, a,
        "frames readable while running, in order, byte for byte"
    );
    let report = c.finish();
    assert_eq!(frames(&dir.path().join("out/vni-16777215-0.pcapng")), b);
    assert_eq!(report.per_vni[&7].packets, 50);
    assert_eq!(
        report.per_vni[&7].bytes,
        a.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(report.per_vni[&16_777_215].packets, 20);
    assert_eq!(report.invalid, 3);
    let text = report.to_string();
    assert!(
        text.contains("16777215") && text.contains("invalid datagrams: 3"),
        "{text}"
    );
}

#[test]
fn files_rotate_by_size_without_losing_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.rotate_bytes = 4096;
    let c = Running::start(config);
    let sent: Vec<Vec<u8>> = (0..100).map(|i| frame(i, 200)).collect();
    // Paced a little so a 2-core machine's socket buffer never overflows in the test.
    for chunk in sent.chunks(20) {
        send_all(
            c.addr,
            &chunk.iter().map(|f| datagram(3, f)).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = c.finish();
    let files = report.per_vni[&3].files;
    assert!(
        files >= 4,
        "100 frames of 200 bytes in 4 KiB files: {files} files"
    );
    let mut got = Vec::new();
    for n in 0..files {
        let path = dir.path().join(format!("vni-3-{n}.pcapng"));
        let part = frames(&path);
        assert!(!part.is_empty(), "{} is empty", path.display());
        got.extend(part);
    }
    assert!(!dir.path().join(format!("vni-3-{files}.pcapng")).exists());
    assert_eq!(got, sent);
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::new(dir.path().to_path_buf());
    config.listen = taken.local_addr().unwrap();
    let e = Collector::bind(config).err().expect("the port is taken");
    assert!(
        e.to_string().contains("cannot receive on 127.0.0.1:"),
        "{e}"
    );
}

/// The files open in Wireshark's reader. Needs `tshark` (scripts/deps.sh installs it); without
/// it the test says so and passes, since the pcap-file reader above already checks the format.
#[test]
fn tshark_reads_the_files() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: tshark is not installed (apt-get install tshark)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = CaptureConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let c = Running::start(config);
    // A real IPv4/UDP frame: 14 bytes Ethernet, 20 bytes IPv4, 8 bytes UDP, 4 bytes payload.
    let mut f = vec![0u8; 46];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&32u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&5000u16.to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    send_all(c.addr, &[datagram(42, &f), datagram(42, &f)]);
    std::thread::sleep(Duration::from_millis(400));
    c.finish();
    let out = std::process::Command::new("tshark")
        .args([
            "-r",
            dir.path().join("vni-42-0.pcapng").to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "udp.dstport",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["10.0.0.1\t53", "10.0.0.1\t53"],
        "{text}"
    );
}
