//! Answers the framework makes itself (an unknown path, a wrong method, a malformed query
//! parameter) come in the face's own JSON error format, with the request id.

mod common;

use common::TestServer;

async fn raw(server: &TestServer, method: &str, path: &str) -> (u16, serde_json::Value, String) {
    let response = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("http://{}{path}", server.addr),
        )
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {content_type}"
    );
    let rid = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body, rid)
}

#[tokio::test]
async fn each_face_answers_unknown_paths_and_wrong_methods_in_its_own_format() {
    let server = TestServer::start().await;
    let p = &server.creds.project_id;

    // Signed, so that the method is what is wrong (authentication comes first).
    let api = server.client();
    let reply = api
        .call_raw("PUT", &format!("/v3/{p}/vpc/traffic-mirror-filters"), b"")
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.body["error_code"], "VPC.0405");
    assert!(reply.body["request_id"].is_string());
    let reply = api.call_raw("PATCH", &format!("/v1/{p}/ports"), b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.body["code"], "VPC.0405",
        "the v1 body: {}",
        reply.body
    );
    let reply = api.call_raw("PUT", "/admin/v1/projects", b"").await;
    assert_eq!(
        (reply.status, reply.body["code"].as_str()),
        (405, Some("MethodNotAllowed"))
    );

    let (status, body, _) = raw(&server, "GET", "/v3/nothing/here").await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (404, Some("VPC.0404"))
    );

    let (status, body, rid) = raw(&server, "DELETE", "/").await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (405, Some("UnsupportedHTTPMethod"))
    );
    assert_eq!(body["RequestId"], rid.as_str());

    let (status, body, _) = raw(&server, "GET", "/admin/v1/nothing").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NotFound")));
}
