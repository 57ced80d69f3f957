//! The agent API with a fake agent: registration, the desired-state long-poll woken by API
//! changes, status reports, and each host's credential acting for that host alone.

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
    /// The agent of `host`, enrolled through the admin API by the operator.
    async fn enrolled(server: &TestServer, host: &str) -> Agent {
        let token = server.client().host_token(host).await;
        Agent::with_token(server, &token)
    }

    fn with_token(server: &TestServer, token: &str) -> Agent {
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            token: token.to_owned(),
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

    /// Asserts that `GET path` answers `status` within a second (the credential cache's
    /// promise after a change), and stays so.
    async fn within_a_second(&self, path: &str, status: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let (got, body) = self.call("GET", path, None).await;
            if got == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {got} instead of {status} after a second: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..3 {
            assert_eq!(self.call("GET", path, None).await.0, status, "{what}");
        }
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
    let agent = Agent::enrolled(&server, "hv1").await;
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
    let hv2 = Agent::enrolled(&server, "hv2").await;
    assert_eq!(hv2.poll("hv2", "", 0).await["interfaces"], json!([]));
}

#[tokio::test]
async fn a_waiting_poll_answers_within_a_second_of_each_change() {
    let server = TestServer::start().await;
    let (api, src, _dst, session) = setup(&server).await;
    let agent = Agent::enrolled(&server, "hv1").await;
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
    let agent = Agent::enrolled(&server, "hv3").await;
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
async fn reports_are_kept_and_shown_and_a_generation_from_the_future_is_refused() {
    let server = TestServer::start().await;
    let agent = Agent::enrolled(&server, "hv1").await;
    let (status, _) = agent.call("GET", "/hosts/hv1", None).await;
    assert_eq!(status, 404, "not registered yet");
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
    // The operator sees it with the host's enrolment.
    let hosts = server.client().get("/admin/v1/hosts").await.ok(200);
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 1, "{hosts}");
    assert_eq!(hosts["hosts"][0]["host_id"], "hv1");
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
    for above in [u64::MAX, generation + 1_000] {
        let (status, body) = agent
            .call(
                "POST",
                "/hosts/hv1/status",
                Some(json!({"applied_generation": above})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "InvalidRequest");
    }
    assert_eq!(
        agent.call("GET", "/hosts/hv1", None).await.1["applied_generation"],
        generation
    );
}

/// Asserts a 403 in the agent API's format.
#[track_caller]
fn forbidden((status, body): (u16, Value), what: &str) -> Value {
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body["code"], "Forbidden", "{what}: {body}");
    assert!(body["request_id"].is_string(), "{what}: {body}");
    body
}

#[tokio::test]
async fn a_host_credential_acts_for_its_own_host_only() {
    let server = TestServer::start().await;
    setup(&server).await; // a port with a session on hv1
    let hv1 = Agent::enrolled(&server, "hv1").await;
    let hv2 = Agent::enrolled(&server, "hv2").await;
    let hello = json!({"version": "test", "interfaces": ["vm1-eth0"]});
    assert_eq!(
        hv1.call("POST", "/hosts/hv1/register", Some(hello.clone()))
            .await
            .0,
        200
    );
    let generation = hv1.poll("hv1", "", 0).await["generation"].as_u64().unwrap();

    // hv2's credential cannot read hv1's plan, nor speak for it.
    let body = forbidden(
        hv2.call("GET", "/hosts/hv1/desired-state?wait=0", None)
            .await,
        "read another host's desired state",
    );
    assert!(body["message"].as_str().unwrap().contains("hv2"), "{body}");
    forbidden(
        hv2.call("POST", "/hosts/hv1/register", Some(hello)).await,
        "register as another host",
    );
    forbidden(
        hv2.call(
            "POST",
            "/hosts/hv1/status",
            Some(json!({"applied_generation": generation})),
        )
        .await,
        "report as another host",
    );
    forbidden(
        hv2.call("GET", "/hosts/hv1", None).await,
        "see another host",
    );
    // Nor one that is not enrolled at all, nor a malformed one.
    forbidden(
        hv2.call("GET", "/hosts/hv9/desired-state", None).await,
        "an unenrolled host",
    );
    forbidden(
        hv2.call("GET", "/hosts/bad%20name/desired-state", None)
            .await,
        "a malformed host id",
    );
    // Listing every host is the operator's, through the admin API.
    let body = forbidden(hv1.call("GET", "/hosts", None).await, "list every host");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("GET /admin/v1/hosts"),
        "{body}"
    );
    // hv2's refused report changed nothing of hv1's.
    let (_, shown) = hv1.call("GET", "/hosts/hv1", None).await;
    assert_eq!(shown["applied_generation"], 0, "{shown}");
    assert_eq!(shown["interfaces"], json!(["vm1-eth0"]));
    // Its own state it reads.
    assert_eq!(hv2.poll("hv2", "", 0).await["host_id"], "hv2");
}

/// Asserts a 401 in the agent API's format.
#[track_caller]
fn unauthorized((status, body): (u16, Value), what: &str) {
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["code"], "InvalidToken", "{what}: {body}");
}

#[tokio::test]
async fn wrong_disabled_rotated_and_deleted_tokens_are_refused() {
    let server = TestServer::start().await;
    let op = server.client();
    let agent = Agent::enrolled(&server, "hv1").await;
    agent.poll("hv1", "", 0).await;
    let poll = "/hosts/hv1/desired-state?wait=0";

    for token in ["", "wrong", &agent.token[..agent.token.len() - 1]] {
        unauthorized(
            Agent::with_token(&server, token)
                .call("GET", poll, None)
                .await,
            &format!("token {token:?}"),
        );
    }
    let (status, _) = reqwest::Client::new()
        .get(format!("{}{poll}", agent.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 401, "no Authorization header");

    // Disabled: refused; enabled again: accepted. Each server's credential cache follows the
    // change feed, so a change applies within a second (not necessarily at once).
    op.call("POST", "/admin/v1/hosts/hv1/disable", None)
        .await
        .ok(200);
    agent.within_a_second(poll, 401, "disabled host").await;
    unauthorized(
        agent
            .call(
                "POST",
                "/hosts/hv1/status",
                Some(json!({"applied_generation": 1})),
            )
            .await,
        "disabled host's report",
    );
    op.call("POST", "/admin/v1/hosts/hv1/enable", None)
        .await
        .ok(200);
    agent.within_a_second(poll, 200, "enabled again").await;

    // Rotated: the old token is refused, the new one works.
    let rotated = op
        .call("POST", "/admin/v1/hosts/hv1/rotate", None)
        .await
        .ok(200);
    agent.within_a_second(poll, 401, "rotated-away token").await;
    let new = Agent::with_token(&server, rotated["credential"]["token"].as_str().unwrap());
    new.within_a_second(poll, 200, "the rotated token").await;

    // Deleted: refused.
    op.call("DELETE", "/admin/v1/hosts/hv1", None).await.ok(204);
    new.within_a_second(poll, 401, "deleted host").await;
    unauthorized(new.call("GET", poll, None).await, "deleted host");
}

#[tokio::test]
async fn a_host_disabled_while_its_poll_waits_gets_nothing_more() {
    let server = TestServer::start().await;
    let (api, _src, _dst, session) = setup(&server).await;
    let agent = Agent::enrolled(&server, "hv1").await;
    let known = agent.poll("hv1", "", 0).await["content_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let poll = {
        let agent = Agent {
            base: agent.base.clone(),
            token: agent.token.clone(),
            http: reqwest::Client::new(),
        };
        let path = format!("/hosts/hv1/desired-state?known={known}&wait=20");
        tokio::spawn(async move { (agent.call("GET", &path, None).await, Instant::now()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished());
    let disabled = Instant::now();
    server
        .client()
        .call("POST", "/admin/v1/hosts/hv1/disable", None)
        .await
        .ok(200);
    // A change the host would have been told of.
    let change = json!({"traffic_mirror_session": {"virtual_network_id": 99}});
    api.call(
        "PUT",
        &api.v3(&format!("traffic-mirror-sessions/{session}")),
        Some(&change),
    )
    .await
    .ok(200);
    let (answer, at) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the open poll ends")
        .unwrap();
    unauthorized(answer, "the open poll of a disabled host");
    assert!(at.duration_since(disabled) < Duration::from_secs(1));
}

#[tokio::test]
async fn the_gateway_of_an_eip_gets_its_address_and_interface_and_is_woken() {
    let server = TestServer::start().await;
    let api = server.client();
    let pool =
        json!({"cidrs": ["198.51.100.0/24"], "host_id": "gw-1", "interface_name": "eth-ext"});
    api.call("PUT", "/admin/v1/eip-pools/5_bgp", Some(&pool))
        .await
        .ok(200);
    let create = |address: &str| {
        json!({"publicip": {"type": "5_bgp", "ip_version": 4, "ip_address": address},
               "bandwidth": {"name": "bw", "size": 5, "share_type": "PER", "charge_mode": "traffic"}})
    };
    let eip = id(&api
        .call("POST", &api.v1("publicips"), Some(&create("198.51.100.7")))
        .await
        .ok(200)["publicip"]);
    // Another EIP of the pool, mirrored by no session: not in the document.
    api.call("POST", &api.v1("publicips"), Some(&create("198.51.100.8")))
        .await
        .ok(200);
    let target = id(&api.port("10.0.0.9").await);
    let f = id(&api.filter("f").await);
    let gw_token = server.client().host_token("gw-1").await;
    let gw = Agent::with_token(&server, &gw_token);
    let other = Agent::enrolled(&server, "hv1").await;
    let before = gw.poll("gw-1", "", 0).await;
    assert_eq!(before["interfaces"], json!([]));
    assert!(
        before.get("addresses").is_none(),
        "absent when empty: {before}"
    );

    // Creating the session wakes the gateway's long poll.
    let known = before["content_hash"].as_str().unwrap().to_owned();
    let wait = tokio::spawn(async move { gw.poll("gw-1", &known, 20).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let s = api
        .session(
            json!({"name": "s", "type": "eip", "traffic_mirror_filter_id": f,
            "traffic_mirror_sources": [eip], "traffic_mirror_target_id": target,
            "traffic_mirror_target_type": "eni", "priority": 3, "virtual_network_id": 42,
            "packet_length": 96, "enabled": true}),
        )
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    let doc = wait.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken, not timed out"
    );
    assert_ne!(doc["content_hash"], before["content_hash"]);
    assert_eq!(doc["interfaces"], json!([]), "no whole interface");
    let addresses = doc["addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 1, "{doc}");
    assert_eq!(addresses[0]["eip_id"], eip);
    assert_eq!(addresses[0]["address"], "198.51.100.7");
    assert_eq!(addresses[0]["interface_name"], "eth-ext");
    let plan = &addresses[0]["sessions"][0];
    assert_eq!(plan["session_id"], id(&s));
    assert_eq!(plan["vni"], 42);
    assert_eq!(plan["packet_length"], 96);
    assert_eq!(plan["target_ip"], "10.0.0.9");

    // A rule of its filter reaches the gateway too; another host has none of it.
    let known = doc["content_hash"].as_str().unwrap().to_owned();
    api.rule(
        json!({"traffic_mirror_filter_id": f, "direction": "ingress", "protocol": "tcp",
        "ethertype": "IPv4", "action": "accept", "priority": 1}),
    )
    .await
    .ok(201);
    let gw = Agent::with_token(&server, &gw_token);
    let doc = gw.poll("gw-1", &known, 5).await;
    assert_eq!(
        doc["addresses"][0]["sessions"][0]["ingress_rules"][0]["protocol"],
        "tcp"
    );
    let theirs = other.poll("hv1", "", 0).await;
    assert!(theirs.get("addresses").is_none(), "{theirs}");
}
