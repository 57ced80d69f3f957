//! The audit trail: a line for each change and each refused signature, with the request id,
//! client, key, project, action and resource ids, and never a secret.

mod common;

use common::{id, TestServer};
use serde_json::{json, Value};

fn lines(server: &TestServer) -> Vec<Value> {
    std::fs::read_to_string(server.data_path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[tokio::test]
async fn creates_and_refused_signatures_are_audited_without_secrets() {
    let server = TestServer::start().await;
    let api = server.client();
    let created = api
        .call(
            "POST",
            &api.v3("traffic-mirror-filters"),
            Some(&json!({"traffic_mirror_filter": {"name": "audited"}})),
        )
        .await;
    let rid = created.request_id.clone().unwrap();
    let filter = id(&created.ok(201)["traffic_mirror_filter"]);
    // A refused change is audited too, its status says so.
    let bad = api
        .call(
            "POST",
            &api.v3("traffic-mirror-filters"),
            Some(&json!({"traffic_mirror_filter": {"name": "bad\nname"}})),
        )
        .await;
    assert_eq!(bad.status, 400);
    // A read is not audited.
    api.get(&api.v3("traffic-mirror-filters")).await.ok(200);
    // A refused signature is.
    let mut forged = server.client();
    forged.creds.secret_key = "not-the-secret".into();
    let refused = forged.get(&forged.v3("traffic-mirror-filters")).await;
    assert_eq!(refused.status, 401);

    let all = lines(&server);
    let create = all
        .iter()
        .find(|l| l["request_id"] == rid.as_str())
        .expect("the create is audited");
    assert_eq!(create["face"], "huawei");
    assert_eq!(create["status"], 201);
    assert_eq!(create["access_key"], api.creds.access_key.as_str());
    assert_eq!(create["project_id"], api.creds.project_id.as_str());
    assert!(create["action"].as_str().unwrap().starts_with("POST /v3/"));
    assert!(create["resource_ids"]
        .as_array()
        .unwrap()
        .contains(&json!(filter)));
    assert!(create["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    let failure = all
        .iter()
        .find(|l| l["request_id"] == refused.request_id.as_deref().unwrap())
        .expect("the refused signature is audited");
    assert_eq!(failure["status"], 401);
    assert_eq!(failure["access_key"], api.creds.access_key.as_str());
    assert!(failure["refused"].is_string());
    let bad_line = all
        .iter()
        .find(|l| l["request_id"] == bad.request_id.as_deref().unwrap())
        .expect("the refused change is audited");
    assert_eq!(bad_line["status"], 400);
    assert_eq!(all.len(), 3, "reads are not audited: {all:?}");
    let text = std::fs::read_to_string(server.data_path().join("audit.log")).unwrap();
    assert!(!text.contains(&api.creds.secret_key));
    assert!(!text.contains("not-the-secret"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.data_path().join("audit.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[path = "aliyun_support.rs"]
mod aliyun;

#[tokio::test]
async fn alibaba_changes_and_refusals_are_audited_but_not_reads() {
    let s = aliyun::Srv::opened().await;
    let filter = s.filter().await;
    s.rcall(
        "ListTrafficMirrorFilters",
        &[("TrafficMirrorFilterIds.1", &filter)],
    )
    .await
    .ok();
    let deleted = s
        .rcall(
            "DeleteTrafficMirrorFilter",
            &[("TrafficMirrorFilterId", &filter)],
        )
        .await;
    deleted.ok();
    let refused = s
        .send(
            aliyun::Scheme::Acs3,
            "ListTrafficMirrorFilters",
            aliyun::p(&[("RegionId", "cn-hangzhou")]),
            aliyun::Tweak {
                secret: Some("wrong".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);

    let text = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = all.iter().map(|l| l["action"].as_str().unwrap()).collect();
    let reads = all
        .iter()
        .filter(|l| l["action"].as_str().unwrap().starts_with("List") && l["refused"].is_null());
    assert_eq!(reads.count(), 0, "reads are not audited: {actions:?}");
    let delete = all
        .iter()
        .find(|l| l["request_id"] == deleted.request_id.as_str())
        .expect("the delete is audited");
    assert_eq!(delete["face"], "aliyun");
    assert_eq!(delete["action"], "DeleteTrafficMirrorFilter");
    assert_eq!(delete["access_key"], s.ak.as_str());
    assert_eq!(delete["project_id"], s.project.as_str());
    assert_eq!(delete["resource_ids"], json!([filter]));
    let failure = all
        .iter()
        .find(|l| l["request_id"] == refused.request_id.as_str())
        .expect("the refused signature is audited");
    assert_eq!(failure["access_key"], s.ak.as_str());
    assert!(failure["refused"].is_string());
    // The service opening, the create, the delete and the refusal; not the list.
    assert_eq!(all.len(), 4, "{all:#?}");
    assert!(!text.contains(&s.sk));
}
