//! The signature variants beyond the SDKs' defaults, end to end through the server: Alibaba's
//! ACS3-HMAC-SM3 and Huawei's SDK-HMAC-SM3, and the wording of an HMAC-SHA1 mismatch that the
//! legacy Alibaba SDK (aliyun-python-sdk-core) parses.

#[path = "aliyun_support.rs"]
mod support;

use serde_json::Value;
use support::{nonce, p, Answer, Srv};
use time::OffsetDateTime;
use tmirror_sign::aliyun::{self, Acs3Algorithm};
use tmirror_sign::huawei::{self, Algorithm};
use tmirror_sign::Request;

const UA: &str = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2";
const SM3: Acs3Algorithm = Acs3Algorithm::HmacSm3;

/// The reference's ACS3 #1 request signed with ACS3-HMAC-SM3 by the Python SDK's own signer
/// (the vector of `tmirror_sign::aliyun`'s tests): the signature matches, so what stops it is
/// its old timestamp; a one-character change of the signature is a mismatch instead.
#[tokio::test]
async fn sdk_sm3_vector_verifies_end_to_end() {
    let s = Srv::with_test_credential().await;
    let query = "ClientToken=tok-1&Enabled=True&PacketLength=1500&Priority=1&RegionId=cn-hangzhou&Tag.1.Key=k1&Tag.1.Value=v+1%2F%C3%A9&TrafficMirrorFilterId=tmf-1&TrafficMirrorSessionName=my+session~%2A&TrafficMirrorSourceIds.1=eni-s1&TrafficMirrorSourceIds.2=eni-s2&TrafficMirrorTargetId=eni-t&TrafficMirrorTargetType=NetworkInterface&VirtualNetworkId=10";
    let signed = "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version";
    for (sig, code) in [
        (
            "689dd4e4c381f6c4d616be5e01eab23a589e0f822ed72c5a61f4781e4d118fbc",
            "InvalidTimeStamp.Expired",
        ),
        (
            "689dd4e4c381f6c4d616be5e01eab23a589e0f822ed72c5a61f4781e4d118fbd",
            "SignatureDoesNotMatch",
        ),
    ] {
        let auth =
            format!("ACS3-HMAC-SM3 Credential=testAKID,SignedHeaders={signed},Signature={sig}");
        s.raw(
            query,
            &[
                ("host", "127.0.0.1:18081"),
                ("x-acs-version", "2016-04-28"),
                ("x-acs-action", "CreateTrafficMirrorSession"),
                ("user-agent", UA),
                ("x-acs-date", "2026-11-23T09:17:01Z"),
                ("x-acs-signature-nonce", "9d19537869a10a254303a8e7ed15dd4f"),
                ("accept", "application/json"),
                (
                    "x-acs-content-sha256",
                    "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b",
                ),
                ("x-acs-credentials-provider", "static_ak"),
                ("authorization", &auth),
            ],
            "",
        )
        .await
        .err(400, code);
    }
}

/// Sends an ACS3 request signed now with `algorithm`, parameters in a form body as the SDK's
/// generic `call_api` sends them; `payload` overrides the x-acs-content-sha256 sent.
async fn acs3(
    s: &Srv,
    algorithm: Acs3Algorithm,
    secret: &str,
    action: &str,
    params: &[(&str, &str)],
    payload: Option<String>,
) -> Answer {
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", aliyun::pct(k), aliyun::pct(v)))
        .collect::<Vec<_>>()
        .join("&");
    let host = s.addr.to_string();
    let right = algorithm.payload_hash(body.as_bytes());
    let mut headers = vec![
        ("host", host.clone()),
        ("x-acs-action", action.to_owned()),
        ("x-acs-version", "2016-04-28".to_owned()),
        (
            "x-acs-date",
            aliyun::format_timestamp(OffsetDateTime::now_utc()),
        ),
        ("x-acs-signature-nonce", nonce()),
        ("accept", "application/json".to_owned()),
        ("x-acs-content-sha256", right),
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let req = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = aliyun::sign_acs3_with(algorithm, &req, &s.ak, secret, &names).unwrap();
    if let Some(payload) = payload {
        headers[6].1 = payload;
    }
    headers.push(("authorization", auth));
    let sent: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| *k != "host")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    s.raw("", &sent, &body).await
}

#[tokio::test]
async fn acs3_hmac_sm3_requests_work_and_are_checked() {
    let s = Srv::start().await;
    let sk = s.sk.clone();
    acs3(&s, SM3, &sk, "OpenTrafficMirrorService", &[], None)
        .await
        .ok();
    let created = acs3(
        &s,
        SM3,
        &sk,
        "CreateTrafficMirrorFilter",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TrafficMirrorFilterName", "sm3 é/*"),
        ],
        None,
    )
    .await;
    let id = created.ok()["TrafficMirrorFilterId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = acs3(
        &s,
        SM3,
        &sk,
        "ListTrafficMirrorFilters",
        &[
            ("RegionId", "cn-hangzhou"),
            ("TrafficMirrorFilterIds.1", &id),
        ],
        None,
    )
    .await;
    assert_eq!(
        listed.ok()["TrafficMirrorFilters"][0]["TrafficMirrorFilterName"],
        "sm3 é/*"
    );

    let status = [("RegionId", "cn-hangzhou")];
    acs3(
        &s,
        SM3,
        "wrong",
        "GetTrafficMirrorServiceStatus",
        &status,
        None,
    )
    .await
    .err(400, "SignatureDoesNotMatch");
    // Under SM3, x-acs-content-sha256 is the SM3 of the body: its SHA-256 does not pass.
    let body = "RegionId=cn-hangzhou";
    let sha = aliyun::content_sha256(body.as_bytes());
    acs3(
        &s,
        SM3,
        &sk,
        "GetTrafficMirrorServiceStatus",
        &status,
        Some(sha),
    )
    .await
    .err(400, "SignatureDoesNotMatch");
    // And the reverse.
    let sm3 = SM3.payload_hash(body.as_bytes());
    let a = acs3(
        &s,
        Acs3Algorithm::HmacSha256,
        &sk,
        "GetTrafficMirrorServiceStatus",
        &status,
        Some(sm3),
    )
    .await;
    a.err(400, "SignatureDoesNotMatch");
    assert!(
        a.body["Message"]
            .as_str()
            .unwrap()
            .contains("x-acs-content-sha256"),
        "{:?}",
        a.body
    );
    acs3(
        &s,
        SM3,
        &sk,
        "DeleteTrafficMirrorFilter",
        &[("RegionId", "cn-hangzhou"), ("TrafficMirrorFilterId", &id)],
        None,
    )
    .await
    .ok();
}

#[tokio::test]
async fn other_acs3_algorithms_are_refused_by_name() {
    let s = Srv::start().await;
    let sig = "689dd4e4c381f6c4d616be5e01eab23a589e0f822ed72c5a61f4781e4d118fbc";
    let auth = format!(
        "ACS3-RSA-SHA256 Credential={},SignedHeaders=host,Signature={sig}",
        s.ak
    );
    let a = s
        .raw(
            "RegionId=cn-hangzhou",
            &[
                ("x-acs-action", "GetTrafficMirrorServiceStatus"),
                ("x-acs-version", "2016-04-28"),
                ("authorization", &auth),
            ],
            "",
        )
        .await;
    a.err(400, "IncompleteSignature");
    let message = a.body["Message"].as_str().unwrap();
    assert!(
        message.contains("ACS3-RSA-SHA256") && message.contains("ACS3-HMAC-SM3"),
        "{message}"
    );
}

/// An HMAC-SHA1 mismatch says `...server string to sign is:<string to sign>`, with nothing
/// after it and no other `:`, because aliyun-python-sdk-core compares
/// `message.split(':')[1]` with its own string to sign (and raised IndexError before).
#[tokio::test]
async fn sha1_mismatch_carries_the_string_to_sign() {
    let s = Srv::start().await;
    let client = reqwest::Client::new();
    for (method, in_body) in [("GET", false), ("POST", false), ("POST", true)] {
        let mut params = p(&[
            ("Action", "GetTrafficMirrorServiceStatus"),
            ("Format", "JSON"),
            ("Version", "2016-04-28"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureType", ""),
            ("SignatureNonce", &nonce()),
            ("AccessKeyId", &s.ak),
            ("OwnerAccount", "a b:c/é*~"),
        ]);
        params.push((
            "Timestamp".into(),
            aliyun::format_timestamp(OffsetDateTime::now_utc()),
        ));
        let sts = aliyun::hmac_sha1_string_to_sign(method, &params);
        let sig = aliyun::sign_hmac_sha1(method, &params, "wrong-secret");
        params.push(("Signature".into(), sig));
        let encoded = |ps: &[(String, String)]| {
            ps.iter()
                .map(|(k, v)| format!("{}={}", aliyun::pct(k), aliyun::pct(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        let url = format!("http://{}/", s.addr);
        let rb = if in_body {
            let (q, b) = params.split_at(4);
            client
                .post(format!("{url}?{}", encoded(q)))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded(b))
        } else {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            client.request(m, format!("{url}?{}", encoded(&params)))
        };
        let response = rb.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["Code"], "SignatureDoesNotMatch", "{body:?}");
        let message = body["Message"].as_str().unwrap();
        assert_eq!(
            message,
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{sts}"
            )
        );
        let parts: Vec<&str> = message.split(':').collect();
        assert_eq!(parts.len(), 2, "{message}");
        assert_eq!(parts[1], sts);
        assert!(sts.starts_with(&format!("{method}&%2F&")), "{sts}");
    }
}

/// Sends a Huawei request signed now with `algorithm`; `extra` headers are sent and signed.
async fn huawei_call(
    s: &Srv,
    algorithm: Algorithm,
    secret: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    extra: &[(&'static str, &str)],
) -> (u16, Value) {
    let host = s.addr.to_string();
    let date = huawei::format_sdk_date(OffsetDateTime::now_utc());
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![
        ("Host", host.clone()),
        ("Content-Type", "application/json".to_owned()),
        ("X-Project-Id", s.project.clone()),
        ("X-Sdk-Date", date.clone()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    let req = Request {
        method,
        path,
        query: "",
        headers: &headers,
        body: body.as_bytes(),
    };
    let auth = huawei::sign_with(algorithm, &req, &s.ak, secret, &date, &names).unwrap();
    let mut rb = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("http://{host}{path}"),
        )
        .header("authorization", auth);
    for (k, v) in &headers[1..] {
        rb = rb.header(*k, v.as_str());
    }
    let response = rb.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn sdk_hmac_sm3_requests_work_and_are_checked() {
    let s = Srv::start().await;
    let sm3 = Algorithm::HmacSm3;
    let sk = s.sk.clone();
    let filters = format!("/v3/{}/vpc/traffic-mirror-filters", s.project);
    let (status, body) = huawei_call(
        &s,
        sm3,
        &sk,
        "POST",
        &filters,
        Some(serde_json::json!({"traffic_mirror_filter": {"name": "sm3"}})),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{body:?}");
    let id = body["traffic_mirror_filter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = huawei_call(&s, sm3, &sk, "GET", &filters, None, &[]).await;
    assert_eq!(status, 200, "{body:?}");
    assert!(body["traffic_mirror_filters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == id.as_str()));

    let (status, body) = huawei_call(&s, sm3, "wrong", "GET", &filters, None, &[]).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (401, Some("APIGW.0301"))
    );

    // The body must be signed: X-Sdk-Content-Sm3: UNSIGNED-PAYLOAD is refused, by its name.
    let (status, body) = huawei_call(
        &s,
        sm3,
        &sk,
        "POST",
        &filters,
        Some(serde_json::json!({"traffic_mirror_filter": {"name": "unsigned"}})),
        &[("X-Sdk-Content-Sm3", "UNSIGNED-PAYLOAD")],
    )
    .await;
    assert_eq!(status, 401, "{body:?}");
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .contains("X-Sdk-Content-Sm3"),
        "{body:?}"
    );

    let (status, body) = huawei_call(
        &s,
        sm3,
        &sk,
        "DELETE",
        &format!("/v3/{}/vpc/traffic-mirror-filters/{id}", s.project),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 204, "{body:?}");
}
