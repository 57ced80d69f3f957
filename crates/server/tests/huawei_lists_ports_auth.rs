//! List filters and pagination, the v1 ports API, and authentication.

mod common;

use common::{id, Api, TestServer};
use serde_json::{json, Value};

#[tokio::test]
async fn marker_pagination_walks_every_item_once_in_creation_order() {
    let server = TestServer::start().await;
    let api = server.client();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(id(&api.filter(&format!("f{i}")).await));
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let q = match &marker {
            Some(m) => format!("traffic-mirror-filters?limit=3&marker={m}"),
            None => "traffic-mirror-filters?limit=3".into(),
        };
        let page = api.get(&api.v3(&q)).await.ok(200);
        let items: Vec<String> = page["traffic_mirror_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect();
        let info = &page["page_info"];
        assert_eq!(info["current_count"], items.len());
        assert_eq!(
            info["previous_marker"].as_str(),
            items.first().map(String::as_str)
        );
        seen.extend(items.iter().cloned());
        match info.get("next_marker") {
            Some(next) => {
                assert_eq!(next.as_str(), items.last().map(String::as_str));
                marker = Some(next.as_str().unwrap().to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // Limit 0 means the default; an empty last page is {current_count: 0}.
    let all = api
        .get(&api.v3("traffic-mirror-filters?limit=0"))
        .await
        .ok(200);
    assert_eq!(all["traffic_mirror_filters"].as_array().unwrap().len(), 7);
    assert!(all["page_info"].get("next_marker").is_none());
    let after_last = api
        .get(&api.v3(&format!("traffic-mirror-filters?marker={}", ids[6])))
        .await
        .ok(200);
    assert_eq!(after_last["page_info"], json!({"current_count": 0}));
    api.get(&api.v3("traffic-mirror-filters?limit=2001"))
        .await
        .err(400, "VPC.0101");
    api.get(&api.v3("traffic-mirror-filters?limit=-1"))
        .await
        .err(400, "VPC.0101");
    let ghost = uuid::Uuid::new_v4();
    api.get(&api.v3(&format!("traffic-mirror-filters?marker={ghost}")))
        .await
        .err(400, "VPC.0101");
}

#[tokio::test]
async fn list_filters_match_exactly_or_any_of_repeated_values_and_all_keys() {
    let server = TestServer::start().await;
    let api = server.client();
    let fid = id(&api.filter("f").await);
    let mut by_priority = std::collections::HashMap::new();
    for (p, protocol, action) in [
        (333, "tcp", "accept"),
        (555, "tcp", "accept"),
        (666, "udp", "reject"),
    ] {
        let r = api
            .rule(json!({"traffic_mirror_filter_id": fid, "direction": "ingress", "protocol": protocol,
                         "ethertype": "IPv4", "action": action, "priority": p}))
            .await
            .ok(201)["traffic_mirror_filter_rule"]
            .clone();
        by_priority.insert(p, id(&r));
    }
    // The Terraform data-source case.
    let q = "traffic-mirror-filter-rules?direction=ingress&protocol=tcp&action=accept&priority=555";
    let page = api.get(&api.v3(q)).await.ok(200);
    let got: Vec<String> = page["traffic_mirror_filter_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(got, vec![by_priority[&555].clone()]);
    // Repeated keys: any of the values. Protocol case does not matter.
    let q = format!(
        "traffic-mirror-filter-rules?id={}&id={}",
        by_priority[&333], by_priority[&666]
    );
    assert_eq!(
        api.get(&api.v3(&q)).await.ok(200)["traffic_mirror_filter_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let q = "traffic-mirror-filter-rules?protocol=TCP";
    assert_eq!(
        api.get(&api.v3(q)).await.ok(200)["traffic_mirror_filter_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    api.get(&api.v3("traffic-mirror-filter-rules?priority=high"))
        .await
        .err(400, "VPC.0101");

    // Sessions: typed filters given as strings (Terraform passes them so).
    let t = id(&api.port("10.0.0.9").await);
    for (p, enabled, vni) in [(1, true, 5), (2, false, 5), (3, true, 6)] {
        api.session(json!({"name": format!("s{p}"), "traffic_mirror_filter_id": fid, "traffic_mirror_sources": [],
            "traffic_mirror_target_id": t, "traffic_mirror_target_type": "eni", "priority": p,
            "enabled": enabled, "virtual_network_id": vni}))
            .await
            .ok(201);
    }
    let names = |v: Value| -> Vec<String> {
        v["traffic_mirror_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(
            api.get(&api.v3("traffic-mirror-sessions?enabled=true"))
                .await
                .ok(200)
        ),
        ["s1", "s3"]
    );
    assert_eq!(
        names(
            api.get(&api.v3("traffic-mirror-sessions?virtual_network_id=5&enabled=false"))
                .await
                .ok(200)
        ),
        ["s2"]
    );
    assert_eq!(
        names(
            api.get(&api.v3("traffic-mirror-sessions?name=s3&name=s1"))
                .await
                .ok(200)
        ),
        ["s1", "s3"]
    );
    assert_eq!(
        names(
            api.get(&api.v3("traffic-mirror-sessions?name=a%20b"))
                .await
                .ok(200)
        ),
        Vec::<String>::new()
    );
    api.get(&api.v3("traffic-mirror-sessions?enabled=yes"))
        .await
        .err(400, "VPC.0101");
    let created = api
        .get(&api.v3("traffic-mirror-sessions?priority=1"))
        .await
        .ok(200)["traffic_mirror_sessions"][0]["created_at"]
        .clone();
    let q = format!(
        "traffic-mirror-sessions?created_at={}",
        created.as_str().unwrap()
    );
    assert!(!names(api.get(&api.v3(&q)).await.ok(200)).is_empty());
}

#[tokio::test]
async fn ports_lifecycle_with_bindings_and_v1_errors() {
    let server = TestServer::start().await;
    let api = server.client();
    let body = json!({"port": {"network_id": "net-1", "name": "vm1-eth0", "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}],
        "device_owner": "compute:az1", "binding:host_id": "hv1",
        "binding:profile": {"interface_name": "veth-vm1", "capture_side": "host"}, "admin_state_up": "true"}});
    let created = api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .ok(201);
    let p = &created["port"];
    assert!(created.get("request_id").is_none());
    assert_eq!(
        p["fixed_ips"],
        json!([{"subnet_id": "sub-1", "ip_address": "10.0.0.5"}])
    );
    assert!(p["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["admin_state_up"], true);
    assert_eq!(p["binding:host_id"], "hv1");
    assert_eq!(
        p["binding:profile"],
        json!({"interface_name": "veth-vm1", "capture_side": "host"})
    );
    assert_eq!(p["tenant_id"], server.creds.project_id);
    let pid = id(p);
    let path = api.v1(&format!("ports/{pid}"));
    assert_eq!(&api.get(&path).await.ok(200)["port"], p);
    // Update: name and bindings; unbinding makes it DOWN.
    let u = api
        .call("PUT", &path, Some(&json!({"port": {"name": "renamed", "binding:host_id": "", "binding:profile": {"capture_side": "guest"}}})))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(u["name"], "renamed");
    assert_eq!(u["status"], "DOWN");
    assert_eq!(u["binding:profile"], json!({"capture_side": "guest"}));
    // v1 errors are {code, message}, and the same again as {error_code, error_msg} for the SDKs
    // that read only those (Huawei's Node.js SDK).
    let e = api
        .call(
            "POST",
            &api.v1("ports"),
            Some(&json!({"port": {"name": "x"}})),
        )
        .await
        .err(400, "VPC.0101");
    assert_eq!(e["error_code"], e["code"]);
    assert_eq!(e["error_msg"], e["message"]);
    api.call(
        "POST",
        &api.v1("ports"),
        Some(&json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "nope"}]}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "POST",
        &api.v1("ports"),
        Some(&json!({"port": {"network_id": "n", "device_owner": "network:router"}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call(
        "POST",
        &api.v1("ports"),
        Some(&json!({"port": {"network_id": "n", "binding:profile": {"capture_side": "middle"}}})),
    )
    .await
    .err(400, "VPC.0101");
    api.call("POST", &api.v1("ports"), Some(&json!({"port": {"network_id": "n", "binding:profile": {"interface_name": "much-too-long-name"}}}))).await.err(400, "VPC.0101");
    api.get(&api.v1(&format!("ports/{}", uuid::Uuid::new_v4())))
        .await
        .err(404, "VPC.1704");
    // List: no page_info, filters including fixed_ips.
    api.port("10.0.0.6").await;
    let all = api.get(&api.v1("ports")).await.ok(200);
    assert!(all.get("page_info").is_none());
    assert_eq!(all["ports"].as_array().unwrap().len(), 2);
    let by_ip = api
        .get(&api.v1("ports?fixed_ips=ip_address%3D10.0.0.5"))
        .await
        .ok(200);
    assert_eq!(
        by_ip["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        vec![pid.clone()]
    );
    let by_name = api
        .get(&api.v1("ports?name=renamed&status=DOWN"))
        .await
        .ok(200);
    assert_eq!(by_name["ports"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&api.v1("ports?limit=1")).await.ok(200)["ports"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Security groups are a repeatable filter; address pairs and DHCP options are refused
    // rather than dropped.
    let sg = json!({"port": {"network_id": "n", "security_groups": ["sg1", "sg2"]}});
    let with_sg = id(&api.call("POST", &api.v1("ports"), Some(&sg)).await.ok(201)["port"]);
    let listed = api
        .get(&api.v1("ports?security_groups=sg2&security_groups=sg9"))
        .await
        .ok(200);
    assert_eq!(
        listed["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect::<Vec<_>>(),
        vec![with_sg]
    );
    let pairs = json!({"port": {"network_id": "n", "allowed_address_pairs": [{"ip_address": "10.0.0.0/24"}]}});
    api.call("POST", &api.v1("ports"), Some(&pairs))
        .await
        .err(400, "VPC.0101");
    let dhcp = json!({"port": {"extra_dhcp_opts": [{"opt_name": "a", "opt_value": "b"}]}});
    api.call("PUT", &path, Some(&dhcp))
        .await
        .err(400, "VPC.0101");
    api.call("DELETE", &path, None).await.ok(204);
    api.get(&path).await.err(404, "VPC.1704");
}

#[tokio::test]
async fn every_request_must_be_signed_by_a_known_key_of_the_path_project() {
    let server = TestServer::start().await;
    let api = server.client();
    let path = api.v3("traffic-mirror-filters");
    api.get(&path).await.ok(200);
    // No signature at all.
    let r = reqwest::get(format!("http://{}{path}", server.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("x-request-id").is_some());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error_code"], "APIGW.0301");
    // Wrong secret, unknown key.
    let mut wrong = api.clone();
    wrong.creds.secret_key = "not-the-secret".into();
    wrong.get(&path).await.err(401, "APIGW.0301");
    let mut unknown = api.clone();
    unknown.creds.access_key = "AKUNKNOWN".into();
    let e = unknown.get(&path).await.err(401, "APIGW.0301");
    assert!(e["error_msg"].as_str().unwrap().contains("ak not exist"));
    // Skewed date, either way.
    for minutes in [-16, 16] {
        let mut skewed = api.clone();
        skewed.skew = time::Duration::minutes(minutes);
        skewed.get(&path).await.err(401, "APIGW.0301");
    }
    let mut slightly = api.clone();
    slightly.skew = time::Duration::minutes(5);
    slightly.get(&path).await.ok(200);
    // Another project's path with our key: forbidden, nothing revealed; v1 has its own body.
    let mut other = api.clone();
    other.creds.project_id = "0123456789abcdef0123456789abcdef".into();
    other
        .get(&other.v3("traffic-mirror-filters"))
        .await
        .err(403, "VPC.0007");
    other.get(&other.v1("ports")).await.err(403, "VPC.0007");
    // A tampered body fails: sign one body, send another.
    let mut tampered = Api::new(server.addr, server.creds.clone());
    tampered.tamper = Some(br#"{"traffic_mirror_filter": {"name": "evil"}}"#.to_vec());
    tampered
        .call_raw(
            "POST",
            &path,
            br#"{"traffic_mirror_filter": {"name": "good"}}"#,
        )
        .await
        .err(401, "APIGW.0301");
    api.call_raw(
        "POST",
        &path,
        br#"{"traffic_mirror_filter": {"name": "good"}}"#,
    )
    .await
    .ok(201);
    // Nothing was created by the refused requests.
    let listed = api.get(&path).await.ok(200);
    assert_eq!(
        listed["traffic_mirror_filters"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = TestServer::start().await;
    let api = server.client();
    let r = api.get(&api.v3("traffic-mirror-things")).await;
    assert_eq!(r.status, 404);
    let r = api
        .call("PATCH", &api.v3("traffic-mirror-filters"), None)
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error_code"], "VPC.0405");
    let health = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let server = TestServer::start().await;
    let api = server.client();
    let creds = server.creds.clone();
    let f = api.filter("keep").await;
    let path = api.v3(&format!("traffic-mirror-filters/{}", id(&f)));
    let dir = server.stop().await;
    let again = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(
        again.creds.access_key, creds.access_key,
        "the admin credential is reused"
    );
    let api = again.client();
    assert_eq!(api.get(&path).await.ok(200)["traffic_mirror_filter"], f);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(again.data_path().join("admin-credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
