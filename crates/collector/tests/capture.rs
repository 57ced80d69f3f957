//! The collector on loopback: real VXLAN datagrams in, pcapng files out.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pcap_file::pcapng::{Block, PcapNgReader};
use tmirror_collector::{CaptureConfig, Collector, FilesConfig, FrameSink, PcapngFiles};
use tmirror_model::Vni;
use tmirror_packet::vxlan::encapsulate_payload;
use tmirror_scrape::Scrape;

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
    metrics: Option<std::net::SocketAddr>,
}

fn loopback() -> CaptureConfig {
    CaptureConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..CaptureConfig::default()
    }
}

impl Running {
    /// A collector writing the file series in `files`.
    fn start(config: CaptureConfig, files: FilesConfig) -> Running {
        Running::with_sinks(config, vec![Box::new(PcapngFiles::create(files).unwrap())])
    }

    fn with_sinks(config: CaptureConfig, sinks: Vec<Box<dyn FrameSink>>) -> Running {
        let mut collector = Collector::bind(config).unwrap();
        for s in sinks {
            collector.add_sink(s);
        }
        let addr = collector.local_addr();
        let metrics = collector.metrics_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || collector.run(s).unwrap());
        Running {
            stop,
            handle: Some(handle),
            addr,
            metrics,
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

/// The capture files in `dir`, as (VNI, index), sorted.
fn files_in(dir: &std::path::Path) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let rest = name.strip_prefix("vni-")?.strip_suffix(".pcapng")?;
            let (vni, n) = rest.split_once('-')?;
            Some((vni.parse().unwrap(), n.parse().unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// Sends `n` frames of `len` bytes (numbered from 0) of VNI 1 to `to`.
fn send_frames(to: std::net::SocketAddr, n: u32, len: usize) {
    let datagrams: Vec<Vec<u8>> = (0..n).map(|i| datagram(1, &frame(i, len))).collect();
    send_all(to, &datagrams);
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
    let c = Running::start(loopback(), FilesConfig::new(dir.path().join("out")));
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
    let mut files = FilesConfig::new(dir.path().to_path_buf());
    files.rotate_bytes = 4096;
    let c = Running::start(loopback(), files);
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
    assert_eq!(report.per_vni[&3].packets, 100);
    let files = files_in(dir.path()).len() as u32;
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
    let config = CaptureConfig {
        listen: taken.local_addr().unwrap(),
        ..CaptureConfig::default()
    };
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
    let c = Running::start(loopback(), FilesConfig::new(dir.path().to_path_buf()));
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
    // The same frame's copy cut to 46 bytes from a 1,400-byte frame (its IP header says so).
    let mut cut = f.clone();
    cut[16..18].copy_from_slice(&1386u16.to_be_bytes());
    send_all(c.addr, &[datagram(42, &f), datagram(42, &cut)]);
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
            "-e",
            "frame.interface_name",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, lengths) in lines.into_iter().zip([["46", "46"], ["1400", "46"]]) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[..3], ["10.0.0.1", "53", "vni42@127.0.0.1"], "{text}");
        // A cut copy is read as cut: the frame's length, and what was captured of it.
        assert_eq!(fields[4..6], lengths, "{text}");
        // The interface says nanoseconds: the time read back is the time received.
        let t: f64 = fields[3].parse().unwrap();
        assert!((now - t).abs() < 60.0, "frame time {t}, now {now}");
    }
}

/// Every frame of a file with the `if_name` of its interface.
fn named_frames(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut names = Vec::new();
    let mut out = Vec::new();
    while let Some(block) = r.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(i) => {
                let name = i
                    .options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .expect("every interface is named");
                names.push(name);
            }
            Block::EnhancedPacket(p) => {
                out.push((names[p.interface_id as usize].clone(), p.data.into_owned()))
            }
            _ => {}
        }
    }
    out
}

/// Sends `frames` of `vni`, waits until the collector has written them.
fn send_and_settle(c: &Running, vni: u32, frames: &[Vec<u8>]) {
    send_all(
        c.addr,
        &frames.iter().map(|f| datagram(vni, f)).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn files_rotate_by_time_at_the_next_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = FilesConfig::new(dir.path().to_path_buf());
    files.rotate_every = Some(Duration::from_millis(400));
    let c = Running::start(loopback(), files);
    let batches: Vec<Vec<Vec<u8>>> = (0..3)
        .map(|b| (0..5).map(|i| frame(b * 100 + i, 80)).collect())
        .collect();
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 {
            // Older than the rotation age when the next batch arrives.
            std::thread::sleep(Duration::from_millis(400));
        }
        send_and_settle(&c, 5, batch);
    }
    // Nothing arrives: no empty file is started.
    std::thread::sleep(Duration::from_millis(500));
    c.finish();
    assert_eq!(files_in(dir.path()), [(5, 0), (5, 1), (5, 2)]);
    for (n, batch) in batches.iter().enumerate() {
        assert_eq!(
            &frames(&dir.path().join(format!("vni-5-{n}.pcapng"))),
            batch
        );
    }
}

/// The kept files are the newest, in one unbroken run, and hold the last frames sent.
fn check_kept_tail(dir: &std::path::Path, vni: u32, sent: &[Vec<u8>]) -> usize {
    let kept = files_in(dir);
    let last = kept.last().unwrap().1;
    let first = kept[0].1;
    assert_eq!(
        kept,
        (first..=last).map(|n| (vni, n)).collect::<Vec<_>>(),
        "the newest files, none missing in between"
    );
    assert!(first > 0, "the oldest files were removed");
    let mut got = Vec::new();
    for (_, n) in &kept {
        got.extend(frames(&dir.join(format!("vni-{vni}-{n}.pcapng"))));
    }
    assert!(!got.is_empty());
    assert_eq!(got, sent[sent.len() - got.len()..], "the last frames sent");
    kept.len()
}

fn send_paced(c: &Running, vni: u32, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(10) {
        send_and_settle(c, vni, chunk);
    }
}

#[test]
fn keep_files_removes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = FilesConfig::new(dir.path().to_path_buf());
    files.rotate_bytes = 2048;
    files.keep_files = Some(3);
    let c = Running::start(loopback(), files);
    let sent: Vec<Vec<u8>> = (0..60).map(|i| frame(i, 200)).collect();
    send_paced(&c, 9, &sent);
    c.finish();
    assert_eq!(check_kept_tail(dir.path(), 9, &sent), 3);
}

#[test]
fn max_total_size_removes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = FilesConfig::new(dir.path().to_path_buf());
    files.rotate_bytes = 2048;
    files.max_total_bytes = Some(8192);
    let c = Running::start(loopback(), files);
    let sent: Vec<Vec<u8>> = (0..80).map(|i| frame(i, 200)).collect();
    send_paced(&c, 4, &sent);
    c.finish();
    let kept = check_kept_tail(dir.path(), 4, &sent);
    let total: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total <= 8192, "{total} bytes kept in {kept} files");
    // Files of about 2 KiB: the budget holds more than two of them.
    assert!(kept >= 3, "{kept} files kept");
}

#[test]
fn only_allowed_vnis_are_kept_and_reserved_bits_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = CaptureConfig {
        vni_allow: Some([10, 20].into()),
        ..loopback()
    };
    let c = Running::start(config, FilesConfig::new(dir.path().to_path_buf()));
    let a: Vec<Vec<u8>> = (0..4).map(|i| frame(i, 64)).collect();
    let mut datagrams = Vec::new();
    let mut expect_10 = Vec::new();
    let mut expect_20 = Vec::new();
    for (i, f) in a.iter().enumerate() {
        for vni in [10u32, 20, 30] {
            let mut d = datagram(vni, f);
            // RFC 7348: every bit but I is reserved, set to 0 by senders and ignored by
            // receivers. Some senders set them (VXLAN-GBP uses some as a policy group).
            match i {
                0 => {}
                1 => d[0] = 0xFF,
                2 => d[1..4].copy_from_slice(&[0xFF, 0xFF, 0xFF]),
                _ => {
                    d[0] = 0xFF;
                    d[1..4].copy_from_slice(&[0x80, 0x12, 0x34]);
                    d[7] = 0xFF;
                }
            }
            datagrams.push(d);
        }
        expect_10.push(f.clone());
        expect_20.push(f.clone());
    }
    let mut no_i = datagram(10, &a[0]);
    no_i[0] = 0xF7; // every flag but I: no valid VNI
    datagrams.push(no_i);
    send_all(c.addr, &datagrams);
    std::thread::sleep(Duration::from_millis(400));
    let report = c.finish();
    assert_eq!(files_in(dir.path()), [(10, 0), (20, 0)]);
    assert_eq!(frames(&dir.path().join("vni-10-0.pcapng")), expect_10);
    assert_eq!(frames(&dir.path().join("vni-20-0.pcapng")), expect_20);
    assert_eq!(report.not_allowed, 4);
    assert_eq!(report.invalid, 1);
    assert_eq!(report.per_vni.keys().copied().collect::<Vec<_>>(), [10, 20]);
}

#[test]
fn the_outer_source_keeps_identical_inner_frames_of_two_senders_apart() {
    let dir = tempfile::tempdir().unwrap();
    let c = Running::start(loopback(), FilesConfig::new(dir.path().to_path_buf()));
    let f1 = frame(1, 60);
    let f2 = frame(2, 60);
    // Two "hosts" on loopback, the same VNI, the same inner frames.
    let tx1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx2 = UdpSocket::bind("127.0.0.2:0").unwrap();
    for f in [&f1, &f2] {
        tx1.send_to(&datagram(7, f), c.addr).unwrap();
        tx2.send_to(&datagram(7, f), c.addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    c.finish();
    let got = named_frames(&dir.path().join("vni-7-0.pcapng"));
    let want: Vec<(String, Vec<u8>)> = vec![
        ("vni7@127.0.0.1".into(), f1.clone()),
        ("vni7@127.0.0.2".into(), f1),
        ("vni7@127.0.0.1".into(), f2.clone()),
        ("vni7@127.0.0.2".into(), f2),
    ];
    assert_eq!(got, want);
}

#[test]
fn several_workers_receive_and_write_everything() {
    let dir = tempfile::tempdir().unwrap();
    let config = CaptureConfig {
        workers: 4,
        ..loopback()
    };
    let c = Running::start(config, FilesConfig::new(dir.path().to_path_buf()));
    // 64 flows (outer source ports), as an agent's symmetric hash spreads them: SO_REUSEPORT
    // hashes each to one worker.
    let senders: Vec<UdpSocket> = (0..64)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut sent = Vec::new();
    for round in 0..5u32 {
        for (i, s) in senders.iter().enumerate() {
            let f = frame(round * 1000 + i as u32, 100);
            s.send_to(&datagram(8, &f), c.addr).unwrap();
            sent.push(f);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    std::thread::sleep(Duration::from_millis(400));
    let report = c.finish();
    assert_eq!(report.per_worker.len(), 4);
    assert!(
        report.per_worker.iter().all(|n| *n > 0),
        "every worker received some flows: {:?}",
        report.per_worker
    );
    assert_eq!(report.per_worker.iter().sum::<u64>(), 320);
    assert_eq!(report.queue_full, 0);
    let mut got = frames(&dir.path().join("vni-8-0.pcapng"));
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
}

/// Fetches `path` from the collector's metrics server.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// A sink that holds the writer until released, to fill the queue.
struct Stalled(std::sync::mpsc::Receiver<()>);

impl FrameSink for Stalled {
    fn write(&mut self, _: &tmirror_collector::Frame<'_>) -> std::io::Result<()> {
        let _ = self.0.recv_timeout(Duration::from_secs(10));
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sample(metrics: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let found: Vec<f64> = metrics
        .samples(name)
        .into_iter()
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k).map(String::as_str) == Some(v)))
        .map(|s| s.value)
        .collect();
    assert_eq!(found.len(), 1, "one sample {name} {label:?}: {found:?}");
    found[0]
}

fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let (head, body) = http_get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("openmetrics-text"), "{head}");
    Scrape::of(&body)
}

#[test]
fn metrics_count_received_written_and_every_drop_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = CaptureConfig {
        vni_allow: Some([1, 2].into()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..loopback()
    };
    let c = Running::start(config, FilesConfig::new(dir.path().to_path_buf()));
    let m = c.metrics.unwrap();
    let (head, body) = http_get(m, "/healthz");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    assert!(http_get(m, "/nothing").0.starts_with("HTTP/1.1 404"));
    let mut datagrams = Vec::new();
    datagrams.extend((0..5).map(|i| datagram(1, &frame(i, 100))));
    datagrams.extend((0..2).map(|i| datagram(2, &frame(i, 50))));
    datagrams.extend((0..3).map(|i| datagram(3, &frame(i, 50))));
    datagrams.extend([vec![1u8; 3], vec![0u8; 20]]);
    send_all(c.addr, &datagrams);
    std::thread::sleep(Duration::from_millis(400));
    let s = scrape(m);
    assert_eq!(
        sample(&s, "tmirror_capture_received_datagrams_total", None),
        12.0
    );
    assert_eq!(
        sample(
            &s,
            "tmirror_capture_worker_received_datagrams_total",
            Some(("worker", "0"))
        ),
        12.0
    );
    for (vni, n, bytes) in [("1", 5.0, 500.0), ("2", 2.0, 100.0)] {
        let l = Some(("vni", vni));
        assert_eq!(sample(&s, "tmirror_capture_received_frames_total", l), n);
        assert_eq!(sample(&s, "tmirror_capture_written_frames_total", l), n);
        assert_eq!(sample(&s, "tmirror_capture_written_bytes_total", l), bytes);
    }
    // A dropped VNI gets no series of its own.
    assert!(!s
        .all()
        .iter()
        .any(|(_, x)| x.labels.get("vni").map(String::as_str) == Some("3")));
    for (reason, n) in [
        ("vni_not_allowed", 3.0),
        ("malformed", 2.0),
        ("queue_full", 0.0),
        ("tap_error", 0.0),
    ] {
        assert_eq!(
            sample(
                &s,
                "tmirror_capture_dropped_total",
                Some(("reason", reason))
            ),
            n,
            "{reason}"
        );
    }
    c.finish();
}

#[test]
fn a_full_queue_drops_and_counts() {
    let (release, held) = std::sync::mpsc::channel();
    let config = CaptureConfig {
        queue: 1,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..loopback()
    };
    let c = Running::with_sinks(config, vec![Box::new(Stalled(held))]);
    let m = c.metrics.unwrap();
    send_frames(c.addr, 10, 60);
    std::thread::sleep(Duration::from_millis(300));
    let s = scrape(m);
    let full = sample(
        &s,
        "tmirror_capture_dropped_total",
        Some(("reason", "queue_full")),
    );
    // One frame in the stalled writer, at most one in the queue.
    assert!((8.0..=9.0).contains(&full), "{full}");
    for _ in 0..10 {
        let _ = release.send(());
    }
    let report = c.finish();
    assert_eq!(report.queue_full, full as u64);
    assert_eq!(report.per_vni[&1].packets + report.queue_full, 10);
}

/// The queue holds a bounded number of bytes too: large frames behind a stalled writer are
/// dropped and counted once the bytes are reached, however many frames fit.
#[test]
fn a_queue_full_of_bytes_drops_and_counts() {
    let (release, held) = std::sync::mpsc::channel();
    let config = CaptureConfig {
        queue: 1000,
        queue_bytes: 20_000,
        ..loopback()
    };
    let c = Running::with_sinks(config, vec![Box::new(Stalled(held))]);
    // 8,000-byte frames: one in the stalled writer, two in the queue's 20,000 bytes.
    send_frames(c.addr, 10, 8000);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        let _ = release.send(());
    }
    let report = c.finish();
    assert!(
        (7..=8).contains(&report.queue_full),
        "{}",
        report.queue_full
    );
    assert_eq!(report.per_vni[&1].packets + report.queue_full, 10);
}

/// A sink that takes `.0` frames, then fails as a full disk does.
struct FailsAfter(usize);

impl FrameSink for FailsAfter {
    fn write(&mut self, _: &tmirror_collector::Frame<'_>) -> std::io::Result<()> {
        if self.0 == 0 {
            return Err(std::io::ErrorKind::StorageFull.into());
        }
        self.0 -= 1;
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that counts the frames it takes.
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl FrameSink for Counting {
    fn write(&mut self, _: &tmirror_collector::Frame<'_>) -> std::io::Result<()> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An output that fails (a full disk) takes no more frames, and the others go on: the files
/// failing does not stop an IDS's feed. It is counted in the metrics.
#[test]
fn a_failed_output_leaves_the_others_going() {
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let config = CaptureConfig {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..loopback()
    };
    let sinks: Vec<Box<dyn FrameSink>> =
        vec![Box::new(FailsAfter(2)), Box::new(Counting(taken.clone()))];
    let c = Running::with_sinks(config, sinks);
    let m = c.metrics.unwrap();
    send_frames(c.addr, 10, 60);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failures = loop {
        let failures = sample(&scrape(m), "tmirror_capture_output_failures_total", None);
        if failures > 0.0 || std::time::Instant::now() > deadline {
            break failures;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Said to a supervisor too: the failed output takes nothing until a restart.
    let (health, _) = http_get(m, "/healthz");
    let report = c.finish();
    assert_eq!(failures, 1.0);
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert_eq!(taken.load(Ordering::Relaxed), 10);
    assert_eq!(report.per_vni[&1].packets, 10);
}

/// Once every output has failed, the collector stops with the failure.
#[test]
fn the_last_output_failing_stops_the_collector() {
    let mut collector = Collector::bind(loopback()).unwrap();
    collector.add_sink(Box::new(FailsAfter(0)));
    let addr = collector.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let stop = stop.clone();
        std::thread::spawn(move || collector.run(stop))
    };
    send_all(addr, &[datagram(1, &frame(0, 60))]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !run.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let e = run.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("writing frames failed"), "{e}");
}
