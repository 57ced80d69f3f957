//! The harness of the end-to-end mirroring tests: a small cloud in network namespaces
//! (`tmirror-netlab`), the real `tmirror serve`, `agent` and `capture` binaries inside it,
//! configuration only through the `tmirror` CLI, traffic and reference captures from
//! `traffic.py`. Everything is removed when the harness is dropped, also on failure.

#![allow(dead_code)] // each test binary uses part of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ChildStdout;
use std::time::{Duration, Instant};

use serde_json::Value;
use tmirror_netlab::{addr, mirror_cloud, Lab};
use tmirror_scrape::Scrape;

pub const BIN: &str = env!("CARGO_BIN_EXE_tmirror");
const METRICS: &str = "127.0.0.1:9100";

/// Writes a secret readable by its owner only (mode 0600 from the start).
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

pub fn traffic_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/traffic.py")
}

/// Returns `None` (after saying so) when the tests cannot run here: they need root.
pub fn root_or_skip(test: &str) -> Option<()> {
    if tmirror_netlab::is_root() {
        Some(())
    } else {
        eprintln!("SKIPPED {test}: needs root (network namespaces); CI runs it as root");
        None
    }
}

pub struct Cloud {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
    sniffers: HashMap<String, BufReader<ChildStdout>>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The standard processes' logs, and any other a test started (`NAME.log`).
            let mut logs: Vec<String> = ["server", "agent", "collector"].map(String::from).to_vec();
            let mut others: Vec<String> = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".log").map(str::to_string)
                })
                .filter(|name| !logs.contains(name))
                .collect();
            others.sort();
            logs.extend(others);
            for log in logs {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{log}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {log}.log (last lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// A session's numbers, for [`Cloud::session`].
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub priority: u32,
    pub vni: u32,
    pub packet_length: u32,
    pub enabled: bool,
}

impl Spec {
    /// An enabled session.
    pub fn new(priority: u32, vni: u32, packet_length: u32) -> Spec {
        Spec {
            priority,
            vni,
            packet_length,
            enabled: true,
        }
    }

    pub fn disabled(self) -> Spec {
        Spec {
            enabled: false,
            ..self
        }
    }
}

/// One copy the collector wrote: its VNI and the inner frame.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Copy {
    pub vni: u32,
    pub frame: Vec<u8>,
}

/// One frame a reference sniffer saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub outgoing: bool,
    pub frame: Vec<u8>,
}

impl Cloud {
    /// The topology with `vms` VMs; nothing started yet.
    pub fn new(prefix: &str, vms: u8) -> Cloud {
        Cloud::with_lab(mirror_cloud(prefix, vms).expect("build the lab topology"))
    }

    /// A cloud over a topology the test built; the server runs in its namespace `hv`.
    pub fn with_lab(lab: Lab) -> Cloud {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("pcap")).unwrap();
        Cloud {
            lab,
            dir,
            sniffers: HashMap::new(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn start_server(&mut self) {
        self.start_server_on("127.0.0.1:9696");
    }

    /// Starts `tmirror serve` in `hv`, listening on `listen` (an underlay address when agents
    /// of other namespaces are to reach it).
    pub fn start_server_on(&mut self, listen: &str) {
        let (data, log) = (self.path("data"), self.dir.path().join("server.log"));
        self.lab
            .spawn(
                "server",
                "hv",
                BIN,
                // Over TLS, as a deployment beyond one machine runs: the CLI and the agent
                // verify the server's self-signed certificate.
                &[
                    "serve",
                    "--listen",
                    listen,
                    "--data-dir",
                    &data,
                    "--tls-self-signed",
                ],
                &log,
            )
            .expect("start tmirror serve");
        let ca = self.ca_file();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = self
                .lab
                .command(
                    "hv",
                    BIN,
                    &["--data-dir", &data, "--ca-file", &ca, "port", "list"],
                )
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "tmirror serve did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill_server(&mut self) {
        self.lab.kill("server", "KILL").expect("kill server");
    }

    /// Starts a collector named `name` that listens on `listen` and writes to the lab's
    /// directory `out`; its log is `NAME.log`.
    pub fn start_collector_on(&mut self, name: &str, listen: &str, out: &str) {
        let dir = self.dir.path().join(out);
        std::fs::create_dir_all(&dir).unwrap();
        let log = self.dir.path().join(format!("{name}.log"));
        let out = dir.display().to_string();
        self.lab
            .spawn(
                name,
                "col",
                BIN,
                &["capture", "--listen", listen, "--out", &out],
                &log,
            )
            .expect("start tmirror capture");
    }

    pub fn start_collector(&mut self) {
        let (out, log) = (self.path("pcap"), self.dir.path().join("collector.log"));
        self.lab
            .spawn("collector", "col", BIN, &["capture", "--out", &out], &log)
            .expect("start tmirror capture");
    }

    /// Starts the agent with the default send mode (or `TMIRROR_SEND_MODE`).
    pub fn start_agent(&mut self) {
        self.start_agent_with(&[]);
    }

    /// Enrols the hypervisor `hv` through the admin API with the operator's credential, as an
    /// operator would (`tmirror admin host create hv -o json > FILE`), once; the path of its
    /// agent's credential file (mode 0600).
    pub fn enrol_hypervisor(&self) -> String {
        let file = self.path("hv-credential.json");
        if !Path::new(&file).exists() {
            let credential = self.cli(&["admin", "host", "create", "hv"]);
            assert_eq!(credential["host_id"], "hv", "{}", credential["host_id"]);
            write_private(Path::new(&file), credential.to_string().as_bytes());
        }
        file
    }

    /// Starts the agent with further `tmirror agent` options, with the hypervisor's own
    /// credential (enrolled at the first start, which needs the server).
    pub fn start_agent_with(&mut self, extra: &[&str]) {
        let credential = self.enrol_hypervisor();
        let ca = self.ca_file();
        let state = self.path("agent-state");
        let log = self.dir.path().join("agent.log");
        self.lab
            .spawn(
                "agent",
                "hv",
                BIN,
                &[
                    "agent",
                    "--credential-file",
                    &credential,
                    "--ca-file",
                    &ca,
                    "--underlay-ip",
                    addr::HYPERVISOR_UNDERLAY,
                    "--state-dir",
                    &state,
                    "--metrics-listen",
                    METRICS,
                ]
                .iter()
                .chain(extra)
                .copied()
                .collect::<Vec<_>>(),
                &log,
            )
            .expect("start tmirror agent");
    }

    pub fn stop_agent(&mut self) {
        self.lab.kill("agent", "TERM").expect("stop agent");
    }

    /// Starts the UDP/TCP echo server in `vm`.
    pub fn start_echo(&mut self, vm: &str) {
        let script = traffic_script().display().to_string();
        let name = format!("echo-{vm}");
        let child = self
            .lab
            .spawn_piped(&name, vm, "python3", &[&script, "serve"])
            .expect("start echo server");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("echo server output");
        assert_eq!(line.trim(), "ready", "echo server did not start");
    }

    /// Runs `tmirror -o json ARGS…` against the lab's server; the parsed body.
    /// The server's self-signed certificate, which its clients trust.
    pub fn ca_file(&self) -> String {
        self.dir
            .path()
            .join("data")
            .join("tls-cert.pem")
            .display()
            .to_string()
    }

    pub fn cli(&self, args: &[&str]) -> Value {
        let data = self.path("data");
        let ca = self.ca_file();
        let mut all = vec!["--data-dir", data.as_str(), "--ca-file", &ca, "-o", "json"];
        all.extend_from_slice(args);
        let out = self
            .lab
            .command("hv", BIN, &all)
            .output()
            .expect("run tmirror");
        assert!(
            out.status.success(),
            "tmirror {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("tmirror -o json prints JSON")
    }

    /// Runs `tmirror ARGS…` (table output) against the lab's server; what it printed.
    pub fn cli_text(&self, args: &[&str]) -> String {
        let data = self.path("data");
        let ca = self.ca_file();
        let mut all = vec!["--data-dir", data.as_str(), "--ca-file", &ca];
        all.extend_from_slice(args);
        let out = self
            .lab
            .command("hv", BIN, &all)
            .output()
            .expect("run tmirror");
        assert!(
            out.status.success(),
            "tmirror {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A project made by the operator through the admin API; its id.
    pub fn project(&self, name: &str) -> String {
        let made = self.cli(&["admin", "project", "create", "--name", name]);
        made["id"].as_str().expect("project id").to_owned()
    }

    /// A new credential of `role` in `project` (what `admin credential create` printed: the
    /// shape of a credentials file), also written, private, to `FILE_NAME` in the lab's
    /// directory for [`Cloud::cli_as`].
    pub fn credential(&self, project: &str, role: &str, file_name: &str) -> (Value, PathBuf) {
        let key = self.cli(&[
            "admin",
            "credential",
            "create",
            "--project",
            project,
            "--role",
            role,
        ]);
        let file = self.dir.path().join(file_name);
        write_private(&file, key.to_string().as_bytes());
        (key, file)
    }

    /// Runs `tmirror --credentials FILE -o json ARGS…` (another project's key) against the
    /// lab's server; its output, whatever the exit status.
    pub fn cli_as(&self, credentials: &Path, args: &[&str]) -> std::process::Output {
        let file = credentials.display().to_string();
        let ca = self.ca_file();
        let mut all = vec![
            "--credentials",
            file.as_str(),
            "--ca-file",
            &ca,
            "-o",
            "json",
        ];
        all.extend_from_slice(args);
        self.lab
            .command("hv", BIN, &all)
            .output()
            .expect("run tmirror")
    }

    /// `cli` and the `id` of the created resource.
    pub fn create(&self, args: &[&str]) -> String {
        self.cli(args)["id"]
            .as_str()
            .expect("created resource has an id")
            .to_string()
    }

    /// A rule in `filter`, written as "DIRECTION PROTOCOL ETHERTYPE ACTION PRIORITY" (e.g.
    /// "egress udp IPv4 reject 1"), with further `rule create` options in `extra`; its id.
    pub fn rule(&self, filter: &str, rule: &str, extra: &[&str]) -> String {
        let r: Vec<&str> = rule.split_whitespace().collect();
        let [direction, protocol, ethertype, action, priority] = r[..] else {
            panic!("rule {rule:?}: want DIRECTION PROTOCOL ETHERTYPE ACTION PRIORITY");
        };
        let mut args = vec![
            "rule",
            "create",
            "--filter",
            filter,
            "--direction",
            direction,
            "--protocol",
            protocol,
            "--ethertype",
            ethertype,
            "--action",
            action,
            "--priority",
            priority,
        ];
        args.extend_from_slice(extra);
        self.create(&args)
    }

    /// A filter named `name` that accepts all IPv4 in both directions; its id.
    pub fn accept_all_ipv4(&self, name: &str) -> String {
        let filter = self.create(&["filter", "create", "--name", name]);
        self.rule(&filter, "ingress all IPv4 accept 1", &[]);
        self.rule(&filter, "egress all IPv4 accept 1", &[]);
        filter
    }

    /// An enabled session mirroring `source` to `target`; its id.
    pub fn session(
        &self,
        name: &str,
        filter: &str,
        source: &str,
        target: &str,
        spec: Spec,
    ) -> String {
        let (priority, vni, length) = (
            spec.priority.to_string(),
            spec.vni.to_string(),
            spec.packet_length.to_string(),
        );
        self.create(&[
            "session",
            "create",
            "--name",
            name,
            "--filter",
            filter,
            "--source",
            source,
            "--target",
            target,
            "--priority",
            &priority,
            "--vni",
            &vni,
            "--packet-length",
            &length,
            &format!("--enabled={}", spec.enabled),
        ])
    }

    /// A source port for VM `n`, bound to the hypervisor's `tapn`.
    pub fn vm_port(&self, n: u8) -> String {
        self.create(&[
            "port",
            "create",
            "--network-id",
            "11111111-1111-1111-1111-111111111111",
            "--ip",
            &addr::vm4(n),
            "--host-id",
            "hv",
            "--interface-name",
            &format!("tap{n}"),
        ])
    }

    /// The collector's port (the sessions' target).
    pub fn collector_port(&self) -> String {
        self.create(&[
            "port",
            "create",
            "--network-id",
            "11111111-1111-1111-1111-111111111111",
            "--ip",
            addr::COLLECTOR,
        ])
    }

    /// Runs `traffic.py ARGS…` in `ns`; its JSON answer.
    pub fn traffic(&self, ns: &str, args: &[&str]) -> Value {
        let script = traffic_script().display().to_string();
        let mut all = vec![script.as_str()];
        all.extend_from_slice(args);
        let out = self.lab.exec(ns, "python3", &all).expect("traffic.py");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// The agent's Prometheus text, or "" while it does not answer.
    pub fn metrics(&self) -> String {
        self.agent_get("/metrics")
    }

    /// The agent's metrics, parsed (a test fails on an exposition a scraper would refuse);
    /// `None` while the agent does not answer.
    pub fn scrape(&self) -> Option<Scrape> {
        let text = self.metrics();
        (!text.is_empty()).then(|| Scrape::of(&text))
    }

    /// The value of the agent's sample `name` whose labels are exactly `labels`.
    pub fn agent_metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.scrape()?.value(name, labels)
    }

    /// Asserts that the agent reports capturing with `capture` (`ebpf` or `af-packet`, as
    /// given to `--capture`) in its metrics.
    pub fn assert_capture_backend(&self, capture: &str) {
        let backend = capture.replace('-', "_");
        assert_eq!(
            self.agent_metric("tmirror_agent_capture_backend", &[("backend", &backend)]),
            Some(1.0),
            "the agent does not report the {capture} back-end:\n{}",
            self.metrics()
        );
    }

    /// The body of `GET PATH` on the agent's metrics listener, or "" while it does not answer.
    pub fn agent_get(&self, path: &str) -> String {
        let script = traffic_script().display().to_string();
        self.lab
            .command(
                "hv",
                "python3",
                &[&script, "get", &format!("http://{METRICS}{path}")],
            )
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the agent captures on exactly `interfaces` (sorted).
    pub fn wait_capturing(&self, interfaces: &[&str]) {
        self.wait_capturing_for(interfaces, Duration::from_secs(15));
    }

    /// Waits up to `limit` until the agent captures on exactly `interfaces` (sorted as
    /// strings: `tap1`, `tap10`, `tap2`, …).
    pub fn wait_capturing_for(&self, interfaces: &[&str], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let m = self.metrics();
            let scrape = (!m.is_empty()).then(|| Scrape::of(&m));
            let mut up: Vec<String> = scrape
                .map(|s| s.samples("tmirror_interface_capturing"))
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.value == 1.0)
                .filter_map(|s| s.labels.get("interface").cloned())
                .collect();
            up.sort();
            if up == interfaces {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not capture on {interfaces:?}; metrics:\n{m}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every copy in the collector's files so far.
    pub fn copies(&self) -> Vec<Copy> {
        self.copies_timed().into_iter().map(|(c, _)| c).collect()
    }

    /// Every copy so far, with the time the collector received it (since the Unix epoch).
    pub fn copies_timed(&self) -> Vec<(Copy, Duration)> {
        self.copies_in("pcap")
    }

    /// Every copy so far in the lab's directory `dir` (a collector's `--out`), with the time the
    /// collector received it.
    pub fn copies_in(&self, dir: &str) -> Vec<(Copy, Duration)> {
        let mut copies = Vec::new();
        let dir = self.dir.path().join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(vni) = name
                .strip_prefix("vni-")
                .and_then(|r| r.split('-').next())
                .and_then(|v| v.parse().ok())
            else {
                continue;
            };
            let bytes = std::fs::read(&path).unwrap();
            if bytes.is_empty() {
                continue;
            }
            let Ok(mut reader) = pcap_file::pcapng::PcapNgReader::new(&bytes[..]) else {
                continue;
            };
            // A file being written may end in a partial block: stop at the first error.
            while let Some(Ok(block)) = reader.next_block() {
                if let pcap_file::pcapng::Block::EnhancedPacket(p) = block {
                    let copy = Copy {
                        vni,
                        frame: p.data.to_vec(),
                    };
                    copies.push((copy, p.timestamp));
                }
            }
        }
        copies
    }

    /// The copies whose inner frame contains `marker`.
    pub fn copies_with(&self, marker: &str) -> Vec<Copy> {
        let m = marker.as_bytes();
        self.copies()
            .into_iter()
            .filter(|c| c.frame.windows(m.len()).any(|w| w == m))
            .collect()
    }

    /// Starts a reference capture (`traffic.py sniff`) on `iface` in `ns`.
    pub fn sniff_start(&mut self, name: &str, ns: &str, iface: &str) {
        let script = traffic_script().display().to_string();
        let child = self
            .lab
            .spawn_piped(name, ns, "python3", &[&script, "sniff", iface])
            .expect("start sniffer");
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("sniffer output");
        assert_eq!(line.trim(), "ready", "sniffer did not start");
        self.sniffers.insert(name.to_string(), out);
    }

    /// Stops a reference capture; every frame it saw, in order.
    pub fn sniff_stop(&mut self, name: &str) -> Vec<Seen> {
        self.lab.kill(name, "TERM").expect("stop sniffer");
        let out = self.sniffers.remove(name).expect("sniffer started");
        out.lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .map(|v| Seen {
                outgoing: v["outgoing"].as_bool().unwrap_or(false),
                frame: hex::decode(v["hex"].as_str().unwrap_or("")).unwrap(),
            })
            .collect()
    }
}

/// Polls `check` every 50 ms for up to `limit`; true once it holds.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
