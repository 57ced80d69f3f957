//! The ELB v3 subset of the Huawei face: load balancers, their pool, members and health
//! monitor, and sessions aimed at them (`docs/load-balancers.md`).

mod common;

use common::{id, Api, TestServer};
use serde_json::{json, Value};

fn elb(api: &Api, rest: &str) -> String {
    format!("/v3/{}/elb/{rest}", api.creds.project_id)
}

async fn load_balancer(api: &Api) -> Value {
    api.call(
        "POST",
        &elb(api, "loadbalancers"),
        Some(&json!({"loadbalancer": {
            "name": "collectors", "availability_zone_list": ["az1"], "vip_subnet_cidr_id": "sub-1",
            "l4_flavor_id": "flavor-l4", "guaranteed": true}})),
    )
    .await
    .ok(201)["loadbalancer"]
        .clone()
}

async fn pool(api: &Api, lb: &str) -> Value {
    api.call(
        "POST",
        &elb(api, "pools"),
        Some(&json!({"pool": {"loadbalancer_id": lb, "protocol": "UDP", "lb_algorithm": "SOURCE_IP"}})),
    )
    .await
    .ok(201)["pool"]
        .clone()
}

async fn member(api: &Api, pool: &str, address: &str) -> common::Reply {
    api.call(
        "POST",
        &elb(api, &format!("pools/{pool}/members")),
        Some(&json!({"member": {"address": address, "weight": 10, "subnet_cidr_id": "sub-1"}})),
    )
    .await
}

#[tokio::test]
async fn a_load_balancer_with_a_pool_members_and_a_monitor_is_a_session_target() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = load_balancer(&api).await;
    assert_eq!(lb["provisioning_status"], "ACTIVE");
    // What tmirror does not act on is kept and shown back.
    assert_eq!(lb["availability_zone_list"], json!(["az1"]));
    assert_eq!(lb["l4_flavor_id"], "flavor-l4");
    let lb_id = id(&lb);

    let pool = pool(&api, &lb_id).await;
    assert_eq!(pool["lb_algorithm"], "SOURCE_IP");
    assert_eq!(pool["loadbalancers"], json!([{"id": lb_id}]));
    let pool_id = id(&pool);
    assert_ne!(pool_id, lb_id);

    // Members must be addresses of the project's ports (loopback: the monitor below makes
    // the health checker probe them).
    api.port("127.78.1.7").await;
    api.port("127.78.1.8").await;
    let m1 = member(&api, &pool_id, "127.78.1.7").await.ok(201)["member"].clone();
    assert_eq!(m1["protocol_port"], 4789, "VXLAN's port by default");
    assert_eq!(m1["weight"], 10);
    assert_eq!(m1["operating_status"], "NO_MONITOR");
    let e = member(&api, &pool_id, "192.0.2.1")
        .await
        .err(400, "VPC.0101");
    assert!(e["error_msg"].as_str().unwrap().contains("owns"), "{e}");
    member(&api, &pool_id, "127.78.1.7")
        .await
        .err(409, "VPC.1711");
    let m2 = member(&api, &pool_id, "127.78.1.8").await.ok(201)["member"].clone();

    // A health monitor restarts the members' health.
    let monitor = api
        .call(
            "POST",
            &elb(&api, "healthmonitors"),
            Some(
                &json!({"healthmonitor": {"pool_id": pool_id, "type": "TCP", "delay": 2,
                "timeout": 1, "max_retries": 2, "max_retries_down": 2, "monitor_port": 7000}}),
            ),
        )
        .await
        .ok(201)["healthmonitor"]
        .clone();
    assert_eq!(monitor["monitor_port"], 7000);
    let members = api
        .call("GET", &elb(&api, &format!("pools/{pool_id}/members")), None)
        .await
        .ok(200)["members"]
        .clone();
    let statuses: Vec<&Value> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["operating_status"])
        .collect();
    assert_eq!(statuses, [&json!("INITIAL"), &json!("INITIAL")]);
    let shown = api
        .call(
            "GET",
            &elb(&api, &format!("healthmonitors/{}", id(&monitor))),
            None,
        )
        .await
        .ok(200)["healthmonitor"]
        .clone();
    assert_eq!(shown, monitor);
    // Listed, and filtered by pool and type (a filter that matches nothing lists nothing).
    let listed = |query: String| {
        let api = &api;
        async move {
            api.get(&format!("{}?{query}", elb(api, "healthmonitors")))
                .await
                .ok(200)
        }
    };
    let all = listed(format!("pool_id={pool_id}")).await;
    assert_eq!(all["healthmonitors"], json!([monitor.clone()]), "{all}");
    assert_eq!(all["page_info"]["current_count"], 1, "{all}");
    let none = listed("type=HTTP".into()).await;
    assert_eq!(none["healthmonitors"], json!([]), "{none}");
    api.get(&format!("{}?limit=x", elb(&api, "healthmonitors")))
        .await
        .err(400, "VPC.0101");
    api.call(
        "POST",
        &elb(&api, "healthmonitors"),
        Some(
            &json!({"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 2,
            "timeout": 1, "max_retries": 2}}),
        ),
    )
    .await
    .err(400, "VPC.0101");

    // A session aims at the load balancer.
    let source = id(&api.port("10.0.0.1").await);
    let filter = id(&api.filter("f").await);
    let s = api
        .session(json!({"name": "s", "traffic_mirror_filter_id": filter,
            "traffic_mirror_sources": [source], "traffic_mirror_target_id": lb_id,
            "traffic_mirror_target_type": "elb", "priority": 1}))
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    assert_eq!(s["traffic_mirror_target_id"], lb_id);
    assert_eq!(s["traffic_mirror_target_type"], "elb");

    // In use: not deleted.
    api.call(
        "DELETE",
        &elb(&api, &format!("loadbalancers/{lb_id}")),
        None,
    )
    .await
    .err(409, "VPC.1711");
    // Members go one by one; the pool then; the load balancer once no session uses it.
    for m in [&m1, &m2] {
        api.call(
            "DELETE",
            &elb(&api, &format!("pools/{pool_id}/members/{}", id(m))),
            None,
        )
        .await
        .ok(204);
    }
    api.call("DELETE", &elb(&api, &format!("pools/{pool_id}")), None)
        .await
        .ok(204);
    api.call("GET", &elb(&api, &format!("pools/{pool_id}")), None)
        .await
        .err(404, "ELB.8902");
    api.call(
        "DELETE",
        &api.v3(&format!("traffic-mirror-sessions/{}", id(&s))),
        None,
    )
    .await
    .ok(204);
    api.call(
        "DELETE",
        &elb(&api, &format!("loadbalancers/{lb_id}")),
        None,
    )
    .await
    .ok(204);
    api.call("GET", &elb(&api, &format!("loadbalancers/{lb_id}")), None)
        .await
        .err(404, "ELB.8902");
}

#[tokio::test]
async fn bad_requests_change_nothing_and_other_projects_see_nothing() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    api.call(
        "POST",
        &elb(&api, "pools"),
        Some(&json!({"pool": {"loadbalancer_id": lb, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "POST",
        &elb(&api, "loadbalancers"),
        Some(&json!({"name": "x"})),
    )
    .await
    .err(400, "VPC.0101");
    let pool = id(&pool(&api, &lb).await);
    api.call(
        "POST",
        &elb(&api, "pools"),
        Some(&json!({"pool": {"loadbalancer_id": lb, "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"}})),
    )
    .await
    .err(409, "VPC.1711");
    api.port("10.0.0.7").await;
    api.call(
        "POST",
        &elb(&api, &format!("pools/{pool}/members")),
        Some(&json!({"member": {"address": "10.0.0.7", "weight": 101}})),
    )
    .await
    .err(400, "VPC.0101");
    let before = api
        .call("GET", &elb(&api, "loadbalancers"), None)
        .await
        .ok(200);

    // Another project sees none of it and cannot aim at it.
    let other = server.client().tenant("other", "member").await;
    other
        .call("GET", &elb(&other, &format!("loadbalancers/{lb}")), None)
        .await
        .err(404, "ELB.8902");
    other
        .call("GET", &elb(&other, &format!("pools/{pool}/members")), None)
        .await
        .err(404, "ELB.8902");
    let listed = other
        .call("GET", &elb(&other, "loadbalancers"), None)
        .await
        .ok(200);
    assert_eq!(listed["loadbalancers"], json!([]));
    let source = id(&other.port("10.1.0.1").await);
    let filter = id(&other.filter("f").await);
    other
        .session(json!({"name": "s", "traffic_mirror_filter_id": filter,
            "traffic_mirror_sources": [source], "traffic_mirror_target_id": lb,
            "traffic_mirror_target_type": "elb", "priority": 1}))
        .await
        .err(404, "ELB.8902");

    // A reader of the project reads and changes nothing.
    let op = server.client();
    let reader = op.admin_credential(&api.creds.project_id, "reader").await;
    reader
        .call("GET", &elb(&reader, &format!("loadbalancers/{lb}")), None)
        .await
        .ok(200);
    let refused = reader
        .call(
            "POST",
            &elb(&reader, &format!("pools/{pool}/members")),
            Some(&json!({"member": {"address": "10.0.0.7"}})),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    reader
        .call(
            "DELETE",
            &elb(&reader, &format!("loadbalancers/{lb}")),
            None,
        )
        .await;
    let after = api
        .call("GET", &elb(&api, "loadbalancers"), None)
        .await
        .ok(200);
    assert_eq!(before["loadbalancers"], after["loadbalancers"]);
}

/// The statuses of a pool's members, by address.
async fn statuses(api: &Api, pool: &str) -> Vec<(String, String)> {
    let members = api
        .call("GET", &elb(api, &format!("pools/{pool}/members")), None)
        .await
        .ok(200)["members"]
        .clone();
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_owned(),
                m["operating_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Polls (at most 30 s, 100 ms apart) until the statuses are `want`.
async fn until_statuses(api: &Api, pool: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    let mut last = Vec::new();
    for _ in 0..300 {
        last = statuses(api, pool).await;
        if last == want {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("member statuses stayed {last:?}, wanted {want:?}");
}

#[tokio::test]
async fn the_health_checker_sets_operating_status_from_tcp_checks() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    let pool = id(&pool(&api, &lb).await);
    // Two collectors on loopback addresses the project owns; only the first answers checks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let check_port = listener.local_addr().unwrap().port();
    api.port("127.0.0.1").await;
    api.port("127.0.0.2").await;
    member(&api, &pool, "127.0.0.1").await.ok(201);
    member(&api, &pool, "127.0.0.2").await.ok(201);
    api.call(
        "POST",
        &elb(&api, "healthmonitors"),
        Some(
            &json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 1,
            "timeout": 1, "max_retries": 1, "max_retries_down": 1, "monitor_port": check_port}}),
        ),
    )
    .await
    .ok(201);
    until_statuses(
        &api,
        &pool,
        &[("127.0.0.1", "ONLINE"), ("127.0.0.2", "OFFLINE")],
    )
    .await;
    // The first stops answering: it goes down too.
    drop(listener);
    until_statuses(
        &api,
        &pool,
        &[("127.0.0.1", "OFFLINE"), ("127.0.0.2", "OFFLINE")],
    )
    .await;
}

#[tokio::test]
async fn quotas_bound_load_balancers_and_their_members() {
    let server = TestServer::start_with(|c| {
        c.limits.load_balancers_per_project = 1;
        c.limits.members_per_load_balancer = 1;
    })
    .await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    api.call(
        "POST",
        &elb(&api, "loadbalancers"),
        Some(&json!({"loadbalancer": {"name": "second"}})),
    )
    .await
    .err(409, "VPC.0114");
    let pool = id(&pool(&api, &lb).await);
    api.port("10.0.0.7").await;
    api.port("10.0.0.8").await;
    member(&api, &pool, "10.0.0.7").await.ok(201);
    member(&api, &pool, "10.0.0.8").await.err(409, "VPC.0114");
    assert_eq!(statuses(&api, &pool).await.len(), 1);
}

#[tokio::test]
async fn a_udp_listener_is_kept_and_ties_the_load_balancer_to_its_pool() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    let listener = |fields: Value| {
        let api = &api;
        async move {
            api.call(
                "POST",
                &elb(api, "listeners"),
                Some(&json!({"listener": fields})),
            )
            .await
        }
    };
    // Bad bodies are refused and change nothing.
    listener(json!({"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 4789}))
        .await
        .err(400, "VPC.0101");
    listener(json!({"loadbalancer_id": lb, "protocol": "UDP", "protocol_port": 70000}))
        .await
        .err(400, "VPC.0101");
    listener(json!({"loadbalancer_id": lb, "protocol": "UDP"}))
        .await
        .err(400, "VPC.0101");
    listener(
        json!({"loadbalancer_id": "0b0e4f2e-1111-4a4a-8888-000000000000",
        "protocol": "UDP", "protocol_port": 4789}),
    )
    .await
    .err(404, "ELB.8902");
    let shown = api
        .call("GET", &elb(&api, &format!("loadbalancers/{lb}")), None)
        .await
        .ok(200);
    assert_eq!(shown["loadbalancer"]["listeners"], json!([]));

    let l = listener(
        json!({"loadbalancer_id": lb, "protocol": "UDP", "protocol_port": 4789,
        "name": "vxlan", "keepalive_timeout": 300}),
    )
    .await
    .ok(201)["listener"]
        .clone();
    let lid = id(&l);
    assert_eq!(l["protocol_port"], 4789);
    assert_eq!(l["keepalive_timeout"], 300, "kept and shown back");
    assert_eq!(l["default_pool_id"], Value::Null);
    assert_eq!(l["loadbalancers"], json!([{"id": lb}]));
    listener(json!({"loadbalancer_id": lb, "protocol": "UDP", "protocol_port": 4790}))
        .await
        .err(409, "VPC.1711");

    // A pool made for the listener is the listener's default pool.
    let pool = api
        .call(
            "POST",
            &elb(&api, "pools"),
            Some(&json!({"pool": {"listener_id": lid, "protocol": "UDP", "lb_algorithm": "SOURCE_IP"}})),
        )
        .await
        .ok(201)["pool"]
        .clone();
    let pool_id = id(&pool);
    assert_eq!(pool["loadbalancers"], json!([{"id": lb}]));
    assert_eq!(pool["listeners"], json!([{"id": lid}]));
    let path = elb(&api, &format!("listeners/{lid}"));
    let shown = api.call("GET", &path, None).await.ok(200);
    assert_eq!(shown["listener"]["default_pool_id"], pool_id);
    let listed = api.call("GET", &elb(&api, "listeners"), None).await.ok(200);
    assert_eq!(listed["listeners"].as_array().unwrap().len(), 1);

    // Update: name and default pool change; protocol and port do not.
    api.call(
        "PUT",
        &path,
        Some(&json!({"listener": {"protocol_port": 1}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "PUT",
        &path,
        Some(&json!({"listener": {"default_pool_id": lb}})),
    )
    .await
    .err(400, "VPC.0101");
    let updated = api
        .call(
            "PUT",
            &path,
            Some(&json!({"listener": {"name": "renamed", "default_pool_id": null}})),
        )
        .await
        .ok(200);
    assert_eq!(updated["listener"]["name"], "renamed");
    assert_eq!(updated["listener"]["default_pool_id"], Value::Null);
    assert_eq!(updated["listener"]["protocol_port"], 4789);

    // Another project and a reader.
    let other = server.client().tenant("other", "member").await;
    other
        .call("GET", &elb(&other, &format!("listeners/{lid}")), None)
        .await
        .err(404, "ELB.8902");
    let reader = server
        .client()
        .admin_credential(&api.creds.project_id, "reader")
        .await;
    reader
        .call("GET", &elb(&reader, &format!("listeners/{lid}")), None)
        .await
        .ok(200);
    let refused = reader
        .call("DELETE", &elb(&reader, &format!("listeners/{lid}")), None)
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);

    api.call("DELETE", &path, None).await.ok(204);
    api.call("GET", &path, None).await.err(404, "ELB.8902");
    api.call("DELETE", &elb(&api, &format!("pools/{pool_id}")), None)
        .await
        .ok(204);
}

#[tokio::test]
async fn batch_add_and_batch_delete_take_every_member_or_none() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    let pool = id(&pool(&api, &lb).await);
    for ip in ["10.0.0.7", "10.0.0.8", "10.0.0.9"] {
        api.port(ip).await;
    }
    let add = elb(&api, &format!("pools/{pool}/members/batch-add"));
    let del = elb(&api, &format!("pools/{pool}/members/batch-delete"));
    let list = elb(&api, &format!("pools/{pool}/members"));
    let count = |v: Value| v["members"].as_array().unwrap().len();

    // One bad item (an address the project does not own, a weight out of range, the same
    // member twice) refuses the whole batch.
    for bad in [
        json!({"members": [{"address": "10.0.0.7"}, {"address": "192.0.2.1"}]}),
        json!({"members": [{"address": "10.0.0.7"}, {"address": "10.0.0.8", "weight": 101}]}),
        json!({"members": [{"address": "10.0.0.7"}, {"address": "10.0.0.7"}]}),
        json!({"members": []}),
        json!({"members": "10.0.0.7"}),
    ] {
        let r = api.call("POST", &add, Some(&bad)).await;
        assert!(r.status == 400 || r.status == 409, "{bad}: {:?}", r.body);
        assert_eq!(
            count(api.call("GET", &list, None).await.ok(200)),
            0,
            "{bad}"
        );
    }

    let added = api
        .call(
            "POST",
            &add,
            Some(&json!({"members": [
                {"address": "10.0.0.7", "weight": 3},
                {"address": "10.0.0.8", "protocol_port": 6081, "name": "b"},
            ]})),
        )
        .await
        .ok(200);
    let members = added["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["protocol_port"], 4789);
    assert_eq!(members[0]["weight"], 3);
    assert_eq!(members[1]["protocol_port"], 6081);
    assert_eq!(members[1]["ret_status"], "successful");
    assert_eq!(count(api.call("GET", &list, None).await.ok(200)), 2);

    // A reader is refused, another project sees no such pool.
    let reader = server
        .client()
        .admin_credential(&api.creds.project_id, "reader")
        .await;
    let refused = reader
        .call(
            "POST",
            &add,
            Some(&json!({"members": [{"address": "10.0.0.9"}]})),
        )
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let other = server.client().tenant("other", "member").await;
    other
        .call(
            "POST",
            &elb(&other, &format!("pools/{pool}/members/batch-add")),
            Some(&json!({"members": [{"address": "10.0.0.9"}]})),
        )
        .await
        .err(404, "ELB.8902");

    // Delete: one unknown member refuses the batch; by id and by address and port.
    let first = id(&members[0]);
    api.call(
        "POST",
        &del,
        Some(&json!({"members": [{"id": first}, {"address": "10.0.0.9"}]})),
    )
    .await
    .err(404, "ELB.8902");
    assert_eq!(count(api.call("GET", &list, None).await.ok(200)), 2);
    let gone = api
        .call(
            "POST",
            &del,
            Some(&json!({"members": [{"id": first}, {"address": "10.0.0.8", "protocol_port": 6081}]})),
        )
        .await
        .ok(200);
    assert_eq!(
        gone["members"][0],
        json!({"id": first, "ret_status": "successful"})
    );
    assert_eq!(count(api.call("GET", &list, None).await.ok(200)), 0);
}

/// A named load balancer; its id.
async fn named_load_balancer(api: &Api, name: &str) -> String {
    id(&api
        .call(
            "POST",
            &elb(api, "loadbalancers"),
            Some(&json!({"loadbalancer": {"name": name, "description": "d"}})),
        )
        .await
        .ok(201)["loadbalancer"])
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn load_balancer_lists_page_both_ways_and_filter() {
    let server = TestServer::start().await;
    let api = server.client();
    let mut ids = Vec::new();
    for n in ["a", "b", "c", "d", "e"] {
        ids.push(named_load_balancer(&api, n).await);
    }
    let get = |q: String| {
        let api = &api;
        async move {
            api.call("GET", &format!("{}?{q}", elb(api, "loadbalancers")), None)
                .await
        }
    };

    // Forwards: two, two, one; next_marker only while more follow.
    let first = get("limit=2".into()).await.ok(200);
    assert_eq!(names(&first, "loadbalancers"), ["a", "b"]);
    assert_eq!(
        first["page_info"],
        json!({"current_count": 2, "previous_marker": ids[0], "next_marker": ids[1]})
    );
    let second = get(format!("limit=2&marker={}", ids[1])).await.ok(200);
    assert_eq!(names(&second, "loadbalancers"), ["c", "d"]);
    let last = get(format!("limit=2&marker={}", ids[3])).await.ok(200);
    assert_eq!(names(&last, "loadbalancers"), ["e"]);
    assert_eq!(
        last["page_info"],
        json!({"current_count": 1, "previous_marker": ids[4]})
    );

    // Backwards from e: d and c, in creation order, with earlier ones left.
    let back = get(format!("limit=2&marker={}&page_reverse=true", ids[4]))
        .await
        .ok(200);
    assert_eq!(names(&back, "loadbalancers"), ["c", "d"]);
    assert_eq!(
        back["page_info"],
        json!({"current_count": 2, "previous_marker": ids[2], "next_marker": ids[3]})
    );
    let start = get(format!("limit=2&marker={}&page_reverse=true", ids[2]))
        .await
        .ok(200);
    assert_eq!(names(&start, "loadbalancers"), ["a", "b"]);
    assert_eq!(
        start["page_info"],
        json!({"current_count": 2, "next_marker": ids[1]})
    );

    // Filters: a repeated key is any of its values; unknown keys are ignored, as Huawei does.
    let some = get("name=b&name=d&description=d&enterprise_project_id=x".into())
        .await
        .ok(200);
    assert_eq!(names(&some, "loadbalancers"), ["b", "d"]);
    let by_id = get(format!("id={}", ids[2])).await.ok(200);
    assert_eq!(names(&by_id, "loadbalancers"), ["c"]);
    let none = get("admin_state_up=false".into()).await.ok(200);
    assert_eq!(none["page_info"], json!({"current_count": 0}));

    // Bad paging is the face's 400; another project's id is no marker here.
    get("limit=2001".into()).await.err(400, "VPC.0101");
    get("limit=x".into()).await.err(400, "VPC.0101");
    get("page_reverse=maybe".into()).await.err(400, "VPC.0101");
    get("admin_state_up=maybe".into())
        .await
        .err(400, "VPC.0101");
    get(format!("marker={}", uuid_like()))
        .await
        .err(400, "VPC.0101");
    let other = server.client().tenant("other", "member").await;
    let theirs = named_load_balancer(&other, "theirs").await;
    get(format!("marker={theirs}")).await.err(400, "VPC.0101");
    let mine = other
        .call(
            "GET",
            &format!("{}?marker={}", elb(&other, "loadbalancers"), ids[0]),
            None,
        )
        .await;
    mine.err(400, "VPC.0101");
}

fn uuid_like() -> String {
    "7d3c2b1a-0000-4000-8000-000000000001".to_owned()
}

#[tokio::test]
async fn member_lists_page_both_ways_and_filter() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    let pool = id(&pool(&api, &lb).await);
    let mut ids = Vec::new();
    for i in 1..=4 {
        let address = format!("10.0.0.{i}");
        api.port(&address).await;
        ids.push(id(&member(&api, &pool, &address).await.ok(201)["member"]));
    }
    let path = elb(&api, &format!("pools/{pool}/members"));
    let get = |q: String| {
        let api = &api;
        let path = path.clone();
        async move { api.call("GET", &format!("{path}?{q}"), None).await }
    };
    let addresses = |list: &Value| -> Vec<String> {
        list["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| m["address"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    let first = get("limit=3".into()).await.ok(200);
    assert_eq!(addresses(&first), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(first["page_info"]["next_marker"], json!(ids[2]));
    let rest = get(format!("limit=3&marker={}", ids[2])).await.ok(200);
    assert_eq!(addresses(&rest), ["10.0.0.4"]);
    assert_eq!(
        rest["page_info"],
        json!({"current_count": 1, "previous_marker": ids[3]})
    );
    let back = get(format!("limit=2&marker={}&page_reverse=true", ids[3]))
        .await
        .ok(200);
    assert_eq!(addresses(&back), ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(back["page_info"]["previous_marker"], json!(ids[1]));

    // The project's load balancers with a member at an address (not the one without).
    let bare = named_load_balancer(&api, "bare").await;
    let with = api
        .call(
            "GET",
            &format!("{}?member_address=10.0.0.3", elb(&api, "loadbalancers")),
            None,
        )
        .await
        .ok(200);
    assert_eq!(with["loadbalancers"][0]["id"], json!(lb));
    assert_eq!(with["page_info"]["current_count"], 1);
    assert_ne!(with["loadbalancers"][0]["id"], json!(bare));
    let some = get("address=10.0.0.2&address=10.0.0.4&protocol_port=4789&weight=10".into())
        .await
        .ok(200);
    assert_eq!(addresses(&some), ["10.0.0.2", "10.0.0.4"]);
    let none = get("protocol_port=4790".into()).await.ok(200);
    assert_eq!(none["page_info"], json!({"current_count": 0}));

    get("limit=0x".into()).await.err(400, "VPC.0101");
    get("protocol_port=udp".into()).await.err(400, "VPC.0101");
    get(format!("marker={}", uuid_like()))
        .await
        .err(400, "VPC.0101");
    // A marker filtered out of the list is no marker of it.
    get(format!("address=10.0.0.2&marker={}", ids[0]))
        .await
        .err(400, "VPC.0101");
}

#[tokio::test]
async fn listener_and_pool_lists_page_and_filter() {
    let server = TestServer::start().await;
    let api = server.client();
    let mut lbs = Vec::new();
    let mut listeners = Vec::new();
    let mut pools = Vec::new();
    for (i, n) in ["a", "b", "c"].into_iter().enumerate() {
        let lb = named_load_balancer(&api, n).await;
        let listener = api
            .call(
                "POST",
                &elb(&api, "listeners"),
                Some(
                    &json!({"listener": {"loadbalancer_id": lb, "protocol": "UDP",
                    "protocol_port": 4789 + i, "name": n}}),
                ),
            )
            .await
            .ok(201);
        listeners.push(id(&listener["listener"]));
        pools.push(id(&pool(&api, &lb).await));
        lbs.push(lb);
    }
    // A load balancer without a listener or pool adds neither.
    named_load_balancer(&api, "bare").await;
    let list = |kind: &'static str, q: String| {
        let api = &api;
        async move {
            api.call("GET", &format!("{}?{q}", elb(api, kind)), None)
                .await
        }
    };
    let ids = |list: &Value, key: &str| -> Vec<String> {
        list[key]
            .as_array()
            .expect("a list")
            .iter()
            .map(id)
            .collect()
    };

    let all = list("listeners", String::new()).await.ok(200);
    assert_eq!(ids(&all, "listeners"), listeners);
    let first = list("listeners", "limit=2".into()).await.ok(200);
    assert_eq!(
        first["page_info"],
        json!({"current_count": 2, "previous_marker": listeners[0], "next_marker": listeners[1]})
    );
    let next = list("listeners", format!("limit=2&marker={}", listeners[1]))
        .await
        .ok(200);
    assert_eq!(ids(&next, "listeners"), [listeners[2].clone()]);
    let back = list(
        "listeners",
        format!("limit=1&marker={}&page_reverse=true", listeners[2]),
    )
    .await
    .ok(200);
    assert_eq!(ids(&back, "listeners"), [listeners[1].clone()]);
    let by_port = list("listeners", "protocol_port=4791&protocol_port=4789".into())
        .await
        .ok(200);
    assert_eq!(
        ids(&by_port, "listeners"),
        [listeners[0].clone(), listeners[2].clone()]
    );
    let by_lb = list("listeners", format!("loadbalancer_id={}", lbs[1]))
        .await
        .ok(200);
    assert_eq!(ids(&by_lb, "listeners"), [listeners[1].clone()]);

    let by_listener = list("pools", format!("listener_id={}&limit=5", listeners[2]))
        .await
        .ok(200);
    assert_eq!(ids(&by_listener, "pools"), [pools[2].clone()]);
    let paged = list("pools", format!("marker={}&protocol=UDP", pools[0]))
        .await
        .ok(200);
    assert_eq!(ids(&paged, "pools"), pools[1..].to_vec());

    // A load balancer's id is not a listener's marker; bad paging is the face's 400.
    list("listeners", format!("marker={}", lbs[0]))
        .await
        .err(400, "VPC.0101");
    list("pools", "limit=-1".into()).await.err(400, "VPC.0101");
    list("pools", "page_reverse=1".into())
        .await
        .err(400, "VPC.0101");
    // Another project lists none of them and cannot page from them.
    let other = server.client().tenant("other", "member").await;
    let theirs = other
        .call("GET", &elb(&other, "listeners"), None)
        .await
        .ok(200);
    assert_eq!(theirs["listeners"], json!([]));
    other
        .call(
            "GET",
            &format!("{}?marker={}", elb(&other, "pools"), pools[0]),
            None,
        )
        .await
        .err(400, "VPC.0101");
}

/// The listener's and pool's rules (the service's, `service::lb_parts`), each refusal in ELB's
/// words and changing nothing: one UDP listener per load balancer, its default pool its own
/// load balancer's, a pool with members kept, one monitor per pool; a reader may not write.
#[tokio::test]
async fn listener_and_pool_rules_refuse_in_elb_words_and_change_nothing() {
    let server = TestServer::start().await;
    let api = server.client();
    let a = id(&load_balancer(&api).await);
    let b = id(&load_balancer(&api).await);
    let pool_a = id(&pool(&api, &a).await);
    let pool_b = id(&pool(&api, &b).await);
    let listener = |body: Value| {
        let api = &api;
        async move {
            api.call(
                "POST",
                &elb(api, "listeners"),
                Some(&json!({ "listener": body })),
            )
            .await
        }
    };
    let show = |what: String| {
        let api = &api;
        async move { api.call("GET", &elb(api, &what), None).await.ok(200) }
    };
    let before = show(format!("loadbalancers/{a}")).await["loadbalancer"].clone();

    let msg = |body: Value| body["error_msg"].as_str().unwrap_or_default().to_owned();
    let e = listener(json!({"loadbalancer_id": a, "protocol": "TCP", "protocol_port": 80}))
        .await
        .err(400, "VPC.0101");
    assert!(msg(e).starts_with("protocol: "), "named by ELB's field");
    let e = listener(json!({"loadbalancer_id": a, "protocol": "UDP", "protocol_port": 0}))
        .await
        .err(400, "VPC.0101");
    assert!(msg(e).starts_with("protocol_port: 1 to 65535"));
    let e = listener(
        json!({"loadbalancer_id": a, "protocol": "UDP", "protocol_port": 4789,
        "default_pool_id": pool_b}),
    )
    .await
    .err(400, "VPC.0101");
    assert!(msg(e).starts_with("default_pool_id: "));
    assert_eq!(
        show(format!("loadbalancers/{a}")).await["loadbalancer"].clone(),
        before
    );

    let ln = listener(
        json!({"loadbalancer_id": a, "protocol": "UDP", "protocol_port": 4789,
        "default_pool_id": pool_a, "keepalive_timeout": 300}),
    )
    .await
    .ok(201)["listener"]
        .clone();
    assert_eq!(ln["default_pool_id"], pool_a);
    let ln_id = id(&ln);
    listener(json!({"loadbalancer_id": a, "protocol": "UDP", "protocol_port": 4790}))
        .await
        .err(409, "VPC.1711");
    // A pool for A's listener on B: they do not agree.
    let e = api
        .call(
            "POST",
            &elb(&api, "pools"),
            Some(&json!({"pool": {"loadbalancer_id": b, "listener_id": ln_id,
                "protocol": "UDP", "lb_algorithm": "SOURCE_IP"}})),
        )
        .await
        .err(400, "VPC.0101");
    assert!(msg(e).starts_with("listener_id: "));
    // B's pool is not A's listener's default pool; the listener is unchanged.
    api.call(
        "PUT",
        &elb(&api, &format!("listeners/{ln_id}")),
        Some(&json!({"listener": {"default_pool_id": pool_b, "name": "x"}})),
    )
    .await
    .err(400, "VPC.0101");
    let got = show(format!("listeners/{ln_id}")).await["listener"].clone();
    assert_eq!(
        (got["name"].clone(), got["default_pool_id"].clone()),
        (json!(""), json!(pool_a))
    );

    // A monitor per pool; a pool with members stays, with its monitor and the listener's link.
    let monitor = json!({"healthmonitor": {"pool_id": pool_a, "type": "TCP", "delay": 2,
        "timeout": 1, "max_retries": 2}});
    api.call("POST", &elb(&api, "healthmonitors"), Some(&monitor))
        .await
        .ok(201);
    api.call("POST", &elb(&api, "healthmonitors"), Some(&monitor))
        .await
        .err(409, "VPC.1711");
    // Loopback: the health checker probes the member under the monitor.
    api.port("127.78.0.7").await;
    let m = id(&member(&api, &pool_a, "127.78.0.7").await.ok(201)["member"]);
    let before = show(format!("loadbalancers/{a}")).await["loadbalancer"].clone();
    api.call("DELETE", &elb(&api, &format!("pools/{pool_a}")), None)
        .await
        .err(409, "VPC.1711");
    assert_eq!(
        show(format!("loadbalancers/{a}")).await["loadbalancer"].clone(),
        before
    );

    // A reader reads the listener and changes none of it.
    let reader = server
        .client()
        .admin_credential(&api.creds.project_id, "reader")
        .await;
    reader
        .call("GET", &elb(&reader, &format!("listeners/{ln_id}")), None)
        .await
        .ok(200);
    for (method, path) in [
        ("DELETE", format!("listeners/{ln_id}")),
        ("DELETE", format!("pools/{pool_a}/members/{m}")),
    ] {
        let refused = reader.call(method, &elb(&reader, &path), None).await;
        assert_eq!(refused.status, 403, "{method} {path}: {:?}", refused.body);
    }
    assert_eq!(
        show(format!("loadbalancers/{a}")).await["loadbalancer"].clone(),
        before
    );

    // Without members the pool goes, its monitor with it, and the listener keeps no link.
    api.call(
        "DELETE",
        &elb(&api, &format!("pools/{pool_a}/members/{m}")),
        None,
    )
    .await
    .ok(204);
    api.call("DELETE", &elb(&api, &format!("pools/{pool_a}")), None)
        .await
        .ok(204);
    let got = show(format!("listeners/{ln_id}")).await["listener"].clone();
    assert_eq!(got["default_pool_id"], Value::Null);
    assert_eq!(got["keepalive_timeout"], 300);
    let monitors = show("healthmonitors".into()).await;
    assert_eq!(monitors["healthmonitors"], json!([]));
    api.call("DELETE", &elb(&api, &format!("listeners/{ln_id}")), None)
        .await
        .ok(204);
    api.call("GET", &elb(&api, &format!("listeners/{ln_id}")), None)
        .await
        .err(404, "ELB.8902");
}

/// A port keeps its fixed IPs: a session's source cannot take a member's address afterwards
/// (its copies would be mirrored again, and again), nor any other address; the same ones sent
/// back are accepted, as a client that resends the whole port does.
#[tokio::test]
async fn a_source_cannot_gain_a_members_address_after_the_member_was_added() {
    let server = TestServer::start().await;
    let api = server.client();
    let lb = id(&load_balancer(&api).await);
    let pool = id(&pool(&api, &lb).await);
    // Loopback: members are checked by nobody here (no monitor), but stay on loopback anyway.
    api.port("127.79.0.9").await;
    member(&api, &pool, "127.79.0.9").await.ok(201);
    let source = api.port("10.0.0.1").await;
    let source_id = id(&source);
    let filter = id(&api.filter("f").await);
    api.session(json!({"name": "s", "traffic_mirror_filter_id": filter,
        "traffic_mirror_sources": [source_id], "traffic_mirror_target_id": lb,
        "traffic_mirror_target_type": "elb", "priority": 1}))
        .await
        .ok(201);
    let path = format!("/v1/{}/ports/{source_id}", api.creds.project_id);
    let update = |ip: &str| json!({"port": {"name": "renamed", "fixed_ips": [{"subnet_id": "sub-1", "ip_address": ip}]}});
    for ip in ["127.79.0.9", "10.0.0.2"] {
        let e = api
            .call("PUT", &path, Some(&update(ip)))
            .await
            .err(400, "VPC.0101");
        assert!(e.to_string().contains("fixed"), "{e}");
    }
    let now = api.call("GET", &path, None).await.ok(200)["port"].clone();
    assert_eq!(
        (&now["name"], &now["fixed_ips"]),
        (&source["name"], &source["fixed_ips"]),
        "nothing changed"
    );
    let same = api
        .call("PUT", &path, Some(&update("10.0.0.1")))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(same["name"], "renamed");
    assert_eq!(same["fixed_ips"][0]["ip_address"], "10.0.0.1");
}
