//! `tmirror capture` as people and IDS tools use it: the live pcapng stream read by `tshark`
//! and the TAP interfaces per VNI read with packet sockets in a namespace.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tmirror");

/// Children killed (and reaped) when the test ends, also on failure.
struct Reap(Vec<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A real Ethernet/IPv4/UDP frame from 10.0.0.`src` to 10.0.0.2, UDP destination `port`.
fn udp_frame(src: u8, port: u16) -> Vec<u8> {
    let mut f = vec![0u8; 46];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&32u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, src]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&5000u16.to_be_bytes());
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    ipv4_checksum(&mut f);
    f
}

/// Sets the IPv4 header checksum: the kernel drops a frame with a wrong one before any socket
/// could see it, which would make the TAP test's broadcast check prove nothing.
fn ipv4_checksum(f: &mut [u8]) {
    f[24..26].copy_from_slice(&[0, 0]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    let mut d = vec![0x08, 0, 0, 0, v[1], v[2], v[3], 0];
    d.extend_from_slice(inner);
    d
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_log(path: &std::path::Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `tmirror capture --out -` on a free loopback port, logging to `log`, reaped with
/// `reap`: the address it listens on and its standard output.
fn stream_collector(log: &std::path::Path, reap: &mut Reap) -> (String, std::process::ChildStdout) {
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut collector = Command::new(BIN)
        .args(["capture", "--listen", &listen, "--out", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stream = collector.stdout.take().unwrap();
    reap.0.push(collector);
    (listen, stream)
}

#[test]
fn the_stdout_stream_is_read_live_by_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("SKIPPED the_stdout_stream_is_read_live_by_tshark: tshark is not installed (scripts/deps.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("collector.log");
    let mut reap = Reap(Vec::new());
    let (listen, stream) = stream_collector(&log, &mut reap);
    let collector_pid = reap.0[0].id();
    let mut tshark = Command::new("tshark")
        .args([
            "-l",
            "-r",
            "-",
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "frame.interface_name",
            "-e",
            "ip.src",
            "-e",
            "udp.dstport",
        ])
        .stdin(Stdio::from(stream))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = tshark.stdout.take().unwrap();
    reap.0.push(tshark);
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    wait_for_log(&log, "capturing VXLAN");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut want = Vec::new();
    for i in 0..6u16 {
        let (vni, src) = if i % 2 == 0 { (100, 1) } else { (200, 3) };
        sender
            .send_to(&vxlan(vni, &udp_frame(src, 1000 + i)), &listen)
            .unwrap();
        want.push(format!("vni{vni}@127.0.0.1,10.0.0.{src},{}", 1000 + i));
    }
    // Garbage and a datagram without the I flag are not frames.
    sender.send_to(&[0u8; 4], &listen).unwrap();
    // Read while the collector still runs: the stream is flushed after each batch.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.len() < want.len() && Instant::now() < deadline {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
            got.push(l);
        }
    }
    assert_eq!(
        got, want,
        "tshark decoded the frames while the collector ran"
    );
    let status = Command::new("kill")
        .args(["-TERM", &collector_pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The stream ends; tshark finishes with nothing more.
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.is_empty(), "{rest:?}");
    let status = reap.0[0].wait().unwrap();
    assert!(status.success(), "collector exit: {status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("invalid datagrams: 1"), "{text}");
}

/// Runs in the lab's namespace: sends a first datagram per VNI (its TAP is created then),
/// waits for the interfaces, opens a packet socket on each and a UDP socket that must not
/// get the broadcast frame, sends the test datagrams, and prints what every socket got.
const TAP_PROBE: &str = r#"
import json, os, socket, sys, time
port = int(sys.argv[1]); cases = json.loads(sys.argv[2])
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def vxlan(vni, inner): return bytes([0x08, 0, 0, 0]) + vni.to_bytes(3, 'big') + b'\0' + inner
for vni in cases:
    tx.sendto(vxlan(int(vni), bytes(60)), ('127.0.0.1', port))
names = {vni: 'tmt' + vni for vni in cases}
deadline = time.time() + 10
while not all(os.path.exists('/sys/class/net/' + n) for n in names.values()):
    if time.time() > deadline: sys.exit('no TAP interfaces: ' + str(os.listdir('/sys/class/net')))
    time.sleep(0.05)
time.sleep(0.2)
socks = {}
for vni, name in names.items():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((name, 0)); s.setblocking(False); socks[vni] = s
app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
app.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
app.bind(('0.0.0.0', 5555)); app.setblocking(False)
for vni, frames in cases.items():
    for f in frames:
        tx.sendto(vxlan(int(vni), bytes.fromhex(f)), ('127.0.0.1', port))
        time.sleep(0.01)
got = {vni: [] for vni in cases}; app_got = []
end = time.time() + 1.5
while time.time() < end:
    for vni, s in socks.items():
        try:
            data, addr = s.recvfrom(65536)
            got[vni].append([data.hex(), addr[2]])
        except BlockingIOError: pass
    try: app_got.append(app.recv(65536).hex())
    except BlockingIOError: pass
    time.sleep(0.005)
print(json.dumps({'got': got, 'app': app_got}))
"#;

#[test]
fn tap_interfaces_carry_exactly_the_decapsulated_frames() {
    if !tmirror_netlab::is_root() {
        eprintln!("SKIPPED tap_interfaces_carry_exactly_the_decapsulated_frames: needs root (TAP interfaces in a network namespace); CI runs it as root");
        return;
    }
    let mut lab = tmirror_netlab::Lab::new("tmcaptap").expect("lab");
    lab.add_namespace("col").expect("namespace");
    let ns = "col";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("collector.log");
    lab.spawn(
        "collector",
        ns,
        BIN,
        &[
            "capture",
            "--listen",
            "127.0.0.1:4789",
            "--tap",
            "tmt",
            "--vni",
            "100,2000000",
        ],
        &log,
    )
    .expect("start the collector");
    wait_for_log(&log, "capturing VXLAN");
    // Real frames, and a broadcast UDP frame to 255.255.255.255:5555 that a socket in the
    // namespace listens for: the TAP must hand it to the sniffers and not to the host's stack.
    let mut broadcast = udp_frame(9, 5555);
    broadcast[0..6].copy_from_slice(&[0xff; 6]);
    broadcast[30..34].copy_from_slice(&[255, 255, 255, 255]);
    // Without the ingress drop the kernel would deliver it (checked by hand: it does).
    ipv4_checksum(&mut broadcast);
    let cases = serde_json::json!({
        "100": [hex::encode(udp_frame(1, 53)), hex::encode(&broadcast), hex::encode(udp_frame(1, 80))],
        "2000000": [hex::encode(udp_frame(3, 443))],
    });
    let out = lab
        .exec(
            ns,
            "python3",
            &["-c", TAP_PROBE, "4789", &cases.to_string()],
        )
        .expect("run the probe");
    assert!(
        out.status.success(),
        "probe failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (vni, frames) in cases.as_object().unwrap() {
        let got = seen["got"][vni].as_array().unwrap();
        let want = frames.as_array().unwrap();
        let frames_got: Vec<serde_json::Value> = got.iter().map(|g| g[0].clone()).collect();
        assert_eq!(
            &frames_got, want,
            "VNI {vni}: exactly the decapsulated frames"
        );
        // Received on the interface (packet types 0 to 3), never sent by the host (4).
        assert!(
            got.iter().all(|g| g[1] != 4),
            "VNI {vni}: nothing sent by the host on the TAP: {got:?}"
        );
    }
    assert_eq!(
        seen["app"],
        serde_json::json!([]),
        "the broadcast reached no socket"
    );
    // The interfaces: up, no address.
    for name in ["tmt100", "tmt2000000"] {
        let link = lab.ip(ns, &["-o", "link", "show", name]).unwrap();
        let text = String::from_utf8_lossy(&link.stdout).to_string();
        assert!(text.contains(",UP"), "{text}");
        let addrs = lab.ip(ns, &["-o", "addr", "show", "dev", name]).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&addrs.stdout),
            "",
            "{name} has no address"
        );
    }
    let status = lab.kill("collector", "TERM").unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Removed at exit.
    for name in ["tmt100", "tmt2000000"] {
        assert!(
            lab.ip(ns, &["link", "show", name]).is_err(),
            "{name} left behind"
        );
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("not allowed VNI: 0"), "{text}");
}

/// `--health-listen` answers a load balancer's TCP checks, and its UDP socket keeps
/// UDP_CONNECT checks from being refused.
#[test]
fn health_listen_answers_tcp_and_udp_connect_checks() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let health = format!("127.0.0.1:{port}");
    let mut reap = Reap(Vec::new());
    reap.0.push(
        Command::new(BIN)
            .args([
                "capture",
                "--listen",
                "127.0.0.1:0",
                "--out",
                "-",
                "--health-listen",
                &health,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the collector"),
    );
    // Bounded: the collector binds within seconds or the test fails.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match std::net::TcpStream::connect(&health) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("no health listener on {health}: {e}"),
        }
    }
    // A connected UDP socket learns of ICMP port-unreachable on its next receive: none here.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(&health).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    udp.send(b"check").unwrap();
    let mut buf = [0u8; 16];
    let err = udp
        .recv(&mut buf)
        .expect_err("nothing answers the datagram");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the datagram was refused: {err}"
    );
}

/// A reader of `--out -` that stops reading blocks the writer, and with it a clean stop (which
/// writes what is queued): a second SIGTERM ends the process at once.
#[test]
fn a_second_signal_ends_a_collector_stuck_on_its_reader() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("collector.log");
    let mut reap = Reap(Vec::new());
    // Held open, never read: the pipe fills.
    let (listen, _stream) = stream_collector(&log, &mut reap);
    let pid = reap.0[0].id().to_string();
    wait_for_log(&log, "capturing VXLAN");
    // Far more than a pipe holds (64 KiB): the writer blocks on its next write.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let frame = vxlan(100, &[0u8; 1400]);
    for _ in 0..400 {
        sender.send_to(&frame, &listen).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let term = || {
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    };
    term();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        reap.0[0].try_wait().unwrap().is_none(),
        "the first signal asks for a clean stop, which waits for the stuck writer"
    );
    term();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = reap.0[0].try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "a second signal ends the process"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "{status:?}");
}
