//! Durability: concurrent writers, `kill -9` of the server at a random moment, restart; every
//! write that was answered 2xx is there, unchanged, and nothing half-written is visible.
//!
//! The server runs in a child process: this test binary re-executes itself with
//! `TMIRROR_CRASH_CHILD=<data dir>` to run only `child_server`, which serves until killed.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, Creds};
use serde_json::{json, Value};

/// When run as the child: serve on the port and data directory given, until killed.
#[test]
fn child_server() {
    let (Ok(dir), Ok(listen)) = (
        std::env::var("TMIRROR_CRASH_CHILD"),
        std::env::var("TMIRROR_CRASH_LISTEN"),
    ) else {
        return; // not the child: nothing to do
    };
    let config = tmirror_server::ServeConfig {
        listen: listen.parse().unwrap(),
        data_dir: dir.into(),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = tmirror_server::Server::bind(&config).await.unwrap();
        server.serve(std::future::pending()).await.unwrap();
    });
}

struct Child9(Child);

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn_server(dir: &std::path::Path, port: u16) -> Child9 {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
        .env("TMIRROR_CRASH_CHILD", dir)
        .env("TMIRROR_CRASH_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server child");
    let child = Child9(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if r.status() == 200 {
                return child;
            }
        }
        assert!(Instant::now() < deadline, "server did not become healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn creds(dir: &std::path::Path) -> Creds {
    let file: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin-credentials.json")).unwrap())
            .unwrap();
    Creds {
        access_key: file["access_key"].as_str().unwrap().into(),
        secret_key: file["secret_key"].as_str().unwrap().into(),
        project_id: file["project_id"].as_str().unwrap().into(),
    }
}

/// Every filter the server has, by walking the pages.
async fn all_filters(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    let mut marker = String::new();
    loop {
        let q = if marker.is_empty() {
            "traffic-mirror-filters?limit=500".to_string()
        } else {
            format!("traffic-mirror-filters?limit=500&marker={marker}")
        };
        let page = api.get(&api.v3(&q)).await.ok(200);
        out.extend(
            page["traffic_mirror_filters"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match page["page_info"].get("next_marker") {
            Some(m) => marker = m.as_str().unwrap().to_owned(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    if std::env::var("TMIRROR_CRASH_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // (id, name, description) of every write answered 2xx.
    let acked: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let rounds = 4;
    for round in 0..rounds {
        let port = free_port();
        let mut server = spawn_server(dir.path(), port).await;
        let api = Api::new(
            format!("127.0.0.1:{port}").parse().unwrap(),
            creds(dir.path()),
        );
        let mut writers = Vec::new();
        for w in 0..4 {
            let (api, acked) = (api.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                // Bounded: at most 2,000 writes per writer per round, and it stops at the kill.
                for i in 0..2000 {
                    let name = format!("r{round}-w{w}-{i}");
                    let description = format!("written in round {round} by writer {w}");
                    let body = json!({"traffic_mirror_filter": {"name": name, "description": description}});
                    let bytes = serde_json::to_vec(&body).unwrap();
                    let r = tokio::time::timeout(Duration::from_secs(5), async {
                        std::panic::AssertUnwindSafe(api.try_call_raw("POST", &api.v3("traffic-mirror-filters"), &bytes)).await
                    })
                    .await;
                    match r {
                        Ok(Some((201, body))) => {
                            let id = body["traffic_mirror_filter"]["id"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().push((id, name, description));
                        }
                        Ok(Some((status, body))) => panic!("unexpected answer {status}: {body}"),
                        _ => return, // the server is gone
                    }
                }
            }));
        }
        // Kill at a pseudo-random moment between 150 and 650 ms into the writes.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        tokio::time::sleep(Duration::from_millis(150 + u64::from(nanos % 500))).await;
        let _ = server.0.kill(); // SIGKILL
        let _ = server.0.wait();
        for w in writers {
            w.await.unwrap();
        }
    }
    let port = free_port();
    let _server = spawn_server(dir.path(), port).await;
    let api = Api::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        creds(dir.path()),
    );
    let present = all_filters(&api).await;
    let by_id: std::collections::HashMap<&str, &Value> = present
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f))
        .collect();
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 100,
        "the writers made progress before each kill: {}",
        acked.len()
    );
    for (id, name, description) in acked.iter() {
        let f = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged filter {id} ({name}) was lost"));
        assert_eq!(f["name"], *name);
        assert_eq!(f["description"], *description);
    }
    // Nothing half-written: every stored filter is whole (a name, its own description).
    for f in &present {
        let name = f["name"].as_str().unwrap();
        let parts: Vec<&str> = name
            .trim_start_matches('r')
            .split(['-', 'w'])
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            f["description"],
            format!("written in round {} by writer {}", parts[0], parts[1]),
            "{f}"
        );
    }
    eprintln!(
        "{} acknowledged writes over {rounds} kills, {} stored",
        acked.len(),
        present.len()
    );
}
