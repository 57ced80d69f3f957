//! A write that cannot get through (another writer holds the database's write lock for longer
//! than the server waits) is answered as retryable on both faces, HTTP 503 with `Retry-After`,
//! changes nothing, and goes through once sent again. On PostgreSQL, where a lock can be held
//! from outside the server; without `TMIRROR_TEST_DATABASE_URL` the test says it was skipped.

#[path = "aliyun_support.rs"]
mod support;

use serde_json::json;
use sqlx::Connection;
use support::Srv;

#[tokio::test]
async fn a_write_that_cannot_get_the_lock_is_answered_retryable_on_both_faces() {
    let Some(db) = tmirror_store::testdb::TestDatabase::create().await else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED retryable: set {} to run it on PostgreSQL",
            tmirror_store::testdb::ENV
        );
        return;
    };
    let url = db.url().to_owned();
    let s = Srv::opened_with(|c| c.database_url = Some(url)).await;
    let filters_path = format!("/v3/{}/vpc/traffic-mirror-filters", s.project);
    let count = || async {
        let (status, body) = s.huawei("GET", &filters_path, None).await;
        assert_eq!(status, 200);
        body["traffic_mirror_filters"].as_array().unwrap().len()
    };
    assert_eq!(count().await, 0);

    // Another writer (here: a plain connection) holds the write lock meanwhile.
    let mut holder = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE meta IN EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let huawei_body = json!({"traffic_mirror_filter": {"name": "hw"}});
    let ((hw_status, hw_body), ali) = tokio::join!(
        s.huawei("POST", &filters_path, Some(huawei_body.clone())),
        s.rcall(
            "CreateTrafficMirrorFilter",
            &[("TrafficMirrorFilterName", "ali")]
        ),
    );
    let waited = started.elapsed();
    assert_eq!(hw_status, 503, "Huawei face: {hw_body}");
    assert_eq!(hw_body["error_code"], "VPC.0503", "{hw_body}");
    ali.err(503, "ServiceUnavailable");
    assert_eq!(ali.retry_after.as_deref(), Some("1"));
    // Within the SDKs' 10-second read timeout.
    assert!(waited.as_secs() < 10, "answered after {waited:?}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

    // Nothing was written; sent again, both go through.
    assert_eq!(count().await, 0);
    let (status, body) = s.huawei("POST", &filters_path, Some(huawei_body)).await;
    assert_eq!(status, 201, "{body}");
    s.rcall(
        "CreateTrafficMirrorFilter",
        &[("TrafficMirrorFilterName", "ali")],
    )
    .await
    .ok();
    assert_eq!(count().await, 2);
    drop(s);
    drop(db);
}
