//! Fleet scale (issue 14): a change wakes the polls of the hosts it concerns and no other, on
//! one server and across servers sharing PostgreSQL; polls write nothing, and what the agents
//! did is written down in batches that every server then sees.
//!
//! Whether a poll was woken is told without timing it: the server counts, per host, the
//! changes that woke its polls (`Service::wakeups`), and a poll that was not woken answers,
//! after its wait, the document it had.

mod common;

use std::time::{Duration, Instant};

use common::{id, pg_servers_with, Api, TestServer};
use serde_json::{json, Value};

/// An agent of one host, on one server.
#[derive(Clone)]
struct Agent {
    base: String,
    host: String,
    token: String,
    http: reqwest::Client,
}

impl Agent {
    /// The agent of `host`: with the host's own credential, enrolled by the operator through
    /// the admin API, or the shared agent token of a server that has one.
    async fn of(server: &TestServer, api: &Api, host: &str) -> Agent {
        let token = match std::fs::read_to_string(server.data_path().join("agent-token")) {
            Ok(t) => t.trim().to_owned(),
            Err(_) => {
                let body = json!({"host_id": host});
                api.call("POST", "/admin/v1/hosts", Some(&body))
                    .await
                    .ok(201)["credential"]["token"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            host: host.to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    /// The same agent talking to another server.
    fn on(&self, server: &TestServer) -> Agent {
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            ..self.clone()
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, interfaces: &[&str]) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/hosts/{}/register", self.host),
                Some(json!({"version": "test", "interfaces": interfaces})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn poll(&self, known: &str, wait: u64) -> Value {
        let (status, doc) = self
            .call(
                "GET",
                &format!(
                    "/hosts/{}/desired-state?known={known}&wait={wait}",
                    self.host
                ),
                None,
            )
            .await;
        assert_eq!(status, 200, "{doc}");
        doc
    }

    /// Starts a poll with the current document's hash; its answer and the current document.
    async fn waiting(&self, wait: u64) -> (tokio::task::JoinHandle<Value>, Value) {
        let now = self.poll("", 0).await;
        let known = now["content_hash"].as_str().unwrap().to_owned();
        let agent = self.clone();
        (
            tokio::spawn(async move { agent.poll(&known, wait).await }),
            now,
        )
    }

    async fn view(&self) -> Value {
        let (status, v) = self
            .call("GET", &format!("/hosts/{}", self.host), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// Ports: `a` bound to hv1, `b` bound to hv2, `c` unbound with interface `veth-c`; a target;
/// a filter with a rule; an enabled session on `a` and one on `b` and `c`. Returns the two
/// sessions' paths and the filter's id.
async fn world(api: &Api) -> (String, String, String) {
    let mut ports = Vec::new();
    for (host, iface, ip) in [
        ("hv1", "vm-a", "10.0.0.1"),
        ("hv2", "vm-b", "10.0.0.2"),
        ("", "veth-c", "10.0.0.3"),
    ] {
        let body = json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": ip}],
            "binding:host_id": host, "binding:profile": {"interface_name": iface}}});
        ports.push(id(&api
            .call("POST", &api.v1("ports"), Some(&body))
            .await
            .ok(201)["port"]));
    }
    let target = id(&api.port("10.0.0.9").await);
    let f = id(&api.filter("f").await);
    api.rule(
        json!({"traffic_mirror_filter_id": f, "direction": "ingress", "protocol": "all",
        "ethertype": "IPv4", "action": "accept", "priority": 1}),
    )
    .await
    .ok(201);
    let mut paths = Vec::new();
    for (priority, sources) in [(1, vec![&ports[0]]), (2, vec![&ports[1], &ports[2]])] {
        let s = id(&api
            .session(
                json!({"name": format!("s{priority}"), "traffic_mirror_filter_id": f,
                "traffic_mirror_sources": sources, "traffic_mirror_target_id": target,
                "traffic_mirror_target_type": "eni", "priority": priority, "enabled": true}),
            )
            .await
            .ok(201)["traffic_mirror_session"]);
        paths.push(api.v3(&format!("traffic-mirror-sessions/{s}")));
    }
    (paths.remove(0), paths.remove(0), f)
}

/// One round: polls of hv1, hv2 and hv3 (which has `veth-c`) wait on `server`; `change` is
/// made through `api` (maybe another server); exactly the polls of `concerned` are woken, and
/// answer with a new document; the others answer theirs after their wait.
async fn round(
    agents: &[Agent],
    (server, writer): (&TestServer, &TestServer),
    change: (&str, &str, Value),
    concerned: &[&str],
) {
    let api = writer.client();
    let mut polls = Vec::new();
    for a in agents {
        let wait = if concerned.contains(&a.host.as_str()) {
            30
        } else {
            1
        };
        let (poll, before) = a.waiting(wait).await;
        polls.push((
            a.host.clone(),
            poll,
            before,
            server.service.wakeups(&a.host),
        ));
    }
    let (method, path, body) = change;
    api.call(method, path, Some(&body)).await.ok(200);
    // The server of the polls has seen the change (through the database's notification when
    // it was made on another server) and woken whom it concerns.
    let revision = *writer.service.revisions().borrow();
    let mut feed = server.service.revisions();
    tokio::time::timeout(Duration::from_secs(30), feed.wait_for(|r| *r >= revision))
        .await
        .expect("the change reaches the polls' server")
        .unwrap();
    server.service.agents_caught_up().await;
    for (host, poll, before, wakeups) in polls {
        let what = format!("{method} {path} {body}, poll of {host}");
        let doc = tokio::time::timeout(Duration::from_secs(30), poll)
            .await
            .unwrap_or_else(|_| panic!("{what}: not answered"))
            .unwrap();
        let woken = server.service.wakeups(&host) - wakeups;
        if concerned.contains(&host.as_str()) {
            assert_eq!(woken, 1, "{what}: woken once");
            assert_ne!(doc["content_hash"], before["content_hash"], "{what}");
            assert!(doc["generation"].as_u64() >= Some(revision), "{what}");
        } else {
            assert_eq!(woken, 0, "{what}: not concerned, not woken");
            assert_eq!(doc["content_hash"], before["content_hash"], "{what}");
        }
    }
}

async fn changes_wake_exactly_the_concerned_hosts(
    agents: &[Agent],
    servers: (&TestServer, &TestServer),
) {
    let api = servers.1.client();
    let (s1, s2, f) = world(&api).await;
    agents[2].register(&["lo", "veth-c"]).await;
    let toggle = |on: bool| json!({"traffic_mirror_session": {"enabled": on}});
    round(agents, servers, ("PUT", &s1, toggle(false)), &["hv1"]).await;
    round(
        agents,
        servers,
        ("PUT", &s2, toggle(false)),
        &["hv2", "hv3"],
    )
    .await;
    round(agents, servers, ("PUT", &s1, toggle(true)), &["hv1"]).await;
    let vni = json!({"traffic_mirror_session": {"virtual_network_id": 9}});
    round(agents, servers, ("PUT", &s1, vni), &["hv1"]).await;
    // A change that concerns no host (a filter's name) wakes none.
    let name = json!({"traffic_mirror_filter": {"name": "g"}});
    let filter = api.v3(&format!("traffic-mirror-filters/{f}"));
    round(agents, servers, ("PUT", &filter, name), &[]).await;
}

async fn agents_of(server: &TestServer, api: &Api) -> Vec<Agent> {
    let mut agents = Vec::new();
    for host in ["hv1", "hv2", "hv3"] {
        agents.push(Agent::of(server, api, host).await);
    }
    agents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_wakes_the_polls_of_the_hosts_it_concerns_and_no_other() {
    let server = TestServer::start().await;
    let api = server.client();
    let agents = agents_of(&server, &api).await;
    changes_wake_exactly_the_concerned_hosts(&agents, (&server, &server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_servers_a_change_wakes_the_concerned_hosts_polls_on_the_other_server() {
    let Some((servers, _db)) = pg_servers_with("across_servers_a_change_wakes", 2, |_| {}).await
    else {
        return;
    };
    let b = servers[1].client();
    // The agents poll server A; the changes are made through server B.
    let agents = agents_of(&servers[0], &b).await;
    changes_wake_exactly_the_concerned_hosts(&agents, (&servers[0], &servers[1])).await;
}

/// The store of a server's data directory, opened as the server opens it (its master key).
async fn open(data_dir: &std::path::Path) -> std::sync::Arc<dyn tmirror_store::Store> {
    tmirror_server::open_store(&tmirror_server::ServeConfig {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The agents' row as the database holds it, read beside the server.
async fn stored(data_dir: &std::path::Path, host: &str) -> tmirror_store::AgentRecord {
    let store = open(data_dir).await;
    let record = store
        .agent_data()
        .await
        .unwrap()
        .agent(host)
        .await
        .unwrap()
        .expect("a record");
    store.close().await;
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_and_reports_write_nothing_until_the_sightings_are_written_down() {
    let server = TestServer::start_with(|c| c.agent_flush = Duration::from_secs(3600)).await;
    let dir = server.data_path();
    let api = server.client();
    let agent = Agent::of(&server, &api, "hv1").await;
    agent.register(&["eth0"]).await;
    let before = stored(&dir, "hv1").await;
    // Make the stored sighting old, so that any write of one would show.
    {
        let store = open(&dir).await;
        let mut a = store.agent_data().await.unwrap();
        a.set_agent_last_seen("hv1", 1000).await.unwrap();
        // The handle holds a pooled connection, and closing a pool waits for every one of
        // them: closing first hung the test now and then.
        drop(a);
        store.close().await;
    }
    let applied = before.applied_generation;
    let doc = agent.poll("", 0).await;
    let generation = doc["generation"].as_u64().unwrap();
    for _ in 0..5 {
        agent.poll(doc["content_hash"].as_str().unwrap(), 0).await;
        let report = json!({"applied_generation": generation, "interfaces": ["eth0"],
            "counters": {"copies": 7}});
        let (status, body) = agent.call("POST", "/hosts/hv1/status", Some(report)).await;
        assert_eq!(status, 204, "{body}");
    }
    let row = stored(&dir, "hv1").await;
    assert_eq!(row.last_seen, 1000, "no poll or report wrote last_seen");
    assert_eq!(
        row.applied_generation, applied,
        "nor the applied generation"
    );
    assert_eq!(row.report, before.report, "nor the counters");
    // This server shows what it saw.
    let view = agent.view().await;
    assert_eq!(view["connected"], true, "{view}");
    assert_eq!(view["applied_generation"], generation);
    assert_eq!(view["counters"], json!({"copies": 7}));
    // Written down when the server stops (and every agent_flush while it runs).
    let dir = server.stop().await;
    let row = stored(dir.path(), "hv1").await;
    assert!(row.last_seen > 1000, "{row:?}");
    assert_eq!(row.applied_generation, generation);
    assert_eq!(row.report, json!({"copies": 7}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_server_saw_of_an_agent_shows_on_the_other_after_a_flush() {
    let Some((servers, _db)) = pg_servers_with("what_one_server_saw", 2, |c| {
        c.agent_flush = Duration::from_millis(200)
    })
    .await
    else {
        return;
    };
    let api = servers[1].client();
    let on_a = Agent::of(&servers[0], &api, "hv1").await;
    let on_b = on_a.on(&servers[1]);
    on_a.register(&["eth0"]).await;
    let doc = on_a.poll("", 0).await;
    let generation = doc["generation"].as_u64().unwrap();
    let report = json!({"applied_generation": generation, "interfaces": ["eth0"],
        "counters": {"copies": 3}});
    assert_eq!(
        on_a.call("POST", "/hosts/hv1/status", Some(report)).await.0,
        204
    );
    // Server B sees it once A wrote it down (every 200 ms here); bounded, not timed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = on_b.view().await;
        if view["applied_generation"] == generation && view["counters"] == json!({"copies": 3}) {
            assert_eq!(view["connected"], true);
            break;
        }
        assert!(Instant::now() < deadline, "never written down: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The interfaces in `doc` (its interface plans' names).
fn interfaces_in(doc: &Value) -> Vec<String> {
    doc["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["interface_name"].as_str().unwrap().to_owned())
        .collect()
}

/// hv3's agent reports `veth-c` (the interface of the unbound port `c`) to `reported_to`
/// while its poll waits on `polled`: the poll is woken once and answers a document that
/// captures `veth-c`.
async fn reported_interfaces_reach_the_waiting_poll(polled: &TestServer, reported_to: &TestServer) {
    let api = reported_to.client();
    world(&api).await;
    let reporter = Agent::of(reported_to, &api, "hv3").await;
    let poller = reporter.on(polled);
    reporter.register(&["lo"]).await;
    let (poll, before) = poller.waiting(30).await;
    assert!(interfaces_in(&before).is_empty(), "{before}");
    let wakeups = polled.service.wakeups("hv3");
    let report = json!({"applied_generation": before["generation"], "interfaces": ["lo", "veth-c"],
        "counters": {}});
    let (status, body) = reporter
        .call("POST", "/hosts/hv3/status", Some(report))
        .await;
    assert_eq!(status, 204, "{body}");
    let doc = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the poll is answered")
        .unwrap();
    assert_eq!(interfaces_in(&doc), ["veth-c"], "{doc}");
    assert_eq!(polled.service.wakeups("hv3") - wakeups, 1, "woken once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_interfaces_reach_the_waiting_poll_of_their_host() {
    let server = TestServer::start().await;
    reported_interfaces_reach_the_waiting_poll(&server, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_servers_reported_interfaces_reach_the_poll_waiting_on_the_other_server() {
    let Some((servers, _db)) =
        pg_servers_with("across_servers_reported_interfaces", 2, |_| {}).await
    else {
        return;
    };
    reported_interfaces_reach_the_waiting_poll(&servers[0], &servers[1]).await;
}

/// A poll does not read its agent's record: the interfaces are read once and then kept
/// (changed only through the agent's own reports, which every server is told of). Shown by
/// changing the stored interfaces behind the server's back, which its polls then ignore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_read_the_agents_interfaces_once_not_on_every_poll() {
    let server = TestServer::start().await;
    let dir = server.data_path();
    let api = server.client();
    world(&api).await;
    let agent = Agent::of(&server, &api, "hv3").await;
    agent.register(&["lo"]).await;
    assert!(interfaces_in(&agent.poll("", 0).await).is_empty());
    {
        let store = open(&dir).await;
        let mut data = store.agent_data().await.unwrap();
        let mut record = data.agent("hv3").await.unwrap().unwrap();
        record.interfaces = vec!["lo".into(), "veth-c".into()];
        data.put_agent(&record).await.unwrap();
        drop(data);
        store.close().await;
    }
    for _ in 0..3 {
        let doc = agent.poll("", 0).await;
        assert!(interfaces_in(&doc).is_empty(), "read again: {doc}");
    }
    // The agent's own report is a change: it reaches the polls.
    let report = json!({"applied_generation": 0, "interfaces": ["veth-c"], "counters": {}});
    assert_eq!(
        agent
            .call("POST", "/hosts/hv3/status", Some(report))
            .await
            .0,
        204
    );
    assert_eq!(interfaces_in(&agent.poll("", 0).await), ["veth-c"]);
}
