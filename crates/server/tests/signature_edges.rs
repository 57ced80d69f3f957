//! The edges of the signature schemes that let a signed request do something else than what
//! was signed: an unsigned header choosing the action (HMAC-SHA1 signs parameters only), a
//! repeated parameter (signed in full, read once), a Huawei signature that leaves out `host`,
//! and nonces of any length (each is stored).

#[path = "aliyun_support.rs"]
mod support;

use serde_json::{json, Value};
use support::{p, Scheme, Srv, Tweak};
use time::OffsetDateTime;
use tmirror_sign::{huawei, Request};

async fn filter_names(s: &Srv) -> Vec<String> {
    let list = s.rcall("ListTrafficMirrorFilters", &[]).await;
    list.ok()["TrafficMirrorFilters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["TrafficMirrorFilterName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_unsigned_action_header_cannot_change_what_a_sha1_request_does() {
    let s = Srv::opened().await;
    let created = s
        .rcall(
            "CreateTrafficMirrorFilter",
            &[("TrafficMirrorFilterName", "kept")],
        )
        .await;
    let id = created.ok()["TrafficMirrorFilterId"]
        .as_str()
        .unwrap()
        .to_owned();
    let params = p(&[
        ("RegionId", "cn-hangzhou"),
        ("TrafficMirrorFilterId", &id),
        ("TrafficMirrorFilterName", "renamed"),
    ]);
    let tweak = |header: &str, value: &str| Tweak {
        header: Some((header.into(), value.into())),
        ..Tweak::default()
    };
    let a = s
        .send(
            Scheme::Sha1,
            "UpdateTrafficMirrorFilterAttribute",
            params.clone(),
            tweak("x-acs-action", "DeleteTrafficMirrorFilter"),
        )
        .await;
    a.err(400, "InvalidParameter");
    assert!(a.body["Message"].as_str().unwrap().contains("x-acs-action"));
    let a = s
        .send(
            Scheme::Sha1,
            "UpdateTrafficMirrorFilterAttribute",
            params.clone(),
            tweak("x-acs-version", "2099-01-01"),
        )
        .await;
    a.err(400, "InvalidParameter");
    assert_eq!(filter_names(&s).await, ["kept"], "nothing changed");
    // The same header agreeing with the signed action is fine.
    s.send(
        Scheme::Sha1,
        "UpdateTrafficMirrorFilterAttribute",
        params,
        tweak("x-acs-action", "UpdateTrafficMirrorFilterAttribute"),
    )
    .await
    .ok();
    assert_eq!(filter_names(&s).await, ["renamed"]);
}

#[tokio::test]
async fn a_repeated_parameter_is_refused_in_every_scheme() {
    let s = Srv::opened().await;
    for scheme in [Scheme::Acs3, Scheme::Acs3Form, Scheme::Sha1] {
        let a = s
            .send(
                scheme,
                "CreateTrafficMirrorFilter",
                p(&[
                    ("RegionId", "cn-hangzhou"),
                    ("TrafficMirrorFilterName", "first"),
                    ("TrafficMirrorFilterName", "second"),
                ]),
                Tweak::default(),
            )
            .await;
        a.err(400, "InvalidParameter");
        assert!(
            a.body["Message"]
                .as_str()
                .unwrap()
                .contains("TrafficMirrorFilterName"),
            "{scheme:?}: {}",
            a.body
        );
    }
    assert!(filter_names(&s).await.is_empty());
}

#[tokio::test]
async fn nonces_have_a_length_limit() {
    let s = Srv::opened().await;
    for scheme in [Scheme::Acs3, Scheme::Sha1] {
        let long = Tweak {
            nonce: Some("n".repeat(129)),
            ..Tweak::default()
        };
        s.send(
            scheme,
            "ListTrafficMirrorFilters",
            p(&[("RegionId", "r")]),
            long,
        )
        .await
        .err(400, "InvalidParameter");
        let longest = Tweak {
            nonce: Some(format!("{:0>128}", support::nonce())),
            ..Tweak::default()
        };
        s.send(
            scheme,
            "ListTrafficMirrorFilters",
            p(&[("RegionId", "r")]),
            longest,
        )
        .await
        .ok();
    }
}

/// A Huawei request signed over `signed` of its headers.
async fn huawei_signing(s: &Srv, signed: &[&str]) -> (u16, Value) {
    let host = s.addr.to_string();
    let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
    let path = format!("/v3/{}/vpc/traffic-mirror-filters", s.project);
    let headers = vec![
        ("Host", host.clone()),
        ("Content-Type", "application/json".to_owned()),
        ("X-Sdk-Date", date.clone()),
    ];
    let req = Request {
        method: "GET",
        path: &path,
        query: "",
        headers: &headers,
        body: b"",
    };
    let auth = huawei::sign(&req, &s.ak, &s.sk, &date, signed).unwrap();
    let response = reqwest::Client::new()
        .get(format!("http://{host}{path}"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .header("x-sdk-date", date)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_huawei_signature_must_cover_the_host() {
    let s = Srv::start().await;
    let (status, body) = huawei_signing(&s, &["content-type", "x-sdk-date"]).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_code"], "APIGW.0301");
    assert!(
        body["error_msg"].as_str().unwrap().contains("host"),
        "{body}"
    );
    let (status, body) = huawei_signing(&s, &["content-type", "host", "x-sdk-date"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["traffic_mirror_filters"], json!([]));
}
