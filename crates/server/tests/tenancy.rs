//! Tenancy as the faces show it (issue 12), with projects and credentials made through the
//! admin API:
//!
//! - another project's resources are answered exactly as ids nobody holds, through both faces:
//!   read, written or referred to, and never listed; ClientTokens are per project;
//! - a reader key does every read operation of both faces and no write (DryRun and ClientToken
//!   replays included), and changes nothing;
//! - members set no host binding, claim no other project's network, address or interface; the
//!   operator binds a tenant's port through the admin API.

mod common;
#[path = "aliyun_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{id, Api, Reply, TestServer};
use serde_json::{json, Value};
use support::{p, Answer, Scheme, Srv, Tweak};

/// Placeholders and the other project's ids they stand for: `[("{s}", session), ...]`.
type Foreign<'a> = &'a [(&'a str, &'a str)];

/// Alibaba parameters.
type Params<'a> = Vec<(&'a str, &'a str)>;

/// A test `name(&TestServer)` run twice, as the module `name`: `sqlite` on a server of its own,
/// and `postgres` on a server on a fresh PostgreSQL database (`TMIRROR_TEST_DATABASE_URL`;
/// without it the test says it was skipped).
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let server = TestServer::start().await;
                super::$name(&server).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some((servers, _db)) =
                    common::pg_servers(concat!(stringify!($name), "::postgres"), 1).await
                else {
                    return;
                };
                super::$name(&servers[0]).await;
            }
        }
    };
}

/// The Alibaba face's client of `server`'s operator.
fn operator(server: &TestServer) -> Srv {
    let c = &server.creds;
    Srv::client_at(server.addr, &c.access_key, &c.secret_key, &c.project_id)
}

// ---- Huawei face ---------------------------------------------------------------------------

/// What an answer shows a client: its status and its body without the request id, with each
/// of `ids` written as `<id>`.
fn seen(reply: Reply, ids: &[&str]) -> (u16, String) {
    let mut body = reply.body;
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    let mut text = body.to_string();
    for i in ids {
        text = text.replace(i, "<id>");
    }
    (reply.status, text)
}

/// Sends `method path body` as `api`, with each placeholder of `foreign` (`{s}`, `{f}`, ...)
/// replaced by another project's id, then with fresh UUIDs instead; asserts both answers are
/// the same (status, code and message, modulo the ids) and returns the first.
async fn as_unknown(
    api: &Api,
    method: &str,
    path: &str,
    body: Option<&str>,
    foreign: &[(&str, &str)],
) -> (u16, String) {
    let unknown: Vec<String> = foreign
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let fill = |ids: &[&str]| {
        let (mut path, mut body) = (path.to_owned(), body.map(str::to_owned));
        for ((placeholder, _), id) in foreign.iter().zip(ids) {
            path = path.replace(placeholder, id);
            body = body.map(|b| b.replace(placeholder, id));
        }
        let body = body.map(|b| serde_json::from_str::<Value>(&b).expect("a JSON body"));
        (path, body)
    };
    let theirs: Vec<&str> = foreign.iter().map(|(_, id)| *id).collect();
    let (p1, b1) = fill(&theirs);
    let got = seen(api.call(method, &p1, b1.as_ref()).await, &theirs);
    let nobodys: Vec<&str> = unknown.iter().map(String::as_str).collect();
    let (p2, b2) = fill(&nobodys);
    let want = seen(api.call(method, &p2, b2.as_ref()).await, &nobodys);
    assert_eq!(
        got, want,
        "{method} {path} {body:?}: another project's id is answered unlike an unknown one"
    );
    got
}

/// Everything a Huawei client of a project sees: its four lists, without request ids.
async fn huawei_snapshot(api: &Api) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        api.v3("traffic-mirror-sessions"),
        api.v3("traffic-mirror-filters"),
        api.v3("traffic-mirror-filter-rules"),
        api.v1("ports"),
        api.v1("publicips"),
    ] {
        let mut body = api.get(&path).await.ok(200);
        body.as_object_mut().unwrap().remove("request_id");
        all.push(body);
    }
    all
}

/// The ids of a Huawei list.
fn listed(body: &Value, key: &str) -> BTreeSet<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .iter()
        .map(id)
        .collect()
}

/// A port of `api`'s project in `network` with `ip`; the raw reply.
async fn port_in(api: &Api, network: &str, ip: &str, extra: Value) -> Reply {
    let mut port = json!({"network_id": network, "fixed_ips": [{"ip_address": ip}]});
    port.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    api.call("POST", &api.v1("ports"), Some(&json!({ "port": port })))
        .await
}

/// A project's resources for the cross-project tests: a session with one source, a spare
/// port, a filter with a rule.
struct Held {
    session: String,
    source: String,
    target: String,
    spare: String,
    filter: String,
    rule: String,
}

async fn hold(api: &Api, net: u8, priority: u32) -> Held {
    let source = id(&api.port(&format!("10.{net}.0.1")).await);
    let target = id(&api.port(&format!("10.{net}.0.2")).await);
    let spare = id(&api.port(&format!("10.{net}.0.3")).await);
    let filter = id(&api.filter("f").await);
    let rule = id(&api
        .rule(
            json!({"traffic_mirror_filter_id": filter, "direction": "ingress", "protocol": "tcp",
                     "ethertype": "IPv4", "action": "accept", "priority": 1}),
        )
        .await
        .ok(201)["traffic_mirror_filter_rule"]);
    let session = id(&api
        .session(json!({"name": "s", "traffic_mirror_filter_id": filter,
                        "traffic_mirror_sources": [source], "traffic_mirror_target_id": target,
                        "traffic_mirror_target_type": "eni", "priority": priority}))
        .await
        .ok(201)["traffic_mirror_session"]);
    Held {
        session,
        source,
        target,
        spare,
        filter,
        rule,
    }
}

on_both_backends!(huawei_another_projects_ids_are_answered_as_unknown_ones);
async fn huawei_another_projects_ids_are_answered_as_unknown_ones(server: &TestServer) {
    let op = server.client();
    let a = op.tenant("a", "member").await;
    let b = op.tenant("b", "member").await;
    let theirs = hold(&b, 20, 1).await;
    let mine = hold(&a, 10, 1).await;
    let (b_before, a_before) = (huawei_snapshot(&b).await, huawei_snapshot(&a).await);

    let s = [("{s}", theirs.session.as_str())];
    let f = [("{f}", theirs.filter.as_str())];
    let r = [("{r}", theirs.rule.as_str())];
    let src = [("{p}", theirs.source.as_str())];
    let tgt = [("{p}", theirs.target.as_str())];
    let mine_s = a.v3(&format!("traffic-mirror-sessions/{}", mine.session));
    let session_body = |filter: &str, source: &str, target: &str| {
        format!(
            r#"{{"traffic_mirror_session": {{"name": "s2", "traffic_mirror_filter_id": "{filter}",
                "traffic_mirror_sources": ["{source}"], "traffic_mirror_target_id": "{target}",
                "traffic_mirror_target_type": "eni", "priority": 7}}}}"#
        )
    };
    let sources = r#"{"traffic_mirror_session": {"traffic_mirror_sources": ["{p}"]}}"#;
    let a_sources = sources.replace("{p}", &mine.spare);
    #[rustfmt::skip]
    let refused: Vec<(&str, &str, String, Option<String>, Foreign<'_>)> = vec![
        // B's session, filter, rule and port, named in the path.
        ("VPC.1701", "GET", a.v3("traffic-mirror-sessions/{s}"), None, &s),
        ("VPC.1701", "PUT", a.v3("traffic-mirror-sessions/{s}"), Some(r#"{"traffic_mirror_session": {"name": "taken"}}"#.into()), &s),
        ("VPC.1701", "DELETE", a.v3("traffic-mirror-sessions/{s}"), None, &s),
        ("VPC.1701", "PUT", a.v3("traffic-mirror-sessions/{s}/add-sources"), Some(a_sources.clone()), &s),
        ("VPC.1701", "PUT", a.v3("traffic-mirror-sessions/{s}/remove-sources"), Some(a_sources.clone()), &s),
        ("VPC.1702", "GET", a.v3("traffic-mirror-filters/{f}"), None, &f),
        ("VPC.1702", "PUT", a.v3("traffic-mirror-filters/{f}"), Some(r#"{"traffic_mirror_filter": {"name": "taken"}}"#.into()), &f),
        ("VPC.1702", "DELETE", a.v3("traffic-mirror-filters/{f}"), None, &f),
        ("VPC.1703", "GET", a.v3("traffic-mirror-filter-rules/{r}"), None, &r),
        ("VPC.1703", "PUT", a.v3("traffic-mirror-filter-rules/{r}"), Some(r#"{"traffic_mirror_filter_rule": {"action": "reject"}}"#.into()), &r),
        ("VPC.1703", "DELETE", a.v3("traffic-mirror-filter-rules/{r}"), None, &r),
        ("VPC.1704", "GET", a.v1("ports/{p}"), None, &src),
        ("VPC.1704", "PUT", a.v1("ports/{p}"), Some(r#"{"port": {"name": "taken"}}"#.into()), &src),
        ("VPC.1704", "DELETE", a.v1("ports/{p}"), None, &src),
        // B's resources referred to by A's requests.
        ("VPC.1702", "POST", a.v3("traffic-mirror-filter-rules"), Some(r#"{"traffic_mirror_filter_rule": {"traffic_mirror_filter_id": "{f}",
            "direction": "egress", "protocol": "tcp", "ethertype": "IPv4", "action": "accept", "priority": 2}}"#.into()), &f),
        ("VPC.1702", "POST", a.v3("traffic-mirror-sessions"), Some(session_body("{f}", &mine.spare, &mine.target)), &f),
        ("VPC.1704", "POST", a.v3("traffic-mirror-sessions"), Some(session_body(&mine.filter, "{p}", &mine.target)), &src),
        ("VPC.1704", "POST", a.v3("traffic-mirror-sessions"), Some(session_body(&mine.filter, &mine.spare, "{p}")), &tgt),
        ("VPC.1702", "PUT", mine_s.clone(), Some(r#"{"traffic_mirror_session": {"traffic_mirror_filter_id": "{f}"}}"#.into()), &f),
        ("VPC.1704", "PUT", mine_s.clone(), Some(r#"{"traffic_mirror_session": {"traffic_mirror_target_id": "{p}"}}"#.into()), &tgt),
        ("VPC.1704", "PUT", format!("{mine_s}/add-sources"), Some(sources.into()), &src),
        ("VPC.1712", "PUT", format!("{mine_s}/remove-sources"), Some(sources.into()), &src),
        // B's ids as list markers.
        ("VPC.0101", "GET", a.v3("traffic-mirror-sessions?marker={s}"), None, &s),
        ("VPC.0101", "GET", a.v3("traffic-mirror-filters?marker={f}"), None, &f),
        ("VPC.0101", "GET", a.v3("traffic-mirror-filter-rules?marker={r}"), None, &r),
        ("VPC.0101", "GET", a.v1("ports?marker={p}"), None, &src),
    ];
    for (code, method, path, body, foreign) in &refused {
        let (status, shown) = as_unknown(&a, method, path, body.as_deref(), foreign).await;
        assert!(
            status >= 400 && shown.contains(&format!("\"{code}\"")),
            "{method} {path}: expected {code}, got {status} {shown}"
        );
    }

    // Lists filtered by B's ids are empty, as for ids nobody holds.
    #[rustfmt::skip]
    let empty: Vec<(String, &str, Foreign<'_>)> = vec![
        (a.v3("traffic-mirror-sessions?id={s}"), "traffic_mirror_sessions", &s),
        (a.v3("traffic-mirror-sessions?traffic_mirror_filter_id={f}"), "traffic_mirror_sessions", &f),
        (a.v3("traffic-mirror-sessions?traffic_mirror_target_id={p}"), "traffic_mirror_sessions", &tgt),
        (a.v3("traffic-mirror-filters?id={f}"), "traffic_mirror_filters", &f),
        (a.v3("traffic-mirror-filter-rules?id={r}"), "traffic_mirror_filter_rules", &r),
        (a.v3("traffic-mirror-filter-rules?traffic_mirror_filter_id={f}"), "traffic_mirror_filter_rules", &f),
        (a.v1("ports?id={p}"), "ports", &src),
    ];
    for (path, key, foreign) in &empty {
        let (status, shown) = as_unknown(&a, "GET", path, None, foreign).await;
        assert_eq!(status, 200, "GET {path}: {shown}");
        let body: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(body[key], json!([]), "GET {path}");
    }

    // A's lists show A's resources only.
    let [sessions, filters, rules, ports, eips] = &huawei_snapshot(&a).await[..] else {
        unreachable!()
    };
    assert_eq!(eips["publicips"], json!([]));
    assert_eq!(
        listed(sessions, "traffic_mirror_sessions"),
        BTreeSet::from([mine.session.clone()])
    );
    assert_eq!(
        listed(filters, "traffic_mirror_filters"),
        BTreeSet::from([mine.filter.clone()])
    );
    assert_eq!(
        listed(rules, "traffic_mirror_filter_rules"),
        BTreeSet::from([mine.rule.clone()])
    );
    assert_eq!(
        listed(ports, "ports"),
        BTreeSet::from([mine.source.clone(), mine.target.clone(), mine.spare.clone()])
    );

    // A's key on B's path: refused before anything is looked up, for B's ids and others alike.
    let on_b = format!("/v3/{}/vpc/traffic-mirror-sessions", b.creds.project_id);
    let known = seen(
        a.get(&format!("{on_b}/{}", theirs.session)).await,
        &[&theirs.session],
    );
    let fresh = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        known,
        seen(a.get(&format!("{on_b}/{fresh}")).await, &[&fresh])
    );
    assert_eq!(known.0, 403);
    assert!(known.1.contains("VPC.0007"), "{known:?}");

    // Nothing of either project changed.
    assert_eq!(huawei_snapshot(&b).await, b_before);
    assert_eq!(huawei_snapshot(&a).await, a_before);
}

/// Every operation of the Huawei face as its router documents it (`/openapi.json`):
/// `(method, path template, operation id)`.
async fn huawei_operations(server: &TestServer) -> Vec<(String, String, String)> {
    let doc: Value = reqwest::get(format!("http://{}/openapi.json", server.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            if let Some(op_id) = op["operationId"].as_str() {
                ops.push((method.to_uppercase(), path.clone(), op_id.to_owned()));
            }
        }
    }
    ops
}

on_both_backends!(huawei_a_reader_reads_everything_and_writes_nothing);
async fn huawei_a_reader_reads_everything_and_writes_nothing(server: &TestServer) {
    let op = server.client();
    let project = op.admin_project("readers").await;
    let member = op.admin_credential(&project, "member").await;
    let reader = op.admin_credential(&project, "reader").await;
    let held = hold(&member, 30, 1).await;
    // An elastic IP, from a pool of the operator's.
    let pool = json!({"cidrs": ["198.51.100.0/24"]});
    op.call("PUT", "/admin/v1/eip-pools/readers_bgp", Some(&pool))
        .await
        .ok(200);
    let eip = json!({"publicip": {"type": "readers_bgp"},
                     "bandwidth": {"name": "bw", "size": 1, "share_type": "PER"}});
    let held_eip = id(&member
        .call("POST", &member.v1("publicips"), Some(&eip))
        .await
        .ok(200)["publicip"]);
    let before = huawei_snapshot(&member).await;

    let session = json!({"traffic_mirror_session": {"name": "s2", "traffic_mirror_filter_id": held.filter,
        "traffic_mirror_sources": [held.spare], "traffic_mirror_target_id": held.target,
        "traffic_mirror_target_type": "eni", "priority": 2}});
    let sources = json!({"traffic_mirror_session": {"traffic_mirror_sources": [held.spare]}});
    // A body a member would be answered with success for, per write operation.
    let bodies: BTreeMap<&str, Option<Value>> = BTreeMap::from([
        (
            "create_port",
            Some(
                json!({"port": {"network_id": format!("net-{}", &project[..8]),
                                             "fixed_ips": [{"ip_address": "10.30.0.9"}]}}),
            ),
        ),
        ("update_port", Some(json!({"port": {"name": "renamed"}}))),
        ("delete_port", None),
        (
            "create_traffic_mirror_filter_rule",
            Some(json!({"traffic_mirror_filter_rule": {
            "traffic_mirror_filter_id": held.filter, "direction": "egress", "protocol": "tcp",
            "ethertype": "IPv4", "action": "accept", "priority": 2}})),
        ),
        (
            "update_traffic_mirror_filter_rule",
            Some(json!({"traffic_mirror_filter_rule": {"action": "reject"}})),
        ),
        ("delete_traffic_mirror_filter_rule", None),
        (
            "create_traffic_mirror_filter",
            Some(json!({"traffic_mirror_filter": {"name": "new"}})),
        ),
        (
            "update_traffic_mirror_filter",
            Some(json!({"traffic_mirror_filter": {"name": "renamed"}})),
        ),
        ("delete_traffic_mirror_filter", None),
        ("create_traffic_mirror_session", Some(session)),
        (
            "update_traffic_mirror_session",
            Some(json!({"traffic_mirror_session": {"name": "renamed"}})),
        ),
        ("delete_traffic_mirror_session", None),
        (
            "add_sources_to_traffic_mirror_session",
            Some(sources.clone()),
        ),
        (
            "remove_sources_from_traffic_mirror_session",
            Some(json!({"traffic_mirror_session": {"traffic_mirror_sources": [held.source]}})),
        ),
        ("create_publicip", Some(eip)),
        (
            "update_publicip",
            Some(json!({"publicip": {"port_id": held.spare}})),
        ),
        ("delete_publicip", None),
    ]);

    let (mut reads, mut writes) = (BTreeSet::new(), BTreeSet::new());
    for (method, template, op_id) in huawei_operations(server).await {
        let path = template
            .replace("{project_id}", &project)
            .replace("{traffic_mirror_session_id}", &held.session)
            .replace("{traffic_mirror_filter_id}", &held.filter)
            .replace("{traffic_mirror_filter_rule_id}", &held.rule)
            .replace("{port_id}", &held.source)
            .replace("{publicip_id}", &held_eip);
        assert!(
            !path.contains('{'),
            "{template}: a path parameter this test does not know"
        );
        if method == "GET" {
            let (mut by_reader, mut by_member) = (
                reader.get(&path).await.ok(200),
                member.get(&path).await.ok(200),
            );
            for b in [&mut by_reader, &mut by_member] {
                b.as_object_mut().unwrap().remove("request_id");
            }
            assert_eq!(
                by_reader, by_member,
                "{op_id}: the reader sees what the member sees"
            );
            reads.insert(op_id);
            continue;
        }
        let body = bodies.get(op_id.as_str()).unwrap_or_else(|| {
            panic!("{method} {template} ({op_id}): a write this test does not know")
        });
        let e = reader
            .call(&method, &path, body.as_ref())
            .await
            .err(403, "VPC.0010");
        let msg = e["error_msg"].as_str().or(e["message"].as_str()).unwrap();
        assert!(msg.contains("reader"), "{op_id}: {e}");
        writes.insert(op_id);
    }
    assert_eq!(
        reads.len(),
        10,
        "list and show of sessions, filters, rules, ports and elastic IPs: {reads:?}"
    );
    assert_eq!(
        writes,
        bodies.keys().map(|k| k.to_string()).collect(),
        "every write operation of the face was tried"
    );

    // Reads with their query parameters work too.
    for path in [
        reader.v3(&format!(
            "traffic-mirror-sessions?traffic_mirror_filter_id={}&limit=1",
            held.filter
        )),
        reader.v3(&format!(
            "traffic-mirror-filter-rules?traffic_mirror_filter_id={}",
            held.filter
        )),
        reader.v1(&format!("ports?limit=2&network_id=net-{}", &project[..8])),
    ] {
        reader.get(&path).await.ok(200);
    }
    // The reader may not bind either (the operator's own API is not a reader's).
    reader
        .call(
            "PUT",
            &format!("/admin/v1/ports/{}/binding", held.source),
            Some(&json!({"host_id": "h1", "interface_name": "tap0"})),
        )
        .await
        .err(403, "Forbidden");
    assert_eq!(
        huawei_snapshot(&member).await,
        before,
        "the reader changed nothing"
    );
    assert_eq!(
        huawei_snapshot(&reader).await,
        before,
        "the reader sees what the member sees"
    );
}

/// The operator's `PUT /admin/v1/ports/{id}/binding`.
async fn bind(op: &Api, port: &str, host: &str, interface: &str) -> Reply {
    op.call(
        "PUT",
        &format!("/admin/v1/ports/{port}/binding"),
        Some(&json!({"host_id": host, "interface_name": interface, "capture_side": "host"})),
    )
    .await
}

on_both_backends!(huawei_members_set_no_binding_and_claim_nothing_of_another_project);
async fn huawei_members_set_no_binding_and_claim_nothing_of_another_project(server: &TestServer) {
    let op = server.client();
    let a = op.tenant("a", "member").await;
    let b = op.tenant("b", "member").await;
    let project_a = a.creds.project_id.clone();
    let a_admin = op.admin_credential(&project_a, "admin").await;
    let net_a = format!("net-{}", &project_a[..8]);
    let net_b = format!("net-{}", &b.creds.project_id[..8]);

    // No binding on create, by a member or a project's admin: 403, and no port is made.
    for who in [&a, &a_admin] {
        for binding in [
            json!({"binding:host_id": "host-1"}),
            json!({"binding:profile": {"interface_name": "tap0"}}),
            json!({"binding:host_id": "host-1", "binding:profile": {"interface_name": "tap0", "capture_side": "guest"}}),
        ] {
            let e = port_in(who, &net_a, "10.40.0.1", binding.clone())
                .await
                .err(403, "VPC.0010");
            assert!(e["message"].as_str().unwrap().contains("binding"), "{e}");
        }
    }
    assert_eq!(
        listed(&a.get(&a.v1("ports")).await.ok(200), "ports").len(),
        0
    );

    // Nor on update; the port is left as it was.
    let pa = id(&port_in(&a, &net_a, "10.40.0.1", json!({})).await.ok(201)["port"]);
    let before = a.get(&a.v1(&format!("ports/{pa}"))).await.ok(200)["port"].clone();
    for binding in [
        json!({"binding:host_id": "host-1"}),
        json!({"binding:host_id": ""}),
        json!({"binding:profile": {"interface_name": "tap0"}}),
        json!({"name": "renamed", "binding:profile": {"capture_side": "guest"}}),
    ] {
        a.call(
            "PUT",
            &a.v1(&format!("ports/{pa}")),
            Some(&json!({ "port": binding })),
        )
        .await
        .err(403, "VPC.0010");
    }
    assert_eq!(
        a.get(&a.v1(&format!("ports/{pa}"))).await.ok(200)["port"],
        before
    );

    // The operator binds the tenant's port through the admin API; the tenant sees it bound,
    // and its own changes keep the binding.
    let bound = bind(&op, &pa, "host-1", "tap0").await.ok(200);
    assert_eq!(bound["port"]["project_id"], json!(project_a));
    assert_eq!(bound["port"]["host_id"], "host-1");
    let shown = a.get(&a.v1(&format!("ports/{pa}"))).await.ok(200)["port"].clone();
    assert_eq!(shown["binding:host_id"], "host-1");
    assert_eq!(shown["binding:profile"]["interface_name"], "tap0");
    assert_eq!(shown["status"], "ACTIVE");
    let renamed = a
        .call(
            "PUT",
            &a.v1(&format!("ports/{pa}")),
            Some(&json!({"port": {"name": "renamed"}})),
        )
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(renamed["binding:host_id"], "host-1");
    // Members and admins do not reach the operator's binding call.
    for who in [&a, &a_admin] {
        bind(who, &pa, "host-2", "tap9").await.err(403, "Forbidden");
    }
    bind(&op, &uuid::Uuid::new_v4().to_string(), "host-1", "tap5")
        .await
        .err(404, "NotFound");

    // One host interface, one port: another project's port cannot have it, on that host or
    // unbound; on another host the same name is another interface.
    let pb = id(&port_in(&b, &net_b, "10.41.0.1", json!({})).await.ok(201)["port"]);
    bind(&op, &pb, "host-1", "tap0").await.err(409, "Conflict");
    bind(&op, &pb, "", "tap0").await.err(409, "Conflict");
    bind(&op, &pb, "host-2", "tap0").await.ok(200);
    let unbound = op
        .call(
            "PUT",
            &format!("/admin/v1/ports/{pb}/binding"),
            Some(&json!({})),
        )
        .await
        .ok(200);
    assert_eq!(unbound["port"]["host_id"], "");

    // Networks: A's is A's (first use), B's port cannot go there; the operator's network for
    // A with CIDRs keeps its addresses out of B's own networks.
    let e = port_in(&b, &net_a, "10.40.0.50", json!({}))
        .await
        .err(400, "VPC.0101");
    assert!(e["message"].as_str().unwrap().contains("network_id"), "{e}");
    op.call(
        "POST",
        "/admin/v1/networks",
        Some(&json!({"id": "net-a-cidr", "project_id": project_a, "cidrs": ["10.42.0.0/24"]})),
    )
    .await
    .ok(201);
    port_in(&b, "net-a-cidr", "10.42.0.5", json!({}))
        .await
        .err(400, "VPC.0101");
    let e = port_in(&b, &net_b, "10.42.0.5", json!({}))
        .await
        .err(400, "VPC.0101");
    assert!(e["message"].as_str().unwrap().contains("fixed_ips"), "{e}");
    port_in(&a, "net-a-cidr", "10.42.0.5", json!({}))
        .await
        .ok(201);
    port_in(&a, "net-a-cidr", "10.43.0.5", json!({}))
        .await
        .err(400, "VPC.0101");

    // Addresses: an IP a port of A holds is refused to B in any network, and to a second port
    // of the same network; another of A's own networks may reuse it.
    let e = port_in(&b, &net_b, "10.40.0.1", json!({}))
        .await
        .err(409, "VPC.1711");
    assert!(e["message"].as_str().unwrap().contains("10.40.0.1"), "{e}");
    port_in(&a, &net_a, "10.40.0.1", json!({}))
        .await
        .err(409, "VPC.1711");
    port_in(&a, "net-a-second", "10.40.0.1", json!({}))
        .await
        .ok(201);
    // A shared network: both may use it, an address once.
    op.call(
        "POST",
        "/admin/v1/networks",
        Some(&json!({"id": "net-shared", "shared": true, "cidrs": ["10.44.0.0/24"]})),
    )
    .await
    .ok(201);
    let shared_b = id(&port_in(&b, "net-shared", "10.44.0.1", json!({}))
        .await
        .ok(201)["port"]);
    port_in(&a, "net-shared", "10.44.0.1", json!({}))
        .await
        .err(409, "VPC.1711");
    port_in(&a, "net-shared", "10.44.0.2", json!({}))
        .await
        .ok(201);

    // No session of A mirrors to (or from) B's port: unknown to A.
    let filter = id(&a.filter("f").await);
    let e = a
        .session(
            json!({"name": "s", "traffic_mirror_filter_id": filter, "traffic_mirror_sources": [pa],
                        "traffic_mirror_target_id": shared_b, "traffic_mirror_target_type": "eni",
                        "priority": 1}),
        )
        .await
        .err(404, "VPC.1704");
    assert!(e["error_msg"].as_str().unwrap().contains(&shared_b), "{e}");
    // The operator binds, but refers to a tenant's ports only through the admin API: in its
    // own project, B's port is unknown too.
    op.get(&op.v1(&format!("ports/{shared_b}")))
        .await
        .err(404, "VPC.1704");
}

// ---- Alibaba face --------------------------------------------------------------------------

/// What an Alibaba answer shows a client: its status and body without the request id (which
/// `Recommend` carries too), with each of `ids` written as `<id>`.
fn ali_seen(answer: Answer, ids: &[&str]) -> (u16, String) {
    let mut body = answer.body;
    if let Some(o) = body.as_object_mut() {
        o.remove("RequestId");
        o.remove("Recommend");
    }
    let mut text = body.to_string();
    for i in ids {
        text = text.replace(i, "<id>");
    }
    (answer.status, text)
}

/// An id of the same kind (`tms-`, `tmf-`, `tmr-`, `eni-`) that nobody holds.
fn unknown_like(id: &str) -> String {
    let (prefix, _) = id.split_once('-').unwrap();
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `action` with `params` (and `RegionId`) as `client`, with each placeholder of `foreign`
/// replaced by another project's id, then by unknown ids of the same kinds; asserts both
/// answers are the same, modulo the ids, and returns the first.
async fn ali_as_unknown(
    client: &Srv,
    action: &str,
    params: &[(&str, &str)],
    foreign: &[(&str, &str)],
) -> (u16, String) {
    let unknown: Vec<String> = foreign.iter().map(|(_, id)| unknown_like(id)).collect();
    let call = |ids: Vec<String>| {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| {
                let mut v = v.to_string();
                for ((placeholder, _), id) in foreign.iter().zip(&ids) {
                    v = v.replace(placeholder, id);
                }
                (k.to_string(), v)
            })
            .chain([("RegionId".to_string(), "cn-hangzhou".to_string())])
            .collect();
        client.send(Scheme::Acs3, action, params, Tweak::default())
    };
    let theirs: Vec<&str> = foreign.iter().map(|(_, id)| *id).collect();
    let got = ali_seen(
        call(theirs.iter().map(|s| s.to_string()).collect()).await,
        &theirs,
    );
    let nobodys: Vec<&str> = unknown.iter().map(String::as_str).collect();
    let want = ali_seen(call(unknown.clone()).await, &nobodys);
    assert_eq!(
        got, want,
        "{action} {params:?}: another project's id is answered unlike an unknown one"
    );
    got
}

/// Everything an Alibaba client of a project sees: its sessions and filters (with rules,
/// tags and groups) and the tags of `ids`.
async fn ali_snapshot(c: &Srv, tagged: &[(&str, &str)]) -> Vec<Value> {
    let mut all = Vec::new();
    let mut calls = vec![
        ("ListTrafficMirrorSessions", p(&[("MaxResults", "100")])),
        ("ListTrafficMirrorFilters", p(&[("MaxResults", "100")])),
    ];
    for (kind, id) in tagged {
        calls.push((
            "ListTagResources",
            p(&[("ResourceType", kind), ("ResourceId.1", id)]),
        ));
    }
    for (action, mut params) in calls {
        params.push(("RegionId".into(), "cn-hangzhou".into()));
        let a = c.send(Scheme::Acs3, action, params, Tweak::default()).await;
        let mut body = a.ok().clone();
        body.as_object_mut().unwrap().remove("RequestId");
        all.push(body);
    }
    all
}

fn ali_ids(list: &Value, key: &str, id_key: &str) -> BTreeSet<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|v| v[id_key].as_str().unwrap().to_owned())
        .collect()
}

/// The ids of the filters `c` lists.
async fn ali_filters(c: &Srv) -> BTreeSet<String> {
    let list = c
        .rcall("ListTrafficMirrorFilters", &[("MaxResults", "100")])
        .await;
    ali_ids(list.ok(), "TrafficMirrorFilters", "TrafficMirrorFilterId")
}

/// A project's resources through the Alibaba face: a tagged session in a resource group, its
/// filter (tagged) with a rule, and a spare port.
struct AliHeld {
    session: String,
    source: String,
    target: String,
    filter: String,
    rule: String,
    spare: String,
}

async fn ali_hold(c: &Srv, priority: &str) -> AliHeld {
    c.call("OpenTrafficMirrorService", &[]).await.ok();
    let (session, source, target, filter) = c.session(priority).await;
    let n: u32 = priority.parse().unwrap();
    let spare = c.port(&format!("10.3.{}.1", n % 250)).await;
    let rule = c
        .rcall(
            "CreateTrafficMirrorFilterRules",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("IngressRules.1.Action", "accept"),
                ("IngressRules.1.Protocol", "TCP"),
                ("IngressRules.1.Priority", "1"),
            ],
        )
        .await
        .ok()["IngressRules"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    for (kind, id) in [
        ("TRAFFICMIRRORSESSION", &session),
        ("TRAFFICMIRRORFILTER", &filter),
    ] {
        c.rcall(
            "TagResources",
            &[
                ("ResourceType", kind),
                ("ResourceId.1", id),
                ("Tag.1.Key", "team"),
                ("Tag.1.Value", "x"),
            ],
        )
        .await
        .ok();
    }
    c.rcall(
        "MoveResourceGroup",
        &[
            ("ResourceType", "TRAFFICMIRRORSESSION"),
            ("ResourceId", &session),
            ("NewResourceGroupId", "rg-held"),
        ],
    )
    .await
    .ok();
    AliHeld {
        session,
        source,
        target,
        filter,
        rule,
        spare,
    }
}

on_both_backends!(aliyun_another_projects_ids_are_answered_as_unknown_ones);
async fn aliyun_another_projects_ids_are_answered_as_unknown_ones(server: &TestServer) {
    let srv = operator(server);
    let a = srv.tenant("a", "member").await;
    let b = srv.tenant("b", "member").await;
    let theirs = ali_hold(&b, "1").await;
    let mine = ali_hold(&a, "2").await;
    let tagged = |h: &AliHeld| {
        vec![
            ("TRAFFICMIRRORSESSION", h.session.clone()),
            ("TRAFFICMIRRORFILTER", h.filter.clone()),
        ]
    };
    let (b_tagged, a_tagged) = (tagged(&theirs), tagged(&mine));
    let b_tags: Vec<(&str, &str)> = b_tagged.iter().map(|(k, i)| (*k, i.as_str())).collect();
    let a_tags: Vec<(&str, &str)> = a_tagged.iter().map(|(k, i)| (*k, i.as_str())).collect();
    let b_before = ali_snapshot(&b, &b_tags).await;
    let a_before = ali_snapshot(&a, &a_tags).await;

    let s = [("{s}", theirs.session.as_str())];
    let f = [("{f}", theirs.filter.as_str())];
    let r = [("{r}", theirs.rule.as_str())];
    let fr = [
        ("{f}", theirs.filter.as_str()),
        ("{r}", theirs.rule.as_str()),
    ];
    let src = [("{p}", theirs.source.as_str())];
    let tgt = [("{p}", theirs.target.as_str())];
    let (ms, mf, mspare, mtgt) = (
        mine.session.as_str(),
        mine.filter.as_str(),
        mine.spare.as_str(),
        mine.target.as_str(),
    );
    #[rustfmt::skip]
    let refused: Vec<(&str, &str, Params<'_>, Foreign<'_>)> = vec![
        // B's session.
        ("ResourceNotFound.TrafficMirrorSession", "UpdateTrafficMirrorSessionAttribute", vec![("TrafficMirrorSessionId", "{s}"), ("TrafficMirrorSessionName", "taken")], &s),
        ("ResourceNotFound.TrafficMirrorSession", "UpdateTrafficMirrorSessionAttribute", vec![("TrafficMirrorSessionId", "{s}"), ("Enabled", "true"), ("DryRun", "true")], &s),
        ("ResourceNotFound.TrafficMirrorSession", "DeleteTrafficMirrorSession", vec![("TrafficMirrorSessionId", "{s}")], &s),
        ("ResourceNotFound.TrafficMirrorSession", "DeleteTrafficMirrorSession", vec![("TrafficMirrorSessionId", "{s}"), ("DryRun", "true")], &s),
        ("ResourceNotFound.TrafficMirrorSession", "AddSourcesToTrafficMirrorSession", vec![("TrafficMirrorSessionId", "{s}"), ("TrafficMirrorSourceIds.1", mspare)], &s),
        ("ResourceNotFound.TrafficMirrorSession", "RemoveSourcesFromTrafficMirrorSession", vec![("TrafficMirrorSessionId", "{s}"), ("TrafficMirrorSourceIds.1", mspare)], &s),
        // B's filter and rule.
        ("ResourceNotFound.TrafficMirrorFilter", "UpdateTrafficMirrorFilterAttribute", vec![("TrafficMirrorFilterId", "{f}"), ("TrafficMirrorFilterName", "taken")], &f),
        ("ResourceNotFound.TrafficMirrorFilter", "DeleteTrafficMirrorFilter", vec![("TrafficMirrorFilterId", "{f}")], &f),
        ("ResourceNotFound.TrafficMirrorFilter", "CreateTrafficMirrorFilterRules", vec![("TrafficMirrorFilterId", "{f}"), ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "TCP"), ("EgressRules.1.Priority", "2")], &f),
        ("ResourceNotFound.TrafficMirrorFilter", "DeleteTrafficMirrorFilterRules", vec![("TrafficMirrorFilterId", "{f}"), ("TrafficMirrorFilterRuleIds.1", "{r}")], &fr),
        ("ResourceNotFound.TrafficMirrorRule", "DeleteTrafficMirrorFilterRules", vec![("TrafficMirrorFilterId", mf), ("TrafficMirrorFilterRuleIds.1", "{r}")], &r),
        ("ResourceNotFound.TrafficMirrorRule", "UpdateTrafficMirrorFilterRuleAttribute", vec![("TrafficMirrorFilterRuleId", "{r}"), ("RuleAction", "drop")], &r),
        // B's resources referred to by A's requests.
        ("ResourceNotFound.TrafficMirrorFilter", "CreateTrafficMirrorSession", vec![("TrafficMirrorFilterId", "{f}"), ("TrafficMirrorSourceIds.1", mspare),
            ("TrafficMirrorTargetId", mtgt), ("TrafficMirrorTargetType", "NetworkInterface"), ("Priority", "9")], &f),
        ("ResourceNotFound.NetworkInterface", "CreateTrafficMirrorSession", vec![("TrafficMirrorFilterId", mf), ("TrafficMirrorSourceIds.1", "{p}"),
            ("TrafficMirrorTargetId", mtgt), ("TrafficMirrorTargetType", "NetworkInterface"), ("Priority", "9")], &src),
        ("ResourceNotFound.NetworkInterface", "CreateTrafficMirrorSession", vec![("TrafficMirrorFilterId", mf), ("TrafficMirrorSourceIds.1", mspare),
            ("TrafficMirrorTargetId", "{p}"), ("TrafficMirrorTargetType", "NetworkInterface"), ("Priority", "9")], &tgt),
        ("ResourceNotFound.TrafficMirrorFilter", "UpdateTrafficMirrorSessionAttribute", vec![("TrafficMirrorSessionId", ms), ("TrafficMirrorFilterId", "{f}")], &f),
        ("ResourceNotFound.NetworkInterface", "UpdateTrafficMirrorSessionAttribute", vec![("TrafficMirrorSessionId", ms), ("TrafficMirrorTargetId", "{p}")], &tgt),
        ("ResourceNotFound.NetworkInterface", "AddSourcesToTrafficMirrorSession", vec![("TrafficMirrorSessionId", ms), ("TrafficMirrorSourceIds.1", "{p}")], &src),
        ("OperationDenied.SourceNotInSession", "RemoveSourcesFromTrafficMirrorSession", vec![("TrafficMirrorSessionId", ms), ("TrafficMirrorSourceIds.1", "{p}")], &src),
        // Tags and resource groups of B's resources.
        ("ResourceNotFound.TrafficMirrorSession", "TagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", "{s}"), ("Tag.1.Key", "k"), ("Tag.1.Value", "v")], &s),
        ("ResourceNotFound.TrafficMirrorFilter", "TagResources", vec![("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", "{f}"), ("Tag.1.Key", "k"), ("Tag.1.Value", "v")], &f),
        ("ResourceNotFound.TrafficMirrorFilter", "TagResources", vec![("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", mf), ("ResourceId.2", "{f}"), ("Tag.1.Key", "k")], &f),
        ("ResourceNotFound.TrafficMirrorSession", "UnTagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", "{s}"), ("TagKey.1", "team")], &s),
        ("ResourceNotFound.TrafficMirrorFilter", "UnTagResources", vec![("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", "{f}"), ("All", "true")], &f),
        ("ResourceNotFound.TrafficMirrorSession", "MoveResourceGroup", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId", "{s}"), ("NewResourceGroupId", "rg-mine")], &s),
        ("ResourceNotFound.TrafficMirrorFilter", "MoveResourceGroup", vec![("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId", "{f}"), ("NewResourceGroupId", "rg-mine")], &f),
        // B's ids as list tokens.
        ("IllegalParam.NextToken", "ListTrafficMirrorSessions", vec![("NextToken", "{s}")], &s),
        ("IllegalParam.NextToken", "ListTrafficMirrorFilters", vec![("NextToken", "{f}")], &f),
    ];
    for (code, action, params, foreign) in &refused {
        let (status, shown) = ali_as_unknown(&a, action, params, foreign).await;
        assert!(
            status >= 400 && shown.contains(&format!("\"Code\":\"{code}\"")),
            "{action} {params:?}: expected {code}, got {status} {shown}"
        );
    }

    // Lists naming B's ids show nothing, as for ids nobody holds.
    #[rustfmt::skip]
    let empty: Vec<(&str, Params<'_>, Foreign<'_>)> = vec![
        ("ListTrafficMirrorSessions", vec![("TrafficMirrorSessionIds.1", "{s}")], &s),
        ("ListTrafficMirrorSessions", vec![("TrafficMirrorFilterId", "{f}")], &f),
        ("ListTrafficMirrorSessions", vec![("TrafficMirrorSourceId", "{p}")], &src),
        ("ListTrafficMirrorSessions", vec![("TrafficMirrorTargetId", "{p}")], &tgt),
        ("ListTrafficMirrorFilters", vec![("TrafficMirrorFilterIds.1", "{f}")], &f),
        ("ListTagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", "{s}")], &s),
        ("ListTagResources", vec![("ResourceType", "TRAFFICMIRRORFILTER"), ("ResourceId.1", "{f}")], &f),
    ];
    for (action, params, foreign) in &empty {
        let (status, shown) = ali_as_unknown(&a, action, params, foreign).await;
        assert_eq!(status, 200, "{action} {params:?}: {shown}");
        assert!(
            shown.contains(r#""TotalCount":"0""#) || shown.contains(r#""TagResource":[]"#),
            "{action} {params:?}: {shown}"
        );
    }

    // A's lists show A's resources only, by id, by tag and by resource group.
    let sessions = a.sessions(&[("MaxResults", "100")]).await;
    assert_eq!(
        ali_ids(&sessions, "TrafficMirrorSessions", "TrafficMirrorSessionId"),
        BTreeSet::from([mine.session.clone()])
    );
    let filters = a
        .rcall("ListTrafficMirrorFilters", &[("MaxResults", "100")])
        .await;
    assert_eq!(
        ali_ids(
            filters.ok(),
            "TrafficMirrorFilters",
            "TrafficMirrorFilterId"
        ),
        BTreeSet::from([mine.filter.clone()])
    );
    let by_group = a.sessions(&[("ResourceGroupId", "rg-held")]).await;
    assert_eq!(
        ali_ids(&by_group, "TrafficMirrorSessions", "TrafficMirrorSessionId"),
        BTreeSet::from([mine.session.clone()])
    );
    let by_tag = a
        .sessions(&[("Tags.1.Key", "team"), ("Tags.1.Value", "x")])
        .await;
    assert_eq!(
        ali_ids(&by_tag, "TrafficMirrorSessions", "TrafficMirrorSessionId"),
        BTreeSet::from([mine.session.clone()])
    );
    for kind in ["TRAFFICMIRRORSESSION", "TRAFFICMIRRORFILTER"] {
        let rows = a
            .rcall(
                "ListTagResources",
                &[("ResourceType", kind), ("Tag.1.Key", "team")],
            )
            .await;
        let shown: BTreeSet<String> = rows.ok()["TagResources"]["TagResource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["ResourceId"].as_str().unwrap().to_owned())
            .collect();
        let want = if kind == "TRAFFICMIRRORSESSION" {
            ms
        } else {
            mf
        };
        assert_eq!(shown, BTreeSet::from([want.to_owned()]), "{kind}");
    }

    // Nothing of either project changed.
    assert_eq!(ali_snapshot(&b, &b_tags).await, b_before);
    assert_eq!(ali_snapshot(&a, &a_tags).await, a_before);
}

on_both_backends!(aliyun_client_tokens_and_the_service_are_per_project);
async fn aliyun_client_tokens_and_the_service_are_per_project(server: &TestServer) {
    let srv = operator(server);
    let a = srv.tenant("a", "member").await;
    let b = srv.tenant("b", "member").await;
    let c = srv.tenant("c", "member").await;
    // Opening is per account: B's does not open A's or C's.
    b.call("OpenTrafficMirrorService", &[]).await.ok();
    for (who, open) in [(&a, false), (&b, true), (&c, false)] {
        let status = who.call("GetTrafficMirrorServiceStatus", &[]).await;
        assert_eq!(status.ok()["Enabled"], json!(open));
    }
    a.rcall("ListTrafficMirrorFilters", &[])
        .await
        .err(400, "OptInRequired.TrafficMirror");
    a.call("OpenTrafficMirrorService", &[]).await.ok();
    a.call("OpenTrafficMirrorService", &[])
        .await
        .err(400, "ORDER.OPEND");
    assert_eq!(
        c.call("GetTrafficMirrorServiceStatus", &[]).await.ok()["Enabled"],
        json!(false)
    );

    // The same ClientToken and request in two projects: each gets its own filter.
    let create = |name: &'static str| {
        [
            ("TrafficMirrorFilterName", name),
            ("ClientToken", "shared-token-1"),
        ]
    };
    let filter_of = |a: &Answer| a.ok()["TrafficMirrorFilterId"].as_str().unwrap().to_owned();
    let fb = filter_of(&b.rcall("CreateTrafficMirrorFilter", &create("f")).await);
    let fa = filter_of(&a.rcall("CreateTrafficMirrorFilter", &create("f")).await);
    assert_ne!(fa, fb, "A reusing B's token got B's answer");
    // Each replays its own, and a different request with it is each one's own mismatch.
    assert_eq!(
        filter_of(&a.rcall("CreateTrafficMirrorFilter", &create("f")).await),
        fa
    );
    assert_eq!(
        filter_of(&b.rcall("CreateTrafficMirrorFilter", &create("f")).await),
        fb
    );
    a.rcall("CreateTrafficMirrorFilter", &create("other"))
        .await
        .err(400, "IdempotentParameterMismatch");
    // A token B used for one action is fresh for another action of A.
    let (bs, ..) = b.session("1").await;
    let token = [("ClientToken", "shared-token-2")];
    let mut move_b = vec![
        ("ResourceType", "TRAFFICMIRRORSESSION"),
        ("ResourceId", bs.as_str()),
        ("NewResourceGroupId", "rg-b"),
    ];
    move_b.extend(token);
    b.rcall("MoveResourceGroup", &move_b).await.ok();
    let mut create_a = vec![("TrafficMirrorFilterName", "g")];
    create_a.extend(token);
    let fa2 = filter_of(&a.rcall("CreateTrafficMirrorFilter", &create_a).await);
    assert_ne!(fa2, fa);
    // And B's replay of its move names B's session, not anything of A's.
    b.rcall("MoveResourceGroup", &move_b).await.ok();

    assert_eq!(
        ali_filters(&a).await,
        BTreeSet::from([fa.clone(), fa2.clone()])
    );
    assert!(!ali_filters(&b).await.contains(&fa));
    assert!(ali_filters(&b).await.contains(&fb));
}

/// The actions of the Alibaba face, read from its action table (`KNOWN` in
/// `faces/aliyun/mod.rs`) and the two it answers before that table.
fn aliyun_actions() -> Vec<String> {
    let source = include_str!("../src/faces/aliyun/mod.rs");
    let table = source
        .split_once("const KNOWN: &[&str] = &[")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("the action table")
        .0;
    let mut actions: Vec<String> = table
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    for early in ["OpenTrafficMirrorService", "GetTrafficMirrorServiceStatus"] {
        assert!(
            source.contains(&format!("\"{early}\" =>")),
            "{early} is dispatched"
        );
        actions.push(early.to_owned());
    }
    actions
}

on_both_backends!(aliyun_a_reader_reads_everything_and_writes_nothing);
async fn aliyun_a_reader_reads_everything_and_writes_nothing(server: &TestServer) {
    let srv = operator(server);
    let project = srv.admin_project("readers").await;
    let member = srv.admin_credential(&project, "member").await;
    let reader = srv.admin_credential(&project, "reader").await;
    // Not open yet: the reader may not open it.
    reader
        .call("OpenTrafficMirrorService", &[])
        .await
        .err(403, "Forbidden.RAM");
    let held = ali_hold(&member, "1").await;
    let tagged = [
        ("TRAFFICMIRRORSESSION", held.session.as_str()),
        ("TRAFFICMIRRORFILTER", held.filter.as_str()),
    ];
    // A create the member made with a ClientToken: the reader gets no replay of it.
    let token = [
        ("TrafficMirrorFilterName", "tokened"),
        ("ClientToken", "reader-token"),
    ];
    member.rcall("CreateTrafficMirrorFilter", &token).await.ok();
    reader
        .rcall("CreateTrafficMirrorFilter", &token)
        .await
        .err(403, "Forbidden.RAM");
    let before = ali_snapshot(&member, &tagged).await;

    let (s, f, r) = (
        held.session.as_str(),
        held.filter.as_str(),
        held.rule.as_str(),
    );
    let (spare, source, target) = (
        held.spare.as_str(),
        held.source.as_str(),
        held.target.as_str(),
    );
    // Parameters a member would be answered with success for, per action.
    #[rustfmt::skip]
    let params: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::from([
        ("CreateTrafficMirrorSession", vec![("TrafficMirrorFilterId", f), ("TrafficMirrorSourceIds.1", spare),
            ("TrafficMirrorTargetId", target), ("TrafficMirrorTargetType", "NetworkInterface"), ("Priority", "2")]),
        ("DeleteTrafficMirrorSession", vec![("TrafficMirrorSessionId", s)]),
        ("ListTrafficMirrorSessions", vec![("TrafficMirrorSessionIds.1", s)]),
        ("UpdateTrafficMirrorSessionAttribute", vec![("TrafficMirrorSessionId", s), ("TrafficMirrorSessionName", "renamed")]),
        ("AddSourcesToTrafficMirrorSession", vec![("TrafficMirrorSessionId", s), ("TrafficMirrorSourceIds.1", spare)]),
        ("RemoveSourcesFromTrafficMirrorSession", vec![("TrafficMirrorSessionId", s), ("TrafficMirrorSourceIds.1", source)]),
        ("CreateTrafficMirrorFilter", vec![("TrafficMirrorFilterName", "new")]),
        ("DeleteTrafficMirrorFilter", vec![("TrafficMirrorFilterId", f)]),
        ("ListTrafficMirrorFilters", vec![("TrafficMirrorFilterIds.1", f)]),
        ("UpdateTrafficMirrorFilterAttribute", vec![("TrafficMirrorFilterId", f), ("TrafficMirrorFilterName", "renamed")]),
        ("CreateTrafficMirrorFilterRules", vec![("TrafficMirrorFilterId", f), ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "TCP"), ("EgressRules.1.Priority", "2")]),
        ("DeleteTrafficMirrorFilterRules", vec![("TrafficMirrorFilterId", f), ("TrafficMirrorFilterRuleIds.1", r)]),
        ("UpdateTrafficMirrorFilterRuleAttribute", vec![("TrafficMirrorFilterRuleId", r), ("RuleAction", "drop")]),
        ("TagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", s), ("Tag.1.Key", "k"), ("Tag.1.Value", "v")]),
        ("UnTagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", s), ("TagKey.1", "team")]),
        ("ListTagResources", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId.1", s)]),
        ("MoveResourceGroup", vec![("ResourceType", "TRAFFICMIRRORSESSION"), ("ResourceId", s), ("NewResourceGroupId", "rg-new")]),
        ("OpenTrafficMirrorService", vec![]),
        ("GetTrafficMirrorServiceStatus", vec![]),
    ]);

    let actions = aliyun_actions();
    assert_eq!(
        actions.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        params.keys().copied().collect(),
        "every action of the face, and only those, is tried"
    );
    let mut reads = BTreeSet::new();
    for action in &actions {
        let mut all = p(&params[action.as_str()]);
        if action != "OpenTrafficMirrorService" && action != "GetTrafficMirrorServiceStatus" {
            all.push(("RegionId".into(), "cn-hangzhou".into()));
        }
        if action.starts_with("List") || action.starts_with("Get") {
            let by_reader = reader
                .send(Scheme::Acs3, action, all.clone(), Tweak::default())
                .await;
            let by_member = member
                .send(Scheme::Acs3, action, all, Tweak::default())
                .await;
            let strip = |a: &Answer| {
                let mut b = a.ok().clone();
                b.as_object_mut().unwrap().remove("RequestId");
                b
            };
            assert_eq!(strip(&by_reader), strip(&by_member), "{action}");
            reads.insert(action.clone());
            continue;
        }
        // Refused as is, as a dry run, with a ClientToken, and signed as the legacy SDKs sign.
        let mut dry = all.clone();
        dry.push(("DryRun".into(), "true".into()));
        let mut tokened = all.clone();
        tokened.push(("ClientToken".into(), format!("reader-{action}")));
        for (scheme, params) in [
            (Scheme::Acs3, all.clone()),
            (Scheme::Acs3, dry.clone()),
            (Scheme::Acs3Form, tokened),
            (Scheme::Sha1, dry),
        ] {
            let answer = reader
                .send(scheme, action, params.clone(), Tweak::default())
                .await;
            answer.err(403, "Forbidden.RAM");
            assert!(
                answer.body["Message"].as_str().unwrap().contains("reader"),
                "{action} {params:?}: {:?}",
                answer.body
            );
        }
    }
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert_eq!(
        ali_snapshot(&member, &tagged).await,
        before,
        "the reader changed nothing"
    );
    assert_eq!(
        ali_snapshot(&reader, &tagged).await,
        before,
        "the reader sees what the member sees"
    );
    // The member's ClientToken is still the member's: its replay is unchanged.
    member.rcall("CreateTrafficMirrorFilter", &token).await.ok();
    assert_eq!(ali_snapshot(&member, &tagged).await, before);
}

// ---- Keys disabled or deleted ----------------------------------------------------------------

/// How long a disable, enable or delete of a credential may take to reach every server
/// (docs/security.md: "within a second").
const PROPAGATION: Duration = Duration::from_secs(1);

/// A credential as both faces' clients of one server.
struct Key {
    huawei: Api,
    aliyun: Srv,
}

impl Key {
    fn on(server: &TestServer, creds: &common::Creds) -> Key {
        Key {
            huawei: Api::new(server.addr, creds.clone()),
            aliyun: Srv::client_at(
                server.addr,
                &creds.access_key,
                &creds.secret_key,
                &creds.project_id,
            ),
        }
    }

    /// What each face answers a read with this key: `(status, code)`, the code empty on success.
    async fn answers(&self) -> [(u16, String); 2] {
        let h = self
            .huawei
            .get(&self.huawei.v3("traffic-mirror-filters"))
            .await;
        let code = h.body.get("error_code").and_then(Value::as_str);
        let a = self.aliyun.call("GetTrafficMirrorServiceStatus", &[]).await;
        [
            (h.status, code.unwrap_or("").to_owned()),
            (a.status, a.code().to_owned()),
        ]
    }
}

/// The answers of a key that works, and of one the server does not know.
fn accepted() -> [(u16, String); 2] {
    [(200, String::new()), (200, String::new())]
}

fn unknown() -> [(u16, String); 2] {
    [
        (401, "APIGW.0301".to_owned()),
        (404, "InvalidAccessKeyId.NotFound".to_owned()),
    ]
}

/// Polls `key` until both faces answer `want`, each answer until then being `was`; asserts that
/// this takes less than [`PROPAGATION`] from `since` and that the answer then stays.
async fn changes_within(
    key: &Key,
    since: Instant,
    was: &[(u16, String); 2],
    want: &[(u16, String); 2],
) {
    loop {
        let got = key.answers().await;
        if got == *want {
            break;
        }
        for (face, answer) in got.iter().enumerate() {
            assert!(
                answer == &was[face] || answer == &want[face],
                "face {face} answered {answer:?}: neither {:?} nor {:?}",
                was[face],
                want[face]
            );
        }
        assert!(
            since.elapsed() < PROPAGATION,
            "still {got:?}, not {want:?}, {:?} after the change",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        assert_eq!(key.answers().await, *want, "the answer went back");
    }
}

/// `POST /admin/v1/credentials/{key}{what}` (`DELETE` without `what`) by `server`'s operator;
/// when its answer came.
async fn credential_call(server: &TestServer, key: &str, what: &str) -> Instant {
    let path = format!("/admin/v1/credentials/{key}{what}");
    let method = if what.is_empty() { "DELETE" } else { "POST" };
    let reply = server.client().call(method, &path, None).await;
    assert!(
        reply.status == 200 || reply.status == 204,
        "{method} {path}: {} {}",
        reply.status,
        reply.body
    );
    Instant::now()
}

/// A member key made through `one`'s admin API and used on `two`: disabled through `one`, it is
/// refused on `two` within a second, on both faces, as an unknown key is; enabled through
/// `two`, it works on `one` again; deleted through `one`, it is refused on `two`. On the server
/// that made a change, the change holds at once. `one` and `two` may be the same server.
async fn disabled_and_deleted_keys_are_refused(one: &TestServer, two: &TestServer) {
    let op = one.client();
    let project = op.admin_project("revoked").await;
    let member = op.admin_credential(&project, "member").await.creds;
    let (on_one, on_two) = (Key::on(one, &member), Key::on(two, &member));
    // Cached on both servers, and used for a write.
    assert_eq!(on_one.answers().await, accepted());
    assert_eq!(on_two.answers().await, accepted());
    on_two.huawei.filter("kept").await;
    // What a key nobody has is answered.
    let nobody = common::Creds {
        access_key: format!("AK{}", uuid::Uuid::new_v4().simple()).to_uppercase()[..20].to_owned(),
        ..member.clone()
    };
    assert_eq!(Key::on(two, &nobody).answers().await, unknown());

    // Each change holds at once on the server that made it (its answer to the change comes
    // after it), and within a second on the other.
    let since = credential_call(one, &member.access_key, "/disable").await;
    assert_eq!(
        on_one.answers().await,
        unknown(),
        "disabled, through this server"
    );
    changes_within(&on_two, since, &accepted(), &unknown()).await;
    on_two
        .huawei
        .call(
            "POST",
            &on_two.huawei.v3("traffic-mirror-filters"),
            Some(&json!({"traffic_mirror_filter": {"name": "refused"}})),
        )
        .await
        .err(401, "APIGW.0301");

    let since = credential_call(two, &member.access_key, "/enable").await;
    assert_eq!(
        on_two.answers().await,
        accepted(),
        "enabled, through this server"
    );
    changes_within(&on_one, since, &unknown(), &accepted()).await;

    let since = credential_call(one, &member.access_key, "").await;
    assert_eq!(
        on_one.answers().await,
        unknown(),
        "deleted, through this server"
    );
    changes_within(&on_two, since, &accepted(), &unknown()).await;
    // Nothing was made while it was refused; the project keeps what the key made before.
    let filters = op
        .get(&format!("/admin/v1/projects/{project}"))
        .await
        .ok(200);
    assert_eq!(
        filters["project"]["usage"]["filters"],
        json!(1),
        "{filters}"
    );
}

#[tokio::test]
async fn a_disabled_or_deleted_key_is_refused_at_once() {
    let server = TestServer::start().await;
    disabled_and_deleted_keys_are_refused(&server, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_or_deleted_key_is_refused_within_a_second_on_the_other_server() {
    let Some((servers, _db)) = common::pg_servers(
        "a_disabled_or_deleted_key_is_refused_within_a_second_on_the_other_server",
        2,
    )
    .await
    else {
        return;
    };
    disabled_and_deleted_keys_are_refused(&servers[0], &servers[1]).await;
}
