//! The Alibaba face's transport and authentication: both signature schemes, form bodies,
//! replayed nonces, skewed timestamps, unknown keys, tampering, routing and the error body.

#[path = "aliyun_support.rs"]
mod support;

use support::{nonce, p, Scheme, Srv, Tweak};
use time::{Duration, OffsetDateTime};

fn status_params() -> Vec<(String, String)> {
    p(&[("RegionId", "cn-hangzhou")])
}

#[tokio::test]
async fn both_schemes_and_form_bodies_are_accepted() {
    let s = Srv::start().await;
    for scheme in [Scheme::Acs3, Scheme::Acs3Form, Scheme::Sha1] {
        let a = s
            .send(
                scheme,
                "GetTrafficMirrorServiceStatus",
                status_params(),
                Tweak::default(),
            )
            .await;
        assert_eq!(a.ok()["Enabled"], false, "{scheme:?}");
        let rid = a.body["RequestId"].as_str().unwrap();
        assert_eq!(rid, a.request_id, "X-Request-Id and RequestId agree");
        assert_eq!(rid, rid.to_uppercase(), "RequestId is upper case");
        assert_eq!(rid.len(), 36);
    }
}

#[tokio::test]
async fn replayed_nonces_are_refused_for_both_schemes() {
    let s = Srv::start().await;
    for scheme in [Scheme::Acs3, Scheme::Sha1] {
        let n = nonce();
        let t = Tweak {
            nonce: Some(n.clone()),
            ..Default::default()
        };
        s.send(
            scheme,
            "GetTrafficMirrorServiceStatus",
            status_params(),
            t.clone(),
        )
        .await
        .ok();
        s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
            .await
            .err(400, "SignatureNonceUsed");
    }
}

#[tokio::test]
async fn a_bad_signature_does_not_use_up_the_nonce() {
    let s = Srv::start().await;
    let n = nonce();
    let bad = Tweak {
        nonce: Some(n.clone()),
        secret: Some("wrong".into()),
        ..Default::default()
    };
    s.send(
        Scheme::Acs3,
        "GetTrafficMirrorServiceStatus",
        status_params(),
        bad,
    )
    .await
    .err(400, "SignatureDoesNotMatch");
    let good = Tweak {
        nonce: Some(n),
        ..Default::default()
    };
    s.send(
        Scheme::Acs3,
        "GetTrafficMirrorServiceStatus",
        status_params(),
        good,
    )
    .await
    .ok();
}

#[tokio::test]
async fn timestamps_outside_15_minutes_are_refused() {
    let s = Srv::start().await;
    for scheme in [Scheme::Acs3, Scheme::Sha1] {
        for skew in [Duration::minutes(16), Duration::minutes(-16)] {
            let t = Tweak {
                time: Some(OffsetDateTime::now_utc() + skew),
                ..Default::default()
            };
            s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
                .await
                .err(400, "InvalidTimeStamp.Expired");
        }
        let t = Tweak {
            time: Some(OffsetDateTime::now_utc() - Duration::minutes(14)),
            ..Default::default()
        };
        s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
            .await
            .ok();
    }
}

#[tokio::test]
async fn wrong_secrets_unknown_keys_and_tampering() {
    let s = Srv::start().await;
    for scheme in [Scheme::Acs3, Scheme::Acs3Form, Scheme::Sha1] {
        let t = Tweak {
            secret: Some("nope".into()),
            ..Default::default()
        };
        s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
            .await
            .err(400, "SignatureDoesNotMatch");
        let t = Tweak {
            access_key: Some("NOSUCHKEY".into()),
            ..Default::default()
        };
        s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
            .await
            .err(404, "InvalidAccessKeyId.NotFound");
    }
    for scheme in [Scheme::Acs3, Scheme::Sha1] {
        let t = Tweak {
            tamper: Some(("Extra".into(), "1".into())),
            ..Default::default()
        };
        s.send(scheme, "GetTrafficMirrorServiceStatus", status_params(), t)
            .await
            .err(400, "SignatureDoesNotMatch");
    }
}

#[tokio::test]
async fn unsigned_requests_and_routing_errors() {
    let s = Srv::start().await;
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/?Action=GetTrafficMirrorServiceStatus&Version=2016-04-28",
            s.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["Code"], "IncompleteSignature");
    assert!(body["HostId"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(body["Recommend"]
        .as_str()
        .unwrap()
        .contains("IncompleteSignature"));

    s.call("NoSuchAction", &[])
        .await
        .err(404, "InvalidAction.NotFound");
}

#[tokio::test]
async fn the_service_must_be_opened_first_and_only_once() {
    let s = Srv::start().await;
    s.rcall("ListTrafficMirrorFilters", &[])
        .await
        .err(400, "OptInRequired.TrafficMirror");
    let a = s.call("OpenTrafficMirrorService", &[]).await;
    assert_eq!(a.ok()["Code"], "200");
    assert_eq!(a.ok()["Message"], "successful");
    s.call("OpenTrafficMirrorService", &[])
        .await
        .err(400, "ORDER.OPEND");
    assert_eq!(
        s.call("GetTrafficMirrorServiceStatus", &[]).await.ok()["Enabled"],
        true
    );
    s.rcall("ListTrafficMirrorFilters", &[]).await.ok();
    // RegionId is required by the other actions.
    s.call("ListTrafficMirrorFilters", &[])
        .await
        .err(400, "MissingParameter");
}

#[tokio::test]
async fn get_requests_work_too() {
    let s = Srv::start().await;
    // HMAC-SHA1 over GET: the method is part of the string to sign.
    let mut params = status_params();
    for (k, v) in [
        ("Action", "GetTrafficMirrorServiceStatus".to_owned()),
        ("Format", "JSON".into()),
        ("Version", "2016-04-28".into()),
        (
            "Timestamp",
            tmirror_sign::aliyun::format_timestamp(OffsetDateTime::now_utc()),
        ),
        ("SignatureNonce", nonce()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("AccessKeyId", s.ak.clone()),
        ("SignatureType", String::new()),
    ] {
        params.push((k.into(), v));
    }
    let sig = tmirror_sign::aliyun::sign_hmac_sha1("GET", &params, &s.sk);
    params.push(("Signature".into(), sig));
    let q = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                tmirror_sign::aliyun::pct(k),
                tmirror_sign::aliyun::pct(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let r = reqwest::get(format!("http://{}/?{q}", s.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["Enabled"], false);
}
