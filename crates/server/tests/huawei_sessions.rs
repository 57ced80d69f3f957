//! Traffic mirror sessions through the Huawei face: every operation, rule and error path.

mod common;

use common::{id, TestServer};
use serde_json::{json, Value};

struct World {
    server: TestServer,
    api: common::Api,
    filter: String,
    target: String,
    sources: Vec<String>,
}

async fn world(n_sources: usize) -> World {
    let server = TestServer::start().await;
    let api = server.client();
    let filter = id(&api.filter("f1").await);
    let target = id(&api.port("10.0.0.100").await);
    let mut sources = Vec::new();
    for i in 0..n_sources {
        sources.push(id(&api.port(&format!("10.0.0.{}", i + 1)).await));
    }
    World {
        server,
        api,
        filter,
        target,
        sources,
    }
}

impl World {
    fn body(&self, priority: u32, sources: &[String]) -> Value {
        json!({
            "name": "s1", "traffic_mirror_filter_id": self.filter, "traffic_mirror_sources": sources,
            "traffic_mirror_target_id": self.target, "traffic_mirror_target_type": "eni", "priority": priority
        })
    }

    async fn count(&self) -> usize {
        self.api
            .get(&self.api.v3("traffic-mirror-sessions"))
            .await
            .ok(200)["traffic_mirror_sessions"]
            .as_array()
            .unwrap()
            .len()
    }
}

#[tokio::test]
async fn create_applies_defaults_and_answers_in_huawei_types() {
    let w = world(1).await;
    let reply = w.api.session(w.body(11, &w.sources)).await;
    let rid = reply.request_id.clone().unwrap();
    let body = reply.ok(201);
    assert_eq!(body["request_id"], rid);
    let s = &body["traffic_mirror_session"];
    assert_eq!(s["virtual_network_id"], 1);
    assert_eq!(s["packet_length"], 96);
    assert_eq!(s["enabled"], false);
    assert_eq!(s["description"], "");
    assert_eq!(s["type"], "eni");
    assert_eq!(s["priority"], 11);
    assert_eq!(s["project_id"], w.server.creds.project_id);
    assert_eq!(s["traffic_mirror_sources"], json!(w.sources));
    let created = s["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 20, "like 2023-02-23T06:57:39Z: {created}");
    assert!(created.ends_with('Z'));
    assert_eq!(s["created_at"], s["updated_at"]);
    // Show returns exactly what create returned.
    let shown = w
        .api
        .get(&w.api.v3(&format!("traffic-mirror-sessions/{}", id(s))))
        .await
        .ok(200);
    assert_eq!(&shown["traffic_mirror_session"], s);
}

#[tokio::test]
async fn create_accepts_strings_for_numbers_and_booleans() {
    let w = world(1).await;
    let mut b = w.body(3, &w.sources);
    b["virtual_network_id"] = json!("7");
    b["packet_length"] = json!("128");
    b["enabled"] = json!("true");
    let s = w.api.session(b).await.ok(201)["traffic_mirror_session"].clone();
    assert_eq!(s["virtual_network_id"], 7);
    assert_eq!(s["packet_length"], 128);
    assert_eq!(s["enabled"], true);
    let mut b = w.body(4, &[]);
    b["virtual_network_id"] = json!(16_777_215);
    b["enabled"] = json!(false);
    let s = w.api.session(b).await.ok(201)["traffic_mirror_session"].clone();
    assert_eq!(s["virtual_network_id"], 16_777_215);
    assert_eq!(s["traffic_mirror_sources"], json!([]));
}

#[tokio::test]
async fn invalid_input_is_refused_and_changes_nothing() {
    let w = world(1).await;
    let cases: Vec<(&str, Value)> = vec![
        ("virtual_network_id", json!(16_777_216)),
        ("virtual_network_id", json!(-1)),
        ("virtual_network_id", json!("seven")),
        ("packet_length", json!(0)),
        ("packet_length", json!(1461)),
        ("priority", json!(0)),
        ("priority", json!(32767)),
        ("priority", json!("x")),
        ("enabled", json!("maybe")),
        ("name", json!("")),
        ("name", json!("a".repeat(65))),
        ("name", json!("bad name!")),
        ("description", json!("<script>")),
        ("traffic_mirror_target_type", json!("vm")),
        ("traffic_mirror_filter_id", json!("not-a-uuid")),
        ("traffic_mirror_sources", json!("one")),
        ("type", json!("vm")),
    ];
    for (field, value) in cases {
        let mut b = w.body(1, &w.sources);
        b[field] = value.clone();
        let e = w.api.session(b).await.err(400, "VPC.0101");
        assert!(
            e["error_msg"].as_str().unwrap().contains(field),
            "{field}={value}: {e}"
        );
    }
    for missing in [
        "name",
        "traffic_mirror_filter_id",
        "traffic_mirror_sources",
        "traffic_mirror_target_id",
        "priority",
    ] {
        let mut b = w.body(1, &w.sources);
        b.as_object_mut().unwrap().remove(missing);
        w.api.session(b).await.err(400, "VPC.0101");
    }
    w.api
        .call_raw("POST", &w.api.v3("traffic-mirror-sessions"), b"{not json")
        .await
        .err(400, "VPC.0101");
    w.api
        .call_raw("POST", &w.api.v3("traffic-mirror-sessions"), b"")
        .await
        .err(400, "VPC.0101");
    w.api
        .call_raw("POST", &w.api.v3("traffic-mirror-sessions"), b"[1,2]")
        .await
        .err(400, "VPC.0101");
    assert_eq!(w.count().await, 0);
}

#[tokio::test]
async fn references_must_exist_and_roles_must_not_clash() {
    let w = world(2).await;
    let ghost = uuid::Uuid::new_v4().to_string();
    let mut b = w.body(1, &w.sources);
    b["traffic_mirror_filter_id"] = json!(ghost);
    w.api.session(b).await.err(404, "VPC.1702");
    w.api
        .session(w.body(1, std::slice::from_ref(&ghost)))
        .await
        .err(404, "VPC.1704");
    let mut b = w.body(1, &w.sources);
    b["traffic_mirror_target_id"] = json!(ghost);
    w.api.session(b).await.err(404, "VPC.1704");
    // An elb target names a load balancer: a port's id is not one.
    let mut b = w.body(1, &w.sources);
    b["traffic_mirror_target_type"] = json!("elb");
    let e = w.api.session(b).await.err(404, "ELB.8902");
    assert!(e["error_msg"].as_str().unwrap().contains("load balancer"));
    // A port without an address cannot receive copies.
    let no_ip = w
        .api
        .call(
            "POST",
            &w.api.v1("ports"),
            Some(&json!({"port": {"network_id": "n"}})),
        )
        .await
        .ok(201);
    let mut b = w.body(1, &w.sources);
    b["traffic_mirror_target_id"] = no_ip["port"]["id"].clone();
    w.api.session(b).await.err(400, "VPC.1714");
    // Source and target of one session.
    w.api
        .session(w.body(1, std::slice::from_ref(&w.target)))
        .await
        .err(400, "VPC.1713");
    // Duplicate sources.
    w.api
        .session(w.body(1, &[w.sources[0].clone(), w.sources[0].clone()]))
        .await
        .err(400, "VPC.0101");
    assert_eq!(w.count().await, 0);
    // A target of one session cannot be a source of another, nor the reverse.
    w.api.session(w.body(1, &w.sources[..1])).await.ok(201);
    let mut b = w.body(2, std::slice::from_ref(&w.target));
    b["traffic_mirror_target_id"] = json!(w.sources[1]);
    w.api.session(b).await.err(400, "VPC.1713");
    let mut b = w.body(2, &[w.sources[1].clone()]);
    b["traffic_mirror_target_id"] = json!(w.sources[0]);
    w.api.session(b).await.err(400, "VPC.1713");
    assert_eq!(w.count().await, 1);
}

#[tokio::test]
async fn priorities_are_unique_in_the_project() {
    let w = world(1).await;
    w.api.session(w.body(5, &w.sources)).await.ok(201);
    w.api.session(w.body(5, &[])).await.err(409, "VPC.1710");
    let second = w.api.session(w.body(6, &[])).await.ok(201)["traffic_mirror_session"].clone();
    let path = w
        .api
        .v3(&format!("traffic-mirror-sessions/{}", id(&second)));
    w.api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"priority": 5}})),
        )
        .await
        .err(409, "VPC.1710");
    // Keeping one's own priority is fine.
    w.api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"priority": 6}})),
        )
        .await
        .ok(200);
    assert_eq!(
        w.api.get(&path).await.ok(200)["traffic_mirror_session"]["priority"],
        6
    );
}

#[tokio::test]
async fn quotas_sources_per_session_and_sessions_per_source() {
    let w = world(11).await;
    w.api
        .session(w.body(1, &w.sources))
        .await
        .err(409, "VPC.0114");
    let s =
        w.api.session(w.body(1, &w.sources[..10])).await.ok(201)["traffic_mirror_session"].clone();
    let add = w
        .api
        .v3(&format!("traffic-mirror-sessions/{}/add-sources", id(&s)));
    w.api
        .call(
            "PUT",
            &add,
            Some(&json!({"traffic_mirror_session": {"traffic_mirror_sources": [w.sources[10]]}})),
        )
        .await
        .err(409, "VPC.0114");
    // One port in at most 3 sessions.
    let p = &w.sources[0];
    w.api
        .session(w.body(2, std::slice::from_ref(p)))
        .await
        .ok(201);
    w.api
        .session(w.body(3, std::slice::from_ref(p)))
        .await
        .ok(201);
    w.api
        .session(w.body(4, std::slice::from_ref(p)))
        .await
        .err(409, "VPC.0114");
    assert_eq!(w.count().await, 3);
}

#[tokio::test]
async fn quotas_are_configuration() {
    let server = TestServer::start_with(|c| c.limits.sources_per_session = 1).await;
    let api = server.client();
    let f = id(&api.filter("f").await);
    let t = id(&api.port("10.0.0.9").await);
    let (a, b) = (
        id(&api.port("10.0.0.1").await),
        id(&api.port("10.0.0.2").await),
    );
    let body = json!({"name": "s", "traffic_mirror_filter_id": f, "traffic_mirror_sources": [a, b],
        "traffic_mirror_target_id": t, "traffic_mirror_target_type": "eni", "priority": 1});
    let e = api.session(body).await.err(409, "VPC.0114");
    assert!(e["error_msg"].as_str().unwrap().contains("at most 1"));
}

#[tokio::test]
async fn add_and_remove_sources_keep_order_and_refuse_nonsense() {
    let w = world(4).await;
    let s =
        w.api.session(w.body(1, &w.sources[..2])).await.ok(201)["traffic_mirror_session"].clone();
    let sid = id(&s);
    let add = w
        .api
        .v3(&format!("traffic-mirror-sessions/{sid}/add-sources"));
    let remove = w
        .api
        .v3(&format!("traffic-mirror-sessions/{sid}/remove-sources"));
    let body = |ids: &[&String]| json!({"traffic_mirror_session": {"traffic_mirror_sources": ids}});
    let [a, b, c, d] = [&w.sources[0], &w.sources[1], &w.sources[2], &w.sources[3]];
    // Adding an existing source, removing an absent one: errors, nothing changed.
    w.api
        .call("PUT", &add, Some(&body(&[c, a])))
        .await
        .err(409, "VPC.1712");
    w.api
        .call("PUT", &remove, Some(&body(&[c])))
        .await
        .err(409, "VPC.1712");
    w.api
        .call("PUT", &add, Some(&body(&[c, c])))
        .await
        .err(400, "VPC.0101");
    w.api
        .call("PUT", &add, Some(&body(&[&w.target])))
        .await
        .err(400, "VPC.1713");
    let ghost = uuid::Uuid::new_v4().to_string();
    w.api
        .call("PUT", &add, Some(&body(&[&ghost])))
        .await
        .err(404, "VPC.1704");
    let shown = w
        .api
        .get(&w.api.v3(&format!("traffic-mirror-sessions/{sid}")))
        .await
        .ok(200);
    assert_eq!(
        shown["traffic_mirror_session"]["traffic_mirror_sources"],
        json!([a, b])
    );
    // Terraform: remove everything, then add the new set; order as given.
    let s = w
        .api
        .call("PUT", &remove, Some(&body(&[a, b])))
        .await
        .ok(200);
    assert_eq!(
        s["traffic_mirror_session"]["traffic_mirror_sources"],
        json!([])
    );
    let s = w
        .api
        .call("PUT", &add, Some(&body(&[d, b, c])))
        .await
        .ok(200);
    assert_eq!(
        s["traffic_mirror_session"]["traffic_mirror_sources"],
        json!([d, b, c])
    );
    assert!(s["request_id"].is_string());
}

#[tokio::test]
async fn update_changes_only_what_is_sent() {
    let w = world(1).await;
    let s = w.api.session(w.body(1, &w.sources)).await.ok(201)["traffic_mirror_session"].clone();
    let path = w.api.v3(&format!("traffic-mirror-sessions/{}", id(&s)));
    let other_filter = id(&w.api.filter("f2").await);
    let other_target = id(&w.api.port("10.0.0.200").await);
    // Terraform sends everything but the sources, including type and an empty description.
    let u = w
        .api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {
                "name": "renamed", "description": "", "traffic_mirror_filter_id": other_filter,
                "traffic_mirror_target_id": other_target, "traffic_mirror_target_type": "eni",
                "virtual_network_id": 42, "packet_length": 1460, "priority": 9, "enabled": false, "type": "eni",
                "unknown_future_field": true
            }})),
        )
        .await
        .ok(200)["traffic_mirror_session"]
        .clone();
    assert_eq!(u["name"], "renamed");
    assert_eq!(u["traffic_mirror_filter_id"], other_filter);
    assert_eq!(u["traffic_mirror_target_id"], other_target);
    assert_eq!(u["virtual_network_id"], 42);
    assert_eq!(u["packet_length"], 1460);
    assert_eq!(u["traffic_mirror_sources"], s["traffic_mirror_sources"]);
    assert_eq!(u["created_at"], s["created_at"]);
    let u2 = w
        .api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"enabled": "true"}})),
        )
        .await
        .ok(200);
    assert_eq!(u2["traffic_mirror_session"]["enabled"], true);
    assert_eq!(u2["traffic_mirror_session"]["name"], "renamed");
    // Bad updates change nothing.
    let ghost = uuid::Uuid::new_v4().to_string();
    w.api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"traffic_mirror_filter_id": ghost}})),
        )
        .await
        .err(404, "VPC.1702");
    w.api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"traffic_mirror_target_id": w.sources[0]}})),
        )
        .await
        .err(400, "VPC.1713");
    w.api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_session": {"packet_length": 2000}})),
        )
        .await
        .err(400, "VPC.0101");
    let after = w.api.get(&path).await.ok(200)["traffic_mirror_session"].clone();
    assert_eq!(after, u2["traffic_mirror_session"]);
}

#[tokio::test]
async fn delete_then_gone_and_unknown_ids_are_404() {
    let w = world(1).await;
    let s = w.api.session(w.body(1, &w.sources)).await.ok(201)["traffic_mirror_session"].clone();
    let path = w.api.v3(&format!("traffic-mirror-sessions/{}", id(&s)));
    let r = w.api.call("DELETE", &path, None).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    w.api.get(&path).await.err(404, "VPC.1701");
    w.api.call("DELETE", &path, None).await.err(404, "VPC.1701");
    w.api
        .get(&w.api.v3("traffic-mirror-sessions/not-a-uuid"))
        .await
        .err(404, "VPC.1701");
    let body = json!({"traffic_mirror_session": {"traffic_mirror_sources": [w.sources[0]]}});
    w.api
        .call("PUT", &format!("{path}/add-sources"), Some(&body))
        .await
        .err(404, "VPC.1701");
    // The priority is free again.
    w.api.session(w.body(1, &w.sources)).await.ok(201);
}

#[tokio::test]
async fn filters_and_ports_in_use_cannot_be_deleted() {
    let w = world(1).await;
    let s = w.api.session(w.body(1, &w.sources)).await.ok(201)["traffic_mirror_session"].clone();
    w.api
        .call(
            "DELETE",
            &w.api.v3(&format!("traffic-mirror-filters/{}", w.filter)),
            None,
        )
        .await
        .err(409, "VPC.1711");
    w.api
        .call(
            "DELETE",
            &w.api.v1(&format!("ports/{}", w.sources[0])),
            None,
        )
        .await
        .err(409, "VPC.1711");
    w.api
        .call("DELETE", &w.api.v1(&format!("ports/{}", w.target)), None)
        .await
        .err(409, "VPC.1711");
    w.api
        .call(
            "DELETE",
            &w.api.v3(&format!("traffic-mirror-sessions/{}", id(&s))),
            None,
        )
        .await
        .ok(204);
    w.api
        .call(
            "DELETE",
            &w.api.v1(&format!("ports/{}", w.sources[0])),
            None,
        )
        .await
        .ok(204);
    w.api
        .call("DELETE", &w.api.v1(&format!("ports/{}", w.target)), None)
        .await
        .ok(204);
    w.api
        .call(
            "DELETE",
            &w.api.v3(&format!("traffic-mirror-filters/{}", w.filter)),
            None,
        )
        .await
        .ok(204);
}

#[tokio::test]
async fn concurrent_creates_with_one_priority_have_one_winner() {
    let w = world(0).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = w.api.clone();
        let body = w.body(77, &[]);
        tasks.push(tokio::spawn(async move { api.session(body).await.status }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}
