//! Filters and filter rules through the Huawei face.

mod common;

use common::{id, TestServer};
use serde_json::{json, Value};

fn rule(filter: &str, direction: &str, priority: u32) -> Value {
    json!({"traffic_mirror_filter_id": filter, "direction": direction, "protocol": "tcp",
           "ethertype": "IPv4", "action": "accept", "priority": priority})
}

#[tokio::test]
async fn filter_lifecycle_embeds_rules() {
    let server = TestServer::start().await;
    let api = server.client();
    let body = json!({"traffic_mirror_filter": {"name": "test1", "description": "description"}});
    let created = api
        .call("POST", &api.v3("traffic-mirror-filters"), Some(&body))
        .await
        .ok(201);
    let f = &created["traffic_mirror_filter"];
    assert_eq!(f["name"], "test1");
    assert_eq!(f["description"], "description");
    assert_eq!(f["ingress_rules"], json!([]));
    assert_eq!(f["egress_rules"], json!([]));
    assert_eq!(f["type"], "eni");
    assert_eq!(f["created_at"], f["updated_at"]);
    let fid = id(f);
    let r1 = api.rule(rule(&fid, "ingress", 2)).await.ok(201)["traffic_mirror_filter_rule"].clone();
    let r2 = api.rule(rule(&fid, "ingress", 1)).await.ok(201)["traffic_mirror_filter_rule"].clone();
    let r3 = api.rule(rule(&fid, "egress", 1)).await.ok(201)["traffic_mirror_filter_rule"].clone();
    let path = api.v3(&format!("traffic-mirror-filters/{fid}"));
    let shown = api.get(&path).await.ok(200)["traffic_mirror_filter"].clone();
    // Rules come embedded, each direction in ascending priority.
    assert_eq!(shown["ingress_rules"], json!([r2, r1]));
    assert_eq!(shown["egress_rules"], json!([r3]));
    // Only name and description are updatable; an empty description is kept as "".
    let u = api
        .call(
            "PUT",
            &path,
            Some(&json!({"traffic_mirror_filter": {"name": "renamed", "description": ""}})),
        )
        .await
        .ok(200);
    assert_eq!(u["traffic_mirror_filter"]["name"], "renamed");
    assert_eq!(u["traffic_mirror_filter"]["description"], "");
    assert_eq!(
        u["traffic_mirror_filter"]["ingress_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    api.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_filter": {"name": ""}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_filter": {"description": "a>b"}})),
    )
    .await
    .err(400, "VPC.0101");
    // Deleting a filter deletes its rules.
    api.call("DELETE", &path, None).await.ok(204);
    api.get(&path).await.err(404, "VPC.1702");
    api.get(&api.v3(&format!("traffic-mirror-filter-rules/{}", id(&r1))))
        .await
        .err(404, "VPC.1703");
    let rules = api
        .get(&api.v3("traffic-mirror-filter-rules"))
        .await
        .ok(200);
    assert_eq!(rules["traffic_mirror_filter_rules"], json!([]));
}

#[tokio::test]
async fn rule_create_normalises_like_huawei() {
    let server = TestServer::start().await;
    let api = server.client();
    let fid = id(&api.filter("f").await);
    // The official example: ethertype ipv4 → IPv4, CIDR trimmed, description "", absent keys omitted.
    let r = api
        .rule(json!({"traffic_mirror_filter_id": fid, "direction": "ingress", "protocol": "ICMP",
                     "ethertype": "ipv4", "source_cidr_block": "192.168.0.0/24 ", "action": "accept", "priority": 29}))
        .await
        .ok(201)["traffic_mirror_filter_rule"]
        .clone();
    assert_eq!(r["ethertype"], "IPv4");
    assert_eq!(r["protocol"], "ICMP");
    assert_eq!(r["source_cidr_block"], "192.168.0.0/24");
    assert_eq!(r["description"], "");
    assert_eq!(r["priority"], 29);
    for absent in [
        "destination_cidr_block",
        "source_port_range",
        "destination_port_range",
    ] {
        assert!(r.get(absent).is_none(), "{absent} should be omitted: {r}");
    }
    // Protocol case is echoed as sent (Terraform sends lower case and expects it back).
    let r = api
        .rule(json!({"traffic_mirror_filter_id": fid, "direction": "egress", "protocol": "udp", "ethertype": "IPv6",
                     "destination_cidr_block": "2002:50::44/128", "source_port_range": "1-65535",
                     "destination_port_range": "80-81", "action": "reject", "priority": 65535}))
        .await
        .ok(201)["traffic_mirror_filter_rule"]
        .clone();
    assert_eq!(r["protocol"], "udp");
    assert_eq!(r["destination_port_range"], "80-81");
    assert_eq!(r["action"], "reject");
}

#[tokio::test]
async fn rule_validation() {
    let server = TestServer::start().await;
    let api = server.client();
    let fid = id(&api.filter("f").await);
    let bad: Vec<(&str, Value)> = vec![
        ("direction", json!("inbound")),
        ("protocol", json!("sctp")),
        ("ethertype", json!("ipv5")),
        ("action", json!("drop")),
        ("priority", json!(0)),
        ("priority", json!(65536)),
        ("source_cidr_block", json!("10.0.0.0/33")),
        ("source_cidr_block", json!("::/0")),
        ("destination_port_range", json!("80")),
        ("destination_port_range", json!("90-80")),
        ("source_port_range", json!("0-10")),
        ("traffic_mirror_filter_id", json!("nope")),
    ];
    for (field, value) in bad {
        let mut b = rule(&fid, "ingress", 1);
        b[field] = value.clone();
        let e = api.rule(b).await.err(400, "VPC.0101");
        assert!(
            e["error_msg"].as_str().unwrap().contains(field) || field == "source_cidr_block",
            "{field}: {e}"
        );
    }
    // Port ranges only for TCP and UDP; ICMP with IPv4, ICMPv6 with IPv6.
    for (protocol, ethertype) in [("icmp", "IPv4"), ("all", "IPv4"), ("icmpv6", "IPv6")] {
        let mut b = rule(&fid, "ingress", 1);
        b["protocol"] = json!(protocol);
        b["ethertype"] = json!(ethertype);
        b["destination_port_range"] = json!("80-80");
        api.rule(b).await.err(400, "VPC.0101");
    }
    let mut b = rule(&fid, "ingress", 1);
    b["protocol"] = json!("icmp");
    b["ethertype"] = json!("IPv6");
    api.rule(b).await.err(400, "VPC.0101");
    let mut b = rule(&fid, "ingress", 1);
    b["protocol"] = json!("ICMPv6");
    api.rule(b).await.err(400, "VPC.0101");
    let ghost = uuid::Uuid::new_v4().to_string();
    api.rule(rule(&ghost, "ingress", 1))
        .await
        .err(404, "VPC.1702");
    let listed = api
        .get(&api.v3("traffic-mirror-filter-rules"))
        .await
        .ok(200);
    assert_eq!(listed["traffic_mirror_filter_rules"], json!([]));
}

#[tokio::test]
async fn rule_priorities_are_unique_per_filter_and_direction_and_capped() {
    let server = TestServer::start().await;
    let api = server.client();
    let fid = id(&api.filter("f").await);
    let other = id(&api.filter("g").await);
    api.rule(rule(&fid, "ingress", 7)).await.ok(201);
    api.rule(rule(&fid, "ingress", 7))
        .await
        .err(409, "VPC.1710");
    api.rule(rule(&fid, "egress", 7)).await.ok(201);
    api.rule(rule(&other, "ingress", 7)).await.ok(201);
    for p in 1..=9 {
        api.rule(rule(&fid, "ingress", 100 + p)).await.ok(201);
    }
    api.rule(rule(&fid, "ingress", 200))
        .await
        .err(409, "VPC.0114");
    api.rule(rule(&fid, "egress", 200)).await.ok(201);
}

#[tokio::test]
async fn rule_update_merges_and_clears_meaningless_ports() {
    let server = TestServer::start().await;
    let api = server.client();
    let fid = id(&api.filter("f").await);
    let r = api
        .rule(json!({"traffic_mirror_filter_id": fid, "direction": "ingress", "protocol": "udp", "ethertype": "IPv4",
                     "source_cidr_block": "192.168.0.0/24", "source_port_range": "80-81",
                     "destination_port_range": "1-65535", "action": "accept", "priority": 1}))
        .await
        .ok(201)["traffic_mirror_filter_rule"]
        .clone();
    let path = api.v3(&format!("traffic-mirror-filter-rules/{}", id(&r)));
    // Terraform: udp/IPv4 → icmpv6/IPv6 without sending the port fields; ports come back empty.
    let u = api
        .call("PUT", &path, Some(&json!({"traffic_mirror_filter_rule": {
            "protocol": "icmpv6", "ethertype": "IPv6", "source_cidr_block": "::/0", "action": "reject",
            "priority": 2, "description": "changed"}})))
        .await
        .ok(200)["traffic_mirror_filter_rule"]
        .clone();
    assert_eq!(u["protocol"], "icmpv6");
    assert_eq!(u["ethertype"], "IPv6");
    assert_eq!(u["action"], "reject");
    assert_eq!(u["description"], "changed");
    assert!(
        u.get("source_port_range").is_none() && u.get("destination_port_range").is_none(),
        "{u}"
    );
    assert_eq!(u["direction"], "ingress");
    assert_eq!(u["created_at"], r["created_at"]);
    // Sending ports with such a protocol is an error; a CIDR of the wrong family too.
    api.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_filter_rule": {"source_port_range": "1-2"}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_filter_rule": {"destination_cidr_block": "10.0.0.0/8"}})),
    )
    .await
    .err(400, "VPC.0101");
    // Priority conflicts within the direction.
    api.rule(rule(&fid, "ingress", 5)).await.ok(201);
    api.call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_filter_rule": {"priority": 5}})),
    )
    .await
    .err(409, "VPC.1710");
    let after = api.get(&path).await.ok(200)["traffic_mirror_filter_rule"].clone();
    assert_eq!(after, u);
    api.call("DELETE", &path, None).await.ok(204);
    api.call("DELETE", &path, None).await.err(404, "VPC.1703");
}
