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
    let r = reqwest::Client::new()
        .put(format!("http://{}/", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["Code"], "UnsupportedHTTPMethod");
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

const UA: &str = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The reference's signed examples (§2.3) verify against the server's own verification path:
/// their signatures match, so what stops them is their (old) timestamp; a one-character change
/// of the signature is a mismatch instead.
#[tokio::test]
async fn reference_vectors_verify_end_to_end() {
    let s = Srv::with_test_credential().await;
    let acs3_1_query = "ClientToken=tok-1&Enabled=True&PacketLength=1500&Priority=1&RegionId=cn-hangzhou&Tag.1.Key=k1&Tag.1.Value=v+1%2F%C3%A9&TrafficMirrorFilterId=tmf-1&TrafficMirrorSessionName=my+session~%2A&TrafficMirrorSourceIds.1=eni-s1&TrafficMirrorSourceIds.2=eni-s2&TrafficMirrorTargetId=eni-t&TrafficMirrorTargetType=NetworkInterface&VirtualNetworkId=10";
    let signed = "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version";
    for (sig, code) in [
        (
            "64237ae782301da657310256e51ffd2b9c9354983368e8348c6c357621258cf9",
            "InvalidTimeStamp.Expired",
        ),
        (
            "64237ae782301da657310256e51ffd2b9c9354983368e8348c6c357621258cf8",
            "SignatureDoesNotMatch",
        ),
    ] {
        let auth =
            format!("ACS3-HMAC-SHA256 Credential=testAKID,SignedHeaders={signed},Signature={sig}");
        s.raw(
            acs3_1_query,
            &[
                ("host", "127.0.0.1:18081"),
                ("x-acs-version", "2016-04-28"),
                ("x-acs-action", "CreateTrafficMirrorSession"),
                ("user-agent", UA),
                ("x-acs-date", "2026-11-23T09:17:01Z"),
                ("x-acs-signature-nonce", "9d19537869a10a254303a8e7ed15dd4f"),
                ("accept", "application/json"),
                ("x-acs-content-sha256", EMPTY),
                ("x-acs-credentials-provider", "static_ak"),
                ("authorization", &auth),
            ],
            "",
        )
        .await
        .err(400, code);
    }
    // ACS3 #2: form body, STS headers.
    let signed2 = "accept;content-type;host;user-agent;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version";
    for (body, code) in [
        (
            "TrafficMirrorSessionId=tms-1&TrafficMirrorSessionName=a+b%26c",
            "InvalidTimeStamp.Expired",
        ),
        (
            "TrafficMirrorSessionId=tms-2&TrafficMirrorSessionName=a+b%26c",
            "SignatureDoesNotMatch",
        ),
    ] {
        let auth = format!("ACS3-HMAC-SHA256 Credential=testAKID,SignedHeaders={signed2},Signature=273c06eab410aeb97d2a5109848ddef1c298b1dfae08cf9d1b3c3918df20bc34");
        s.raw(
            "RegionId=cn-hangzhou&Enabled=False",
            &[
                ("host", "127.0.0.1:18084"),
                ("x-acs-action", "UpdateTrafficMirrorSessionAttribute"),
                ("x-acs-version", "2016-04-28"),
                ("x-acs-date", "2026-11-23T09:19:35Z"),
                ("x-acs-signature-nonce", "e296d81905af369e90284b1411b7c6f3"),
                ("accept", "application/json"),
                (
                    "x-acs-content-sha256",
                    "45b1465cb56a3ca1959f291d47f1d27a7765f255dbfc00d98ce91338508a2b22",
                ),
                ("x-acs-credentials-provider", "static_sts"),
                ("x-acs-accesskey-id", "testAKID"),
                ("x-acs-security-token", "sts-token-xyz"),
                ("user-agent", UA),
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
            body,
        )
        .await
        .err(400, code);
    }
    // HMAC-SHA1 #1.
    let q = "Action=GetTrafficMirrorServiceStatus&Format=json&Version=2016-04-28&Timestamp=2026-11-23T09%3A17%3A14Z&SignatureNonce=ffbd09443a4092b4d7a4b8e0ecb801cc&RegionId=cn-hangzhou&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=testAKID&Signature=";
    s.raw(&format!("{q}j0sXeNaGy7XYwl6spU4k2OsolNk%3D"), &[], "")
        .await
        .err(400, "InvalidTimeStamp.Expired");
    s.raw(&format!("{q}j0sXeNaGy7XYwl6spU4k2OsolNA%3D"), &[], "")
        .await
        .err(400, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn header_and_format_errors() {
    let s = Srv::start().await;
    let send = |t: Tweak| {
        s.send(
            Scheme::Acs3,
            "GetTrafficMirrorServiceStatus",
            status_params(),
            t,
        )
    };
    send(Tweak {
        raw_date: Some("yesterday".into()),
        ..Default::default()
    })
    .await
    .err(400, "InvalidTimeStamp.Format");
    for header in [
        "host",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-action",
    ] {
        send(Tweak {
            unsigned: Some(header.into()),
            ..Default::default()
        })
        .await
        .err(400, "IncompleteSignature");
    }
    send(Tweak {
        version: Some("2014-01-01".into()),
        ..Default::default()
    })
    .await
    .err(400, "InvalidVersion");
    s.send(
        Scheme::Acs3Form,
        "GetTrafficMirrorServiceStatus",
        status_params(),
        Tweak {
            wrong_body_hash: true,
            ..Default::default()
        },
    )
    .await
    .err(400, "SignatureDoesNotMatch");
    // A form body must be signed together with its content-type.
    s.send(
        Scheme::Acs3Form,
        "GetTrafficMirrorServiceStatus",
        status_params(),
        Tweak {
            unsigned: Some("content-type".into()),
            ..Default::default()
        },
    )
    .await
    .err(400, "IncompleteSignature");
    let r = s
        .raw(
            "",
            &[("authorization", "ACS3-HMAC-SHA256 Credential=x")],
            "",
        )
        .await;
    r.err(400, "IncompleteSignature");
}
