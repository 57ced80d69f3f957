//! `tmirror demo`: a small cloud in network namespaces — a hypervisor with two VMs and a
//! collector — with the real server, agent and collector, configured through the CLI the
//! way an operator would, real traffic between the VMs, and a report of what was mirrored.
//! Everything it creates is removed when it ends, also on Ctrl-C; the pcapng files stay.
//!
//! The VMs' traffic comes from this same binary, run inside the VM namespaces with the
//! hidden `--vm` option (an echo server in vm2, a client in vm1).
//!
//! `--lb`: the session's target is a load balancer of two collectors (`tmirror capture
//! --health-listen`) checked every second; vm1 sends 40 UDP flows, which the two share; one
//! collector is stopped, the checker marks it OFFLINE, and the same 40 flows all reach the
//! other. The session's VNI changes between the two phases so that each collector's report
//! tells them apart.

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
    /// Mirror to a load balancer of two collectors, and stop one of them half-way.
    #[arg(long)]
    lb: bool,
    /// Inside a VM namespace: the traffic role (used by the demo itself).
    #[arg(long, hide = true)]
    vm: Option<VmRole>,
}

#[derive(Clone, Copy, ValueEnum)]
enum VmRole {
    Echo,
    Client,
    /// `--lb`: one UDP datagram from each of [`FLOWS`] source ports.
    Flows,
}

/// `--lb`: the UDP flows vm1 sends in each phase, from source ports `FLOW_PORT + i`.
const FLOWS: u16 = 40;
const FLOW_PORT: u16 = 41000;
/// `--lb`: the second collector's address (the first is `addr::COLLECTOR`), in the same
/// namespace.
const COLLECTOR2: &str = "192.168.77.3";
/// `--lb`: where the collectors answer the health checks.
const HEALTH_PORT: &str = "7070";
/// `--lb`: the session's VNI while both collectors run, and after one is stopped.
const VNI_BOTH: &str = "4242";
const VNI_ONE: &str = "4243";

const PREFIX: &str = "tmdemo";
/// The network of the demo's ports.
const NETWORK: &str = "11111111-1111-1111-1111-111111111111";
const UDP_PORT: u16 = 5353;
const TCP_PORT: u16 = 8080;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.vm {
        Some(VmRole::Echo) => return echo_server(),
        Some(VmRole::Client) => return client(),
        Some(VmRole::Flows) => return flows(),
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
    if args.lb {
        demo.play_lb()
    } else {
        demo.play()
    }
}

struct Demo {
    lab: Lab,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

/// The packets a collector's report (its log) counts for `vni`; 0 when it names none.
fn reported(log: &str, vni: &str) -> u64 {
    log.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(vni)).then(|| words.next()?.parse().ok())?
        })
        .unwrap_or(0)
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

    /// VM `n`'s port, on the hypervisor at `tapN`.
    fn vm_port(&self, n: u8) -> anyhow::Result<String> {
        let (name, tap) = (format!("vm{n}"), format!("tap{n}"));
        self.create(&[
            "port",
            "create",
            "--network-id",
            NETWORK,
            "--name",
            &name,
            "--ip",
            &addr::vm4(n),
            "--host-id",
            "hv",
            "--interface-name",
            &tap,
        ])
    }

    /// A collector's port: the project owns the address it mirrors to.
    fn collector_port(&self, name: &str, ip: &str) -> anyhow::Result<String> {
        self.create(&[
            "port",
            "create",
            "--network-id",
            NETWORK,
            "--name",
            name,
            "--ip",
            ip,
        ])
    }

    fn start_server(&mut self) -> anyhow::Result<()> {
        let data = self.path("data");
        self.lab.spawn(
            "server",
            "hv",
            &exe()?,
            &["serve", "--listen", "127.0.0.1:9696", "--data-dir", &data],
            &self.dir.join("server.log"),
        )?;
        Ok(())
    }

    fn wait_for_server(&self) -> anyhow::Result<()> {
        let (exe, data) = (exe()?, self.path("data"));
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
        Ok(())
    }

    /// Enrols the hypervisor, starts its agent, and vm2's echo server.
    fn start_agent_and_echo(&mut self) -> anyhow::Result<()> {
        let exe = exe()?;
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

        Ok(())
    }

    fn play(&mut self) -> anyhow::Result<()> {
        let exe = exe()?;
        step("starting the control plane and the collector");
        self.start_server()?;
        self.lab.spawn(
            "collector",
            "col",
            &exe,
            &["capture", "--out", &self.path("pcap")],
            &self.dir.join("collector.log"),
        )?;
        self.wait_for_server()?;
        self.start_agent_and_echo()?;
        step("describing the VMs' ports and the collector's port (binding:host_id = hv)");
        let vm1 = self.vm_port(1)?;
        self.vm_port(2)?;
        let collector = self.collector_port("collector", addr::COLLECTOR)?;

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
        let session = self.create(&[
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
        self.wait_applied(&session)?;

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

    /// `--lb`: a session aimed at a load balancer of two collectors; one is stopped half-way.
    fn play_lb(&mut self) -> anyhow::Result<()> {
        let exe = exe()?;
        step("starting the control plane and two collectors, each answering health checks");
        self.lab.exec(
            "col",
            "ip",
            &["addr", "add", &format!("{COLLECTOR2}/24"), "dev", "eth0"],
        )?;
        self.start_server()?;
        let collectors = [("collector1", addr::COLLECTOR), ("collector2", COLLECTOR2)];
        for (name, ip) in collectors {
            let out = self.path(&format!("pcap/{name}"));
            std::fs::create_dir_all(&out)?;
            let (listen, health) = (format!("{ip}:4789"), format!("{ip}:{HEALTH_PORT}"));
            let args = [
                "capture",
                "--listen",
                &listen,
                "--out",
                &out,
                "--health-listen",
                &health,
            ];
            println!("    {name}: tmirror {}", args.join(" "));
            self.lab.spawn(
                name,
                "col",
                &exe,
                &args,
                &self.dir.join(format!("{name}.log")),
            )?;
        }
        self.wait_for_server()?;
        self.start_agent_and_echo()?;

        step("describing the VMs' ports and the collectors' ports");
        let vm1 = self.vm_port(1)?;
        self.vm_port(2)?;
        for (name, ip) in collectors {
            self.collector_port(name, ip)?;
        }

        step("a load balancer of the two collectors, checked over TCP every second");
        let lb = self.cli(&["lb", "create", "--name", "collectors"])?;
        let (lb_id, pool) = (
            lb["id"]
                .as_str()
                .context("the load balancer's id")?
                .to_owned(),
            lb["pool_id"].as_str().context("its pool's id")?.to_owned(),
        );
        let mut members = Vec::new();
        for (_, ip) in collectors {
            members.push(self.create(&["lb", "member-add", "--pool", &pool, "--address", ip])?);
        }
        self.create(&[
            "lb",
            "monitor-create",
            "--pool",
            &pool,
            "--type",
            "TCP",
            "--delay",
            "1",
            "--timeout",
            "1",
            "--max-retries",
            "1",
            "--max-retries-down",
            "1",
            "--monitor-port",
            HEALTH_PORT,
        ])?;
        self.wait_for_health(&pool, &[("collector1", "ONLINE"), ("collector2", "ONLINE")])?;

        step("a filter and a session: vm1's outgoing UDP, to the load balancer");
        let filter = self.create(&["filter", "create", "--name", "udp-out"])?;
        self.create(&[
            "rule",
            "create",
            "--filter",
            &filter,
            "--direction",
            "egress",
            "--protocol",
            "udp",
            "--ethertype",
            "IPv4",
            "--action",
            "accept",
            "--priority",
            "1",
            "--destination-port-range",
            "1-65535",
        ])?;
        let session = self.create(&[
            "session",
            "create",
            "--name",
            "demo-lb",
            "--filter",
            &filter,
            "--source",
            &vm1,
            "--target",
            &lb_id,
            "--target-type",
            "elb",
            "--priority",
            "1",
            "--vni",
            VNI_BOTH,
            "--enabled",
        ])?;
        self.wait_applied(&session)?;

        step(&format!(
            "traffic, both collectors up (VNI {VNI_BOTH}): the flows are shared"
        ));
        self.send_flows()?;

        step("stopping collector2: the health check marks it OFFLINE");
        self.lab.kill("collector2", "INT")?;
        self.wait_for_health(
            &pool,
            &[("collector1", "ONLINE"), ("collector2", "OFFLINE")],
        )?;
        self.cli(&["session", "update", &session, "--vni", VNI_ONE])?;
        self.wait_applied(&session)?;

        step(&format!(
            "the same flows again (VNI {VNI_ONE}): collector2's flows move to collector1"
        ));
        self.send_flows()?;

        step("what each collector received");
        self.lab.kill("collector1", "INT")?;
        let logs: Vec<String> = collectors
            .iter()
            .map(|(name, _)| {
                std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
            })
            .collect();
        for ((name, ip), log) in collectors.iter().zip(&logs) {
            println!("    {name} ({ip}):");
            for line in log
                .lines()
                .filter(|l| !l.contains(" INFO ") && !l.contains("\u{1b}["))
            {
                println!("    {line}");
            }
        }
        for (vni, what) in [(VNI_BOTH, "both up"), (VNI_ONE, "collector2 stopped")] {
            println!(
                "    {what}, VNI {vni}: collector1 {} flows, collector2 {} flows, of {FLOWS}",
                reported(&logs[0], vni),
                reported(&logs[1], vni)
            );
        }
        println!("    pcapng: {}/pcap/collector{{1,2}}/", self.dir.display());
        println!(
            "    logs:   {}/{{server,agent,collector1,collector2}}.log",
            self.dir.display()
        );
        step("removing the namespaces and stopping the processes");
        Ok(())
    }

    /// Waits (at most 20 s) until every host's agent has applied the session as it is now
    /// (`applied_everywhere` in `tmirror session show`): copies sent before that would be
    /// mirrored by the previous state, or not at all. A fixed pause was not enough on a busy
    /// machine.
    fn wait_applied(&self, session: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let data = self.path("data");
        loop {
            self.check()?;
            let out = self
                .lab
                .command(
                    "hv",
                    &exe()?,
                    &["--data-dir", &data, "session", "show", session],
                )
                .output()?;
            let shown = String::from_utf8_lossy(&out.stdout);
            let applied = shown
                .lines()
                .any(|l| l.split_whitespace().eq(["applied_everywhere", "true"]));
            if out.status.success() && applied {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the agent has not applied session {session} after 20 s; see agent.log");
            }
            self.sleep(Duration::from_millis(100))?;
        }
    }

    /// Waits (at most 20 s) until the pool's members, in the order added, have these
    /// statuses; prints them as `lb member-list` shows them.
    fn wait_for_health(&self, pool: &str, want: &[(&str, &str)]) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self.cli_quiet(&["lb", "member-list", "--pool", pool])?;
            let got: Vec<String> = listed["members"]
                .as_array()
                .map(|ms| {
                    ms.iter()
                        .map(|m| m["operating_status"].as_str().unwrap_or("").to_owned())
                        .collect()
                })
                .unwrap_or_default();
            if got.iter().map(String::as_str).eq(want.iter().map(|w| w.1)) {
                println!("    $ tmirror lb member-list --pool {pool}");
                for ((name, status), m) in want
                    .iter()
                    .zip(listed["members"].as_array().into_iter().flatten())
                {
                    println!(
                        "      {name}  {}  {status}",
                        m["address"].as_str().unwrap_or("")
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the members are {got:?}, not {want:?}, after 20 s; see the server's log");
            }
            self.sleep(Duration::from_millis(200))?;
        }
    }

    fn send_flows(&self) -> anyhow::Result<()> {
        let out = self
            .lab
            .command("vm1", &exe()?, &["demo", "--vm", "flows"])
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!(
                "the traffic failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.sleep(Duration::from_secs(1))
    }
}

/// vm1, `--lb`: one UDP datagram to vm2 from each of [`FLOWS`] source ports: as many flows.
fn flows() -> anyhow::Result<()> {
    let peer: std::net::IpAddr = addr::vm4(2).parse()?;
    for i in 0..FLOWS {
        let udp = UdpSocket::bind(("0.0.0.0", FLOW_PORT + i))?;
        udp.send_to(
            format!("flow #{i}").as_bytes(),
            SocketAddr::new(peer, UDP_PORT),
        )?;
    }
    println!(
        "    vm1 -> vm2 UDP {UDP_PORT}: {FLOWS} flows, from source ports {FLOW_PORT}-{}",
        FLOW_PORT + FLOWS - 1
    );
    Ok(())
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
