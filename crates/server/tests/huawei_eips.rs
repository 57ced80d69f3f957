//! Elastic IPs: the operator's pools (admin API), the Huawei EIP v1 subset, and `eip`
//! sessions: every operation, the rules that tie them together and who may call what.

mod common;

use common::{id, Api, TestServer};
use serde_json::{json, Value};

const POOLS: &str = "/admin/v1/eip-pools";

fn create_body(pool: &str, address: Option<&str>) -> Value {
    let mut publicip = json!({"type": pool, "ip_version": 4});
    if let Some(a) = address {
        publicip["ip_address"] = json!(a);
    }
    json!({"publicip": publicip,
           "bandwidth": {"name": "bw-1", "size": 5, "share_type": "PER", "charge_mode": "traffic"}})
}

async fn pool(api: &Api, id: &str, cidr: &str) -> Value {
    let body = json!({"cidrs": [cidr], "host_id": "gw-1", "interface_name": "eth-ext"});
    api.call("PUT", &format!("{POOLS}/{id}"), Some(&body))
        .await
        .ok(200)["eip_pool"]
        .clone()
}

async fn eip(api: &Api, pool: &str, address: Option<&str>) -> Value {
    api.call(
        "POST",
        &api.v1("publicips"),
        Some(&create_body(pool, address)),
    )
    .await
    .ok(200)["publicip"]
        .clone()
}

async fn pools(api: &Api) -> Vec<Value> {
    api.get(POOLS).await.ok(200)["eip_pools"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn only_the_operator_manages_pools() {
    let server = TestServer::start().await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/24").await;
    let member = op.tenant("acme", "member").await;
    let admin = op.tenant("other", "admin").await;
    let body = json!({"cidrs": ["203.0.113.0/24"]});
    for who in [&member, &admin] {
        who.call("PUT", &format!("{POOLS}/x"), Some(&body))
            .await
            .err(403, "Forbidden");
        who.get(POOLS).await.err(403, "Forbidden");
        who.call("DELETE", &format!("{POOLS}/5_bgp"), None)
            .await
            .err(403, "Forbidden");
    }
    let all = pools(&op).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["host_id"], "gw-1");
    assert_eq!(all[0]["interface_name"], "eth-ext");
}

#[tokio::test]
async fn pool_input_is_checked_and_pools_do_not_overlap() {
    let server = TestServer::start().await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/24").await;
    let cases = [
        json!({"cidrs": ["198.51.100.128/25"]}),
        json!({"cidrs": ["not-a-cidr"]}),
        json!({"cidrs": []}),
        json!({"cidrs": ["203.0.113.0/24"], "host_id": "gw-1"}),
        json!({"cidrs": ["203.0.113.0/24"], "interface_name": "eth0"}),
        json!({"cidrs": ["203.0.113.0/24"], "host_id": "gw-1", "interface_name": "far-too-long-name"}),
        json!({"cidrs": ["203.0.113.0/24"], "colour": "blue"}),
    ];
    for body in cases {
        let r = op.call("PUT", &format!("{POOLS}/other"), Some(&body)).await;
        assert!(r.status == 400 || r.status == 409, "{body}: {:?}", r.body);
    }
    assert_eq!(pools(&op).await.len(), 1);
    // Rebinding keeps the pool, moves its gateway.
    let body = json!({"cidrs": ["198.51.100.0/24"], "host_id": "gw-2", "interface_name": "eth1"});
    let p = op
        .call("PUT", &format!("{POOLS}/5_bgp"), Some(&body))
        .await
        .ok(200)["eip_pool"]
        .clone();
    assert_eq!(p["host_id"], "gw-2");
}

#[tokio::test]
async fn eips_are_allocated_from_pools_in_huawei_shapes() {
    let server = TestServer::start().await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/30").await;
    let a = eip(&op, "5_bgp", None).await;
    assert_eq!(a["public_ip_address"], "198.51.100.1");
    assert_eq!(a["status"], "DOWN");
    assert_eq!(a["type"], "5_bgp");
    assert_eq!(a["ip_version"], 4);
    assert_eq!(a["bandwidth_size"], 5);
    assert_eq!(a["bandwidth_share_type"], "PER");
    assert_eq!(a["tenant_id"], op.creds.project_id.as_str());
    let b = eip(&op, "5_bgp", Some("198.51.100.2")).await;
    assert_eq!(b["public_ip_address"], "198.51.100.2");
    // The /30 has two usable addresses: both taken.
    op.call(
        "POST",
        &op.v1("publicips"),
        Some(&create_body("5_bgp", None)),
    )
    .await
    .err(409, "VPC.1711");
    op.call(
        "POST",
        &op.v1("publicips"),
        Some(&create_body("5_bgp", Some("198.51.100.2"))),
    )
    .await
    .err(409, "VPC.1711");
    for bad in [
        create_body("nope", None),
        create_body("5_bgp", Some("203.0.113.9")),
        create_body("5_bgp", Some("x")),
        json!({"publicip": {"type": "5_bgp"}, "bandwidth": {"share_type": "PER", "size": 0, "name": "b"}}),
        json!({"publicip": {"type": "5_bgp"}, "bandwidth": {"share_type": "ODD", "size": 1, "name": "b"}}),
        json!({"publicip": {"type": "5_bgp"}}),
    ] {
        op.call("POST", &op.v1("publicips"), Some(&bad))
            .await
            .err(400, "VPC.0101");
    }
    let shown = op
        .get(&op.v1(&format!("publicips/{}", id(&a))))
        .await
        .ok(200)["publicip"]
        .clone();
    assert_eq!(shown, a);
    let all = op.get(&op.v1("publicips")).await.ok(200)["publicips"].clone();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let page = op
        .get(&op.v1(&format!("publicips?limit=1&marker={}", id(&a))))
        .await
        .ok(200)["publicips"]
        .clone();
    assert_eq!(page, json!([b]));
    let filtered = op
        .get(&op.v1("publicips?public_ip_address=198.51.100.2"))
        .await
        .ok(200)["publicips"]
        .clone();
    assert_eq!(filtered, json!([b]));
    // Another project sees none of them.
    let other = op.tenant("other", "admin").await;
    other
        .get(&other.v1(&format!("publicips/{}", id(&a))))
        .await
        .err(404, "VPC.0504");
    let none = other.get(&other.v1("publicips")).await.ok(200)["publicips"].clone();
    assert_eq!(none, json!([]));
    // Released addresses are handed out again; a pool with EIPs stays.
    op.call("DELETE", &op.v1(&format!("publicips/{}", id(&a))), None)
        .await
        .ok(204);
    op.call("DELETE", &format!("{POOLS}/5_bgp"), None)
        .await
        .err(409, "Conflict");
    let again = eip(&op, "5_bgp", None).await;
    assert_eq!(again["public_ip_address"], "198.51.100.1");
}

#[tokio::test]
async fn association_with_a_port_one_eip_per_port() {
    let server = TestServer::start().await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/24").await;
    let port = op.port("10.0.0.5").await;
    let a = eip(&op, "5_bgp", None).await;
    let b = eip(&op, "5_bgp", None).await;
    let path = |e: &Value| op.v1(&format!("publicips/{}", id(e)));
    let put = |port: Value| json!({"publicip": {"port_id": port}});
    let up = op
        .call("PUT", &path(&a), Some(&put(json!(id(&port)))))
        .await
        .ok(200)["publicip"]
        .clone();
    assert_eq!(up["status"], "ACTIVE");
    assert_eq!(up["port_id"], id(&port).as_str());
    assert_eq!(up["private_ip_address"], "10.0.0.5");
    op.call("PUT", &path(&b), Some(&put(json!(id(&port)))))
        .await
        .err(409, "VPC.1711");
    op.call(
        "PUT",
        &path(&b),
        Some(&put(json!("5f0c1a2b-0000-4000-8000-000000000000"))),
    )
    .await
    .err(404, "VPC.1704");
    // With alias and port_id, only the alias changes (Huawei's rule).
    let renamed = op
        .call(
            "PUT",
            &path(&a),
            Some(&json!({"publicip": {"alias": "web", "port_id": null}})),
        )
        .await
        .ok(200)["publicip"]
        .clone();
    assert_eq!(renamed["alias"], "web");
    assert_eq!(renamed["status"], "ACTIVE");
    // Deleting the port dissociates its EIP, which stays.
    op.call("DELETE", &op.v1(&format!("ports/{}", id(&port))), None)
        .await
        .ok(204);
    let after = op.get(&path(&a)).await.ok(200)["publicip"].clone();
    assert_eq!(after["status"], "DOWN");
    assert!(after.get("port_id").is_none(), "{after}");
    // A null port_id dissociates too.
    let port = op.port("10.0.0.6").await;
    op.call("PUT", &path(&b), Some(&put(json!(id(&port)))))
        .await
        .ok(200);
    let down = op
        .call("PUT", &path(&b), Some(&put(Value::Null)))
        .await
        .ok(200)["publicip"]
        .clone();
    assert_eq!(down["status"], "DOWN");
}

#[tokio::test]
async fn readers_may_look_but_not_change() {
    let server = TestServer::start().await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/24").await;
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let reader = op.admin_credential(&project, "reader").await;
    let e = eip(&member, "5_bgp", None).await;
    reader
        .call(
            "POST",
            &reader.v1("publicips"),
            Some(&create_body("5_bgp", None)),
        )
        .await
        .err(403, "VPC.0010");
    let path = reader.v1(&format!("publicips/{}", id(&e)));
    reader
        .call("PUT", &path, Some(&json!({"publicip": {"alias": "x"}})))
        .await
        .err(403, "VPC.0010");
    reader
        .call("DELETE", &path, None)
        .await
        .err(403, "VPC.0010");
    assert_eq!(reader.get(&path).await.ok(200)["publicip"], e);
}

#[tokio::test]
async fn eips_per_project_quota() {
    let server = TestServer::start_with(|c| c.limits.eips_per_project = 1).await;
    let op = server.client();
    pool(&op, "5_bgp", "198.51.100.0/24").await;
    eip(&op, "5_bgp", None).await;
    op.call(
        "POST",
        &op.v1("publicips"),
        Some(&create_body("5_bgp", None)),
    )
    .await
    .err(409, "VPC.0114");
}

struct SessionWorld {
    api: Api,
    filter: String,
    target: String,
    _server: TestServer,
}

async fn session_world() -> SessionWorld {
    let server = TestServer::start().await;
    let api = server.client();
    pool(&api, "5_bgp", "198.51.100.0/24").await;
    let filter = id(&api.filter("f").await);
    let target = id(&api.port("10.0.0.100").await);
    SessionWorld {
        api,
        filter,
        target,
        _server: server,
    }
}

impl SessionWorld {
    fn body(&self, priority: u32, kind: &str, sources: &[String]) -> Value {
        json!({"name": "s", "traffic_mirror_filter_id": self.filter, "traffic_mirror_sources": sources,
               "traffic_mirror_target_id": self.target, "traffic_mirror_target_type": "eni",
               "priority": priority, "type": kind})
    }
}

#[tokio::test]
async fn eip_sessions_take_eips_only() {
    let w = session_world().await;
    let api = &w.api;
    let e1 = id(&eip(api, "5_bgp", None).await);
    let e2 = id(&eip(api, "5_bgp", None).await);
    let port = id(&api.port("10.0.0.7").await);
    let s = api
        .session(w.body(1, "eip", std::slice::from_ref(&e1)))
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    assert_eq!(s["type"], "eip");
    assert_eq!(s["traffic_mirror_sources"], json!([e1]));
    // A port among an eip session's sources, an EIP among an eni session's: no such source.
    api.session(w.body(2, "eip", std::slice::from_ref(&port)))
        .await
        .err(404, "VPC.0504");
    api.session(w.body(2, "eni", std::slice::from_ref(&e2)))
        .await
        .err(404, "VPC.1704");
    let sid = id(&s);
    let add = api.v3(&format!("traffic-mirror-sessions/{sid}/add-sources"));
    let remove = api.v3(&format!("traffic-mirror-sessions/{sid}/remove-sources"));
    let sources =
        |ids: &[&String]| json!({"traffic_mirror_session": {"traffic_mirror_sources": ids}});
    api.call("PUT", &add, Some(&sources(&[&port])))
        .await
        .err(404, "VPC.0504");
    let grown = api.call("PUT", &add, Some(&sources(&[&e2]))).await.ok(200);
    assert_eq!(
        grown["traffic_mirror_session"]["traffic_mirror_sources"],
        json!([e1, e2])
    );
    // The type changes only while the session has no sources.
    let path = api.v3(&format!("traffic-mirror-sessions/{sid}"));
    let to_eni = json!({"traffic_mirror_session": {"type": "eni"}});
    api.call("PUT", &path, Some(&to_eni))
        .await
        .err(409, "VPC.1711");
    // A mirrored EIP is not released.
    api.call("DELETE", &api.v1(&format!("publicips/{e1}")), None)
        .await
        .err(409, "VPC.1711");
    api.call("PUT", &remove, Some(&sources(&[&e1, &e2])))
        .await
        .ok(200);
    let now_eni = api.call("PUT", &path, Some(&to_eni)).await.ok(200);
    assert_eq!(now_eni["traffic_mirror_session"]["type"], "eni");
    api.call("DELETE", &api.v1(&format!("publicips/{e1}")), None)
        .await
        .ok(204);
}

#[tokio::test]
async fn sessions_per_eip_quota_as_for_ports() {
    let w = session_world().await;
    let api = &w.api;
    let e = id(&eip(api, "5_bgp", None).await);
    // The default is 3 sessions per source.
    for priority in 1..=3 {
        api.session(w.body(priority, "eip", std::slice::from_ref(&e)))
            .await
            .ok(201);
    }
    api.session(w.body(4, "eip", std::slice::from_ref(&e)))
        .await
        .err(409, "VPC.0114");
}
