//! The control plane's Prometheus metrics, on their own listener: requests by face, action and
//! status, with route templates (not raw paths) as actions; the API port does not serve them.

mod common;

use common::TestServer;
use serde_json::json;

/// The value of the sample whose name and labels are exactly `series`, if exposed.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

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
    let create = r#"tmirror_requests_total{face="huawei",action="POST /v3/{project_id}/vpc/traffic-mirror-filters",status="201"}"#;
    assert_eq!(sample(&text, create), Some(2.0), "{text}");
    let missing = r#"tmirror_requests_total{face="huawei",action="GET /v3/{project_id}/vpc/traffic-mirror-filters/{traffic_mirror_filter_id}",status="404"}"#;
    assert_eq!(sample(&text, missing), Some(1.0), "{text}");
    assert!(
        !text.contains(&server.creds.project_id),
        "raw paths are not labels"
    );
    assert!(text.contains("# TYPE tmirror_request_duration_seconds histogram"));
    assert_eq!(sample(&text, "tmirror_agents"), Some(0.0), "{text}");
    assert!(text.ends_with("# EOF\n"));

    // Not on the API port.
    let on_api = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap();
    assert_eq!(on_api.status(), 404);
}
