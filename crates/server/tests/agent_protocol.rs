//! The agent API with a fake agent: registration, the desired-state long-poll woken by API
//! changes, status reports, and the agents' view.

mod common;

use std::time::{Duration, Instant};

use common::{id, TestServer};
use serde_json::{json, Value};

struct Agent {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Agent {
    fn new(server: &TestServer) -> Agent {
        let token = std::fs::read_to_string(server.data_path().join("agent-token"))
            .unwrap()
            .trim()
            .to_owned();
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            token,
            http: reqwest::Client::new(),
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

    async fn poll(&self, host: &str, known: &str, wait: u64) -> Value {
        let (status, doc) = self
            .call(
                "GET",
                &format!("/hosts/{host}/desired-state?known={known}&wait={wait}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{doc}");
        doc
    }
}

async fn setup(server: &TestServer) -> (common::Api, String, String, String) {
    let api = server.client();
    let body = json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "10.0.0.5"}], "binding:host_id": "hv1",
        "binding:profile": {"interface_name": "vm1-eth0", "capture_side": "host"}}});
    let src = id(&api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .ok(201)["port"]);
    let dst = id(&api.port("10.0.0.9").await);
    let f = id(&api.filter("f").await);
    api.rule(json!({"traffic_mirror_filter_id": f, "direction": "egress", "protocol": "udp", "ethertype": "IPv4",
        "destination_port_range": "53-53", "action": "accept", "priority": 2}))
        .await
        .ok(201);
    api.rule(json!({"traffic_mirror_filter_id": f, "direction": "egress", "protocol": "all", "ethertype": "IPv4",
        "action": "reject", "priority": 1}))
        .await
        .ok(201);
    let s = api
        .session(
            json!({"name": "s", "traffic_mirror_filter_id": f, "traffic_mirror_sources": [src],
            "traffic_mirror_target_id": dst, "traffic_mirror_target_type": "eni", "priority": 4,
            "virtual_network_id": 77, "packet_length": 128, "enabled": true}),
        )
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    (api, src, dst, id(&s))
}

#[tokio::test]
async fn the_desired_state_has_the_hosts_ports_sessions_rules_and_targets() {
    let server = TestServer::start().await;
    let (_api, src, _dst, session) = setup(&server).await;
    let agent = Agent::new(&server);
    let (status, hello) = agent
        .call(
            "POST",
            "/hosts/hv1/register",
            Some(json!({"version": "test", "interfaces": ["vm1-eth0"]})),
        )
        .await;
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello["protocol_version"], 1);
    let doc = agent.poll("hv1", "", 0).await;
    assert_eq!(doc["host_id"], "hv1");
    assert!(doc["generation"].as_u64().unwrap() > 0);
    let ifaces = doc["interfaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 1);
    assert_eq!(ifaces[0]["port_id"], src);
    assert_eq!(ifaces[0]["interface_name"], "vm1-eth0");
    assert_eq!(ifaces[0]["capture_side"], "host");
    let s = &ifaces[0]["sessions"][0];
    assert_eq!(s["session_id"], session);
    assert_eq!(s["vni"], 77);
    assert_eq!(s["packet_length"], 128);
    assert_eq!(s["target_ip"], "10.0.0.9");
    assert_eq!(s["ingress_rules"], json!([]));
    let egress = s["egress_rules"].as_array().unwrap();
    assert_eq!(
        egress
            .iter()
            .map(|r| r["priority"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2],
        "priority order"
    );
    assert_eq!(
        egress[1]["destination_port_range"],
        json!({"from": 53, "to": 53})
    );
    // Another host has nothing.
    assert_eq!(agent.poll("hv2", "", 0).await["interfaces"], json!([]));
}

#[tokio::test]
async fn a_waiting_poll_answers_within_a_second_of_each_change() {
    let server = TestServer::start().await;
    let (api, src, _dst, session) = setup(&server).await;
    let agent = Agent::new(&server);
    let first = agent.poll("hv1", "", 0).await;
    let known = first["content_hash"].as_str().unwrap().to_owned();
    // Nothing changes: the poll is held for its wait, then answers the same state.
    let t = Instant::now();
    let same = agent.poll("hv1", &known, 1).await;
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert_eq!(same["content_hash"], first["content_hash"]);
    // An unrelated change (another host's port) does not answer the poll early.
    let path = api.v3(&format!("traffic-mirror-sessions/{session}"));
    let changes: Vec<(&str, Value)> = vec![
        (
            "disable",
            json!({"traffic_mirror_session": {"enabled": false}}),
        ),
        (
            "enable",
            json!({"traffic_mirror_session": {"enabled": true}}),
        ),
        (
            "vni",
            json!({"traffic_mirror_session": {"virtual_network_id": 78}}),
        ),
    ];
    let mut known = known;
    for (what, change) in changes {
        let poll = {
            let agent = Agent {
                base: agent.base.clone(),
                token: agent.token.clone(),
                http: reqwest::Client::new(),
            };
            let known = known.clone();
            tokio::spawn(async move { (agent.poll("hv1", &known, 20).await, Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let unrelated = json!({"port": {"network_id": "n", "binding:host_id": "hv9"}});
        api.call("POST", &api.v1("ports"), Some(&unrelated))
            .await
            .ok(201);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !poll.is_finished(),
            "{what}: an unrelated change must not answer the poll"
        );
        let sent = Instant::now();
        api.call("PUT", &path, Some(&change)).await.ok(200);
        let (doc, answered) = poll.await.unwrap();
        assert!(
            answered.duration_since(sent) < Duration::from_secs(1),
            "{what}: answered within a second"
        );
        assert_ne!(doc["content_hash"].as_str().unwrap(), known, "{what}");
        let sessions = doc["interfaces"][0]["sessions"].as_array().unwrap().clone();
        match what {
            "disable" => assert!(sessions.is_empty(), "a disabled session mirrors nothing"),
            "enable" => assert_eq!(sessions.len(), 1),
            _ => assert_eq!(sessions[0]["vni"], 78),
        }
        known = doc["content_hash"].as_str().unwrap().to_owned();
    }
    // remove-sources empties the interface's sessions.
    let rm = json!({"traffic_mirror_session": {"traffic_mirror_sources": [src]}});
    api.call("PUT", &format!("{path}/remove-sources"), Some(&rm))
        .await
        .ok(200);
    assert_eq!(
        agent.poll("hv1", &known, 5).await["interfaces"][0]["sessions"],
        json!([])
    );
}

#[tokio::test]
async fn unbound_ports_follow_the_interfaces_an_agent_has() {
    let server = TestServer::start().await;
    let api = server.client();
    let body =
        json!({"port": {"network_id": "n", "binding:profile": {"interface_name": "veth-x"}}});
    let p = id(&api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .ok(201)["port"]);
    let agent = Agent::new(&server);
    assert_eq!(agent.poll("hv3", "", 0).await["interfaces"], json!([]));
    agent
        .call(
            "POST",
            "/hosts/hv3/register",
            Some(json!({"interfaces": ["lo", "veth-x"]})),
        )
        .await;
    let doc = agent.poll("hv3", "", 0).await;
    assert_eq!(doc["interfaces"][0]["port_id"], p);
    // The Neutron convention: tap + the first 11 characters of the port id.
    let body = json!({"port": {"network_id": "n"}});
    let q = id(&api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .ok(201)["port"]);
    let tap = format!("tap{}", &q[..11]);
    agent
        .call(
            "POST",
            "/hosts/hv3/register",
            Some(json!({"interfaces": [tap.clone()]})),
        )
        .await;
    let doc = agent.poll("hv3", "", 0).await;
    assert_eq!(doc["interfaces"][0]["interface_name"], tap);
}

#[tokio::test]
async fn reports_are_kept_and_shown_and_the_token_is_required() {
    let server = TestServer::start().await;
    let agent = Agent::new(&server);
    let doc = agent.poll("hv1", "", 0).await;
    let generation = doc["generation"].as_u64().unwrap();
    let report = json!({"applied_generation": generation, "interfaces": ["vm1-eth0"], "counters": {"captured": 5}});
    let (status, _) = agent.call("POST", "/hosts/hv1/status", Some(report)).await;
    assert_eq!(status, 204);
    let (status, shown) = agent.call("GET", "/hosts/hv1", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["applied_generation"], generation);
    assert_eq!(shown["connected"], true);
    assert_eq!(shown["counters"], json!({"captured": 5}));
    let (_, all) = agent.call("GET", "/hosts", None).await;
    assert_eq!(all["agents"].as_array().unwrap().len(), 1);
    // An older report never lowers the applied generation.
    agent
        .call(
            "POST",
            "/hosts/hv1/status",
            Some(json!({"applied_generation": 0})),
        )
        .await;
    assert_eq!(
        agent.call("GET", "/hosts/hv1", None).await.1["applied_generation"],
        generation
    );
    // A generation above every committed revision is refused and changes nothing (it would
    // make every later change look applied on this host).
    let (status, body) = agent
        .call(
            "POST",
            "/hosts/hv1/status",
            Some(json!({"applied_generation": u64::MAX})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "InvalidRequest");
    assert_eq!(
        agent.call("GET", "/hosts/hv1", None).await.1["applied_generation"],
        generation
    );
    let (status, _) = agent.call("GET", "/hosts/nobody", None).await;
    assert_eq!(status, 404);
    let (status, _) = agent
        .call("GET", "/hosts/bad%20name/desired-state", None)
        .await;
    assert_eq!(status, 400);
    let wrong = Agent {
        token: "wrong".into(),
        ..agent
    };
    let (status, body) = wrong.call("GET", "/hosts", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "InvalidToken");
}

#[tokio::test]
async fn the_agent_token_is_private_and_survives_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start().await;
    let path = server.data_path().join("agent-token");
    let token = std::fs::read_to_string(&path).unwrap();
    assert!(token.trim().len() >= 32);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dir = server.stop().await;
    std::fs::remove_file(dir.path().join("agent-token")).unwrap();
    let again = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(
        std::fs::read_to_string(again.data_path().join("agent-token")).unwrap(),
        token,
        "same token, rewritten"
    );
}
