//! The control plane's Prometheus metrics, on their own listener: requests by face, action and
//! status, with route templates (not raw paths) as actions; the API port does not serve them.

mod common;

use common::TestServer;
use serde_json::json;
use tmirror_scrape::Scrape;

#[tokio::test]
async fn requests_are_counted_by_face_action_and_status() {
    let server =
        TestServer::start_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics = server.metrics_addr.expect("a metrics listener");
    let api = server.client();
    for name in ["a", "b"] {
        api.call(
            "POST",
            &api.v3("traffic-mirror-filters"),
            Some(&json!({"traffic_mirror_filter": {"name": name}})),
        )
        .await
        .ok(201);
    }
    api.get(&api.v3("traffic-mirror-filters/00000000-0000-0000-0000-000000000000"))
        .await;

    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = Scrape::of(&text);
    let request = |action, status| [("face", "huawei"), ("action", action), ("status", status)];
    let create = request("POST /v3/{project_id}/vpc/traffic-mirror-filters", "201");
    assert_eq!(
        scrape.value("tmirror_requests_total", &create),
        Some(2.0),
        "{text}"
    );
    let missing = request(
        "GET /v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",
        "404",
    );
    assert_eq!(
        scrape.value("tmirror_requests_total", &missing),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(&server.creds.project_id),
        "raw paths are not labels"
    );
    // Every request is timed, by route: the histogram counts the two creates.
    let route = &create[..2];
    assert_eq!(
        scrape.value("tmirror_request_duration_seconds", route),
        Some(2.0),
        "{text}"
    );
    assert_eq!(scrape.value("tmirror_agents", &[]), Some(0.0), "{text}");

    // Not on the API port.
    let on_api = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
}
