//! A load generator for the control plane's Huawei face: signed requests from concurrent
//! workers, throughput and latency percentiles. Used by `bench/control-plane.sh`.
//!
//!     cargo run --release -p tmirror-server --example loadgen -- \
//!         --credentials tmirror-data/admin-credentials.json --scenario create --count 5000
//!
//! `--endpoints http://A,http://B` spreads the workers over several servers sharing one
//! database (worker `i` uses endpoint `i mod n`); by default the credentials file's endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request};

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
}

fn args() -> Args {
    let mut a = Args {
        credentials: "tmirror-data/admin-credentials.json".into(),
        endpoints: Vec::new(),
        scenario: "create".into(),
        count: 5000,
        concurrency: 32,
        seconds: 10,
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
            other => panic!("unknown flag {other}; flags: --credentials --endpoints --scenario create|seed|show|list --count --concurrency --seconds"),
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

/// Sessions need a filter and a target port; sources may be empty.
async fn fixtures(api: &Api) -> (String, String) {
    let (_, f) = api
        .call(
            "POST",
            &api.v3("traffic-mirror-filters"),
            "",
            Some(&json!({"traffic_mirror_filter": {"name": "bench"}})),
        )
        .await;
    let port_path = format!("/v1/{}/ports", api.project);
    let (_, p) = api
        .call(
            "POST",
            &port_path,
            "",
            Some(
                &json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "10.255.0.1"}]}}),
            ),
        )
        .await;
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

async fn create(apis: &[Api], a: &Args, first_priority: u64) -> (u64, Duration, Vec<u64>) {
    let (filter, target) = fixtures(&apis[0]).await;
    let next = Arc::new(AtomicU64::new(first_priority));
    let end = first_priority + a.count;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (api, next, filter, target) = (
            apis[w % apis.len()].clone(),
            next.clone(),
            filter.clone(),
            target.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= end {
                    return lat;
                }
                let body = json!({"traffic_mirror_session": {"name": format!("s{p}"), "traffic_mirror_filter_id": filter,
                    "traffic_mirror_sources": [], "traffic_mirror_target_id": target, "traffic_mirror_target_type": "eni",
                    "priority": p}});
                let t = Instant::now();
                let (status, b) = api.call("POST", &api.v3("traffic-mirror-sessions"), "", Some(&body)).await;
                assert_eq!(status, 201, "{b}");
                lat.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    (lat.len() as u64, start.elapsed(), lat)
}

async fn reads(apis: &[Api], a: &Args, list: bool) -> (u64, Duration, Vec<u64>) {
    let ids = Arc::new(session_ids(&apis[0]).await);
    assert!(!ids.is_empty(), "seed sessions first (--scenario seed)");
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
                let (status, _) = if list {
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
                assert_eq!(status, 200);
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
        "show" => {
            let (n, e, l) = reads(&apis, &a, false).await;
            report("session show", n, e, l);
        }
        "list" => {
            let (n, e, l) = reads(&apis, &a, true).await;
            report("session list (100 per page)", n, e, l);
        }
        other => panic!("unknown scenario {other}"),
    }
}
