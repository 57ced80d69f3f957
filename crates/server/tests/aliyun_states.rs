//! The Alibaba face's asynchronous states with a fake agent: `Creating`, `Modifying` and
//! `Deleting` while a connected agent hosting a source has not applied the change, `Created` at
//! once without one, `IncorrectStatus.*` for a change while one is pending.

#[path = "aliyun_support.rs"]
mod support;

use serde_json::{json, Value};
use support::Srv;

/// Fake agents on the agent API: hosts hv1 and hv2, each enrolled with its own token.
struct Agent {
    base: String,
    tokens: std::collections::HashMap<&'static str, String>,
    http: reqwest::Client,
}

impl Agent {
    async fn new(s: &Srv) -> Agent {
        let mut tokens = std::collections::HashMap::new();
        for host in ["hv1", "hv2"] {
            let (status, body) = s
                .huawei("POST", "/admin/v1/hosts", Some(json!({"host_id": host})))
                .await;
            assert_eq!(status, 201, "enrol {host}: {body}");
            let token = body["credential"]["token"].as_str().unwrap().to_owned();
            tokens.insert(host, token);
        }
        Agent {
            base: format!("http://{}/agent/v1", s.addr),
            tokens,
            http: reqwest::Client::new(),
        }
    }

    fn token(&self, host: &str) -> &str {
        &self.tokens[host]
    }

    /// Fetches the desired state (which also counts as being seen); returns its generation.
    async fn poll(&self, host: &str) -> u64 {
        self.desired_state(host).await["generation"]
            .as_u64()
            .unwrap()
    }

    async fn desired_state(&self, host: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/hosts/{host}/desired-state?wait=0", self.base))
            .bearer_auth(self.token(host))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    async fn report(&self, host: &str, generation: u64) {
        let r = self
            .http
            .post(format!("{}/hosts/{host}/status", self.base))
            .bearer_auth(self.token(host))
            .json(&json!({"applied_generation": generation}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }

    /// Registers `host` with the interfaces it has.
    async fn register(&self, host: &str, interfaces: &[&str]) {
        let r = self
            .http
            .post(format!("{}/hosts/{host}/register", self.base))
            .bearer_auth(self.token(host))
            .json(&json!({"version": "test", "interfaces": interfaces}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "register: {}", r.status());
    }

    /// Applies everything committed so far.
    async fn catch_up(&self, host: &str) {
        let g = self.poll(host).await;
        self.report(host, g).await;
    }
}

/// A port bound to `host`; returns its Alibaba id.
async fn bound_port(s: &Srv, ip: &str, host: &str) -> String {
    let (status, body) = s
        .huawei(
            "POST",
            &format!("/v1/{}/ports", s.project),
            Some(
                json!({"port": {"network_id": "net-1", "binding:host_id": host,
                "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "port create: {body:?}");
    let id: uuid::Uuid = body["port"]["id"].as_str().unwrap().parse().unwrap();
    format!("eni-{}", id.simple())
}

/// A session whose source is bound to `host`; returns (session, filter).
async fn session_on(s: &Srv, host: &str) -> (String, String) {
    let source = bound_port(s, "10.0.0.1", host).await;
    session_of(s, &source).await
}

/// A session with the one source `source`; returns (session, filter).
async fn session_of(s: &Srv, source: &str) -> (String, String) {
    let target = s.port("10.0.0.9").await;
    let filter = s.filter().await;
    let a = s
        .rcall(
            "CreateTrafficMirrorSession",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("TrafficMirrorSourceIds.1", source),
                ("TrafficMirrorTargetId", &target),
                ("TrafficMirrorTargetType", "NetworkInterface"),
                ("Priority", "3"),
                ("TrafficMirrorSessionName", "first"),
            ],
        )
        .await;
    let id = a.ok()["TrafficMirrorSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, filter)
}

async fn shown(s: &Srv, id: &str) -> Option<Value> {
    let list = s.sessions(&[("TrafficMirrorSessionIds.1", id)]).await;
    list["TrafficMirrorSessions"]
        .as_array()
        .unwrap()
        .first()
        .cloned()
}

async fn status(s: &Srv, id: &str) -> String {
    shown(s, id).await.expect("listed")["TrafficMirrorSessionStatus"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn filter_shown(s: &Srv, id: &str) -> Value {
    let a = s
        .rcall(
            "ListTrafficMirrorFilters",
            &[("TrafficMirrorFilterIds.1", id)],
        )
        .await;
    a.ok()["TrafficMirrorFilters"][0].clone()
}

fn huawei_path(s: &Srv, alibaba: &str) -> String {
    let uuid = uuid::Uuid::parse_str(&alibaba[4..]).unwrap().hyphenated();
    format!("/v3/{}/vpc/traffic-mirror-sessions/{uuid}", s.project)
}

#[tokio::test]
async fn without_a_connected_agent_a_change_is_created_at_once() {
    let s = Srv::opened().await;
    let (id, filter) = session_on(&s, "hv1").await;
    assert_eq!(status(&s, &id).await, "Created");
    assert_eq!(
        filter_shown(&s, &filter).await["TrafficMirrorFilterStatus"],
        "Created"
    );
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[("TrafficMirrorSessionId", &id), ("Priority", "4")],
    )
    .await
    .ok();
    assert_eq!(status(&s, &id).await, "Created");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .ok();
    assert!(shown(&s, &id).await.is_none());
}

#[tokio::test]
async fn a_connected_agent_holds_a_session_until_it_applied_the_change() {
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    agent.poll("hv1").await; // connected, nothing applied yet
    let (id, _filter) = session_on(&s, "hv1").await;
    assert_eq!(status(&s, &id).await, "Creating");
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[("TrafficMirrorSessionId", &id), ("Priority", "4")],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorSession");
    // A report older than the change holds it up still.
    agent.report("hv1", 1).await;
    assert_eq!(status(&s, &id).await, "Creating");
    agent.catch_up("hv1").await;
    assert_eq!(status(&s, &id).await, "Created");

    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSessionName", "second"),
        ],
    )
    .await
    .ok();
    assert_eq!(status(&s, &id).await, "Modifying");
    // A second change while the first is pending is refused, and changes nothing.
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSessionName", "third"),
        ],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorSession");
    let other = s.port("10.0.0.2").await;
    s.rcall(
        "AddSourcesToTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSourceIds.1", &other),
        ],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorSession");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorSession");
    let x = shown(&s, &id).await.unwrap();
    assert_eq!(x["TrafficMirrorSessionName"], "second");
    assert_eq!(x["TrafficMirrorSourceIds"].as_array().unwrap().len(), 1);
    agent.catch_up("hv1").await;
    assert_eq!(status(&s, &id).await, "Created");
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORSESSION"),
            ("ResourceId.1", &id),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
        ],
    )
    .await
    .ok();

    // Deletion: gone for the Huawei face at once, Deleting in the Alibaba list until applied,
    // with the tags it had.
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .ok();
    let x = shown(&s, &id).await.expect("still listed while deleting");
    assert_eq!(x["TrafficMirrorSessionStatus"], "Deleting");
    assert_eq!(x["TrafficMirrorSessionName"], "second");
    assert_eq!(
        x["Tags"],
        serde_json::json!([{"Key": "env", "Value": "prod"}])
    );
    let all = s.sessions(&[]).await;
    assert_eq!(all["TotalCount"], "1");
    // Described by ids with a live session: both, the deleted one Deleting; the live one
    // alone comes alone (the face skips the tombstones when every id asked for is live).
    let source = bound_port(&s, "10.0.0.3", "hv2").await;
    let (filter, target) = (s.filter().await, s.port("10.0.0.8").await);
    let live = session_with(&s, &source, &filter, &target, 5).await;
    let both = s
        .sessions(&[
            ("TrafficMirrorSessionIds.1", &live),
            ("TrafficMirrorSessionIds.2", &id),
        ])
        .await;
    let statuses: Vec<(&str, &str)> = both["TrafficMirrorSessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["TrafficMirrorSessionId"].as_str().unwrap(),
                x["TrafficMirrorSessionStatus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [(live.as_str(), "Created"), (id.as_str(), "Deleting")]
    );
    assert_eq!(both["TotalCount"], "2");
    let alone = s.sessions(&[("TrafficMirrorSessionIds.1", &live)]).await;
    assert_eq!(alone["TotalCount"], "1");
    assert_eq!(
        alone["TrafficMirrorSessions"][0]["TrafficMirrorSessionId"],
        live.as_str()
    );
    let (code, _) = s.huawei("GET", &huawei_path(&s, &id), None).await;
    assert_eq!(code, 404);
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorSession");
    agent.catch_up("hv1").await;
    assert!(shown(&s, &id).await.is_none());
    assert_eq!(s.sessions(&[]).await["TotalCount"], "1");
}

/// The canonical UUID behind an Alibaba id (`tmf-…`, `eni-…`).
fn uuid_of(alibaba: &str) -> String {
    let hex = alibaba.rsplit('-').next().unwrap();
    uuid::Uuid::parse_str(hex).unwrap().hyphenated().to_string()
}

#[tokio::test]
async fn an_eip_session_waits_for_the_gateway_of_its_eips() {
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    // hv1 is the gateway of the pool; hv2 is connected too but hosts nothing of the session.
    let pool = json!({"cidrs": ["198.51.100.0/24"], "host_id": "hv1", "interface_name": "eth-ext"});
    let (code, body) = s
        .huawei("PUT", "/admin/v1/eip-pools/5_bgp", Some(pool))
        .await;
    assert_eq!(code, 200, "{body}");
    let eip = json!({"publicip": {"type": "5_bgp", "ip_version": 4, "ip_address": "198.51.100.7"},
        "bandwidth": {"name": "bw", "size": 5, "share_type": "PER", "charge_mode": "traffic"}});
    let (code, body) = s
        .huawei("POST", &format!("/v1/{}/publicips", s.project), Some(eip))
        .await;
    assert_eq!(code, 200, "{body}");
    let eip = body["publicip"]["id"].as_str().unwrap().to_owned();
    agent.poll("hv1").await;
    agent.poll("hv2").await;

    let target = uuid_of(&s.port("10.0.0.9").await);
    let filter = uuid_of(&s.filter().await);
    agent.catch_up("hv1").await;
    agent.catch_up("hv2").await;
    let (code, body) = s
        .huawei(
            "POST",
            &format!("/v3/{}/vpc/traffic-mirror-sessions", s.project),
            Some(
                json!({"traffic_mirror_session": {"name": "e", "type": "eip",
                "traffic_mirror_filter_id": filter, "traffic_mirror_sources": [eip],
                "traffic_mirror_target_id": target, "traffic_mirror_target_type": "eni",
                "priority": 3}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let uuid: uuid::Uuid = body["traffic_mirror_session"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let id = format!("tms-{}", uuid.simple());
    assert_eq!(
        status(&s, &id).await,
        "Creating",
        "the gateway has not applied it"
    );
    // The other connected host applying everything changes nothing.
    agent.catch_up("hv2").await;
    assert_eq!(status(&s, &id).await, "Creating");
    agent.catch_up("hv1").await;
    assert_eq!(status(&s, &id).await, "Created");
}

#[tokio::test]
async fn an_agent_that_is_not_connected_holds_nothing_up() {
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    agent.poll("hv1").await;
    let store = support::open_store(s.dir.path()).await;
    let long_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 91;
    let mut data = store.agent_data().await.unwrap();
    // The server keeps the poll's sighting in memory and writes it down within a second: wait
    // until it did (the stored sighting moves again), then make it old for good.
    data.set_agent_last_seen("hv1", long_ago).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while data.agent("hv1").await.unwrap().unwrap().last_seen == long_ago {
        assert!(
            std::time::Instant::now() < deadline,
            "the sighting was never written down"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    data.set_agent_last_seen("hv1", long_ago).await.unwrap();
    drop(data);
    store.close().await;
    let (id, _) = session_on(&s, "hv1").await;
    assert_eq!(status(&s, &id).await, "Created");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .ok();
    assert!(shown(&s, &id).await.is_none());
}

#[tokio::test]
async fn filter_and_rule_changes_are_pending_likewise() {
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    agent.poll("hv1").await;
    let (_id, filter) = session_on(&s, "hv1").await;
    assert_eq!(
        filter_shown(&s, &filter).await["TrafficMirrorFilterStatus"],
        "Creating"
    );
    agent.catch_up("hv1").await;
    assert_eq!(
        filter_shown(&s, &filter).await["TrafficMirrorFilterStatus"],
        "Created"
    );

    let a = s
        .rcall(
            "CreateTrafficMirrorFilterRules",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("EgressRules.1.Action", "accept"),
                ("EgressRules.1.Protocol", "UDP"),
                ("EgressRules.1.Priority", "5"),
            ],
        )
        .await;
    let rule = a.ok()["EgressRules"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let f = filter_shown(&s, &filter).await;
    assert_eq!(
        f["EgressRules"][0]["TrafficMirrorFilterRuleStatus"],
        "Creating"
    );
    assert_eq!(f["TrafficMirrorFilterStatus"], "Created");
    s.rcall(
        "UpdateTrafficMirrorFilterRuleAttribute",
        &[("TrafficMirrorFilterRuleId", &rule), ("Priority", "6")],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorRule");
    s.rcall(
        "DeleteTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterRuleIds.1", &rule),
        ],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorRule");
    assert_eq!(
        filter_shown(&s, &filter).await["EgressRules"][0]["Priority"],
        5
    );

    s.rcall(
        "UpdateTrafficMirrorFilterAttribute",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterName", "g"),
        ],
    )
    .await
    .ok();
    assert_eq!(
        filter_shown(&s, &filter).await["TrafficMirrorFilterStatus"],
        "Modifying"
    );
    s.rcall(
        "UpdateTrafficMirrorFilterAttribute",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterName", "h"),
        ],
    )
    .await
    .err(400, "IncorrectStatus.TrafficMirrorFilter");

    agent.catch_up("hv1").await;
    let f = filter_shown(&s, &filter).await;
    assert_eq!(f["TrafficMirrorFilterStatus"], "Created");
    assert_eq!(f["TrafficMirrorFilterName"], "g");
    assert_eq!(
        f["EgressRules"][0]["TrafficMirrorFilterRuleStatus"],
        "Created"
    );
    s.rcall(
        "UpdateTrafficMirrorFilterRuleAttribute",
        &[("TrafficMirrorFilterRuleId", &rule), ("Priority", "6")],
    )
    .await
    .ok();
    assert_eq!(
        filter_shown(&s, &filter).await["EgressRules"][0]["TrafficMirrorFilterRuleStatus"],
        "Modifying"
    );
}

/// A port bound to no host, with the interface `interface` (`None`: the default name, `tap`
/// and the start of its id); returns its Alibaba id.
async fn unbound_port(s: &Srv, ip: &str, interface: Option<&str>) -> String {
    let mut port = json!({"network_id": "net-1",
        "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}]});
    if let Some(interface) = interface {
        port["binding:profile"] = json!({ "interface_name": interface });
    }
    let (status, body) = s
        .huawei(
            "POST",
            &format!("/v1/{}/ports", s.project),
            Some(json!({ "port": port })),
        )
        .await;
    assert_eq!(status, 201, "port create: {body:?}");
    let id: uuid::Uuid = body["port"]["id"].as_str().unwrap().parse().unwrap();
    format!("eni-{}", id.simple())
}

#[tokio::test]
async fn a_session_on_an_unbound_port_waits_for_the_agent_that_has_its_interface() {
    // The agent that reports the interface of an unbound port mirrors it (its desired state
    // holds the port), so the session's state waits for that agent too: one definition of the
    // hosts a session touches for both.
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    agent.register("hv1", &["vm-eth0"]).await;
    agent.register("hv2", &["other0"]).await;
    let source = unbound_port(&s, "10.0.0.1", Some("vm-eth0")).await;
    waits_for_hv1_only(&s, &agent, &source).await;
}

/// A session on `source` is created once hv1 caught up, and not by hv2's progress alone
/// (hv2 does not have the interface).
async fn waits_for_hv1_only(s: &Srv, agent: &Agent, source: &str) {
    let (id, _) = session_of(s, source).await;
    assert_eq!(status(s, &id).await, "Creating");
    agent.catch_up("hv2").await;
    assert_eq!(status(s, &id).await, "Creating");
    agent.catch_up("hv1").await;
    assert_eq!(status(s, &id).await, "Created");
}

#[tokio::test]
async fn with_unbound_ports_captured_nowhere_a_host_naming_the_interface_gets_nothing() {
    // `tmirror serve --unbound-ports nowhere`: what an agent says of its interfaces decides
    // nothing, so a host token cannot claim an unbound port. The session on it is mirrored
    // nowhere (Created at once, like one on an unbound EIP pool) until the operator binds it.
    use tmirror_server::UnboundPorts;
    for unbound in [UnboundPorts::ByInterface, UnboundPorts::Nowhere] {
        let s = Srv::opened_with(|c| c.unbound_ports = unbound).await;
        let agent = Agent::new(&s).await;
        agent.register("hv1", &["vm-eth0"]).await;
        let source = unbound_port(&s, "10.0.0.1", Some("vm-eth0")).await;
        let (id, filter) = session_of(&s, &source).await;
        let doc = agent.desired_state("hv1").await;
        let planned = doc["interfaces"].as_array().expect("a document").len();
        let filter_status = || async {
            filter_shown(&s, &filter).await["TrafficMirrorFilterStatus"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        match unbound {
            UnboundPorts::ByInterface => {
                assert_eq!(planned, 1, "{doc}");
                assert_eq!(status(&s, &id).await, "Creating");
                assert_eq!(filter_status().await, "Creating");
            }
            UnboundPorts::Nowhere => {
                assert_eq!(planned, 0, "{doc}");
                assert_eq!(status(&s, &id).await, "Created");
                assert_eq!(filter_status().await, "Created");
            }
        }
    }
}

#[tokio::test]
async fn a_session_on_an_unbound_port_of_the_default_interface_name_waits_for_its_agent() {
    // No interface name given: the port's interface is `tap` and the first 11 characters of
    // its id, as the desired state names it (the list's states read it in SQL).
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    let source = unbound_port(&s, "10.0.0.1", None).await;
    let tap = format!("tap{}", &uuid_of(&source)[..11]);
    agent.register("hv1", &[tap.as_str()]).await;
    agent.register("hv2", &["other0"]).await;
    waits_for_hv1_only(&s, &agent, &source).await;
}

#[tokio::test]
async fn the_server_forgets_applied_deletions_without_any_list() {
    let s = Srv::opened_with(|c| c.tombstone_sweep = std::time::Duration::from_millis(50)).await;
    let agent = Agent::new(&s).await;
    agent.poll("hv1").await;
    let (id, _) = session_on(&s, "hv1").await;
    agent.catch_up("hv1").await;
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .ok();
    let tombstones = || async {
        // Read the server's database directly: a List call would be a read that writes.
        let store = support::open_store(s.dir.path()).await;
        let n = store
            .agent_data()
            .await
            .unwrap()
            .aliyun_tombstones_after("", 100)
            .await
            .unwrap()
            .len();
        store.close().await;
        n
    };
    // Not applied yet: kept, however often the clean-up runs.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(tombstones().await, 1, "a pending deletion is kept");
    agent.catch_up("hv1").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tombstones().await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the applied deletion's tombstone is still stored after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A session with the one source `source` and `priority`, sharing `filter` and `target`.
async fn session_with(s: &Srv, source: &str, filter: &str, target: &str, priority: u32) -> String {
    let priority = priority.to_string();
    let a = s
        .rcall(
            "CreateTrafficMirrorSession",
            &[
                ("TrafficMirrorFilterId", filter),
                ("TrafficMirrorSourceIds.1", source),
                ("TrafficMirrorTargetId", target),
                ("TrafficMirrorTargetType", "NetworkInterface"),
                ("Priority", &priority),
            ],
        )
        .await;
    a.ok()["TrafficMirrorSessionId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn deleting_sessions_follow_the_live_ones_across_pages() {
    let s = Srv::opened().await;
    let agent = Agent::new(&s).await;
    agent.poll("hv1").await;
    let (filter, target) = (s.filter().await, s.port("10.0.0.99").await);
    let mut made = Vec::new();
    for i in 0..5u32 {
        let source = bound_port(&s, &format!("10.0.1.{}", i + 1), "hv1").await;
        made.push(session_with(&s, &source, &filter, &target, 10 + i).await);
    }
    agent.catch_up("hv1").await;
    // The second and fourth are deleted; the agent has not applied that yet.
    for id in [&made[1], &made[3]] {
        s.rcall(
            "DeleteTrafficMirrorSession",
            &[("TrafficMirrorSessionId", id)],
        )
        .await
        .ok();
    }
    let want: Vec<&String> = [0, 2, 4, 1, 3].iter().map(|&i| &made[i]).collect();
    for max in ["1", "2", "3", "5", "10"] {
        let (mut seen, mut statuses, mut token) = (Vec::new(), Vec::new(), String::new());
        for _ in 0..10 {
            let mut params = vec![("MaxResults", max)];
            if !token.is_empty() {
                params.push(("NextToken", &token));
            }
            let page = s.sessions(&params).await;
            assert_eq!(page["TotalCount"], "5", "MaxResults {max}: {page}");
            for x in page["TrafficMirrorSessions"].as_array().unwrap() {
                seen.push(x["TrafficMirrorSessionId"].as_str().unwrap().to_owned());
                statuses.push(x["TrafficMirrorSessionStatus"].as_str().unwrap().to_owned());
            }
            token = page["NextToken"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
        }
        assert!(token.is_empty(), "MaxResults {max}: the pages never ended");
        assert_eq!(seen.iter().collect::<Vec<_>>(), want, "MaxResults {max}");
        assert_eq!(
            statuses,
            ["Created", "Created", "Created", "Deleting", "Deleting"],
            "MaxResults {max}"
        );
    }
    // A token that names nothing of the list, live or deleted, is refused.
    s.rcall(
        "ListTrafficMirrorSessions",
        &[("NextToken", "tms-00000000000000000000000000000000")],
    )
    .await
    .err(400, "IllegalParam.NextToken");
    agent.catch_up("hv1").await;
    assert_eq!(s.sessions(&[]).await["TotalCount"], "3");
}
