//! A load generator for the control plane's Huawei face: signed requests from concurrent
//! workers, throughput and latency percentiles. Used by `bench/control-plane.sh`.
//!
//!     cargo run --release -p tmirror-server --example loadgen -- \
//!         --credentials tmirror-data/admin-credentials.json --scenario create --count 5000
//!
//! `--endpoints http://A,http://B` spreads the workers over several servers sharing one
//! database (worker `i` uses endpoint `i mod n`); by default the credentials file's endpoint.
//!
//! Scenarios: `create` (sessions), `seed` (sessions up to `--count`, each with its own source
//! port when `seed-ports` made some), `seed-ports` (ports up to `--count`), `show` and `list`
//! (a 100-item page after a random marker), `filters` (the first page of filters: the seeded
//! sessions all use one filter, whose Alibaba state stands for all their hosts).
//! `--face aliyun` runs the reads through the Alibaba face (`ListTrafficMirrorSessions` by id,
//! and by `NextToken`; `ListTrafficMirrorFilters`), legacy-signed.
//! `bench/storage.sh` uses it for the storage-at-scale figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request};

/// The load generator shares the machine's cores with the server it measures: with glibc's
/// allocator, `malloc`, `free` and their copies were a fifth of its CPU per request
/// (docs/performance.md, "The load generator's weight"), taken from the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Alibaba signature nonces: never twice from one process.
static NONCE: AtomicU64 = AtomicU64::new(0);

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
    async fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let query = huawei::canonical_query(query);
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
            query: &query,
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
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut rb = self
            .http
            .request(method.parse().unwrap(), url)
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

    /// An Alibaba RPC call (HMAC-SHA1, the legacy SDK's signature); status and body.
    async fn rpc(&self, action: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        use tmirror_sign::aliyun;
        let now = OffsetDateTime::now_utc();
        let nonce = format!("{:x}", NONCE.fetch_add(1, Ordering::Relaxed));
        let mut params: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Format".into(), "json".into()),
            ("Version".into(), "2016-04-28".into()),
            ("RegionId".into(), "cn-hangzhou".into()),
            ("Timestamp".into(), aliyun::format_timestamp(now)),
            (
                "SignatureNonce".into(),
                format!("{}-{nonce}", std::process::id()),
            ),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("AccessKeyId".into(), self.ak.clone()),
        ];
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let sig = aliyun::sign_hmac_sha1("POST", &params, &self.sk);
        params.push(("Signature".into(), sig));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", aliyun::pct(k), aliyun::pct(v)))
            .collect();
        let resp = self
            .http
            .post(format!("{}/?{}", self.base, query.join("&")))
            .send()
            .await
            .expect("the server answers");
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn v3(&self, rest: &str) -> String {
        format!("/v3/{}/vpc/{rest}", self.project)
    }
}

struct Args {
    credentials: String,
    endpoints: Vec<String>,
    scenario: String,
    count: u64,
    concurrency: usize,
    seconds: u64,
    face: String,
    /// Where `seed-ports` starts numbering addresses (addresses are unique across projects); also
    /// picks the address of the target port `create` and `seed` make (see `fixtures`).
    first_address: u64,
}

fn args() -> Args {
    let mut a = Args {
        credentials: "tmirror-data/admin-credentials.json".into(),
        endpoints: Vec::new(),
        scenario: "create".into(),
        count: 5000,
        concurrency: 32,
        seconds: 10,
        face: "huawei".into(),
        first_address: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--credentials" => a.credentials = v,
            "--endpoints" => a.endpoints = v.split(',').map(str::to_owned).collect(),
            "--scenario" => a.scenario = v,
            "--count" => a.count = v.parse().unwrap(),
            "--concurrency" => a.concurrency = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            "--face" => a.face = v,
            "--first-address" => a.first_address = v.parse().unwrap(),
            other => panic!("unknown flag {other}; flags: --credentials --endpoints --scenario create|seed|seed-ports|show|list|filters --count --concurrency --seconds --face huawei|aliyun --first-address"),
        }
    }
    a
}

fn report(what: &str, n: u64, elapsed: Duration, mut lat_us: Vec<u64>) {
    lat_us.sort_unstable();
    let p = |q: f64| {
        lat_us
            .get(((lat_us.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{what}: {n} requests in {:.2} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// Counts a long seeding's creates and prints, every 20 s, how many are done and the rate over
/// those 20 s, so that a rate falling with the number stored shows within one run. Stopped by
/// aborting the returned task.
fn progress(what: &'static str) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let ticker = tokio::spawn(async move {
        let window = Duration::from_secs(20);
        let mut last = 0;
        loop {
            tokio::time::sleep(window).await;
            let now = counter.load(Ordering::Relaxed);
            println!(
                "  {what}: {now} done, {:.0}/s over the last {} s",
                (now - last) as f64 / window.as_secs_f64(),
                window.as_secs()
            );
            last = now;
        }
    });
    (done, ticker)
}

/// Sessions need a filter and a target port; sources may be empty. The target's address comes
/// from `first_address` (its low 16 bits, in 10.255.0.0/16): an address is one project's, so
/// projects seeded with different `--first-address` need different ones.
async fn fixtures(api: &Api, first_address: u64) -> (String, String) {
    let (fs, f) = api
        .call(
            "POST",
            &api.v3("traffic-mirror-filters"),
            "",
            Some(&json!({"traffic_mirror_filter": {"name": "bench"}})),
        )
        .await;
    let port_path = format!("/v1/{}/ports", api.project);
    let ip = format!(
        "10.255.{}.{}",
        (first_address >> 8) & 255,
        first_address & 255
    );
    let (ps, p) = api
        .call(
            "POST",
            &port_path,
            "",
            Some(
                &json!({"port": {"network_id": format!("n-{}", api.project), "fixed_ips": [{"ip_address": ip}]}}),
            ),
        )
        .await;
    assert_eq!((fs, ps), (201, 201), "the fixtures: {f} {p}");
    (
        f["traffic_mirror_filter"]["id"].as_str().unwrap().into(),
        p["port"]["id"].as_str().unwrap().into(),
    )
}

async fn session_ids(api: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    let mut marker = String::new();
    loop {
        let q = if marker.is_empty() {
            "limit=2000".to_string()
        } else {
            format!("limit=2000&marker={marker}")
        };
        let (_, page) = api
            .call("GET", &api.v3("traffic-mirror-sessions"), &q, None)
            .await;
        for s in page["traffic_mirror_sessions"].as_array().unwrap() {
            ids.push(s["id"].as_str().unwrap().to_owned());
        }
        match page["page_info"].get("next_marker") {
            Some(m) => marker = m.as_str().unwrap().into(),
            None => return ids,
        }
    }
}

/// The network of the seeded ports (networks belong to one project).
fn bench_network(api: &Api) -> String {
    format!("bench-{}", api.project)
}

/// The ports `seed-ports` made (in the bench network; the fixtures' target ports are in
/// another), in creation order.
async fn port_ids(api: &Api) -> Vec<String> {
    let network = bench_network(api);
    let mut ids: Vec<String> = Vec::new();
    let path = format!("/v1/{}/ports", api.project);
    loop {
        let q = match ids.last() {
            None => format!("limit=2000&network_id={network}"),
            Some(m) => format!("limit=2000&marker={m}&network_id={network}"),
        };
        let (status, page) = api.call("GET", &path, &q, None).await;
        assert_eq!(status, 200, "{page}");
        let got = page["ports"].as_array().unwrap();
        ids.extend(got.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        if got.len() < 2000 {
            return ids;
        }
    }
}

async fn seed_ports(apis: &[Api], a: &Args, first: u64) -> (u64, Duration, Vec<u64>) {
    let next = Arc::new(AtomicU64::new(first));
    let (end, base) = (a.count, a.first_address);
    let (done, ticker) = progress("port create");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (api, next, done) = (apis[w % apis.len()].clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let path = format!("/v1/{}/ports", api.project);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return lat;
                }
                let n = base + i;
                let ip = format!("10.{}.{}.{}", 100 + (n >> 16), (n >> 8) & 255, n & 255);
                let network = bench_network(&api);
                let body =
                    json!({"port": {"network_id": network, "fixed_ips": [{"ip_address": ip}]}});
                let t = Instant::now();
                let (status, b) = api.call("POST", &path, "", Some(&body)).await;
                assert_eq!(status, 201, "{b}");
                lat.push(t.elapsed().as_micros() as u64);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    ticker.abort();
    (lat.len() as u64, start.elapsed(), lat)
}

async fn create(apis: &[Api], a: &Args, first_priority: u64) -> (u64, Duration, Vec<u64>) {
    let (filter, target) = fixtures(&apis[0], a.first_address).await;
    // Session `p` mirrors seeded port `p - 1` when there is one.
    let ports = Arc::new(port_ids(&apis[0]).await);
    let next = Arc::new(AtomicU64::new(first_priority));
    let end = first_priority + a.count;
    let (done, ticker) = progress("session create");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (api, next, filter, target, ports, done) = (
            apis[w % apis.len()].clone(),
            next.clone(),
            filter.clone(),
            target.clone(),
            ports.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= end {
                    return lat;
                }
                let sources: Vec<&String> = ports.get(p as usize - 1).into_iter().collect();
                let body = json!({"traffic_mirror_session": {"name": format!("s{p}"), "traffic_mirror_filter_id": filter,
                    "traffic_mirror_sources": sources, "traffic_mirror_target_id": target, "traffic_mirror_target_type": "eni",
                    "priority": p}});
                let t = Instant::now();
                let (status, b) = api.call("POST", &api.v3("traffic-mirror-sessions"), "", Some(&body)).await;
                assert_eq!(status, 201, "{b}");
                lat.push(t.elapsed().as_micros() as u64);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    ticker.abort();
    (lat.len() as u64, start.elapsed(), lat)
}

/// What the `show`, `list` and `filters` scenarios read.
#[derive(Clone, Copy, PartialEq)]
enum Read {
    Show,
    List,
    Filters,
}

async fn reads(apis: &[Api], a: &Args, read: Read) -> (u64, Duration, Vec<u64>) {
    let aliyun = a.face == "aliyun";
    let ids = Arc::new(session_ids(&apis[0]).await);
    assert!(!ids.is_empty(), "seed sessions first (--scenario seed)");
    if aliyun {
        // The Alibaba face answers a project that has not opened the service with
        // OptInRequired; an earlier run may have opened it (ORDER.OPEND).
        let (status, body) = apis[0].rpc("OpenTrafficMirrorService", &[]).await;
        assert!(
            status == 200 || body["Code"] == "ORDER.OPEND",
            "OpenTrafficMirrorService: {body}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (api, ids) = (apis[w % apis.len()].clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w * 7919;
            while Instant::now() < deadline {
                i = (i * 31 + 17) % ids.len();
                let t = Instant::now();
                let shown = format!("tms-{}", ids[i].replace('-', ""));
                let list = read == Read::List;
                let (status, body) = if read == Read::Filters && aliyun {
                    api.rpc("ListTrafficMirrorFilters", &[("MaxResults", "100")])
                        .await
                } else if read == Read::Filters {
                    api.call("GET", &api.v3("traffic-mirror-filters"), "limit=100", None)
                        .await
                } else if aliyun && list {
                    let params = [("MaxResults", "100"), ("NextToken", shown.as_str())];
                    api.rpc("ListTrafficMirrorSessions", &params).await
                } else if aliyun {
                    let params = [("TrafficMirrorSessionIds.1", shown.as_str())];
                    api.rpc("ListTrafficMirrorSessions", &params).await
                } else if list {
                    api.call(
                        "GET",
                        &api.v3("traffic-mirror-sessions"),
                        &format!("limit=100&marker={}", ids[i]),
                        None,
                    )
                    .await
                } else {
                    api.call(
                        "GET",
                        &api.v3(&format!("traffic-mirror-sessions/{}", ids[i])),
                        "",
                        None,
                    )
                    .await
                };
                assert_eq!(status, 200, "a read was refused: {body}");
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    (lat.len() as u64, start.elapsed(), lat)
}

#[tokio::main]
async fn main() {
    let a = args();
    let file: Value =
        serde_json::from_slice(&std::fs::read(&a.credentials).expect("read the credentials file"))
            .unwrap();
    let endpoints = if a.endpoints.is_empty() {
        vec![file["endpoint"].as_str().unwrap().to_owned()]
    } else {
        a.endpoints.clone()
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap();
    let apis: Vec<Api> = endpoints
        .iter()
        .map(|e| {
            let base = e.trim_end_matches('/').to_owned();
            Api {
                host: base.trim_start_matches("http://").to_owned(),
                base,
                ak: file["access_key"].as_str().unwrap().into(),
                sk: file["secret_key"].as_str().unwrap().into(),
                project: file["project_id"].as_str().unwrap().into(),
                http: http.clone(),
            }
        })
        .collect();
    let api = &apis[0];
    match a.scenario.as_str() {
        "create" => {
            let existing = session_ids(api).await.len() as u64;
            let (n, e, l) = create(&apis, &a, existing + 1).await;
            report("session create", n, e, l);
        }
        "seed" => {
            let existing = session_ids(api).await.len() as u64;
            if existing < a.count {
                let seed = Args {
                    count: a.count - existing,
                    ..a
                };
                let (n, e, l) = create(&apis, &seed, existing + 1).await;
                report("seed (session create)", n, e, l);
            }
            println!("sessions stored: {}", session_ids(api).await.len());
        }
        "seed-ports" => {
            let existing = port_ids(api).await.len() as u64;
            if existing < a.count {
                let (n, e, l) = seed_ports(&apis, &a, existing).await;
                report("seed (port create)", n, e, l);
            }
            println!("ports stored: {}", port_ids(api).await.len());
        }
        "show" => {
            let (n, e, l) = reads(&apis, &a, Read::Show).await;
            report(&format!("session show ({})", a.face), n, e, l);
        }
        "list" => {
            let (n, e, l) = reads(&apis, &a, Read::List).await;
            report(&format!("session list, 100 per page ({})", a.face), n, e, l);
        }
        "filters" => {
            let (n, e, l) = reads(&apis, &a, Read::Filters).await;
            report(&format!("filter list, first page ({})", a.face), n, e, l);
        }
        other => panic!("unknown scenario {other}"),
    }
}
