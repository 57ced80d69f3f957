//! Durability and fail-over under `kill -9`.
//!
//! - On SQLite (one server): concurrent writers, the server killed at a random moment and
//!   restarted, several times.
//! - On PostgreSQL (two servers on one database): writers going as fast as they can through
//!   both servers while one of them is killed at a random moment and restarted, several times.
//!
//! Either way, every write that was answered 2xx is there at the end, unchanged, and nothing
//! half-written is visible. On PostgreSQL an agent (the real `Syncer`, given both servers)
//! moves to the other server when its own is killed and keeps receiving changes.
//!
//! Servers run in child processes: this test binary re-executes itself with
//! `TMIRROR_CRASH_CHILD=<data dir>` (and `TMIRROR_CRASH_DATABASE=<url>` on PostgreSQL) to run
//! only `child_server`, which serves until killed.

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
        database_url: std::env::var("TMIRROR_CRASH_DATABASE").ok(),
        // The servers sharing a database share its master key.
        master_key: std::env::var("TMIRROR_CRASH_MASTER_KEY")
            .ok()
            .map(|k| tmirror_store::MasterKey::from_base64(&k).unwrap()),
        // The writers create filters as fast as they can, thousands in one project.
        limits: tmirror_server::service::Limits {
            filters_per_project: u32::MAX,
            ..Default::default()
        },
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
    spawn_server_on(dir, port, None).await
}

/// A server child on `port` with its data directory `dir` and, if given, that database.
/// The master key of the servers sharing a PostgreSQL database (a test key: 32 bytes of 7).
const SHARED_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

async fn spawn_server_on(dir: &std::path::Path, port: u16, database: Option<&str>) -> Child9 {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
        .env("TMIRROR_CRASH_CHILD", dir)
        .env("TMIRROR_CRASH_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("TMIRROR_CRASH_DATABASE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = database {
        cmd.env("TMIRROR_CRASH_DATABASE", url)
            .env("TMIRROR_CRASH_MASTER_KEY", SHARED_KEY);
    }
    let child = cmd.spawn().expect("spawn the server child");
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
async fn acknowledged_writes_survive_kill_9_on_sqlite() {
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
        // Kill at a pseudo-random moment once the round's writes are under way.
        let round_start = acked.lock().unwrap().len();
        wait_for_acks(&acked, round_start + MIN_ACKS_PER_ROUND).await;
        tokio::time::sleep(Duration::from_millis(pseudo_random() % 500)).await;
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
    let acked = acked.lock().unwrap().clone();
    let stored = check_acknowledged(&api, &acked).await;
    eprintln!(
        "{} acknowledged writes over {rounds} kills, {stored} stored",
        acked.len(),
    );
}

/// Every acknowledged write `(id, name, description)` is stored unchanged, and every stored
/// filter is whole; returns how many are stored.
async fn check_acknowledged(api: &Api, acked: &[(String, String, String)]) -> usize {
    let present = all_filters(api).await;
    let by_id: std::collections::HashMap<&str, &Value> = present
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f))
        .collect();
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
    present.len()
}

/// A fresh PostgreSQL database, or `None` with a message past the capture.
async fn pg_database(test: &str) -> Option<tmirror_store::testdb::TestDatabase> {
    let db = tmirror_store::testdb::TestDatabase::create().await;
    if db.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set {} to run it on PostgreSQL (scripts/pg-cluster.sh run cargo test)",
            tmirror_store::testdb::ENV
        );
    }
    db
}

/// One of the two servers sharing the database: its data directory, port and process.
struct Member {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child9>,
}

impl Member {
    /// Starts the server, on the port it had before if any (agents and clients know it).
    async fn start(&mut self, database: &str) {
        if self.port == 0 {
            self.port = free_port();
        }
        self.child = Some(spawn_server_on(self.dir.path(), self.port, Some(database)).await);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.0.kill(); // SIGKILL
            let _ = c.0.wait();
        }
    }

    fn api(&self) -> Api {
        Api::new(
            format!("127.0.0.1:{}", self.port).parse().unwrap(),
            creds(self.dir.path()),
        )
    }
}

async fn two_members(database: &str) -> [Member; 2] {
    let mut members = [0, 1].map(|_| Member {
        dir: tempfile::tempdir().unwrap(),
        port: 0,
        child: None,
    });
    for m in &mut members {
        m.start(database).await;
    }
    members
}

/// Writes each round acknowledges before its kill: with four rounds, the final check sees
/// more than 100 acknowledged writes however slow the machine.
const MIN_ACKS_PER_ROUND: usize = 30;

/// Waits until `acked` holds `n` writes. The writers' pace depends on the machine (a loaded
/// one acknowledged 96 writes over four timed rounds), so the kills wait for progress instead
/// of a fixed time; a minute without it fails the test.
async fn wait_for_acks(acked: &Mutex<Vec<(String, String, String)>>, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let have = acked.lock().unwrap().len();
        if have >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writers stopped making progress: {have} of {n} writes acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pseudo_random() -> u64 {
    u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_of_either_of_two_servers_on_postgres() {
    if std::env::var("TMIRROR_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(db) = pg_database("acknowledged_writes_survive_kill_9_of_either_of_two_servers").await
    else {
        return;
    };
    let mut members = two_members(db.url()).await;
    let acked: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let rounds = 4;
    for round in 0..rounds {
        let apis = [members[0].api(), members[1].api()];
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (apis, acked, stop) = (apis.clone(), acked.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                // Each writer starts on "its" server and moves to the other when it goes.
                let mut current = w % 2;
                let mut failed = [false; 2];
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 4000 {
                    i += 1;
                    let name = format!("r{round}-w{w}-{i}");
                    let description = format!("written in round {round} by writer {w}");
                    let body = json!({"traffic_mirror_filter": {"name": name, "description": description}});
                    let bytes = serde_json::to_vec(&body).unwrap();
                    let api = &apis[current];
                    let r = tokio::time::timeout(
                        Duration::from_secs(10),
                        api.try_call_raw("POST", &api.v3("traffic-mirror-filters"), &bytes),
                    )
                    .await;
                    match r {
                        Ok(Some((201, body))) => {
                            let id = body["traffic_mirror_filter"]["id"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().push((id, name, description));
                        }
                        Ok(Some((status, body))) => {
                            panic!("unexpected answer {status} from server {current}: {body}")
                        }
                        // The server is gone (or did not answer): this write's fate is
                        // unknown, which is allowed; go on through the other one.
                        _ => {
                            failed[current] = true;
                            if failed.iter().all(|f| *f) {
                                panic!("both servers failed in round {round}");
                            }
                            current = 1 - current;
                        }
                    }
                }
            }));
        }
        // Kill one server (alternately) at a pseudo-random moment once the round's writes are
        // under way, let the writers go on through the other one for a while (the survivor
        // must acknowledge writes: `wait_for_acks` fails the test if it does not), then
        // restart it.
        let round_start = acked.lock().unwrap().len();
        wait_for_acks(&acked, round_start + MIN_ACKS_PER_ROUND).await;
        tokio::time::sleep(Duration::from_millis(pseudo_random() % 500)).await;
        let victim = round % 2;
        members[victim].kill();
        let before = acked.lock().unwrap().len();
        wait_for_acks(&acked, before + 1).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        members[victim].start(db.url()).await;
    }
    let acked = acked.lock().unwrap().clone();
    let api = members[0].api();
    let stored = check_acknowledged(&api, &acked).await;
    // Both servers see the same data.
    assert_eq!(all_filters(&members[1].api()).await.len(), stored);
    eprintln!(
        "{} acknowledged writes through two servers over {rounds} kills, {stored} stored",
        acked.len()
    );
    for m in &mut members {
        m.kill();
    }
}

/// The test's data plane: records what the agent applied.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<tmirror_model::agent::DesiredState>>>);

impl tmirror_agent::Dataplane for Recorder {
    fn apply(&mut self, state: &tmirror_model::agent::DesiredState) -> Result<(), String> {
        self.0.lock().unwrap().push(state.clone());
        Ok(())
    }
    fn counters(&self) -> Value {
        json!({})
    }
    fn interfaces(&self) -> Vec<String> {
        vec!["vm1-eth0".into()]
    }
}

impl Recorder {
    /// The VNIs of the sessions in the state last applied.
    fn vnis(&self) -> Vec<u64> {
        let last = self.0.lock().unwrap().last().cloned();
        let Some(state) = last else { return Vec::new() };
        let doc = serde_json::to_value(&state).unwrap();
        doc["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["sessions"].as_array().unwrap().clone())
            .map(|s| s["vni"].as_u64().unwrap())
            .collect()
    }

    async fn wait_for_vnis(&self, what: &str, want: &[u64], within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.vnis() == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "{what}: VNIs {want:?} not applied within {within:?}; applied: {:?}",
                self.vnis()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_moves_to_the_other_server_when_its_own_is_killed() {
    if std::env::var("TMIRROR_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(db) = pg_database("an_agent_moves_to_the_other_server_when_its_own_is_killed").await
    else {
        return;
    };
    let mut members = two_members(db.url()).await;
    let api = members[0].api();
    let body = json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "10.0.0.5"}], "binding:host_id": "hv1",
        "binding:profile": {"interface_name": "vm1-eth0"}}});
    let src = common::id(
        &api.call("POST", &api.v1("ports"), Some(&body))
            .await
            .ok(201)["port"],
    );
    let dst = common::id(&api.port("10.0.0.9").await);
    let f = common::id(&api.filter("f").await);
    let session = |priority: u32, vni: u32| {
        json!({"name": format!("s{priority}"), "traffic_mirror_filter_id": f, "traffic_mirror_sources": [src],
            "traffic_mirror_target_id": dst, "traffic_mirror_target_type": "eni", "priority": priority,
            "virtual_network_id": vni, "enabled": true})
    };
    let s1 = common::id(&api.session(session(1, 10)).await.ok(201)["traffic_mirror_session"]);

    let state_dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let token = api.host_token("hv1").await;
    let config = tmirror_agent::SyncConfig {
        servers: members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.port))
            .collect(),
        token: token.trim().to_owned(),
        host_id: "hv1".into(),
        state_dir: state_dir.path().to_path_buf(),
        poll_wait: Duration::from_secs(20),
        max_backoff: Duration::from_secs(1),
        follow_older_after: tmirror_agent::sync::FOLLOW_OLDER_AFTER,
        transport: Default::default(),
    };
    let syncer = tmirror_agent::Syncer::new(config, recorder.clone()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(syncer.run(async {
        let _ = stopped.await;
    }));
    recorder
        .wait_for_vnis("first state, from server A", &[10], Duration::from_secs(10))
        .await;

    // Server A dies with the agent's poll open on it; changes go through B.
    members[0].kill();
    let b = members[1].api();
    let path = b.v3(&format!("traffic-mirror-sessions/{s1}"));
    b.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_session": {"virtual_network_id": 11}})),
    )
    .await
    .ok(200);
    let moved = recorder
        .wait_for_vnis(
            "a change through B after A died",
            &[11],
            Duration::from_secs(10),
        )
        .await;
    // Polling B now, it follows the next changes within a second.
    b.session(session(2, 20)).await.ok(201);
    let followed = recorder
        .wait_for_vnis(
            "the next change through B",
            &[11, 20],
            Duration::from_secs(1),
        )
        .await;

    // And back: A returns, B dies, the agent goes to A.
    members[0].start(db.url()).await;
    members[1].kill();
    let a = members[0].api();
    a.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_session": {"virtual_network_id": 12}})),
    )
    .await
    .ok(200);
    recorder
        .wait_for_vnis(
            "a change through A after B died",
            &[12, 20],
            Duration::from_secs(10),
        )
        .await;
    eprintln!("moved to B in {moved:?}; then followed a change in {followed:?}");
    let _ = stop.send(());
    agent.await.unwrap();
    for m in &mut members {
        m.kill();
    }
}
