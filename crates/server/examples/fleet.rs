//! A fleet simulator (issue 14): N simulated agents enrol, register and long-poll the control
//! plane over real HTTP with their hash while a writer changes one session at W writes/s;
//! prints write latency, convergence (2xx → every concerned host holds the new document),
//! hosts never reached, server CPU per write and server memory. Run by hand (release build):
//!
//!     cargo build --release -p tmirror-cli --bin tmirror
//!     cargo run --release -p tmirror-server --example fleet -- --hosts 1000 --writes 10
//!
//! `--kind enable|rule|sources`: toggle the session's `enabled`, change a rule of its filter,
//! or remove and add back one of its sources. `--servers 2` runs two servers on PostgreSQL
//! (a fresh database on the server `TMIRROR_TEST_DATABASE_URL` names, e.g. under
//! `scripts/pg-cluster.sh run`); the agents and the writer are spread over them. The session
//! has `--sources` sources (default 10), each bound to one host. `--tmirror PATH` picks the
//! server binary (default: `target/release/tmirror`). Every process it starts is stopped when
//! it ends, also on a panic.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request};

struct Args {
    hosts: usize,
    writes: f64,
    seconds: u64,
    idle: u64,
    kind: String,
    servers: usize,
    sources: usize,
    tmirror: String,
}

fn args() -> Args {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut a = Args {
        hosts: 100,
        writes: 10.0,
        seconds: 20,
        idle: 10,
        kind: "enable".into(),
        servers: 1,
        sources: 10,
        tmirror: format!("{target}/release/tmirror"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--hosts" => a.hosts = v.parse().unwrap(),
            "--writes" => a.writes = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--idle" => a.idle = v.parse().unwrap(),
            "--kind" => a.kind = v,
            "--servers" => a.servers = v.parse().unwrap(),
            "--sources" => a.sources = v.parse().unwrap(),
            "--tmirror" => a.tmirror = v,
            other => panic!("unknown flag {other}; flags: --hosts --writes --seconds --idle --kind enable|rule|sources --servers 1|2 --sources --tmirror"),
        }
    }
    assert!(a.sources <= a.hosts, "--sources must not exceed --hosts");
    a
}

/// The server processes; killed when dropped (also on a panic).
struct Servers {
    children: Vec<Child>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Servers {
    /// CPU seconds (user + system) the servers used so far.
    fn cpu_seconds(&self) -> f64 {
        let tick = 100.0; // USER_HZ on Linux
        self.children
            .iter()
            .map(|c| {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap();
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                let f: Vec<&str> = after.split(' ').collect();
                (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick
            })
            .sum()
    }

    /// Resident memory of each server, MiB.
    fn rss_mib(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|c| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap();
                let kb: f64 = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                kb / 1024.0
            })
            .collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_servers(a: &Args, db: Option<&str>) -> (Servers, Vec<String>) {
    let mut servers = Servers {
        children: Vec::new(),
        _dirs: Vec::new(),
    };
    let mut endpoints = Vec::new();
    for _ in 0..a.servers {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new(&a.tmirror);
        cmd.arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(["--max-connections", "60000"])
            .args(["--max-connections-per-address", "60000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Throttling (if this build has it) would refuse a fleet on one loopback address.
        for (flag, v) in [
            ("--rate-per-key", "1000000"),
            ("--burst-per-key", "1000000"),
            ("--rate-per-address", "1000000"),
            ("--burst-per-address", "1000000"),
        ] {
            if supports(&a.tmirror, flag) {
                cmd.args([flag, v]);
            }
        }
        if let Some(url) = db {
            cmd.args(["--database-url", url]);
            // Servers sharing a database share the master key that seals the secrets in it.
            if let Some(first) = servers._dirs.first() {
                cmd.arg("--master-key-file")
                    .arg(first.path().join("master.key"));
            }
        }
        servers
            .children
            .push(cmd.spawn().expect("start tmirror serve"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{endpoint}/healthz")).await.is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        servers._dirs.push(dir);
        endpoints.push(endpoint);
    }
    (servers, endpoints)
}

fn supports(tmirror: &str, flag: &str) -> bool {
    let help = Command::new(tmirror)
        .args(["serve", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    help.contains(flag)
}

#[derive(Clone)]
struct Api {
    base: String,
    host: String,
    ak: String,
    sk: String,
    project: String,
    http: reqwest::Client,
}

impl Api {
    fn new(endpoint: &str, creds: &Value) -> Api {
        Api {
            base: endpoint.to_owned(),
            host: endpoint.trim_start_matches("http://").to_owned(),
            ak: creds["access_key"].as_str().unwrap().into(),
            sk: creds["secret_key"].as_str().unwrap().into(),
            project: creds["project_id"].as_str().unwrap().into(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
        let headers = [
            ("content-type", "application/json".to_string()),
            ("host", self.host.clone()),
            ("x-project-id", self.project.clone()),
            ("x-sdk-date", date.clone()),
        ];
        let req = Request {
            method,
            path,
            query: "",
            headers: &headers,
            body: &bytes,
        };
        let auth = huawei::sign(
            &req,
            &self.ak,
            &self.sk,
            &date,
            &["content-type", "host", "x-project-id", "x-sdk-date"],
        )
        .unwrap();
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("authorization", auth);
        for (k, v) in &headers[..] {
            if *k != "host" {
                rb = rb.header(*k, v);
            }
        }
        let resp = rb.body(bytes).send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, Some(&body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    fn v1(&self, rest: &str) -> String {
        format!("/v1/{}/{rest}", self.project)
    }

    fn v3(&self, rest: &str) -> String {
        format!("/v3/{}/vpc/{rest}", self.project)
    }
}

fn host_name(i: usize) -> String {
    format!("sim-{i:05}")
}

/// What a host's document says about the write under test (compared with the writer's
/// expectation): the number of sessions its interfaces have, and the first rule's port.
fn marker(doc: &Value) -> (usize, u64) {
    let mut sessions = 0;
    let mut port = 0;
    for i in doc["interfaces"].as_array().into_iter().flatten() {
        for s in i["sessions"].as_array().into_iter().flatten() {
            sessions += 1;
            if let Some(p) = s["ingress_rules"][0]["destination_port_range"]["from"].as_u64() {
                port = p;
            }
        }
    }
    (sessions, port)
}

/// Each host's observations: when a document arrived, and its marker.
type Seen = Arc<Vec<Mutex<Vec<(Instant, (usize, u64))>>>>;

async fn agent(i: usize, endpoint: String, token: String, http: reqwest::Client, seen: Seen) {
    let host = host_name(i);
    let base = format!("{endpoint}/agent/v1/hosts/{host}");
    let r = http
        .post(format!("{base}/register"))
        .bearer_auth(&token)
        .json(&json!({"version": "sim", "interfaces": []}))
        .send()
        .await
        .expect("register");
    assert!(r.status().is_success(), "register {host}: {}", r.status());
    let mut known = String::new();
    let mut applied = 0;
    loop {
        let r = match http
            .get(format!("{base}/desired-state?known={known}&wait=25"))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                eprintln!("{host}: poll answered {}", r.status());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                eprintln!("{host}: poll failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let doc: Value = r.json().await.unwrap();
        let now = Instant::now();
        seen[i].lock().unwrap().push((now, marker(&doc)));
        known = doc["content_hash"].as_str().unwrap_or("").to_owned();
        let generation = doc["generation"].as_u64().unwrap_or(0);
        if generation > applied {
            applied = generation;
            // As the real agent does after applying a document.
            let _ = http
                .post(format!("{base}/status"))
                .bearer_auth(&token)
                .json(&json!({"applied_generation": applied, "interfaces": [], "counters": {}}))
                .send()
                .await;
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let a = args();
    let _ = rlimit::increase_nofile_limit(200_000);
    let db = if a.servers > 1 {
        Some(
            tmirror_store::testdb::TestDatabase::create()
                .await
                .expect("--servers 2 needs PostgreSQL: set TMIRROR_TEST_DATABASE_URL (scripts/pg-cluster.sh run …)"),
        )
    } else {
        None
    };
    let (servers, endpoints) = start_servers(&a, db.as_ref().map(|d| d.url())).await;
    let creds: Value = serde_json::from_slice(
        &std::fs::read(servers._dirs[0].path().join("admin-credentials.json")).unwrap(),
    )
    .unwrap();
    let apis: Vec<Api> = endpoints.iter().map(|e| Api::new(e, &creds)).collect();
    let api = &apis[0];

    // The world: a target, a filter with a rule, a session whose sources are bound to the
    // first `--sources` hosts; every host enrolled.
    let t = Instant::now();
    let tokens: Vec<String> = futures::stream::iter(0..a.hosts)
        .map(|i| async move {
            let v = api
                .ok("POST", "/admin/v1/hosts", json!({"host_id": host_name(i)}))
                .await;
            v["credential"]["token"].as_str().unwrap().to_owned()
        })
        .buffered(8)
        .collect()
        .await;
    let port = |host: String, ip: String, iface: String| {
        json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": ip}],
            "binding:host_id": host, "binding:profile": {"interface_name": iface}}})
    };
    let mut sources = Vec::new();
    for i in 0..a.sources {
        let ip = format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256);
        let v = api
            .ok(
                "POST",
                &api.v1("ports"),
                port(host_name(i), ip, format!("vm{i}")),
            )
            .await;
        sources.push(v["port"]["id"].as_str().unwrap().to_owned());
    }
    let target = api
        .ok(
            "POST",
            &api.v1("ports"),
            port(String::new(), "10.255.0.1".into(), "target0".into()),
        )
        .await["port"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let filter = api
        .ok(
            "POST",
            &api.v3("traffic-mirror-filters"),
            json!({"traffic_mirror_filter": {"name": "sim"}}),
        )
        .await["traffic_mirror_filter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rule = api
        .ok(
            "POST",
            &api.v3("traffic-mirror-filter-rules"),
            json!({"traffic_mirror_filter_rule": {"traffic_mirror_filter_id": filter,
                "direction": "ingress", "protocol": "tcp", "ethertype": "IPv4", "action": "accept",
                "priority": 1, "destination_port_range": "1-1"}}),
        )
        .await["traffic_mirror_filter_rule"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = api
        .ok(
            "POST",
            &api.v3("traffic-mirror-sessions"),
            json!({"traffic_mirror_session": {"name": "sim", "traffic_mirror_filter_id": filter,
                "traffic_mirror_sources": sources, "traffic_mirror_target_id": target,
                "traffic_mirror_target_type": "eni", "priority": 1, "enabled": true,
                "virtual_network_id": 1}}),
        )
        .await["traffic_mirror_session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eprintln!("world: {} hosts enrolled in {:.1?}", a.hosts, t.elapsed());

    // The fleet: every agent registers and long-polls (spread over the servers).
    let seen: Seen = Arc::new((0..a.hosts).map(|_| Mutex::new(Vec::new())).collect());
    let clients: Vec<reqwest::Client> = (0..8)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(usize::MAX)
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        tasks.push(tokio::spawn(agent(
            i,
            endpoints[i % endpoints.len()].clone(),
            token,
            clients[i % clients.len()].clone(),
            seen.clone(),
        )));
    }
    // Every host has its first document.
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.iter().any(|s| s.lock().unwrap().is_empty()) {
        assert!(Instant::now() < deadline, "not every host got its document");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "fleet: every host has its document after {:.1?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Idle: no writes.
    let cpu0 = servers.cpu_seconds();
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.idle)).await;
    let idle_cpu = (servers.cpu_seconds() - cpu0) / idle_started.elapsed().as_secs_f64();

    // Writes at a fixed rate, each with the markers the concerned hosts must reach.
    let session_path = api.v3(&format!("traffic-mirror-sessions/{session}"));
    let rule_path = api.v3(&format!("traffic-mirror-filter-rules/{rule}"));
    let total = (a.writes * a.seconds as f64) as usize;
    let every = Duration::from_secs_f64(1.0 / a.writes);
    let cpu1 = servers.cpu_seconds();
    let started = Instant::now();
    let mut writes = Vec::new();
    for k in 0..total {
        let at = started + every * k as u32;
        tokio::time::sleep_until(at.into()).await;
        let api = apis[k % apis.len()].clone();
        let (method, path, body, concerned, expect): (_, String, Value, Vec<usize>, (usize, u64)) =
            match a.kind.as_str() {
                "enable" => {
                    let on = k % 2 == 1;
                    (
                        "PUT",
                        session_path.clone(),
                        json!({"traffic_mirror_session": {"enabled": on}}),
                        (0..a.sources).collect(),
                        if on { (1, 1) } else { (0, 0) },
                    )
                }
                "rule" => {
                    let p = 2 + (k % 60000) as u64;
                    (
                        "PUT",
                        rule_path.clone(),
                        json!({"traffic_mirror_filter_rule": {"destination_port_range": format!("{p}-{p}")}}),
                        (0..a.sources).collect(),
                        (1, p),
                    )
                }
                "sources" => {
                    // One source after the other, each removed on one pass and added back on
                    // the next: the writes of one source are `--sources` writes apart, so that
                    // a slow remove is not overtaken by its add (which would be refused).
                    let host = k % a.sources;
                    let add = (k / a.sources) % 2 == 1;
                    let verb = if add { "add-sources" } else { "remove-sources" };
                    (
                        "PUT",
                        format!("{session_path}/{verb}"),
                        json!({"traffic_mirror_session": {"traffic_mirror_sources": [sources[host]]}}),
                        vec![host],
                        if add { (1, 1) } else { (0, 0) },
                    )
                }
                other => panic!("unknown --kind {other}: enable, rule or sources"),
            };
        let sent = Instant::now();
        writes.push(tokio::spawn(async move {
            let (status, v) = api.call(method, &path, Some(&body)).await;
            assert!(
                (200..300).contains(&status),
                "{method} {path}: {status} {v}"
            );
            (sent, Instant::now(), concerned, expect)
        }));
    }
    let mut done = Vec::new();
    for w in writes {
        done.push(w.await.unwrap());
    }
    let writing = started.elapsed();
    // Let the last changes arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let write_cpu = servers.cpu_seconds() - cpu1;
    let rss = servers.rss_mib();
    for t in tasks {
        t.abort();
    }

    // A host converged for write k at the first document it received after the write was
    // sent that shows the write's marker, unless a later write was sent before then.
    let mut latency: Vec<f64> = Vec::new();
    let mut convergence: Vec<f64> = Vec::new();
    let mut missed = 0;
    let observations: Vec<Vec<(Instant, (usize, u64))>> =
        seen.iter().map(|s| s.lock().unwrap().clone()).collect();
    let mut by_write = HashMap::new();
    for (k, (sent, ok, concerned, expect)) in done.iter().enumerate() {
        latency.push(ok.duration_since(*sent).as_secs_f64() * 1000.0);
        let next_sent = done.get(k + 1).map(|d| d.0);
        let mut worst = 0.0_f64;
        for h in concerned {
            let hit = observations[*h]
                .iter()
                .find(|(t, m)| *t >= *sent && m == expect);
            match hit {
                Some((t, _)) if next_sent.is_none_or(|n| *t <= n + Duration::from_secs(5)) => {
                    let c = t.saturating_duration_since(*ok).as_secs_f64() * 1000.0;
                    worst = worst.max(c);
                }
                _ => missed += 1,
            }
        }
        convergence.push(worst);
        by_write.insert(k, worst);
    }
    latency.sort_by(f64::total_cmp);
    convergence.sort_by(f64::total_cmp);
    println!(
        "fleet: {} hosts, {} server(s) on {}, kind {}, {} sources",
        a.hosts,
        a.servers,
        if db.is_some() { "postgres" } else { "sqlite" },
        a.kind,
        a.sources
    );
    println!(
        "writes: {:.1}/s asked, {:.1}/s done ({} in {:.1} s); latency p50 {:.1} ms, p99 {:.1} ms",
        a.writes,
        done.len() as f64 / writing.as_secs_f64(),
        done.len(),
        writing.as_secs_f64(),
        percentile(&latency, 0.5),
        percentile(&latency, 0.99)
    );
    println!(
        "convergence (2xx → every concerned host has the new document): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; (write, host) pairs never reached: {missed}",
        percentile(&convergence, 0.5),
        percentile(&convergence, 0.99),
        percentile(&convergence, 1.0)
    );
    println!(
        "server CPU: {:.1} ms per write ({:.2} CPU-s/s while writing); idle fleet {:.1}% of a core; memory {:?} MiB",
        write_cpu / done.len().max(1) as f64 * 1000.0,
        write_cpu / (writing.as_secs_f64() + 3.0),
        idle_cpu * 100.0,
        rss.iter().map(|m| m.round()).collect::<Vec<_>>()
    );
    drop(servers);
    drop(db);
}
