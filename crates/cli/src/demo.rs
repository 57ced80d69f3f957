//! `tmirror demo`: a small cloud in network namespaces — a hypervisor with two VMs and a
//! collector — with the real server, agent and collector, configured through the CLI the
//! way an operator would, real traffic between the VMs, and a report of what was mirrored.
//! Everything it creates is removed when it ends, also on Ctrl-C; the pcapng files stay.
//!
//! The VMs' traffic comes from this same binary, run inside the VM namespaces with the
//! hidden `--vm` option (an echo server in vm2, a client in vm1).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use tmirror_netlab::{addr, mirror_cloud, Lab};

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the demo's files (logs, database, pcapng); the pcapng files stay.
    #[arg(long, default_value = "./tmirror-demo")]
    dir: PathBuf,
    /// Inside a VM namespace: the traffic role (used by the demo itself).
    #[arg(long, hide = true)]
    vm: Option<VmRole>,
}

#[derive(Clone, Copy, ValueEnum)]
enum VmRole {
    Echo,
    Client,
}

const PREFIX: &str = "tmdemo";
const UDP_PORT: u16 = 5353;
const TCP_PORT: u16 = 8080;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.vm {
        Some(VmRole::Echo) => return echo_server(),
        Some(VmRole::Client) => return client(),
        None => {}
    }
    if !tmirror_netlab::is_root() {
        bail!("the demo builds network namespaces: run it as root (sudo tmirror demo)");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    for sub in ["data", "agent-state", "pcap"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    let _ = std::fs::remove_file(dir.join("hv-credential.json"));
    std::fs::create_dir_all(dir.join("pcap"))?;

    step("building the cloud: namespaces tmdemo-hv (hypervisor), tmdemo-vm1, tmdemo-vm2, tmdemo-col (collector)");
    let lab =
        mirror_cloud(PREFIX, 2).context("building the namespaces (is iproute2 installed?)")?;
    let mut demo = Demo { lab, dir, stop };
    // The lab (namespaces and processes) is removed when `demo` goes out of scope, whatever
    // way this returns.
    demo.play()
}

struct Demo {
    lab: Lab,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// Writes a secret readable by its owner only (mode 0600 from the start).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn exe() -> anyhow::Result<String> {
    Ok(std::env::current_exe()?.display().to_string())
}

impl Demo {
    fn check(&self) -> anyhow::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted; cleaning up");
        }
        Ok(())
    }

    fn path(&self, p: &str) -> String {
        self.dir.join(p).display().to_string()
    }

    fn sleep(&self, d: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.check()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `tmirror ARGS…` in the hypervisor, printed as an operator would type it.
    fn cli(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        println!("    $ tmirror {}", args.join(" "));
        self.cli_quiet(args)
    }

    /// [`Demo::cli`] without printing the command (the caller says what it does).
    fn cli_quiet(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        self.check()?;
        let data = self.path("data");
        let mut all = vec!["--data-dir", &data, "-o", "json"];
        all.extend_from_slice(args);
        let out = self.lab.command("hv", &exe()?, &all).output()?;
        if !out.status.success() {
            bail!(
                "tmirror {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
    }

    fn create(&self, args: &[&str]) -> anyhow::Result<String> {
        let v = self.cli(args)?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .context("the API answered without an id")
    }

    fn play(&mut self) -> anyhow::Result<()> {
        let exe = exe()?;
        let data = self.path("data");
        step("starting the control plane and the collector");
        self.lab.spawn(
            "server",
            "hv",
            &exe,
            &["serve", "--listen", "127.0.0.1:9696", "--data-dir", &data],
            &self.dir.join("server.log"),
        )?;
        self.lab.spawn(
            "collector",
            "col",
            &exe,
            &["capture", "--out", &self.path("pcap")],
            &self.dir.join("collector.log"),
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Path::new(&self.path("data/admin-credentials.json")).exists()
            || !self
                .lab
                .command("hv", &exe, &["--data-dir", &data, "port", "list"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?
                .success()
        {
            if Instant::now() > deadline {
                bail!("the server did not start; see {}", self.path("server.log"));
            }
            self.sleep(Duration::from_millis(100))?;
        }

        step("enrolling the hypervisor: its own credential, for its agent alone");
        let credential = self.path("hv-credential.json");
        println!("    $ tmirror admin host create hv -o json > {credential}");
        let issued = self.cli_quiet(&["admin", "host", "create", "hv"])?;
        write_private(Path::new(&credential), &serde_json::to_vec_pretty(&issued)?)?;
        step("starting the agent with it");
        self.lab.spawn(
            "agent",
            "hv",
            &exe,
            &[
                "agent",
                "--credential-file",
                &credential,
                "--underlay-ip",
                addr::HYPERVISOR_UNDERLAY,
                "--state-dir",
                &self.path("agent-state"),
            ],
            &self.dir.join("agent.log"),
        )?;
        let echo = self
            .lab
            .spawn_piped("echo", "vm2", &exe, &["demo", "--vm", "echo"])?;
        let mut ready = String::new();
        BufReader::new(echo.stdout.take().context("echo output")?).read_line(&mut ready)?;

        step("describing the VMs' ports and the collector's port (binding:host_id = hv)");
        let network = "11111111-1111-1111-1111-111111111111";
        let vm1 = self.create(&[
            "port",
            "create",
            "--network-id",
            network,
            "--name",
            "vm1",
            "--ip",
            &addr::vm4(1),
            "--host-id",
            "hv",
            "--interface-name",
            "tap1",
        ])?;
        self.create(&[
            "port",
            "create",
            "--network-id",
            network,
            "--name",
            "vm2",
            "--ip",
            &addr::vm4(2),
            "--host-id",
            "hv",
            "--interface-name",
            "tap2",
        ])?;
        let collector = self.create(&[
            "port",
            "create",
            "--network-id",
            network,
            "--name",
            "collector",
            "--ip",
            addr::COLLECTOR,
        ])?;

        step("a filter: vm1's TCP to and from port 8080, and its outgoing UDP; nothing else");
        let filter = self.create(&["filter", "create", "--name", "web-and-udp"])?;
        for rule in [
            [
                "egress",
                "tcp",
                "accept",
                "1",
                "--destination-port-range",
                "8080-8080",
            ],
            [
                "ingress",
                "tcp",
                "accept",
                "1",
                "--source-port-range",
                "8080-8080",
            ],
            [
                "egress",
                "udp",
                "accept",
                "2",
                "--destination-port-range",
                "1-65535",
            ],
        ] {
            self.create(&[
                "rule",
                "create",
                "--filter",
                &filter,
                "--direction",
                rule[0],
                "--protocol",
                rule[1],
                "--ethertype",
                "IPv4",
                "--action",
                rule[2],
                "--priority",
                rule[3],
                rule[4],
                rule[5],
            ])?;
        }

        step("a session: vm1 mirrored to the collector, VNI 4242, first 128 bytes of each packet");
        self.create(&[
            "session",
            "create",
            "--name",
            "demo",
            "--filter",
            &filter,
            "--source",
            &vm1,
            "--target",
            &collector,
            "--priority",
            "1",
            "--vni",
            "4242",
            "--packet-length",
            "128",
            "--enabled",
        ])?;
        self.sleep(Duration::from_millis(1500))?;

        step("traffic: vm1 sends UDP datagrams and a TCP conversation to vm2, which echoes them");
        let out = self
            .lab
            .command("vm1", &exe, &["demo", "--vm", "client"])
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!(
                "the traffic failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.sleep(Duration::from_secs(1))?;

        step("what the collector received");
        self.lab.kill("collector", "INT")?;
        let log = std::fs::read_to_string(self.dir.join("collector.log")).unwrap_or_default();
        for line in log
            .lines()
            .filter(|l| !l.contains(" INFO ") && !l.contains("\u{1b}["))
        {
            println!("    {line}");
        }
        let mut files: Vec<String> = std::fs::read_dir(self.dir.join("pcap"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .collect();
        files.sort();
        println!("\n    pcapng: {}", files.join(", "));
        if let Some(f) = files.first() {
            println!("    open it:  tshark -r {f}   (or Wireshark)");
        }
        println!(
            "    logs:     {}/{{server,agent,collector}}.log",
            self.dir.display()
        );
        step("removing the namespaces and stopping the processes");
        Ok(())
    }
}

/// vm2: echoes UDP datagrams and TCP bytes, for at most two minutes.
fn echo_server() -> anyhow::Result<()> {
    let udp = UdpSocket::bind(("0.0.0.0", UDP_PORT))?;
    udp.set_read_timeout(Some(Duration::from_millis(200)))?;
    let tcp = TcpListener::bind(("0.0.0.0", TCP_PORT))?;
    tcp.set_nonblocking(true)?;
    println!("ready");
    std::io::stdout().flush()?;
    let end = Instant::now() + Duration::from_secs(120);
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok((n, peer)) = udp.recv_from(&mut buf) {
            udp.send_to(&buf[..n], peer)?;
        }
        if let Ok((mut conn, _)) = tcp.accept() {
            conn.set_nonblocking(false)?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    }
    Ok(())
}

/// vm1: five UDP datagrams and a TCP conversation of three messages with vm2.
fn client() -> anyhow::Result<()> {
    let peer: std::net::IpAddr = addr::vm4(2).parse()?;
    let udp = UdpSocket::bind("0.0.0.0:0")?;
    udp.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut echoed = 0;
    let mut buf = [0u8; 2048];
    for i in 0..5 {
        udp.send_to(
            format!("hello over UDP #{i}").as_bytes(),
            SocketAddr::new(peer, UDP_PORT),
        )?;
        if udp.recv_from(&mut buf).is_ok() {
            echoed += 1;
        }
    }
    println!("    vm1 -> vm2 UDP {UDP_PORT}: 5 datagrams sent, {echoed} echoed");
    let mut tcp =
        TcpStream::connect_timeout(&SocketAddr::new(peer, TCP_PORT), Duration::from_secs(3))?;
    tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
    for i in 0..3 {
        let msg = format!("GET /demo/{i} over TCP\n");
        tcp.write_all(msg.as_bytes())?;
        let mut got = vec![0u8; msg.len()];
        tcp.read_exact(&mut got)?;
    }
    drop(tcp);
    std::thread::sleep(Duration::from_millis(200));
    println!("    vm1 -> vm2 TCP {TCP_PORT}: 3 messages sent and echoed");
    Ok(())
}
