//! The admin API: projects and credentials made by the operator, the roles they carry, and
//! a disabled key refused at once.

mod common;

use common::{id, TestServer};
use serde_json::json;

#[tokio::test]
async fn the_operator_makes_a_tenant_whose_member_key_works_and_whose_reader_key_only_reads() {
    let server = TestServer::start().await;
    let op = server.client();
    let project = op.admin_project("acme").await;
    let member = op.admin_credential(&project, "member").await;
    let reader = op.admin_credential(&project, "reader").await;

    let f = member.filter("f").await;
    let path = member.v3(&format!("traffic-mirror-filters/{}", id(&f)));
    reader.get(&path).await.ok(200);
    let refused = reader
        .call("DELETE", &path, None)
        .await
        .err(403, "VPC.0010");
    assert!(refused["error_msg"].as_str().unwrap().contains("reader"));
    // The member's project is not the operator's.
    op.get(&op.v3(&format!("traffic-mirror-filters/{}", id(&f))))
        .await
        .err(404, "VPC.1702");
    // Members and readers manage nothing of the operator's.
    member
        .call("POST", "/admin/v1/projects", Some(&json!({"name": "x"})))
        .await
        .err(403, "Forbidden");
    reader.get("/admin/v1/projects").await.err(403, "Forbidden");

    // Disabled: refused like an unknown key, at once; enabled again: works.
    op.call(
        "POST",
        &format!("/admin/v1/credentials/{}/disable", member.creds.access_key),
        None,
    )
    .await
    .ok(200);
    member.get(&path).await.err(401, "APIGW.0301");
    op.call(
        "POST",
        &format!("/admin/v1/credentials/{}/enable", member.creds.access_key),
        None,
    )
    .await
    .ok(200);
    member.get(&path).await.ok(200);

    // Listed without secrets; the project cannot go while it holds anything.
    let list = op
        .get(&format!("/admin/v1/projects/{project}/credentials"))
        .await
        .ok(200);
    assert_eq!(list["credentials"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&member.creds.secret_key));
    op.call("DELETE", &format!("/admin/v1/projects/{project}"), None)
        .await
        .err(409, "Conflict");
}
