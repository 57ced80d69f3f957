//! The Alibaba face keeps its state in the database, not in a server's memory: two servers on
//! one database refuse each other's replayed nonces, replay each other's ClientToken answers
//! and see each other's opened service; concurrent retries with one token create one resource.

#[path = "aliyun_support.rs"]
mod support;

use support::{nonce, p, Scheme, Srv, Tweak};

#[tokio::test]
async fn two_servers_share_nonces_tokens_and_the_service_flag() {
    let a = Srv::opened().await;
    let b = a.sibling().await;
    assert_eq!(b.ak, a.ak);
    assert_eq!(
        b.call("GetTrafficMirrorServiceStatus", &[]).await.ok()["Enabled"],
        true
    );

    let n = nonce();
    let t = Tweak {
        nonce: Some(n),
        ..Default::default()
    };
    let params = p(&[("RegionId", "r")]);
    a.send(
        Scheme::Acs3,
        "ListTrafficMirrorFilters",
        params.clone(),
        t.clone(),
    )
    .await
    .ok();
    b.send(Scheme::Acs3, "ListTrafficMirrorFilters", params, t)
        .await
        .err(400, "SignatureNonceUsed");

    let create = p(&[
        ("RegionId", "r"),
        ("ClientToken", "shared-1"),
        ("TrafficMirrorFilterName", "x"),
    ]);
    let first = a
        .send(
            Scheme::Acs3,
            "CreateTrafficMirrorFilter",
            create.clone(),
            Tweak::default(),
        )
        .await;
    let again = b
        .send(
            Scheme::Sha1,
            "CreateTrafficMirrorFilter",
            create,
            Tweak::default(),
        )
        .await;
    assert_eq!(
        first.ok()["TrafficMirrorFilterId"],
        again.ok()["TrafficMirrorFilterId"]
    );
    assert_eq!(
        b.rcall("ListTrafficMirrorFilters", &[]).await.ok()["TotalCount"],
        "1"
    );
}

#[tokio::test]
async fn concurrent_retries_with_one_token_create_one_resource() {
    let s = Srv::opened().await;
    let calls = (0..8).map(|i| {
        let params = p(&[
            ("RegionId", "r"),
            ("ClientToken", "race"),
            ("TrafficMirrorFilterName", "x"),
        ]);
        let scheme = if i % 2 == 0 {
            Scheme::Acs3
        } else {
            Scheme::Sha1
        };
        s.send(
            scheme,
            "CreateTrafficMirrorFilter",
            params,
            Tweak::default(),
        )
    });
    let answers = futures::future::join_all(calls).await;
    let first = answers[0].ok()["TrafficMirrorFilterId"].clone();
    for a in &answers {
        assert_eq!(a.ok()["TrafficMirrorFilterId"], first);
    }
    assert_eq!(
        s.rcall("ListTrafficMirrorFilters", &[]).await.ok()["TotalCount"],
        "1"
    );
}

#[tokio::test]
async fn concurrent_replays_of_one_nonce_pass_once() {
    let s = Srv::start().await;
    let n = nonce();
    let calls = (0..8).map(|_| {
        let t = Tweak {
            nonce: Some(n.clone()),
            ..Default::default()
        };
        s.send(Scheme::Acs3, "GetTrafficMirrorServiceStatus", p(&[]), t)
    });
    let answers = futures::future::join_all(calls).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(ok, 1);
    for a in answers.iter().filter(|a| a.status != 200) {
        a.err(400, "SignatureNonceUsed");
    }
}

/// Nonces are recorded in group commits (`service::nonces`): many requests at once, each
/// nonce sent twice, one copy to each of two servers on one database, in one burst so that
/// batches hold both copies of a nonce or split them between servers. Each nonce passes once.
#[tokio::test]
async fn a_burst_of_nonces_each_sent_to_two_servers_passes_each_once() {
    let a = Srv::start().await;
    let b = a.sibling().await;
    let nonces: Vec<String> = (0..24).map(|_| nonce()).collect();
    let calls = nonces.iter().enumerate().flat_map(|(i, n)| {
        let t = Tweak {
            nonce: Some(n.clone()),
            ..Default::default()
        };
        // Both schemes, both servers, in both orders.
        let scheme = if i % 2 == 0 {
            Scheme::Acs3
        } else {
            Scheme::Sha1
        };
        let (first, second) = if i % 3 == 0 { (&a, &b) } else { (&b, &a) };
        [
            first.send(scheme, "GetTrafficMirrorServiceStatus", p(&[]), t.clone()),
            second.send(scheme, "GetTrafficMirrorServiceStatus", p(&[]), t),
        ]
    });
    let answers = futures::future::join_all(calls).await;
    for (n, pair) in nonces.iter().zip(answers.chunks(2)) {
        let passed = pair.iter().filter(|a| a.status == 200).count();
        assert_eq!(
            passed,
            1,
            "nonce {n}: {:?}",
            pair.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        for refused in pair.iter().filter(|a| a.status != 200) {
            refused.err(400, "SignatureNonceUsed");
        }
    }
    // And a server started after them refuses them all.
    let c = a.sibling().await;
    for n in &nonces[..4] {
        let t = Tweak {
            nonce: Some(n.clone()),
            ..Default::default()
        };
        c.send(Scheme::Acs3, "GetTrafficMirrorServiceStatus", p(&[]), t)
            .await
            .err(400, "SignatureNonceUsed");
    }
}
