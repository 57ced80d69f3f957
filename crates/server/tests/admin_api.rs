//! The admin API: projects and credentials made by the operator, the roles they carry, and
//! a disabled key refused at once; every endpoint with a caller who may call it and callers
//! who may not (members, readers, another project's admin); hosts, networks and bindings.

mod common;

use std::time::{Duration, Instant};

use common::{id, Api, Reply, TestServer};
use serde_json::{json, Value};
use tmirror_server::ServeConfig;

fn project_path(project: &str) -> String {
    format!("/admin/v1/projects/{project}")
}

fn credentials_path(project: &str) -> String {
    format!("/admin/v1/projects/{project}/credentials")
}

fn credential_path(key: &str, action: &str) -> String {
    if action.is_empty() {
        format!("/admin/v1/credentials/{key}")
    } else {
        format!("/admin/v1/credentials/{key}/{action}")
    }
}

/// The credentials of `project` as the admin API lists them.
async fn listed(caller: &Api, project: &str) -> Vec<Value> {
    caller.get(&credentials_path(project)).await.ok(200)["credentials"]
        .as_array()
        .unwrap()
        .clone()
}

/// The listed credential `key` of `project`.
async fn listed_key(caller: &Api, project: &str, key: &str) -> Value {
    listed(caller, project)
        .await
        .into_iter()
        .find(|c| c["access_key"] == key)
        .unwrap_or_else(|| panic!("{key} is not listed"))
}

/// The host a token authenticates, as the server's credential cache answers it (what the
/// agent API is to use), read through a store of our own on the server's database.
async fn host_of_token(server: &TestServer, token: &str) -> Option<String> {
    let config = ServeConfig {
        data_dir: server.data_path(),
        ..Default::default()
    };
    let store = tmirror_server::open_store(&config).await.unwrap();
    let cache = tmirror_server::auth::CredentialCache::start(store)
        .await
        .unwrap();
    cache.host(token).await.unwrap().map(|h| h.host_id)
}

/// Asserts a refusal in the admin API's format: the status, the code, and a body of exactly
/// `request_id` (the `X-Request-Id` header's), `code` and `message`.
#[track_caller]
fn refused(r: Reply, status: u16, code: &str) -> Value {
    let body = r.err(status, code);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "request_id"], "{body}");
    body
}

/// Everything an admin call could change, as the operator and the tenant see it: projects
/// (with usage), the credentials of `projects` (without `last_used_at`, which signing any
/// request moves), hosts, networks, the tenant's `port` with its binding, and which host
/// `token` names. Compared before and after refused calls.
async fn everything(
    server: &TestServer,
    projects: &[&str],
    tenant: &Api,
    port: &str,
    token: &str,
) -> Value {
    let op = server.client();
    let mut shown = Vec::new();
    let mut credentials = Vec::new();
    for p in projects {
        shown.push(op.get(&project_path(p)).await.ok(200));
        let mut keys = listed(&op, p).await;
        for k in &mut keys {
            k.as_object_mut().unwrap().remove("last_used_at");
        }
        credentials.push(Value::Array(keys));
    }
    json!({
        "projects": op.get("/admin/v1/projects").await.ok(200),
        "shown": shown,
        "credentials": credentials,
        "hosts": op.get("/admin/v1/hosts").await.ok(200),
        "networks": op.get("/admin/v1/networks").await.ok(200),
        "port": tenant.get(&tenant.v1(&format!("ports/{port}"))).await.ok(200),
        "token": host_of_token(server, token).await,
    })
}

#[tokio::test]
async fn the_operator_makes_a_tenant_whose_member_key_works_and_whose_reader_key_only_reads() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let reader = op.admin_credential(&project, "reader").await;

    let f = member.filter("f").await;
    let path = member.v3(&format!("traffic-mirror-filters/{}", id(&f)));
    reader.get(&path).await.ok(200);
    let refused = reader
        .call("DELETE", &path, None)
        .await
        .err(403, "VPC.0010");
    assert!(refused["error_msg"].as_str().unwrap().contains("reader"));
    // The member's project is not the operator's.
    op.get(&op.v3(&format!("traffic-mirror-filters/{}", id(&f))))
        .await
        .err(404, "VPC.1702");
    // Members and readers manage nothing of the operator's.
    member
        .call("POST", "/admin/v1/projects", Some(&json!({"name": "x"})))
        .await
        .err(403, "Forbidden");
    reader.get("/admin/v1/projects").await.err(403, "Forbidden");

    // Disabled: refused like an unknown key, at once; enabled again: works.
    op.call(
        "POST",
        &format!("/admin/v1/credentials/{}/disable", member.creds.access_key),
        None,
    )
    .await
    .ok(200);
    member.get(&path).await.err(401, "APIGW.0301");
    op.call(
        "POST",
        &format!("/admin/v1/credentials/{}/enable", member.creds.access_key),
        None,
    )
    .await
    .ok(200);
    member.get(&path).await.ok(200);

    // Listed without secrets; the project cannot go while it holds anything.
    let list = op
        .get(&format!("/admin/v1/projects/{project}/credentials"))
        .await
        .ok(200);
    assert_eq!(list["credentials"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&member.creds.secret_key));
    op.call("DELETE", &format!("/admin/v1/projects/{project}"), None)
        .await
        .err(409, "Conflict");
}

/// One call of the admin API: (method, path, body, what a member or reader gets, what another
/// project's admin gets).
type Case = (&'static str, String, Option<Value>, u16, u16);

/// Every endpoint of the admin API, naming project `p`, its member key `key`, the operator's
/// key `op_key`, the network `network`, the port `port` and the host `hv-1`.
fn every_endpoint(p: &str, key: &str, op_key: &str, network: &str, port: &str) -> Vec<Case> {
    vec![
        (
            "POST",
            "/admin/v1/projects".into(),
            Some(json!({"name": "x"})),
            403,
            403,
        ),
        ("GET", "/admin/v1/projects".into(), None, 403, 403),
        ("GET", project_path(p), None, 403, 404),
        (
            "PATCH",
            project_path(p),
            Some(json!({"name": "y"})),
            403,
            403,
        ),
        ("DELETE", project_path(p), None, 403, 403),
        (
            "POST",
            credentials_path(p),
            Some(json!({"role": "member"})),
            403,
            404,
        ),
        ("GET", credentials_path(p), None, 403, 404),
        ("POST", credential_path(key, "disable"), None, 403, 404),
        ("POST", credential_path(key, "enable"), None, 403, 404),
        ("DELETE", credential_path(key, ""), None, 403, 404),
        ("POST", credential_path(op_key, "disable"), None, 403, 404),
        ("DELETE", credential_path(op_key, ""), None, 403, 404),
        (
            "POST",
            "/admin/v1/hosts".into(),
            Some(json!({"host_id": "hv-2"})),
            403,
            403,
        ),
        ("GET", "/admin/v1/hosts".into(), None, 403, 403),
        ("GET", "/admin/v1/hosts/hv-1".into(), None, 403, 403),
        (
            "POST",
            "/admin/v1/hosts/hv-1/disable".into(),
            None,
            403,
            403,
        ),
        ("POST", "/admin/v1/hosts/hv-1/enable".into(), None, 403, 403),
        ("POST", "/admin/v1/hosts/hv-1/rotate".into(), None, 403, 403),
        ("DELETE", "/admin/v1/hosts/hv-1".into(), None, 403, 403),
        (
            "POST",
            "/admin/v1/networks".into(),
            Some(json!({"shared": true, "cidrs": ["192.168.0.0/24"]})),
            403,
            403,
        ),
        ("GET", "/admin/v1/networks".into(), None, 403, 403),
        (
            "DELETE",
            format!("/admin/v1/networks/{network}"),
            None,
            403,
            403,
        ),
        (
            "PUT",
            format!("/admin/v1/ports/{port}/binding"),
            Some(json!({"host_id": "hv-1"})),
            403,
            403,
        ),
    ]
}

/// Every endpoint, called by a member, a reader and another project's admin: refused, as
/// `Forbidden` where the caller may not do such things at all, as `NotFound` where an admin
/// asks about a project (or its keys) that is not its own. Nothing changes.
#[tokio::test]
async fn every_endpoint_refuses_members_readers_and_other_projects_admins() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let reader = op.admin_credential(&project, "reader").await;
    let admin = op.admin_credential(&project, "admin").await;
    let other_admin = op.tenant("other", "admin").await;
    let port = member.port("10.0.0.1").await;
    let network = port["network_id"].as_str().unwrap().to_owned();
    let token = op
        .call("POST", "/admin/v1/hosts", Some(&json!({"host_id": "hv-1"})))
        .await
        .ok(201)["credential"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = member.creds.access_key.clone();
    let op_key = op.creds.access_key.clone();

    let p = project.as_str();
    let projects = [
        p,
        op.creds.project_id.as_str(),
        other_admin.creds.project_id.as_str(),
    ];
    let before = everything(&server, &projects, &member, &id(&port), &token).await;
    let cases = every_endpoint(p, &key, &op_key, &network, &id(&port));
    for (method, path, body, tenant, other) in &cases {
        for (who, caller, status) in [
            ("member", &member, tenant),
            ("reader", &reader, tenant),
            ("another project's admin", &other_admin, other),
        ] {
            let r = caller.call(method, path, body.as_ref()).await;
            assert_eq!(
                r.status, *status,
                "{who}: {method} {path}: {} {}",
                r.status, r.body
            );
            let code = if *status == 403 {
                "Forbidden"
            } else {
                "NotFound"
            };
            refused(r, *status, code);
        }
    }
    // Nothing changed.
    let after = everything(&server, &projects, &member, &id(&port), &token).await;
    assert_eq!(after, before, "refused calls changed nothing");

    // The project's own admin: its project and its keys, nothing of the operator's.
    for (method, path, body, _, _) in &cases {
        let own = path.contains(p) || path.contains(&key);
        let r = admin.call(method, path, body.as_ref()).await;
        if own && !matches!(*method, "PATCH" | "DELETE" if path.starts_with("/admin/v1/projects")) {
            assert!(
                r.status < 300,
                "admin: {method} {path}: {} {}",
                r.status,
                r.body
            );
        } else {
            assert!(
                r.status == 403 || r.status == 404,
                "admin: {method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }

    // Which deleted the member's key, last of all.
    member
        .get(&member.v3("traffic-mirror-filters"))
        .await
        .err(401, "APIGW.0301");
}

/// Every endpoint, called without a valid signature of an enabled key: a disabled operator
/// key, the operator's key with a wrong secret, a body other than the one signed, a date
/// outside the skew window, no signature at all. Refused with 401 in the admin format
/// before anything is read or changed.
#[tokio::test]
async fn every_endpoint_refuses_disabled_keys_and_bad_signatures() {
    // Hundreds of refused signatures from one address: its failure bucket is not the subject.
    let server = TestServer::start_with(|c| {
        c.throttle.auth_failures = tmirror_server::throttle::Rate::OFF;
    })
    .await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let port = member.port("10.0.0.1").await;
    let network = port["network_id"].as_str().unwrap().to_owned();
    let token = op
        .call("POST", "/admin/v1/hosts", Some(&json!({"host_id": "hv-1"})))
        .await
        .ok(201)["credential"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled = op.admin_credential(&op.creds.project_id, "operator").await;
    op.call(
        "POST",
        &credential_path(&disabled.creds.access_key, "disable"),
        None,
    )
    .await
    .ok(200);
    let mut wrong_secret = op.clone();
    wrong_secret.creds.secret_key = format!("{}x", op.creds.secret_key);
    let mut tampered = op.clone();
    tampered.tamper = Some(br#"{"name": "not what was signed"}"#.to_vec());
    let mut stale = op.clone();
    stale.skew = time::Duration::hours(-1);

    let projects = [project.as_str(), op.creds.project_id.as_str()];
    let before = everything(&server, &projects, &member, &id(&port), &token).await;
    let cases = every_endpoint(
        &project,
        &member.creds.access_key,
        &op.creds.access_key,
        &network,
        &id(&port),
    );
    let http = reqwest::Client::new();
    for (method, path, body, _, _) in &cases {
        for (who, caller) in [
            ("a disabled operator key", &disabled),
            ("a wrong secret", &wrong_secret),
            ("a tampered body", &tampered),
            ("a stale date", &stale),
        ] {
            let r = caller.call(method, path, body.as_ref()).await;
            assert_eq!(r.status, 401, "{who}: {method} {path}: {}", r.body);
            refused(r, 401, "Unauthorized");
        }
        // No signature at all.
        let mut unsigned = http.request(
            method.parse().unwrap(),
            format!("http://{}{path}", server.addr),
        );
        if let Some(b) = body {
            unsigned = unsigned
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = unsigned.send().await.unwrap();
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let r = Reply {
            status,
            request_id,
            retry_after: None,
            body: serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
        };
        assert_eq!(r.status, 401, "unsigned: {method} {path}: {}", r.body);
        refused(r, 401, "Unauthorized");
    }
    let after = everything(&server, &projects, &member, &id(&port), &token).await;
    assert_eq!(after, before, "refused calls changed nothing");
    // The disabled key's secret never shows in a list.
    let text = after.to_string();
    assert!(!text.contains(&disabled.creds.secret_key) && !text.contains(&token));
}

#[tokio::test]
async fn projects_are_created_listed_shown_changed_and_deleted_by_the_operator() {
    let server = TestServer::start().await;
    let op = server.client();
    let created = op
        .call(
            "POST",
            "/admin/v1/projects",
            Some(&json!({"name": "acme", "quotas": {"filters": 1}})),
        )
        .await
        .ok(201)["project"]
        .clone();
    let project = id(&created);
    assert_eq!(project.len(), 32);
    assert_eq!(created["name"], "acme");
    assert_eq!(created["quotas"], json!({"filters": 1}));

    let all = op.get("/admin/v1/projects").await.ok(200)["projects"].clone();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"acme"), "{names:?}");
    assert!(all.as_array().unwrap().len() >= 2, "the operator's own too");

    // The quota override holds for the tenant.
    let member = op.admin_credential(&project, "member").await;
    member.filter("a").await;
    let body = json!({"traffic_mirror_filter": {"name": "b"}});
    member
        .call("POST", &member.v3("traffic-mirror-filters"), Some(&body))
        .await
        .err(409, "VPC.0114");
    let shown = op.get(&project_path(&project)).await.ok(200)["project"].clone();
    assert_eq!(shown["usage"]["filters"], 1);
    assert_eq!(shown["usage"]["credentials"], 1);

    // PATCH: name and quotas; the quotas replace the overrides.
    let changed = op
        .call(
            "PATCH",
            &project_path(&project),
            Some(&json!({"name": "acme2", "quotas": {"sessions": 3}})),
        )
        .await
        .ok(200)["project"]
        .clone();
    assert_eq!(changed["name"], "acme2");
    assert_eq!(changed["quotas"], json!({"sessions": 3}));
    member
        .call("POST", &member.v3("traffic-mirror-filters"), Some(&body))
        .await
        .ok(201);

    // The project's admin sees its project, and no other.
    let admin = op.admin_credential(&project, "admin").await;
    let own = admin.get(&project_path(&project)).await.ok(200);
    assert_eq!(own["project"]["name"], "acme2");
    admin
        .get(&project_path(&op.creds.project_id))
        .await
        .err(404, "NotFound");

    // Bad requests.
    op.call("POST", "/admin/v1/projects", Some(&json!({})))
        .await
        .err(400, "InvalidRequest");
    op.call(
        "POST",
        "/admin/v1/projects",
        Some(&json!({"name": "x", "quota": {}})),
    )
    .await
    .err(400, "InvalidRequest");
    op.call("POST", "/admin/v1/projects", Some(&json!({"name": " "})))
        .await
        .err(400, "InvalidRequest");
    op.get(&project_path("0123456789abcdef0123456789abcdef"))
        .await
        .err(404, "NotFound");
    op.get(&project_path("not-a-project"))
        .await
        .err(404, "NotFound");
    op.call(
        "PATCH",
        &project_path("0123456789abcdef0123456789abcdef"),
        Some(&json!({"name": "x"})),
    )
    .await
    .err(404, "NotFound");
}

#[tokio::test]
async fn a_project_is_deleted_only_once_it_holds_nothing() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let f = member.filter("f").await;
    let port = member.port("10.0.0.1").await;
    let network = port["network_id"].as_str().unwrap().to_owned();
    let pool = json!({"cidrs": ["198.51.100.0/24"], "host_id": "gw-1", "interface_name": "ext0"});
    op.call("PUT", "/admin/v1/eip-pools/5_bgp", Some(&pool))
        .await
        .ok(200);
    let eip = json!({"publicip": {"type": "5_bgp", "ip_version": 4},
        "bandwidth": {"name": "bw", "size": 5, "share_type": "PER", "charge_mode": "traffic"}});
    let eip = member
        .call("POST", &member.v1("publicips"), Some(&eip))
        .await
        .ok(200)["publicip"]
        .clone();
    let usage = op.get(&project_path(&project)).await.ok(200)["project"]["usage"].clone();
    assert_eq!(usage["eips"], 1, "{usage}");

    let refused = op
        .call("DELETE", &project_path(&project), None)
        .await
        .err(409, "Conflict");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("1 ports")
            && message.contains("1 filters")
            && message.contains("1 elastic IPs"),
        "{message}"
    );

    // Empty it step by step: refused until the last thing is gone.
    member
        .call(
            "DELETE",
            &member.v3(&format!("traffic-mirror-filters/{}", id(&f))),
            None,
        )
        .await
        .ok(204);
    member
        .call("DELETE", &member.v1(&format!("ports/{}", id(&port))), None)
        .await
        .ok(204);
    op.call("DELETE", &project_path(&project), None)
        .await
        .err(409, "Conflict");
    op.call("DELETE", &format!("/admin/v1/networks/{network}"), None)
        .await
        .ok(204);
    op.call("DELETE", &project_path(&project), None)
        .await
        .err(409, "Conflict");
    member
        .call(
            "DELETE",
            &member.v1(&format!("publicips/{}", id(&eip))),
            None,
        )
        .await
        .ok(204);
    op.call("DELETE", &project_path(&project), None)
        .await
        .err(409, "Conflict");
    op.call(
        "DELETE",
        &credential_path(&member.creds.access_key, ""),
        None,
    )
    .await
    .ok(204);
    op.call("DELETE", &project_path(&project), None)
        .await
        .ok(204);

    op.get(&project_path(&project)).await.err(404, "NotFound");
    op.call("DELETE", &project_path(&project), None)
        .await
        .err(404, "NotFound");
    // A deleted key signs nothing.
    member
        .get(&member.v3("traffic-mirror-filters"))
        .await
        .err(401, "APIGW.0301");
}

#[tokio::test]
async fn an_admin_manages_its_own_projects_keys_but_not_anothers_nor_operator_keys() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let admin = op.admin_credential(&project, "admin").await;
    let other = op.admin_project("other").await;
    let others_member = op.admin_credential(&other, "member").await;

    // Its own project: every role below operator, with the secret shown once.
    for role in ["admin", "member", "reader"] {
        let c = admin
            .call(
                "POST",
                &credentials_path(&project),
                Some(&json!({"role": role})),
            )
            .await
            .ok(201)["credential"]
            .clone();
        assert_eq!(c["role"], role);
        assert_eq!(c["project_id"], project.as_str());
        assert_eq!(c["enabled"], true);
        assert_eq!(c["endpoint"], format!("http://{}", server.addr));
        assert!(c["secret_key"].as_str().is_some_and(|s| s.len() >= 20));
        assert!(c["last_used_at"].is_null());
    }
    // Absent role: a member.
    let default = admin
        .call("POST", &credentials_path(&project), None)
        .await
        .ok(201);
    assert_eq!(default["credential"]["role"], "member");
    admin
        .call(
            "POST",
            &credentials_path(&project),
            Some(&json!({"role": "root"})),
        )
        .await
        .err(400, "InvalidRequest");
    let listed_now = listed(&admin, &project).await;
    assert_eq!(
        listed_now.len(),
        5,
        "the admin's own, three, and the default"
    );
    let text = Value::Array(listed_now.clone()).to_string();
    assert!(!text.contains("secret"), "no secrets in a list: {text}");

    // Disable, enable and delete one of its own project's keys.
    let member = admin.admin_credential(&project, "member").await;
    let key = member.creds.access_key.clone();
    let c = admin
        .call("POST", &credential_path(&key, "disable"), None)
        .await
        .ok(200)["credential"]
        .clone();
    assert_eq!(c["enabled"], false);
    assert!(c.get("secret_key").is_none());
    member
        .get(&member.v3("traffic-mirror-filters"))
        .await
        .err(401, "APIGW.0301");
    admin
        .call("POST", &credential_path(&key, "enable"), None)
        .await
        .ok(200);
    member
        .get(&member.v3("traffic-mirror-filters"))
        .await
        .ok(200);
    admin
        .call("DELETE", &credential_path(&key, ""), None)
        .await
        .ok(204);
    admin
        .call("DELETE", &credential_path(&key, ""), None)
        .await
        .err(404, "NotFound");

    // Not another project's: as if it did not exist.
    admin
        .call(
            "POST",
            &credentials_path(&other),
            Some(&json!({"role": "member"})),
        )
        .await
        .err(404, "NotFound");
    admin
        .get(&credentials_path(&other))
        .await
        .err(404, "NotFound");
    let theirs = others_member.creds.access_key.clone();
    admin
        .call("POST", &credential_path(&theirs, "disable"), None)
        .await
        .err(404, "NotFound");
    admin
        .call("DELETE", &credential_path(&theirs, ""), None)
        .await
        .err(404, "NotFound");
    others_member
        .get(&others_member.v3("traffic-mirror-filters"))
        .await
        .ok(200);

    // Never an operator key: neither made in its project nor the operator's touched.
    admin
        .call(
            "POST",
            &credentials_path(&project),
            Some(&json!({"role": "operator"})),
        )
        .await
        .err(403, "Forbidden");
    // The operator's project is another project: as if it did not exist.
    admin
        .call(
            "POST",
            &credentials_path(&op.creds.project_id),
            Some(&json!({"role": "operator"})),
        )
        .await
        .err(404, "NotFound");
    let op_key = op.creds.access_key.clone();
    admin
        .call("POST", &credential_path(&op_key, "disable"), None)
        .await
        .err(404, "NotFound");
    admin
        .call("DELETE", &credential_path(&op_key, ""), None)
        .await
        .err(404, "NotFound");
    op.get("/admin/v1/projects").await.ok(200);

    // The operator may make operator keys only in its own project.
    op.call(
        "POST",
        &credentials_path(&project),
        Some(&json!({"role": "operator"})),
    )
    .await
    .err(403, "Forbidden");
    op.call(
        "POST",
        &credentials_path("0123456789abcdef0123456789abcdef"),
        Some(&json!({"role": "member"})),
    )
    .await
    .err(404, "NotFound");
}

#[tokio::test]
async fn the_last_enabled_operator_credential_can_be_neither_disabled_nor_deleted() {
    let server = TestServer::start().await;
    let op = server.client();
    let first = op.creds.access_key.clone();
    let refused = op
        .call("POST", &credential_path(&first, "disable"), None)
        .await
        .err(409, "Conflict");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("last enabled operator"));
    op.call("DELETE", &credential_path(&first, ""), None)
        .await
        .err(409, "Conflict");
    op.get("/admin/v1/projects").await.ok(200);

    // With a second one, the first may go; then the second is the last.
    let second = op
        .admin_credential(&op.creds.project_id.clone(), "operator")
        .await;
    second.get("/admin/v1/projects").await.ok(200);
    second
        .call("POST", &credential_path(&first, "disable"), None)
        .await
        .ok(200);
    op.get("/admin/v1/projects").await.err(401, "Unauthorized");
    second
        .call(
            "POST",
            &credential_path(&second.creds.access_key, "disable"),
            None,
        )
        .await
        .err(409, "Conflict");
    second
        .call(
            "DELETE",
            &credential_path(&second.creds.access_key, ""),
            None,
        )
        .await
        .err(409, "Conflict");
    // A disabled operator key does not count, but may be deleted.
    second
        .call("DELETE", &credential_path(&first, ""), None)
        .await
        .ok(204);
    second.get("/admin/v1/projects").await.ok(200);
}

#[tokio::test]
async fn last_used_at_is_set_once_a_key_signs_a_request() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let key = member.creds.access_key.clone();
    let before = listed_key(&op, &project, &key).await;
    assert!(before["last_used_at"].is_null(), "{before}");
    assert!(before["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    member
        .get(&member.v3("traffic-mirror-filters"))
        .await
        .ok(200);
    // Written in the background, so that bookkeeping never slows a request.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = listed_key(&op, &project, &key).await;
        if let Some(t) = now["last_used_at"].as_str() {
            assert!(t.ends_with('Z') && t >= before["created_at"].as_str().unwrap());
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never set: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hosts_are_enrolled_rotated_disabled_and_deleted_by_the_operator() {
    let server = TestServer::start().await;
    let op = server.client();
    let made = op
        .call("POST", "/admin/v1/hosts", Some(&json!({"host_id": "hv-1"})))
        .await
        .ok(201);
    assert_eq!(made["host"]["host_id"], "hv-1");
    assert_eq!(made["host"]["enabled"], true);
    let credential = made["credential"].clone();
    let mut keys: Vec<&String> = credential.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["endpoint", "host_id", "token"], "the agent's file");
    assert_eq!(credential["host_id"], "hv-1");
    assert_eq!(credential["endpoint"], format!("http://{}", server.addr));
    let token = credential["token"].as_str().unwrap().to_owned();
    assert_eq!(
        host_of_token(&server, &token).await.as_deref(),
        Some("hv-1")
    );

    op.call("POST", "/admin/v1/hosts", Some(&json!({"host_id": "hv-1"})))
        .await
        .err(409, "Conflict");
    op.call(
        "POST",
        "/admin/v1/hosts",
        Some(&json!({"host_id": "bad/name"})),
    )
    .await
    .err(400, "InvalidRequest");
    op.call("POST", "/admin/v1/hosts", Some(&json!({})))
        .await
        .err(400, "InvalidRequest");

    let list = op.get("/admin/v1/hosts").await.ok(200);
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1);
    assert!(list["hosts"][0]["agent"].is_null(), "no agent seen yet");
    assert!(!list.to_string().contains(&token), "no tokens in a list");
    let shown = op.get("/admin/v1/hosts/hv-1").await.ok(200);
    assert_eq!(shown["host"]["host_id"], "hv-1");
    assert!(!shown.to_string().contains(&token));
    op.get("/admin/v1/hosts/hv-9").await.err(404, "NotFound");

    // Rotate: a new token works, the old one stops at once.
    let rotated = op
        .call("POST", "/admin/v1/hosts/hv-1/rotate", None)
        .await
        .ok(200)["credential"]
        .clone();
    let new_token = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(host_of_token(&server, &token).await, None);
    assert_eq!(
        host_of_token(&server, &new_token).await.as_deref(),
        Some("hv-1")
    );
    op.call("POST", "/admin/v1/hosts/hv-9/rotate", None)
        .await
        .err(404, "NotFound");

    // Disabled: its token names no host until enabled.
    let off = op
        .call("POST", "/admin/v1/hosts/hv-1/disable", None)
        .await
        .ok(200);
    assert_eq!(off["host"]["enabled"], false);
    assert_eq!(host_of_token(&server, &new_token).await, None);
    op.call("POST", "/admin/v1/hosts/hv-1/enable", None)
        .await
        .ok(200);
    assert_eq!(
        host_of_token(&server, &new_token).await.as_deref(),
        Some("hv-1")
    );

    op.call("DELETE", "/admin/v1/hosts/hv-1", None)
        .await
        .ok(204);
    op.get("/admin/v1/hosts/hv-1").await.err(404, "NotFound");
    op.call("DELETE", "/admin/v1/hosts/hv-1", None)
        .await
        .err(404, "NotFound");
    assert_eq!(host_of_token(&server, &new_token).await, None);
}

#[tokio::test]
async fn networks_are_the_operators_and_never_overlap() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;

    let owned = op
        .call(
            "POST",
            "/admin/v1/networks",
            Some(&json!({"id": "net-acme", "name": "acme", "project_id": project, "cidrs": ["10.1.0.0/24"]})),
        )
        .await
        .ok(201)["network"]
        .clone();
    assert_eq!(owned["id"], "net-acme");
    assert_eq!(owned["project_id"], project.as_str());
    assert_eq!(owned["shared"], false);
    assert_eq!(owned["cidrs"], json!(["10.1.0.0/24"]));
    let shared = op
        .call(
            "POST",
            "/admin/v1/networks",
            Some(&json!({"shared": true, "cidrs": ["10.2.0.0/24"]})),
        )
        .await
        .ok(201)["network"]
        .clone();
    assert!(shared["id"].as_str().unwrap().starts_with("net-"));
    assert!(shared["project_id"].is_null());
    assert_eq!(shared["shared"], true);

    // Overlap, in either direction, with an owned or a shared network: refused.
    for cidrs in [
        json!(["10.1.0.128/25"]),
        json!(["10.0.0.0/8"]),
        json!(["10.2.0.7/32"]),
    ] {
        let r = op
            .call(
                "POST",
                "/admin/v1/networks",
                Some(&json!({"shared": true, "cidrs": cidrs})),
            )
            .await
            .err(409, "Conflict");
        assert!(r["message"].as_str().unwrap().contains("overlap"), "{r}");
    }
    op.call(
        "POST",
        "/admin/v1/networks",
        Some(&json!({"id": "net-acme", "shared": true, "cidrs": ["10.3.0.0/24"]})),
    )
    .await
    .err(409, "Conflict");
    // Owner: exactly one of project_id and shared.
    for body in [
        json!({"cidrs": ["10.4.0.0/24"]}),
        json!({"shared": true, "project_id": project, "cidrs": ["10.4.0.0/24"]}),
        json!({"shared": true, "cidrs": ["10.4.0.0/33"]}),
        json!({"shared": true, "cidrs": ["10.4.0.0/24"], "owner": "x"}),
    ] {
        op.call("POST", "/admin/v1/networks", Some(&body))
            .await
            .err(400, "InvalidRequest");
    }
    op.call(
        "POST",
        "/admin/v1/networks",
        Some(&json!({"project_id": "0123456789abcdef0123456789abcdef", "cidrs": ["10.4.0.0/24"]})),
    )
    .await
    .err(404, "NotFound");

    let all = op.get("/admin/v1/networks").await.ok(200)["networks"].clone();
    assert_eq!(all.as_array().unwrap().len(), 2);

    // The tenant puts ports in its network or the shared one, never outside their CIDRs.
    let body = |net: &str, ip: &str| json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": ip}]}});
    let port = member
        .call(
            "POST",
            &member.v1("ports"),
            Some(&body("net-acme", "10.1.0.5")),
        )
        .await
        .ok(201)["port"]
        .clone();
    member
        .call(
            "POST",
            &member.v1("ports"),
            Some(&body(shared["id"].as_str().unwrap(), "10.2.0.5")),
        )
        .await
        .ok(201);
    let outside = member
        .call(
            "POST",
            &member.v1("ports"),
            Some(&body("net-acme", "10.9.0.5")),
        )
        .await;
    assert_eq!(outside.status, 400, "{}", outside.body);

    // In use: refused; unused: deleted.
    op.call("DELETE", "/admin/v1/networks/net-acme", None)
        .await
        .err(409, "Conflict");
    member
        .call("DELETE", &member.v1(&format!("ports/{}", id(&port))), None)
        .await
        .ok(204);
    op.call("DELETE", "/admin/v1/networks/net-acme", None)
        .await
        .ok(204);
    op.call("DELETE", "/admin/v1/networks/net-acme", None)
        .await
        .err(404, "NotFound");
}

#[tokio::test]
async fn the_operator_binds_a_tenants_port_and_the_tenant_cannot() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let admin = op.admin_credential(&project, "admin").await;
    let port = member.port("10.0.0.1").await;
    let path = format!("/admin/v1/ports/{}/binding", id(&port));

    let bound = op
        .call(
            "PUT",
            &path,
            Some(&json!({"host_id": "hv-1", "interface_name": "tap9", "capture_side": "guest"})),
        )
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(bound["id"], id(&port).as_str());
    assert_eq!(bound["project_id"], project.as_str());
    assert_eq!(bound["host_id"], "hv-1");
    assert_eq!(bound["profile"]["interface_name"], "tap9");
    assert_eq!(bound["profile"]["capture_side"], "guest");
    // The tenant sees it through its own face.
    let seen = member
        .get(&member.v1(&format!("ports/{}", id(&port))))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(seen["binding:host_id"], "hv-1");
    assert_eq!(seen["binding:profile"]["interface_name"], "tap9");

    // Not the tenant: neither through the admin API nor through its own face.
    for caller in [&member, &admin] {
        caller
            .call("PUT", &path, Some(&json!({"host_id": "hv-2"})))
            .await
            .err(403, "Forbidden");
    }
    member
        .call(
            "PUT",
            &member.v1(&format!("ports/{}", id(&port))),
            Some(&json!({"port": {"binding:host_id": "hv-2"}})),
        )
        .await
        .err(403, "VPC.0010");

    // Unbound with an empty host; unknown and malformed ports are not found.
    let unbound = op
        .call("PUT", &path, Some(&json!({"host_id": ""})))
        .await
        .ok(200)["port"]
        .clone();
    assert_eq!(unbound["host_id"], "");
    op.call(
        "PUT",
        "/admin/v1/ports/00000000-0000-4000-8000-000000000000/binding",
        Some(&json!({"host_id": "hv-1"})),
    )
    .await
    .err(404, "NotFound");
    op.call(
        "PUT",
        "/admin/v1/ports/nope/binding",
        Some(&json!({"host_id": "hv-1"})),
    )
    .await
    .err(404, "NotFound");
    op.call("PUT", &path, Some(&json!({"host_id": "bad/host"})))
        .await
        .err(400, "InvalidRequest");
}

/// Servers on one PostgreSQL database: a key disabled through one is refused by the others
/// within a second (their credential caches follow the database's changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_disabled_on_one_server_is_refused_by_another_within_a_second() {
    let Some((servers, _db)) =
        common::pg_servers("a_key_disabled_on_one_server_is_refused_by_another", 2).await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let project = a.admin_project("acme").await;
    let on_a = a.admin_credential(&project, "member").await;
    let on_b = Api::new(servers[1].addr, on_a.creds.clone());
    let path = on_b.v3("traffic-mirror-filters");
    // Server B knows (has cached) the key before it is disabled.
    on_b.get(&path).await.ok(200);

    a.call(
        "POST",
        &credential_path(&on_a.creds.access_key, "disable"),
        None,
    )
    .await
    .ok(200);
    let disabled = Instant::now();
    loop {
        let r = on_b.get(&path).await;
        if r.status == 401 {
            r.err(401, "APIGW.0301");
            break;
        }
        assert!(
            disabled.elapsed() < Duration::from_secs(1),
            "server B still accepts the key {:?} after it was disabled",
            disabled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And enabled again through B, A takes it back.
    b.call(
        "POST",
        &credential_path(&on_a.creds.access_key, "enable"),
        None,
    )
    .await
    .ok(200);
    let enabled = Instant::now();
    while on_a.get(&path).await.status != 200 {
        assert!(
            enabled.elapsed() < Duration::from_secs(1),
            "A refuses the enabled key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
