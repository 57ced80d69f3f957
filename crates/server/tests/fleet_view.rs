//! The operator's view of the fleet, built from what agents report: the metrics (agents
//! connected, each host's lag, sessions by state, per-session copies summed over hosts), the
//! hosts' lag in the admin API, and a session's delivery per host — the operator's for any
//! project, a tenant's for its own project only.

mod common;

use common::{id, Api, TestServer};
use serde_json::{json, Value};
use tmirror_scrape::Scrape;

/// A host agent speaking the agent API with its token.
struct Agent {
    base: String,
    host: String,
    token: String,
    http: reqwest::Client,
}

impl Agent {
    async fn enrolled(server: &TestServer, host: &str) -> Agent {
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            host: host.to_owned(),
            token: server.client().host_token(host).await,
            http: reqwest::Client::new(),
        }
    }

    /// Registers (a first poll) and returns the generation of the document it got.
    async fn poll(&self) -> u64 {
        let url = format!(
            "{}/hosts/{}/desired-state?known=&wait=0",
            self.base, self.host
        );
        let r = self.http.get(url).bearer_auth(&self.token).send().await;
        let doc: Value = r.unwrap().json().await.unwrap();
        doc["generation"].as_u64().expect("a desired state")
    }

    async fn report(&self, applied: u64, counters: Value) {
        let url = format!("{}/hosts/{}/status", self.base, self.host);
        let body = json!({"applied_generation": applied, "counters": counters});
        let r = self.http.post(url).bearer_auth(&self.token).json(&body);
        assert_eq!(r.send().await.unwrap().status(), 204);
    }
}

/// A session's counters as an agent reports them.
fn copies(session: &str, packets: u64, bytes: u64, pps: f64) -> Value {
    json!({"sessions": {session: {"packets": packets, "bytes": bytes,
        "packets_per_second": pps, "bytes_per_second": pps * 100.0}}, "interfaces": {}})
}

/// In `tenant`'s project: a source port on hv1 and one on hv2 (bound by the operator), a
/// target, and an enabled session with both sources and a disabled one with the first.
/// Returns (enabled session, disabled session).
async fn two_host_session(operator: &Api, tenant: &Api) -> (String, String) {
    let mut sources = Vec::new();
    for (ip, host, interface) in [
        ("10.0.0.5", "hv1", "vm1-eth0"),
        ("10.0.0.6", "hv2", "vm2-eth0"),
    ] {
        let port = id(&tenant.port(ip).await);
        let binding = json!({"host_id": host, "interface_name": interface});
        operator
            .call(
                "PUT",
                &format!("/admin/v1/ports/{port}/binding"),
                Some(&binding),
            )
            .await
            .ok(200);
        sources.push(port);
    }
    let target = id(&tenant.port("10.0.0.9").await);
    let filter = id(&tenant.filter("f").await);
    let session = |name: &str, sources: &[String], priority: u32, enabled: bool| {
        json!({"name": name, "traffic_mirror_filter_id": filter, "traffic_mirror_sources": sources,
            "traffic_mirror_target_id": target, "traffic_mirror_target_type": "eni",
            "priority": priority, "virtual_network_id": 77, "enabled": enabled})
    };
    let on = tenant
        .session(session("on", &sources, 1, true))
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    let off = tenant
        .session(session("off", &sources[..1], 2, false))
        .await
        .ok(201)["traffic_mirror_session"]
        .clone();
    (id(&on), id(&off))
}

fn with_metrics(c: &mut tmirror_server::ServeConfig) {
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
}

#[tokio::test]
async fn metrics_on_sqlite() {
    metrics_show_agents_lag_sessions_by_state_and_copies_summed_over_hosts(
        &TestServer::start_with(with_metrics).await,
    )
    .await;
}

#[tokio::test]
async fn metrics_on_postgres() {
    let Some((servers, _db)) =
        common::pg_servers_with("metrics_on_postgres", 1, with_metrics).await
    else {
        return;
    };
    metrics_show_agents_lag_sessions_by_state_and_copies_summed_over_hosts(&servers[0]).await;
}

async fn metrics_show_agents_lag_sessions_by_state_and_copies_summed_over_hosts(
    server: &TestServer,
) {
    let operator = server.client();
    let tenant = operator.tenant("acme", "member").await;
    let (on, off) = two_host_session(&operator, &tenant).await;
    let hv1 = Agent::enrolled(server, "hv1").await;
    let hv2 = Agent::enrolled(server, "hv2").await;
    let current = hv1.poll().await;
    hv2.poll().await;
    // hv1 applied everything; hv2 applied nothing yet.
    hv1.report(current, copies(&on, 5, 500, 1.0)).await;
    hv2.report(0, copies(&on, 7, 700, 2.0)).await;
    // hv3 captures none of the session's sources: what it says of the session, or of a
    // session that does not exist, counts for nothing.
    let hv3 = Agent::enrolled(server, "hv3").await;
    hv3.poll().await;
    let forged = "5f0c2a7e-0000-4000-8000-000000000001";
    let mut lies = copies(&on, 1000, 100_000, 50.0);
    lies["sessions"][forged] = lies["sessions"][&on].clone();
    hv3.report(current, lies).await;

    let text = reqwest::get(format!("http://{}/metrics", server.metrics_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = Scrape::of(&text);
    let revision = scrape.value("tmirror_revision", &[]).expect("the revision");
    assert!(revision >= current as f64, "{text}");
    assert_eq!(
        scrape.value("tmirror_agents_connected", &[]),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        scrape.value("tmirror_agent_lag_revisions", &[("host_id", "hv1")]),
        Some(revision - current as f64),
        "{text}"
    );
    assert_eq!(
        scrape.value("tmirror_agent_lag_revisions", &[("host_id", "hv2")]),
        Some(revision),
        "{text}"
    );
    let of_on = [("session_id", on.as_str())];
    assert_eq!(
        scrape.value("tmirror_session_copies_total", &of_on),
        Some(12.0),
        "{text}"
    );
    assert_eq!(
        scrape.value("tmirror_session_copied_bytes_total", &of_on),
        Some(1200.0),
        "{text}"
    );
    // The enabled session waits for hv2; the disabled one is on hv1 only, which applied it.
    for (state, enabled, n) in [
        ("Creating", "true", 1.0),
        ("Created", "true", 0.0),
        ("Created", "false", 1.0),
        ("Creating", "false", 0.0),
        ("Modifying", "true", 0.0),
    ] {
        let labels = [("state", state), ("enabled", enabled)];
        assert_eq!(
            scrape.value("tmirror_sessions", &labels),
            Some(n),
            "{labels:?} in {text}"
        );
    }
    assert!(
        !text.contains(&off),
        "no copies reported for the disabled session"
    );
    assert!(
        !text.contains(forged),
        "no series for a session that does not exist"
    );

    // Once hv2 catches up, the session is Created.
    hv2.report(current, copies(&on, 7, 700, 2.0)).await;
    let text = reqwest::get(format!("http://{}/metrics", server.metrics_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let created = [("state", "Created"), ("enabled", "true")];
    assert_eq!(
        Scrape::of(&text).value("tmirror_sessions", &created),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn hosts_show_their_lag_to_the_operator_only() {
    let server = TestServer::start().await;
    let operator = server.client();
    let hv1 = Agent::enrolled(&server, "hv1").await;
    let generation = hv1.poll().await;
    hv1.report(generation, json!({"sessions": {}, "interfaces": {}}))
        .await;
    // A change after the report: hv1 is one revision behind.
    operator.enrol_host("hv2").await;
    let hosts = operator.get("/admin/v1/hosts").await.ok(200)["hosts"].clone();
    let shown = |host: &str| {
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_id"] == host)
            .cloned()
    };
    assert_eq!(shown("hv1").unwrap()["agent"]["lag"], 1, "{hosts}");
    assert_eq!(shown("hv2").unwrap()["agent"], Value::Null, "{hosts}");
    let one = operator.get("/admin/v1/hosts/hv1").await.ok(200);
    assert_eq!(one["host"]["agent"]["applied_generation"], generation);

    for role in ["admin", "member", "reader"] {
        let tenant = operator.tenant(&format!("t-{role}"), role).await;
        tenant.get("/admin/v1/hosts").await.err(403, "Forbidden");
        tenant
            .get("/admin/v1/hosts/hv1")
            .await
            .err(403, "Forbidden");
    }
}

#[tokio::test]
async fn delivery_on_sqlite() {
    a_sessions_delivery_per_host_for_its_project_and_the_operator_only(&TestServer::start().await)
        .await;
}

#[tokio::test]
async fn delivery_on_postgres() {
    let Some((servers, _db)) = common::pg_servers("delivery_on_postgres", 1).await else {
        return;
    };
    a_sessions_delivery_per_host_for_its_project_and_the_operator_only(&servers[0]).await;
}

/// A report that reached one server is shown by another (once written down, within the
/// agent flush interval): the rates are the agent's, so both show the same.
#[tokio::test]
async fn a_delivery_reported_to_one_server_is_shown_by_another() {
    let Some((servers, _db)) = common::pg_servers("delivery_across_servers", 2).await else {
        return;
    };
    let operator = servers[0].client();
    let member = operator.tenant("acme", "member").await;
    let (on, _) = two_host_session(&operator, &member).await;
    let hv1 = Agent::enrolled(&servers[0], "hv1").await;
    let current = hv1.poll().await;
    hv1.report(current, copies(&on, 5, 500, 1.5)).await;
    let other = Api::new(servers[1].addr, member.creds.clone());
    let path = format!(
        "/admin/v1/projects/{}/sessions/{on}/delivery",
        member.creds.project_id
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let d = other.get(&path).await.ok(200)["delivery"].clone();
        if d["hosts"][0]["copies"] == 5 {
            assert_eq!(d["hosts"][0]["host_id"], "hv1", "{d}");
            assert_eq!(d["hosts"][0]["copies_per_second"], 1.5, "{d}");
            assert_eq!(d["copies_per_second"], 1.5, "{d}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other server never showed the report: {d}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn a_sessions_delivery_per_host_for_its_project_and_the_operator_only(server: &TestServer) {
    let operator = server.client();
    let member = operator.tenant("acme", "member").await;
    let project = member.creds.project_id.clone();
    let (on, _) = two_host_session(&operator, &member).await;
    let hv1 = Agent::enrolled(server, "hv1").await;
    let hv2 = Agent::enrolled(server, "hv2").await;
    let current = hv1.poll().await;
    hv2.poll().await;
    hv1.report(current, copies(&on, 5, 500, 1.5)).await;
    hv2.report(0, copies(&on, 7, 700, 2.0)).await;

    let path = format!("/admin/v1/projects/{project}/sessions/{on}/delivery");
    let reader = operator.admin_credential(&project, "reader").await;
    for (who, caller) in [
        ("member", &member),
        ("reader", &reader),
        ("operator", &operator),
    ] {
        let d = caller.get(&path).await.ok(200)["delivery"].clone();
        assert_eq!(d["session_id"], on.as_str(), "{who}: {d}");
        assert_eq!(d["state"], "Creating", "{who}: {d}");
        assert_eq!(d["applied_everywhere"], false, "{who}: {d}");
        assert_eq!(d["copies_per_second"], 3.5, "{who}: {d}");
        assert_eq!(d["bytes_per_second"], 350.0, "{who}: {d}");
        let hosts = d["hosts"].as_array().unwrap();
        assert_eq!(hosts.len(), 2, "{who}: {d}");
        assert_eq!(hosts[0]["host_id"], "hv1");
        assert_eq!(hosts[0]["applied"], true);
        assert_eq!(hosts[0]["connected"], true);
        assert_eq!(hosts[0]["copies"], 5);
        assert_eq!(hosts[0]["bytes"], 500);
        assert_eq!(hosts[1]["host_id"], "hv2");
        assert_eq!(hosts[1]["applied"], false);
        assert_eq!(hosts[1]["applied_generation"], 0);
        assert_eq!(hosts[1]["copies_per_second"], 2.0);
    }
    hv2.report(current, copies(&on, 9, 900, 2.0)).await;
    let d = member.get(&path).await.ok(200)["delivery"].clone();
    assert_eq!(d["applied_everywhere"], true, "{d}");
    assert_eq!(d["state"], "Created", "{d}");
    assert_eq!(d["hosts"][1]["copies"], 9, "{d}");

    // Another project's callers, whatever their role, see no such session; so does anyone
    // asking under another project's id.
    for role in ["admin", "member", "reader"] {
        let other = operator.tenant(&format!("other-{role}"), role).await;
        other.get(&path).await.err(404, "NotFound");
        let own = format!(
            "/admin/v1/projects/{}/sessions/{on}/delivery",
            other.creds.project_id
        );
        other.get(&own).await.err(404, "NotFound");
    }
    let elsewhere = format!(
        "/admin/v1/projects/{}/sessions/{on}/delivery",
        operator.creds.project_id
    );
    operator.get(&elsewhere).await.err(404, "NotFound");
    for bad in [
        format!("/admin/v1/projects/{project}/sessions/not-a-session/delivery"),
        format!(
            "/admin/v1/projects/{project}/sessions/00000000-0000-0000-0000-000000000000/delivery"
        ),
        format!("/admin/v1/projects/nope/sessions/{on}/delivery"),
    ] {
        member.get(&bad).await.err(404, "NotFound");
    }
    // Unsigned: refused before anything is read.
    let unsigned = reqwest::get(format!("http://{}{path}", server.addr))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
}
