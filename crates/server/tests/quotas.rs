//! The per-project quotas on sessions, filters and ports, through both faces: a project may
//! create up to its quota, the next create is refused with the face's quota code and changes
//! nothing, deleting one frees a slot, and other projects are not affected.

mod common;
#[path = "aliyun_support.rs"]
mod support;

use common::{id, Api, Creds, TestServer};
use serde_json::{json, Value};
use support::{Scheme, Srv, Tweak};

/// A server whose project may hold 2 sessions, 2 filters and 3 ports; `other` is a second
/// project's client on it (stored before the start, as a credential the operator made).
async fn small_quotas() -> (TestServer, Api, Api) {
    let dir = tempfile::tempdir().unwrap();
    let store = support::open_store(dir.path()).await;
    let project = tmirror_model::ProjectId::new();
    let mut tx = store.write().await.unwrap();
    tx.put_project(&tmirror_model::Project {
        id: project.clone(),
        name: "other".into(),
        created_at: 0,
        quotas: Default::default(),
    })
    .await
    .unwrap();
    let other = Creds {
        access_key: "OTHERPROJECTKEY".into(),
        secret_key: "other-project-secret".into(),
        project_id: project.as_str().to_owned(),
    };
    tx.put_credential(&tmirror_store::Credential {
        access_key: other.access_key.clone(),
        secret_key: other.secret_key.clone(),
        project_id: project,
        role: tmirror_model::Role::Member,
        enabled: true,
        created_at: 0,
        last_used_at: None,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    let server = TestServer::start_in(dir, |c| {
        c.limits.sessions_per_project = 2;
        c.limits.filters_per_project = 2;
        c.limits.ports_per_project = 3;
    })
    .await;
    let api = server.client();
    let other = Api::new(server.addr, other);
    (server, api, other)
}

/// How many items a Huawei list answers (`key` is the list's name in the body).
async fn count(api: &Api, path: &str, key: &str) -> usize {
    api.get(path).await.ok(200)[key].as_array().unwrap().len()
}

#[tokio::test]
async fn huawei_ports_stop_at_the_project_quota_with_a_v1_body() {
    let (_server, api, other) = small_quotas().await;
    let ports: Vec<String> =
        futures::future::join_all(["10.0.0.1", "10.0.0.2", "10.0.0.3"].map(|ip| api.port(ip)))
            .await
            .iter()
            .map(id)
            .collect();
    let body = json!({"port": {"network_id": "net-1", "fixed_ips": [{"ip_address": "10.0.0.4"}]}});
    let refused = api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .err(409, "VPC.0114");
    // The v1 body, with the pair every Huawei SDK reads.
    assert_eq!(refused["code"], "VPC.0114");
    assert_eq!(refused["error_code"], "VPC.0114");
    assert_eq!(
        refused["message"],
        "quota exceeded: at most 3 ports per project"
    );
    assert_eq!(refused["error_msg"], refused["message"]);
    assert_eq!(count(&api, &api.v1("ports"), "ports").await, 3);
    // Another project has its own quota.
    other.port("10.1.0.4").await;
    // Deleting one frees a slot, for one port.
    api.call("DELETE", &api.v1(&format!("ports/{}", ports[0])), None)
        .await
        .ok(204);
    api.call("POST", &api.v1("ports"), Some(&body))
        .await
        .ok(201);
    api.call("POST", &api.v1("ports"), Some(&body))
        .await
        .err(409, "VPC.0114");
    assert_eq!(count(&api, &api.v1("ports"), "ports").await, 3);
}

#[tokio::test]
async fn huawei_filters_stop_at_the_project_quota() {
    let (_server, api, other) = small_quotas().await;
    let first = id(&api.filter("f1").await);
    api.filter("f2").await;
    let path = api.v3("traffic-mirror-filters");
    let body = json!({"traffic_mirror_filter": {"name": "f3"}});
    let refused = api
        .call("POST", &path, Some(&body))
        .await
        .err(409, "VPC.0114");
    assert_eq!(
        refused["error_msg"],
        "quota exceeded: at most 2 traffic mirror filters per project"
    );
    assert_eq!(count(&api, &path, "traffic_mirror_filters").await, 2);
    other.filter("theirs").await;
    api.call(
        "DELETE",
        &api.v3(&format!("traffic-mirror-filters/{first}")),
        None,
    )
    .await
    .ok(204);
    api.call("POST", &path, Some(&body)).await.ok(201);
    api.call("POST", &path, Some(&body))
        .await
        .err(409, "VPC.0114");
    let names: Vec<Value> = api.get(&path).await.ok(200)["traffic_mirror_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, [json!("f2"), json!("f3")]);
}

#[tokio::test]
async fn huawei_sessions_stop_at_the_project_quota() {
    let (_server, api, other) = small_quotas().await;
    let filter = id(&api.filter("f").await);
    let target = id(&api.port("10.0.0.9").await);
    let source = id(&api.port("10.0.0.1").await);
    let body = |priority: u32| {
        json!({"name": format!("s{priority}"), "traffic_mirror_filter_id": filter,
            "traffic_mirror_sources": [source], "traffic_mirror_target_id": target,
            "traffic_mirror_target_type": "eni", "priority": priority})
    };
    let first = id(&api.session(body(1)).await.ok(201)["traffic_mirror_session"]);
    api.session(body(2)).await.ok(201);
    let refused = api.session(body(3)).await.err(409, "VPC.0114");
    assert_eq!(
        refused["error_msg"],
        "quota exceeded: at most 2 traffic mirror sessions per project"
    );
    let path = api.v3("traffic-mirror-sessions");
    assert_eq!(count(&api, &path, "traffic_mirror_sessions").await, 2);
    // Another project has its own quota.
    let (f, t) = (
        id(&other.filter("f").await),
        id(&other.port("10.1.0.9").await),
    );
    for priority in 1..=2 {
        other
            .session(json!({"name": "theirs", "traffic_mirror_filter_id": f, "traffic_mirror_sources": [],
                "traffic_mirror_target_id": t, "traffic_mirror_target_type": "eni", "priority": priority}))
            .await
            .ok(201);
    }
    api.call(
        "DELETE",
        &api.v3(&format!("traffic-mirror-sessions/{first}")),
        None,
    )
    .await
    .ok(204);
    api.session(body(3)).await.ok(201);
    api.session(body(4)).await.err(409, "VPC.0114");
    assert_eq!(count(&api, &path, "traffic_mirror_sessions").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_exceed_the_quota() {
    let server = TestServer::start_with(|c| c.limits.filters_per_project = 5).await;
    let api = server.client();
    let path = api.v3("traffic-mirror-filters");
    let body = json!({"traffic_mirror_filter": {"name": "f"}});
    let replies = futures::future::join_all((0..12).map(|_| {
        let (api, path, body) = (api.clone(), path.clone(), body.clone());
        tokio::spawn(async move { api.call("POST", &path, Some(&body)).await })
    }))
    .await;
    let mut created = 0;
    for reply in replies {
        let reply = reply.unwrap();
        if reply.status == 201 {
            created += 1;
        } else {
            reply.err(409, "VPC.0114");
        }
    }
    assert_eq!(created, 5);
    assert_eq!(count(&api, &path, "traffic_mirror_filters").await, 5);
}

#[tokio::test]
async fn quota_messages_name_the_configured_value() {
    let server = TestServer::start_with(|c| c.limits.ports_per_project = 0).await;
    let api = server.client();
    let body = json!({"port": {"network_id": "net-1"}});
    let e = api
        .call("POST", &api.v1("ports"), Some(&body))
        .await
        .err(409, "VPC.0114");
    assert_eq!(e["message"], "quota exceeded: at most 0 ports per project");
}

/// A server for the Alibaba face whose project may hold 2 sessions and 2 filters.
async fn aliyun_small_quotas() -> Srv {
    Srv::opened_with(|c| {
        c.limits.sessions_per_project = 2;
        c.limits.filters_per_project = 2;
    })
    .await
}

fn total(list: &Value) -> &str {
    list["TotalCount"].as_str().unwrap()
}

#[tokio::test]
async fn aliyun_filters_stop_at_the_project_quota() {
    let s = aliyun_small_quotas().await;
    let first = s.filter().await;
    s.filter().await;
    // Refused with its rules and tags, and with a ClientToken: nothing of it is written, and
    // the token is not used up.
    let create = [
        ("TrafficMirrorFilterName", "third"),
        ("IngressRules.1.Action", "accept"),
        ("IngressRules.1.Protocol", "ALL"),
        ("IngressRules.1.Priority", "1"),
        ("Tag.1.Key", "k"),
        ("Tag.1.Value", "v"),
        ("ClientToken", "quota-token-1"),
    ];
    let refused = s.rcall("CreateTrafficMirrorFilter", &create).await;
    refused.err(400, "QuotaExceeded.FilterNum");
    assert_eq!(
        refused.body["Message"],
        "Quota exceeded: at most 2 traffic mirror filters per project."
    );
    let mut dry = create.to_vec();
    dry.push(("DryRun", "true"));
    s.rcall("CreateTrafficMirrorFilter", &dry)
        .await
        .err(400, "QuotaExceeded.FilterNum");
    let list = s.rcall("ListTrafficMirrorFilters", &[]).await;
    assert_eq!(total(list.ok()), "2");
    let tagged = s
        .rcall(
            "ListTagResources",
            &[("ResourceType", "TRAFFICMIRRORFILTER"), ("Tag.1.Key", "k")],
        )
        .await;
    assert_eq!(tagged.ok()["TagResources"]["TagResource"], json!([]));
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &first)],
    )
    .await
    .ok();
    let made = s.rcall("CreateTrafficMirrorFilter", &create).await;
    let third = made.ok()["TrafficMirrorFilterId"].as_str().unwrap();
    // The same token answers the same again, without counting against the quota.
    let again = s.rcall("CreateTrafficMirrorFilter", &create).await;
    assert_eq!(again.ok()["TrafficMirrorFilterId"], third);
    s.rcall(
        "CreateTrafficMirrorFilter",
        &[("TrafficMirrorFilterName", "fourth")],
    )
    .await
    .err(400, "QuotaExceeded.FilterNum");
    let list = s.rcall("ListTrafficMirrorFilters", &[]).await;
    assert_eq!(total(list.ok()), "2");
}

#[tokio::test]
async fn aliyun_sessions_stop_at_the_project_quota() {
    let s = aliyun_small_quotas().await;
    let filter = s.filter().await;
    let target = s.port("10.5.0.9").await;
    let source = s.port("10.5.0.1").await;
    let create = |priority: &'static str| {
        vec![
            ("TrafficMirrorFilterId".to_owned(), filter.clone()),
            ("TrafficMirrorSourceIds.1".to_owned(), source.clone()),
            ("TrafficMirrorTargetId".to_owned(), target.clone()),
            (
                "TrafficMirrorTargetType".to_owned(),
                "NetworkInterface".to_owned(),
            ),
            ("Priority".to_owned(), priority.to_owned()),
            ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
        ]
    };
    let send = |params| {
        s.send(
            Scheme::Acs3,
            "CreateTrafficMirrorSession",
            params,
            Tweak::default(),
        )
    };
    let first = send(create("1")).await.ok()["TrafficMirrorSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    send(create("2")).await.ok();
    let refused = send(create("3")).await;
    refused.err(400, "QuotaExceeded.SessionNum");
    assert_eq!(
        refused.body["Message"],
        "Quota exceeded: at most 2 traffic mirror sessions per project."
    );
    assert_eq!(total(&s.sessions(&[]).await), "2");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &first)],
    )
    .await
    .ok();
    send(create("3")).await.ok();
    send(create("4")).await.err(400, "QuotaExceeded.SessionNum");
    assert_eq!(total(&s.sessions(&[]).await), "2");
}
