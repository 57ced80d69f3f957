//! Several control-plane servers on one PostgreSQL database: any request may go to any server,
//! the business rules hold when two servers race, and an agent polling one server is woken by
//! a change made through another. Each test makes its own database on the server
//! `TMIRROR_TEST_DATABASE_URL` names; without it the tests say they were skipped.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{id, pg_servers, pg_servers_with, Api, Reply};
use serde_json::{json, Value};
use tokio::sync::Barrier;

/// How many times each race is run: enough for the two requests to overlap many times.
const ROUNDS: usize = 12;

/// Sends `a` through one server and `b` through the other at the same moment.
async fn race<A, B, FA, FB>(a: A, b: B) -> (Reply, Reply)
where
    A: FnOnce() -> FA + Send + 'static,
    B: FnOnce() -> FB + Send + 'static,
    FA: std::future::Future<Output = Reply> + Send,
    FB: std::future::Future<Output = Reply> + Send,
{
    let barrier = Arc::new(Barrier::new(2));
    let (ba, bb) = (barrier.clone(), barrier);
    let ta = tokio::spawn(async move {
        ba.wait().await;
        a().await
    });
    let tb = tokio::spawn(async move {
        bb.wait().await;
        b().await
    });
    (ta.await.unwrap(), tb.await.unwrap())
}

/// Exactly one of the two succeeded with `ok`; the other got `status` and `code`, with a
/// message. Returns the winner's index.
#[track_caller]
fn one_winner(replies: (Reply, Reply), ok: u16, status: u16, code: &str) -> usize {
    let (a, b) = replies;
    match (a.status == ok, b.status == ok) {
        (true, false) => {
            b.err(status, code);
            0
        }
        (false, true) => {
            a.err(status, code);
            1
        }
        _ => panic!(
            "expected exactly one success: {} {} / {} {}",
            a.status, a.body, b.status, b.body
        ),
    }
}

async fn fixtures(api: &Api) -> (String, String, String) {
    let f = id(&api.filter("f").await);
    let src = id(&api.port("10.0.0.1").await);
    let dst = id(&api.port("10.0.0.9").await);
    (f, src, dst)
}

fn session_body(f: &str, sources: &[&str], dst: &str, priority: usize) -> Value {
    json!({"name": format!("s{priority}"), "traffic_mirror_filter_id": f, "traffic_mirror_sources": sources,
        "traffic_mirror_target_id": dst, "traffic_mirror_target_type": "eni", "priority": priority})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_for_one_session_priority_make_one_session() {
    let Some((servers, _db)) = pg_servers("two_servers_racing_for_one_session_priority", 2).await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let (f, _, dst) = fixtures(&a).await;
    let mut winners = [0; 2];
    for round in 0..ROUNDS {
        let priority = round + 1;
        let (a2, b2) = (a.clone(), b.clone());
        let (fa, fb, da, db) = (f.clone(), f.clone(), dst.clone(), dst.clone());
        let replies = race(
            move || async move { a2.session(session_body(&fa, &[], &da, priority)).await },
            move || async move { b2.session(session_body(&fb, &[], &db, priority)).await },
        )
        .await;
        winners[one_winner(replies, 201, 409, "VPC.1710")] += 1;
        let q = format!("traffic-mirror-sessions?priority={priority}");
        let found = b.get(&b.v3(&q)).await.ok(200);
        assert_eq!(
            found["traffic_mirror_sessions"].as_array().unwrap().len(),
            1
        );
    }
    eprintln!("session priority races won by server A/B: {winners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_for_the_last_source_slot_of_a_port_fill_it_once() {
    let Some((servers, _db)) = pg_servers("two_servers_racing_for_the_last_source_slot", 2).await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let f = id(&a.filter("f").await);
    let dst = id(&a.port("10.0.0.254").await);
    let mut priority = 0;
    for round in 0..ROUNDS {
        // A port may be a source of 3 sessions (the default quota): 2 taken, 2 racing for one.
        let src = id(&a.port(&format!("10.0.1.{}", round + 1)).await);
        for _ in 0..2 {
            priority += 1;
            a.session(session_body(&f, &[&src], &dst, priority))
                .await
                .ok(201);
        }
        let (pa, pb) = (priority + 1, priority + 2);
        priority += 2;
        let (a2, b2) = (a.clone(), b.clone());
        let (fa, fb, da, db, sa, sb) = (
            f.clone(),
            f.clone(),
            dst.clone(),
            dst.clone(),
            src.clone(),
            src.clone(),
        );
        let replies = race(
            move || async move { a2.session(session_body(&fa, &[&sa], &da, pa)).await },
            move || async move { b2.session(session_body(&fb, &[&sb], &db, pb)).await },
        )
        .await;
        one_winner(replies, 201, 409, "VPC.0114");
        let found = a
            .get(&a.v3("traffic-mirror-sessions?limit=2000"))
            .await
            .ok(200);
        let with_src = found["traffic_mirror_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["traffic_mirror_sources"][0] == src.as_str())
            .count();
        assert_eq!(with_src, 3, "{found}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_for_the_last_filter_of_a_project_quota_make_one() {
    let Some((servers, _db)) = pg_servers_with("two_servers_racing_for_the_last_filter", 2, |c| {
        c.limits.filters_per_project = 1
    })
    .await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let path = a.v3("traffic-mirror-filters");
    for round in 0..ROUNDS {
        let body = json!({"traffic_mirror_filter": {"name": format!("f{round}")}});
        let (a2, b2, pa, pb, ba, bb) = (
            a.clone(),
            b.clone(),
            path.clone(),
            path.clone(),
            body.clone(),
            body,
        );
        let replies = race(
            move || async move { a2.call("POST", &pa, Some(&ba)).await },
            move || async move { b2.call("POST", &pb, Some(&bb)).await },
        )
        .await;
        let bodies = [replies.0.body.clone(), replies.1.body.clone()];
        let winner =
            id(&bodies[one_winner(replies, 201, 409, "VPC.0114")]["traffic_mirror_filter"]);
        let listed = b.get(&path).await.ok(200);
        assert_eq!(
            listed["traffic_mirror_filters"].as_array().unwrap().len(),
            1,
            "{listed}"
        );
        // Free the slot for the next round.
        a.call(
            "DELETE",
            &a.v3(&format!("traffic-mirror-filters/{winner}")),
            None,
        )
        .await
        .ok(204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_racing_for_one_rule_priority_make_one_rule() {
    let Some((servers, _db)) = pg_servers("two_servers_racing_for_one_rule_priority", 2).await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let f = id(&a.filter("f").await);
    // Up to the quota of 10 rules per direction.
    let rounds = 10;
    for round in 0..rounds {
        let priority = round + 1;
        let rule = move |f: String, proto: &'static str| {
            json!({"traffic_mirror_filter_id": f, "direction": "ingress", "protocol": proto,
                "ethertype": "IPv4", "action": "accept", "priority": priority})
        };
        let (a2, b2, fa, fb) = (a.clone(), b.clone(), f.clone(), f.clone());
        let replies = race(
            move || async move { a2.rule(rule(fa, "tcp")).await },
            move || async move { b2.rule(rule(fb, "udp")).await },
        )
        .await;
        one_winner(replies, 201, 409, "VPC.1710");
    }
    let shown = b
        .get(&b.v3(&format!("traffic-mirror-filters/{f}")))
        .await
        .ok(200);
    let rules = shown["traffic_mirror_filter"]["ingress_rules"]
        .as_array()
        .unwrap();
    let mut priorities: Vec<u64> = rules
        .iter()
        .map(|r| r["priority"].as_u64().unwrap())
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    assert_eq!(priorities.len(), rounds, "{shown}");
    assert_eq!(rules.len(), rounds, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_filter_on_one_server_while_a_session_is_created_on_it_through_another() {
    let Some((servers, _db)) = pg_servers("deleting_a_filter_while_a_session_is_created", 2).await
    else {
        return;
    };
    let (a, b) = (servers[0].client(), servers[1].client());
    let dst = id(&a.port("10.0.0.9").await);
    let mut outcomes = [0; 2];
    for round in 0..ROUNDS {
        let f = id(&a.filter(&format!("f{round}")).await);
        let (a2, b2, fa, fb, d) = (a.clone(), b.clone(), f.clone(), f.clone(), dst.clone());
        let (deleted, created) = race(
            move || async move {
                a2.call(
                    "DELETE",
                    &a2.v3(&format!("traffic-mirror-filters/{fa}")),
                    None,
                )
                .await
            },
            move || async move { b2.session(session_body(&fb, &[], &d, round + 1)).await },
        )
        .await;
        let filter_now = a
            .get(&a.v3(&format!("traffic-mirror-filters/{f}")))
            .await
            .status;
        match (deleted.status, created.status) {
            // The delete came first: the create finds no filter.
            (204, _) => {
                created.err(404, "VPC.1702");
                assert_eq!(filter_now, 404);
                outcomes[0] += 1;
            }
            // The create came first: the filter is in use.
            (_, 201) => {
                deleted.err(409, "VPC.1711");
                assert_eq!(filter_now, 200);
                let s = id(&created.body["traffic_mirror_session"]);
                assert_eq!(
                    created.body["traffic_mirror_session"]["traffic_mirror_filter_id"],
                    f
                );
                a.call(
                    "DELETE",
                    &a.v3(&format!("traffic-mirror-sessions/{s}")),
                    None,
                )
                .await
                .ok(204);
                outcomes[1] += 1;
            }
            (d, c) => panic!(
                "exactly one must win: delete {d} {}, create {c} {}",
                deleted.body, created.body
            ),
        }
    }
    eprintln!("delete first / create first: {outcomes:?}");
}

/// The agent API of one server, as an agent sees it.
struct Agent {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Agent {
    /// An agent of `token`'s host talking to `server`.
    fn of(server: &common::TestServer, token: &str) -> Agent {
        Agent {
            base: format!("http://{}/agent/v1", server.addr),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn poll(&self, host: &str, known: &str, wait: u64) -> Value {
        let r = self
            .http
            .get(format!(
                "{}/hosts/{host}/desired-state?known={known}&wait={wait}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_polling_one_server_is_woken_by_a_change_through_another_within_a_second() {
    let Some((servers, _db)) = pg_servers("an_agent_polling_one_server_is_woken", 2).await else {
        return;
    };
    let b = servers[1].client();
    // Enrolled through server B, the host's token works on server A: hosts live in the store.
    let token = b.host_token("hv1").await;
    let body = json!({"port": {"network_id": "n", "fixed_ips": [{"ip_address": "10.0.0.5"}], "binding:host_id": "hv1",
        "binding:profile": {"interface_name": "vm1-eth0"}}});
    let src = id(&b.call("POST", &b.v1("ports"), Some(&body)).await.ok(201)["port"]);
    let (f, _, dst) = fixtures(&b).await;
    let agent = Arc::new(Agent::of(&servers[0], &token));
    let s = id(&b
        .session(
            json!({"name": "s", "traffic_mirror_filter_id": f, "traffic_mirror_sources": [src],
            "traffic_mirror_target_id": dst, "traffic_mirror_target_type": "eni", "priority": 1, "enabled": true}),
        )
        .await
        .ok(201)["traffic_mirror_session"]);
    let mut known = agent.poll("hv1", "", 0).await["content_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = b.v3(&format!("traffic-mirror-sessions/{s}"));
    for (round, vni) in (100..105).enumerate() {
        let poll = {
            let (agent, known) = (agent.clone(), known.clone());
            tokio::spawn(async move {
                let doc = agent.poll("hv1", &known, 20).await;
                (doc, Instant::now())
            })
        };
        // The poll is waiting on server A before the change is made through server B.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !poll.is_finished(),
            "round {round}: answered before any change"
        );
        let change = json!({"traffic_mirror_session": {"virtual_network_id": vni}});
        b.call("PUT", &path, Some(&change)).await.ok(200);
        let changed_at = Instant::now();
        let (doc, answered_at) = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("the poll on A answers")
            .unwrap();
        let latency = answered_at.saturating_duration_since(changed_at);
        assert!(
            latency < Duration::from_secs(1),
            "round {round}: woken after {latency:?}"
        );
        assert_eq!(
            doc["interfaces"][0]["sessions"][0]["vni"], vni,
            "the document has the change: {doc}"
        );
        known = doc["content_hash"].as_str().unwrap().to_owned();
        eprintln!("round {round}: agent on A woken {latency:?} after the change on B");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_request_may_go_to_any_server() {
    let Some((servers, _db)) = pg_servers("any_request_may_go_to_any_server", 3).await else {
        return;
    };
    let c: Vec<Api> = servers.iter().map(|s| s.client()).collect();
    let (f, src, dst) = fixtures(&c[0]).await;
    let s = id(&c[1]
        .session(session_body(&f, &[&src], &dst, 1))
        .await
        .ok(201)["traffic_mirror_session"]);
    let path = c[2].v3(&format!("traffic-mirror-sessions/{s}"));
    c[2].call(
        "PUT",
        &path,
        Some(&json!({"traffic_mirror_session": {"name": "renamed"}})),
    )
    .await
    .ok(200);
    for api in &c {
        let shown = api.get(&path).await.ok(200);
        assert_eq!(shown["traffic_mirror_session"]["name"], "renamed");
    }
    c[0].call("DELETE", &path, None).await.ok(204);
    c[1].get(&path).await.err(404, "VPC.1701");
}

/// The agent API's answer to `GET path` with `token`: the status.
async fn agent_status(server: &common::TestServer, token: &str, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{}/agent/v1{path}", server.addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_disabled_through_one_server_is_refused_by_the_other_within_a_second() {
    let Some((servers, _db)) = pg_servers("a_host_disabled_through_one_server", 2).await else {
        return;
    };
    let (a, b) = (&servers[0], &servers[1]);
    let token = a.client().host_token("hv1").await;
    let poll = "/hosts/hv1/desired-state?wait=0";
    // Server B has the host in its cache before the change.
    assert_eq!(agent_status(b, &token, poll).await, 200);
    assert_eq!(agent_status(b, &token, poll).await, 200);
    for (what, action) in [("disabled", "disable"), ("rotated away", "rotate")] {
        let changed = Instant::now();
        a.client()
            .call("POST", &format!("/admin/v1/hosts/hv1/{action}"), None)
            .await
            .ok(200);
        loop {
            if agent_status(b, &token, poll).await == 401 {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "a {what} host is still accepted by the other server after a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "{what}: refused by the other server after {:?}",
            changed.elapsed()
        );
        if action == "disable" {
            a.client()
                .call("POST", "/admin/v1/hosts/hv1/enable", None)
                .await
                .ok(200);
            // Enabled again: accepted again (also on B) within a second.
            let enabled = Instant::now();
            while agent_status(b, &token, poll).await != 200 {
                assert!(enabled.elapsed() < Duration::from_secs(1));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
