//! Throttling on a real server with small buckets: each face's own answer and `Retry-After`,
//! buckets per credential and per client address (other keys and addresses go on), health
//! checks and the agent API left alone, failed authentications closing an address before any
//! signature is verified, and every bucket refilling.

mod common;
#[path = "aliyun_support.rs"]
mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{Reply, TestServer};
use serde_json::{json, Value};
use support::{Scheme, Srv, Tweak};
use tmirror_server::throttle::Rate;

const HERE: &str = "127.0.0.1";
const ELSEWHERE: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `rate` tokens per `secs` seconds, bursts of `burst`.
fn rate(rate: u32, secs: u64, burst: u32) -> Rate {
    Rate {
        rate,
        per: Duration::from_secs(secs),
        burst,
    }
}

/// Polls `attempt` until it says yes; buckets refill within seconds, so 15 s is a failure.
async fn eventually<F, Fut>(what: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !attempt().await {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn audit_lines(server: &TestServer) -> Vec<Value> {
    std::fs::read_to_string(server.data_path().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[track_caller]
fn huawei_throttled(r: &Reply, policy: &str, limit: &str) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error_code"], "APIGW.0308");
    assert_eq!(
        r.body["error_msg"],
        format!("The throttling threshold has been reached: policy {policy} over ratelimit,limit:{limit}")
    );
    assert_eq!(r.body["request_id"].as_str(), r.request_id.as_deref());
    assert_eq!(r.retry_after.as_deref(), Some("1"));
}

#[tokio::test]
async fn huawei_a_credentials_bucket() {
    let server = TestServer::start_with(|c| {
        c.throttle.per_key = rate(1, 1, 5);
        c.throttle.per_address = Rate::OFF;
    })
    .await;
    let admin = server.client();
    let tenant = admin.tenant("throttled", "admin").await; // two of the operator's five
    let filters = tenant.v3("traffic-mirror-filters");
    for _ in 0..5 {
        tenant.get(&filters).await.ok(200);
    }
    let refused = tenant
        .call(
            "POST",
            &filters,
            Some(&json!({"traffic_mirror_filter": {"name": "never"}})),
        )
        .await;
    huawei_throttled(&refused, "user", "1,time:1 second");
    // Another credential, from the same address, goes on.
    admin.get(&admin.v3("traffic-mirror-filters")).await.ok(200);

    // Once refilled, the list shows the refused create changed nothing.
    eventually("the credential's bucket refills", || async {
        let listed = tenant.get(&filters).await;
        if listed.status == 200 {
            assert_eq!(
                listed.body["traffic_mirror_filters"],
                json!([]),
                "{}",
                listed.body
            );
        }
        listed.status == 200
    })
    .await;
}

#[tokio::test]
async fn aliyun_a_credentials_bucket_and_its_nonce_left_unused() {
    let s = Srv::start_with(|c| {
        c.throttle.per_key = rate(1, 1, 3);
        c.throttle.per_address = Rate::OFF;
    })
    .await;
    let status = || support::p(&[("RegionId", "cn-hangzhou")]);
    for _ in 0..3 {
        s.send(
            Scheme::Acs3,
            "GetTrafficMirrorServiceStatus",
            status(),
            Tweak::default(),
        )
        .await
        .ok();
    }
    let nonce = support::nonce();
    let with_nonce = || Tweak {
        nonce: Some(nonce.clone()),
        ..Tweak::default()
    };
    let refused = s
        .send(
            Scheme::Sha1,
            "GetTrafficMirrorServiceStatus",
            status(),
            with_nonce(),
        )
        .await;
    refused.err(400, "Throttling.User");
    assert_eq!(
        refused.body["Message"],
        "Request was denied due to user flow control."
    );
    assert_eq!(refused.retry_after.as_deref(), Some("1"));

    // The nonce of the refused request was not used up: the same request goes through once
    // the bucket has a token again.
    eventually("the credential's bucket refills", || async {
        let a = s
            .send(
                Scheme::Sha1,
                "GetTrafficMirrorServiceStatus",
                status(),
                with_nonce(),
            )
            .await;
        assert!(a.status == 200 || a.code() == "Throttling.User", "{a:?}");
        a.status == 200
    })
    .await;
}

#[tokio::test]
async fn an_addresses_bucket_in_every_faces_format() {
    let server = TestServer::start_with(|c| {
        c.throttle.per_key = Rate::OFF;
        c.throttle.per_address = rate(1, 1, 4);
    })
    .await;
    let admin = server.client();
    for _ in 0..4 {
        admin.get("/admin/v1/projects").await.ok(200);
    }
    let refused = admin.get("/admin/v1/projects").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["code"], "Throttled");
    assert_eq!(
        refused.body["request_id"].as_str(),
        refused.request_id.as_deref()
    );
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("requests from this address are limited to 1 per 1 second"));
    assert_eq!(refused.retry_after.as_deref(), Some("1"));

    // The Huawei face and the Alibaba face say it their own way.
    let huawei = admin.get(&admin.v3("traffic-mirror-filters")).await;
    huawei_throttled(&huawei, "ip", "1,time:1 second");
    let http = reqwest::Client::new();
    let aliyun = http
        .post(format!("http://{}/?Action=DescribeRegions", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(aliyun.status(), 400);
    assert!(aliyun.headers().contains_key("retry-after"));
    let body: Value = aliyun.json().await.unwrap();
    assert_eq!(body["Code"], "Throttling", "{body}");
    assert_eq!(
        body["Message"],
        "Request was denied due to request throttling."
    );

    // Not health checks, not the agent API (refused here for its missing token, not throttled).
    let health = http
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let agent = http
        .get(format!(
            "http://{}/agent/v1/hosts/h1/desired-state",
            server.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(agent.status(), 401);

    // Another address goes on, with the same credential.
    let elsewhere = server.client().connecting_from(ip(ELSEWHERE));
    elsewhere.get("/admin/v1/projects").await.ok(200);

    eventually("the address's bucket refills", || async {
        admin.get("/admin/v1/projects").await.status == 200
    })
    .await;
    // A flood is not written to the audit trail line by line.
    assert!(
        audit_lines(&server).iter().all(|l| l["status"] != 429),
        "{:?}",
        audit_lines(&server)
    );
}

#[tokio::test]
async fn bad_signatures_close_their_address_before_any_verification_until_refill() {
    let server = TestServer::start_with(|c| {
        c.throttle.auth_failures = rate(3, 3, 3);
    })
    .await;
    let good = server.client().connecting_from(ip(HERE));
    let mut forged = server.client().connecting_from(ip(HERE));
    forged.creds.secret_key = "not-the-secret".into();
    let filters = good.v3("traffic-mirror-filters");
    good.get(&filters).await.ok(200);
    for _ in 0..3 {
        forged.get(&filters).await.err(401, "APIGW.0301");
    }
    let refused = forged.get(&filters).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(
        refused.body["error_msg"],
        "The throttling threshold has been reached: policy ip over ratelimit,limit:3,time:3 seconds"
    );
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    // The correct key from that address is refused too, and so is an unsigned request: nothing
    // is verified or looked up for the address now.
    huawei_throttled_failures(&good.get(&filters).await);
    let admin = good.get("/admin/v1/projects").await;
    assert_eq!(
        (admin.status, admin.body["code"].as_str()),
        (429, Some("Throttled"))
    );
    let http = reqwest::Client::new();
    let unsigned = http
        .post(format!("http://{}/", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    let body: Value = unsigned.json().await.unwrap();
    assert_eq!(body["Code"], "Throttling", "{body}");

    // Another address is not affected.
    server
        .client()
        .connecting_from(ip(ELSEWHERE))
        .get(&filters)
        .await
        .ok(200);

    // The refusals are in the audit trail, without a secret.
    let lines = audit_lines(&server);
    let throttled: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["refused"]
                .as_str()
                .is_some_and(|r| r.starts_with("throttled"))
        })
        .collect();
    assert!(!throttled.is_empty(), "{lines:?}");
    assert_eq!(
        throttled[0]["client"].as_str().unwrap().split(':').next(),
        Some(HERE)
    );
    let text = std::fs::read_to_string(server.data_path().join("audit.log")).unwrap();
    assert!(!text.contains(&good.creds.secret_key));

    eventually("the address's failure bucket refills", || async {
        good.get(&filters).await.status == 200
    })
    .await;
}

#[track_caller]
fn huawei_throttled_failures(r: &Reply) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error_code"], "APIGW.0308");
}

#[tokio::test]
async fn aliyun_bad_signatures_close_their_address() {
    let s = Srv::start_with(|c| {
        c.throttle.auth_failures = rate(2, 2, 2);
    })
    .await;
    let status = || support::p(&[("RegionId", "cn-hangzhou")]);
    let forged = || Tweak {
        secret: Some("not-the-secret".into()),
        ..Tweak::default()
    };
    for _ in 0..2 {
        s.send(
            Scheme::Acs3,
            "GetTrafficMirrorServiceStatus",
            status(),
            forged(),
        )
        .await
        .err(400, "SignatureDoesNotMatch");
    }
    let refused = s
        .send(
            Scheme::Acs3,
            "GetTrafficMirrorServiceStatus",
            status(),
            Tweak::default(),
        )
        .await;
    refused.err(400, "Throttling");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    eventually("the address's failure bucket refills", || async {
        s.send(
            Scheme::Acs3,
            "GetTrafficMirrorServiceStatus",
            status(),
            Tweak::default(),
        )
        .await
        .status
            == 200
    })
    .await;
}
