//! The OpenAPI document of the Huawei face: served without authentication at `/openapi.json`,
//! equal to the checked-in `docs/openapi.json`, and complete.
//!
//! After changing the face, regenerate the checked-in copy with
//! `TMIRROR_UPDATE_OPENAPI=1 cargo test -p tmirror-server --test openapi`.

mod common;

use std::path::PathBuf;

use serde_json::Value;

const REGENERATE: &str = "TMIRROR_UPDATE_OPENAPI=1 cargo test -p tmirror-server --test openapi";

/// Every operation of the face: SDK method name, HTTP method, path, success status.
const OPERATIONS: &[(&str, &str, &str, u16)] = &[
    (
        "create_traffic_mirror_session",
        "post",
        "/v3/{project_id}/vpc/traffic-mirror-sessions",
        201,
    ),
    (
        "show_traffic_mirror_session",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
        200,
    ),
    (
        "list_traffic_mirror_sessions",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-sessions",
        200,
    ),
    (
        "update_traffic_mirror_session",
        "put",
        "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
        200,
    ),
    (
        "delete_traffic_mirror_session",
        "delete",
        "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}",
        204,
    ),
    (
        "add_sources_to_traffic_mirror_session",
        "put",
        "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}/add-sources",
        200,
    ),
    (
        "remove_sources_from_traffic_mirror_session",
        "put",
        "/v3/{project_id}/vpc/traffic-mirror-sessions/{traffic_mirror_session_id}/remove-sources",
        200,
    ),
    (
        "create_traffic_mirror_filter",
        "post",
        "/v3/{project_id}/vpc/traffic-mirror-filters",
        201,
    ),
    (
        "show_traffic_mirror_filter",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
        200,
    ),
    (
        "list_traffic_mirror_filters",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-filters",
        200,
    ),
    (
        "update_traffic_mirror_filter",
        "put",
        "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
        200,
    ),
    (
        "delete_traffic_mirror_filter",
        "delete",
        "/v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
        204,
    ),
    (
        "create_traffic_mirror_filter_rule",
        "post",
        "/v3/{project_id}/vpc/traffic-mirror-filter-rules",
        201,
    ),
    (
        "show_traffic_mirror_filter_rule",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
        200,
    ),
    (
        "list_traffic_mirror_filter_rules",
        "get",
        "/v3/{project_id}/vpc/traffic-mirror-filter-rules",
        200,
    ),
    (
        "update_traffic_mirror_filter_rule",
        "put",
        "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
        200,
    ),
    (
        "delete_traffic_mirror_filter_rule",
        "delete",
        "/v3/{project_id}/vpc/traffic-mirror-filter-rules/{traffic_mirror_filter_rule_id}",
        204,
    ),
    ("create_port", "post", "/v1/{project_id}/ports", 201),
    ("show_port", "get", "/v1/{project_id}/ports/{port_id}", 200),
    ("list_ports", "get", "/v1/{project_id}/ports", 200),
    (
        "update_port",
        "put",
        "/v1/{project_id}/ports/{port_id}",
        200,
    ),
    (
        "delete_port",
        "delete",
        "/v1/{project_id}/ports/{port_id}",
        204,
    ),
    ("create_publicip", "post", "/v1/{project_id}/publicips", 200),
    (
        "show_publicip",
        "get",
        "/v1/{project_id}/publicips/{publicip_id}",
        200,
    ),
    ("list_publicips", "get", "/v1/{project_id}/publicips", 200),
    (
        "update_publicip",
        "put",
        "/v1/{project_id}/publicips/{publicip_id}",
        200,
    ),
    (
        "delete_publicip",
        "delete",
        "/v1/{project_id}/publicips/{publicip_id}",
        204,
    ),
];

fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

async fn fetch(server: &common::TestServer) -> String {
    // No Authorization header: the document is public.
    let reply = reqwest::get(format!("http://{}/openapi.json", server.addr))
        .await
        .expect("GET /openapi.json");
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(
        reply
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    reply.text().await.expect("body")
}

#[tokio::test]
async fn served_document_equals_docs_openapi_json() {
    let server = common::TestServer::start().await;
    let served = fetch(&server).await;
    let path = checked_in_path();
    if std::env::var_os("TMIRROR_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).expect("write docs/openapi.json");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if served != checked_in {
        let same_json = serde_json::from_str::<Value>(&checked_in).ok()
            == serde_json::from_str::<Value>(&served).ok();
        panic!(
            "docs/openapi.json is out of date with the code ({}); regenerate it with\n\n    {REGENERATE}\n\nand commit it",
            if same_json {
                "same JSON, different formatting"
            } else {
                "the documents differ"
            }
        );
    }
}

#[tokio::test]
async fn every_operation_is_documented_and_routed() {
    let server = common::TestServer::start().await;
    let doc: Value = serde_json::from_str(&fetch(&server).await).expect("JSON document");
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));

    let mut documented = 0;
    for (_, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                documented += 1;
            }
        }
    }
    assert_eq!(
        documented,
        OPERATIONS.len(),
        "exactly the face's operations"
    );

    let http = reqwest::Client::new();
    let some_id = "0b0c5b4e-7a5e-4f43-9b55-2d1a3c6f7e81";
    for &(id, method, path, status) in OPERATIONS {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.contains_key(&status.to_string()),
            "{id}: success status {status} documented"
        );
        let successes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
        assert_eq!(successes, [&status.to_string()], "{id}: one success status");
        for code in ["401", "403"] {
            assert!(responses.contains_key(code), "{id}: {code} documented");
        }
        if status == 204 {
            assert!(
                responses["204"].get("content").is_none(),
                "{id}: 204 has no body"
            );
        } else {
            assert!(
                responses[&status.to_string()]["content"]["application/json"]["schema"].is_object(),
                "{id}: success body documented"
            );
        }
        if method == "post" || method == "put" {
            assert_eq!(op["requestBody"]["required"], true, "{id}: request body");
        }
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in path.split('/').filter_map(|s| s.strip_prefix('{')) {
            let name = name.trim_end_matches('}');
            assert!(params.contains(&name), "{id}: path parameter {name}");
        }
        if id.starts_with("list_") {
            let query: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for name in ["id", "limit", "marker"] {
                assert!(query.contains(&name), "{id}: query parameter {name}");
            }
        }

        // The documented path and method are routed: unsigned, they meet the signature check
        // (401), not the 404/405 of an unknown route.
        let url = format!(
            "http://{}{}",
            server.addr,
            path.replace("{project_id}", &server.creds.project_id)
                .replace("{traffic_mirror_session_id}", some_id)
                .replace("{traffic_mirror_filter_id}", some_id)
                .replace("{traffic_mirror_filter_rule_id}", some_id)
                .replace("{port_id}", some_id)
                .replace("{publicip_id}", some_id)
        );
        let reply = http
            .request(method.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .expect("request");
        assert_eq!(
            reply.status().as_u16(),
            401,
            "{id}: {method} {url} is routed"
        );
    }

    let schemes = &doc["components"]["securitySchemes"]["sdk_hmac_sha256"];
    assert_eq!(schemes["type"], "apiKey");
    assert_eq!(schemes["in"], "header");
    assert_eq!(schemes["name"], "Authorization");
    assert_eq!(doc["security"][0]["sdk_hmac_sha256"], serde_json::json!([]));
    for schema in [
        "V3Error",
        "V1Error",
        "LenientInteger",
        "LenientBoolean",
        "PageInfo",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
}
