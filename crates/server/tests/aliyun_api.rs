//! The Alibaba face's actions end to end: shapes and types, ids, errors for the service's
//! rules, ClientToken idempotency, DryRun, pagination, tags and resource groups, and the one
//! model behind both faces.

#[path = "aliyun_support.rs"]
mod support;

use serde_json::Value;
use support::{p, Scheme, Srv, Tweak};

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn session_lifecycle_and_shapes() {
    let s = Srv::opened().await;
    let source = s.port("10.0.0.1").await;
    let source2 = s.port("10.0.0.2").await;
    let target = s.port("10.0.0.9").await;
    let filter = s.filter().await;
    let a = s
        .rcall(
            "CreateTrafficMirrorSession",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("TrafficMirrorSourceIds.1", &source),
                ("TrafficMirrorTargetId", &target),
                ("TrafficMirrorTargetType", "NetworkInterface"),
                ("Priority", "7"),
                ("VirtualNetworkId", "10"),
                ("Enabled", "True"),
                ("TrafficMirrorSessionName", "my session~*"),
                ("TrafficMirrorSessionDescription", "d"),
                ("Tag.1.Key", "k1"),
                ("Tag.1.Value", "v 1/é"),
                ("ResourceGroupId", "rg-1"),
            ],
        )
        .await;
    let body = a.ok();
    let id = body["TrafficMirrorSessionId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tms-") && id.len() == 36, "{id}");
    assert_eq!(body["ResourceGroupId"], "rg-1");

    let list = s.sessions(&[("TrafficMirrorSessionIds.1", &id)]).await;
    assert_eq!(list["TotalCount"], "1");
    assert_eq!(list["NextToken"], "");
    let x = &list["TrafficMirrorSessions"][0];
    assert_eq!(x["TrafficMirrorSessionId"], id.as_str());
    assert_eq!(x["TrafficMirrorSessionName"], "my session~*");
    assert_eq!(x["TrafficMirrorSessionStatus"], "Created");
    assert_eq!(x["TrafficMirrorSessionBusinessStatus"], "Normal");
    assert_eq!(x["Enabled"], true);
    assert_eq!(x["Priority"], 7);
    assert_eq!(x["VirtualNetworkId"], 10);
    assert_eq!(x["PacketLength"], 1500);
    assert_eq!(x["TrafficMirrorFilterId"], filter.as_str());
    assert_eq!(x["TrafficMirrorSourceIds"], serde_json::json!([source]));
    assert_eq!(x["TrafficMirrorTargetId"], target.as_str());
    assert_eq!(x["TrafficMirrorTargetType"], "NetworkInterface");
    assert_eq!(x["ResourceGroupId"], "rg-1");
    assert_eq!(
        x["Tags"],
        serde_json::json!([{"Key": "k1", "Value": "v 1/é"}])
    );
    assert!(x["CreationTime"].as_str().unwrap().ends_with('Z'));

    s.rcall(
        "AddSourcesToTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSourceIds.1", &source2),
        ],
    )
    .await
    .ok();
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[
            ("TrafficMirrorSessionId", &id),
            ("Enabled", "false"),
            ("PacketLength", "64"),
            ("Priority", "8"),
        ],
    )
    .await
    .ok();
    let x =
        s.sessions(&[("TrafficMirrorSessionIds.1", &id)]).await["TrafficMirrorSessions"][0].clone();
    assert_eq!(x["Enabled"], false);
    assert_eq!(x["PacketLength"], 64);
    assert_eq!(x["Priority"], 8);
    assert_eq!(
        x["TrafficMirrorSourceIds"],
        serde_json::json!([source, source2])
    );
    s.rcall(
        "RemoveSourcesFromTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSourceIds.1", &source),
        ],
    )
    .await
    .ok();
    // Filters on the list.
    assert_eq!(
        s.sessions(&[("TrafficMirrorSourceId", &source2)]).await["TotalCount"],
        "1"
    );
    assert_eq!(
        s.sessions(&[("TrafficMirrorSourceId", &source)]).await["TotalCount"],
        "0"
    );
    assert_eq!(s.sessions(&[("Enabled", "TRUE")]).await["TotalCount"], "0");
    assert_eq!(s.sessions(&[("Priority", "8")]).await["TotalCount"], "1");
    assert_eq!(
        s.sessions(&[("Tags.1.Key", "k1"), ("Tags.1.Value", "v 1/é")])
            .await["TotalCount"],
        "1"
    );
    assert_eq!(
        s.sessions(&[("Tags.1.Key", "k1"), ("Tags.1.Value", "other")])
            .await["TotalCount"],
        "0"
    );
    assert_eq!(
        s.sessions(&[("ResourceGroupId", "rg-1")]).await["TotalCount"],
        "1"
    );
    assert_eq!(
        s.sessions(&[("ResourceGroupId", "rg-2")]).await["TotalCount"],
        "0"
    );
    assert_eq!(
        s.sessions(&[("TrafficMirrorSessionIds.1", "tms-bogus")])
            .await["TotalCount"],
        "0"
    );

    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .ok();
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id)],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorSession");
    assert_eq!(s.sessions(&[]).await["TotalCount"], "0");
}

#[tokio::test]
async fn service_rules_map_to_alibaba_codes() {
    let s = Srv::opened().await;
    let (id, source, target, filter) = s.session("1").await;
    let other = s.port("10.9.0.1").await;
    let create = |sources: Vec<(&'static str, String)>,
                  target: String,
                  prio: &'static str,
                  filter: String| {
        let mut v = vec![
            ("TrafficMirrorFilterId".to_owned(), filter),
            ("TrafficMirrorTargetId".to_owned(), target),
            (
                "TrafficMirrorTargetType".to_owned(),
                "NetworkInterface".to_owned(),
            ),
            ("Priority".to_owned(), prio.to_owned()),
            ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
        ];
        for (k, v2) in sources {
            v.push((k.to_owned(), v2));
        }
        v
    };
    let send = |params: Vec<(String, String)>| {
        s.send(
            Scheme::Acs3,
            "CreateTrafficMirrorSession",
            params,
            Tweak::default(),
        )
    };
    send(create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "1",
        filter.clone(),
    ))
    .await
    .err(400, "IllegalParam.Priority");
    send(create(
        vec![
            ("TrafficMirrorSourceIds.1", other.clone()),
            ("TrafficMirrorSourceIds.2", other.clone()),
        ],
        target.clone(),
        "2",
        filter.clone(),
    ))
    .await
    .err(400, "DuplicatedParam.SourceInstanceIds");
    send(create(
        vec![("TrafficMirrorSourceIds.1", target.clone())],
        other.clone(),
        "2",
        filter.clone(),
    ))
    .await
    .err(400, "OperationDenied.DuplicateRole");
    send(create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "2",
        "tmf-00000000000000000000000000000000".into(),
    ))
    .await
    .err(400, "ResourceNotFound.TrafficMirrorFilter");
    send(create(
        vec![("TrafficMirrorSourceIds.1", "eni-nope".into())],
        target.clone(),
        "2",
        filter.clone(),
    ))
    .await
    .err(400, "ResourceNotFound.NetworkInterface");
    send(create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "0",
        filter.clone(),
    ))
    .await
    .err(400, "IllegalParam.Priority");
    let mut slb = create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        "lb-123".into(),
        "2",
        filter.clone(),
    );
    slb[2].1 = "SLB".into();
    // An SLB target names a load balancer (lb- and 32 hex digits): this one does not exist.
    send(slb).await.err(400, "InvalidLoadBalancerId.NotFound");
    let mut bad_type = create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "2",
        filter.clone(),
    );
    bad_type[2].1 = "eni".into();
    send(bad_type)
        .await
        .err(400, "IllegalParam.TrafficMirrorTargetType");
    let mut long = create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "2",
        filter.clone(),
    );
    long.push(("PacketLength".into(), "8501".into()));
    send(long).await.err(400, "IllegalParam.PacketLength");
    let mut name = create(
        vec![("TrafficMirrorSourceIds.1", other.clone())],
        target.clone(),
        "2",
        filter.clone(),
    );
    name.push(("TrafficMirrorSessionName".into(), "http://x".into()));
    send(name)
        .await
        .err(400, "IllegalParam.TrafficMirrorSessionName");
    let missing = create(vec![], target.clone(), "2", filter.clone());
    send(missing).await.err(400, "MissingParameter");

    s.rcall(
        "AddSourcesToTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSourceIds.1", &source),
        ],
    )
    .await
    .err(400, "OperationDenied.SourceAlreadyInSession");
    s.rcall(
        "RemoveSourcesFromTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("TrafficMirrorSourceIds.1", &other),
        ],
    )
    .await
    .err(400, "OperationDenied.SourceNotInSession");
    // Quota: 10 sources per session.
    let mut add = vec![
        ("TrafficMirrorSessionId".to_owned(), id.clone()),
        ("RegionId".to_owned(), "r".to_owned()),
    ];
    for i in 0..10 {
        add.push((
            format!("TrafficMirrorSourceIds.{}", i + 1),
            s.port(&format!("10.8.0.{i}")).await,
        ));
    }
    s.send(
        Scheme::Acs3,
        "AddSourcesToTrafficMirrorSession",
        add,
        Tweak::default(),
    )
    .await
    .err(400, "QuotaExceeded.SourceNumPerSession");
    // A filter in use cannot be deleted.
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &filter)],
    )
    .await
    .err(400, "DependencyViolation.TrafficMirrorSession");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", "tms-x")],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorSession");
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[("TrafficMirrorSessionId", &id), ("Enabled", "maybe")],
    )
    .await
    .err(400, "InvalidParameter");
}

#[tokio::test]
async fn filters_and_rules() {
    let s = Srv::opened().await;
    let a = s
        .rcall(
            "CreateTrafficMirrorFilter",
            &[
                ("TrafficMirrorFilterName", "web"),
                ("TrafficMirrorFilterDescription", "http only"),
                ("IngressRules.1.Action", "accept"),
                ("IngressRules.1.Protocol", "TCP"),
                ("IngressRules.1.Priority", "1"),
                ("IngressRules.1.DestinationPortRange", "80/443"),
                ("IngressRules.1.SourceCidrBlock", "10.0.0.0/8"),
                ("IngressRules.2.Action", "drop"),
                ("IngressRules.2.Protocol", "ALL"),
                ("IngressRules.2.Priority", "2"),
                ("IngressRules.2.SourcePortRange", "-1/-1"),
                ("EgressRules.1.Action", "accept"),
                ("EgressRules.1.Protocol", "ICMP"),
                ("EgressRules.1.Priority", "1"),
                ("EgressRules.1.IpVersion", "IPv6"),
            ],
        )
        .await;
    let filter = a.ok()["TrafficMirrorFilterId"].as_str().unwrap().to_owned();
    assert!(filter.starts_with("tmf-"));
    let list = s
        .rcall(
            "ListTrafficMirrorFilters",
            &[("TrafficMirrorFilterIds.1", &filter)],
        )
        .await;
    let l = list.ok();
    assert_eq!(l["TotalCount"], "1");
    assert_eq!(l["Count"], 1);
    assert_eq!(l["MaxResults"], 10);
    let f = &l["TrafficMirrorFilters"][0];
    assert_eq!(f["TrafficMirrorFilterName"], "web");
    assert_eq!(f["TrafficMirrorFilterStatus"], "Created");
    let ing = f["IngressRules"].as_array().unwrap();
    assert_eq!(ing.len(), 2);
    assert_eq!(ing[0]["Action"], "accept");
    assert_eq!(ing[0]["Protocol"], "TCP");
    assert_eq!(ing[0]["DestinationPortRange"], "80/443");
    assert_eq!(ing[0]["SourcePortRange"], "-1/-1");
    assert_eq!(ing[0]["SourceCidrBlock"], "10.0.0.0/8");
    assert_eq!(ing[0]["DestinationCidrBlock"], "0.0.0.0/0");
    assert_eq!(ing[0]["TrafficDirection"], "ingress");
    assert_eq!(ing[0]["IpVersion"], "IPv4");
    assert_eq!(ing[1]["Action"], "drop");
    assert_eq!(ing[1]["TrafficMirrorFilterRuleStatus"], "Created");
    let eg = &f["EgressRules"][0];
    assert_eq!(eg["Protocol"], "ICMP");
    assert_eq!(eg["IpVersion"], "IPv6");

    let a = s
        .rcall(
            "CreateTrafficMirrorFilterRules",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("EgressRules.1.Action", "drop"),
                ("EgressRules.1.Protocol", "UDP"),
                ("EgressRules.1.Priority", "5"),
                ("EgressRules.1.DestinationPortRange", "53/53"),
            ],
        )
        .await;
    let rule = a.ok()["EgressRules"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(rule.starts_with("tmr-"));
    assert_eq!(a.ok()["IngressRules"], serde_json::json!([]));
    s.rcall(
        "UpdateTrafficMirrorFilterRuleAttribute",
        &[
            ("TrafficMirrorFilterRuleId", &rule),
            ("Protocol", "ALL"),
            ("RuleAction", "accept"),
            ("Priority", "6"),
        ],
    )
    .await
    .ok();
    let f = s
        .rcall(
            "ListTrafficMirrorFilters",
            &[("TrafficMirrorFilterIds.1", &filter)],
        )
        .await;
    let eg = f.ok()["TrafficMirrorFilters"][0]["EgressRules"]
        .as_array()
        .unwrap()
        .clone();
    let r = eg
        .iter()
        .find(|r| r["TrafficMirrorFilterRuleId"] == rule.as_str())
        .unwrap();
    assert_eq!(r["Protocol"], "ALL");
    assert_eq!(r["Action"], "accept");
    assert_eq!(r["Priority"], 6);
    assert_eq!(r["DestinationPortRange"], "-1/-1", "ALL has no ports");

    // Errors of the rule rules.
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "TCP"),
            ("EgressRules.1.Priority", "6"),
        ],
    )
    .await
    .err(400, "IllegalParam.RulePriority");
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "ICMP"),
            ("EgressRules.1.Priority", "9"),
            ("EgressRules.1.DestinationPortRange", "1/2"),
        ],
    )
    .await
    .err(400, "IllegalParam.DestinationPortRange");
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("EgressRules.1.Action", "maybe"),
            ("EgressRules.1.Protocol", "TCP"),
            ("EgressRules.1.Priority", "9"),
        ],
    )
    .await
    .err(400, "IllegalParam.Action");
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "TCP"),
            ("EgressRules.1.Priority", "9"),
            ("EgressRules.1.SourceCidrBlock", "fd00::/8"),
        ],
    )
    .await
    .err(400, "IllegalParam.SourceCidrBlock");
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            (
                "TrafficMirrorFilterId",
                "tmf-00000000000000000000000000000000",
            ),
            ("EgressRules.1.Action", "accept"),
            ("EgressRules.1.Protocol", "TCP"),
            ("EgressRules.1.Priority", "9"),
        ],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorFilter");
    s.rcall(
        "DeleteTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterRuleIds.1", "tmr-nope"),
        ],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorRule");

    s.rcall(
        "UpdateTrafficMirrorFilterAttribute",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterName", "web2"),
        ],
    )
    .await
    .ok();
    s.rcall(
        "DeleteTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorFilterRuleIds.1", &rule),
        ],
    )
    .await
    .ok();
    let f = s
        .rcall(
            "ListTrafficMirrorFilters",
            &[("TrafficMirrorFilterName", "web2")],
        )
        .await;
    assert_eq!(f.ok()["TotalCount"], "1");
    assert_eq!(
        f.ok()["TrafficMirrorFilters"][0]["EgressRules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &filter)],
    )
    .await
    .ok();
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &filter)],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorFilter");
}

#[tokio::test]
async fn client_tokens_are_idempotent() {
    let s = Srv::opened().await;
    let params = |name: &str| {
        p(&[
            ("RegionId", "r"),
            ("ClientToken", "tok-1"),
            ("TrafficMirrorFilterName", name),
        ])
    };
    let a = s
        .send(
            Scheme::Acs3,
            "CreateTrafficMirrorFilter",
            params("a"),
            Tweak::default(),
        )
        .await;
    let b = s
        .send(
            Scheme::Sha1,
            "CreateTrafficMirrorFilter",
            params("a"),
            Tweak::default(),
        )
        .await;
    assert_eq!(
        a.ok()["TrafficMirrorFilterId"],
        b.ok()["TrafficMirrorFilterId"]
    );
    assert_ne!(a.ok()["RequestId"], b.ok()["RequestId"]);
    let list = s.rcall("ListTrafficMirrorFilters", &[]).await;
    assert_eq!(list.ok()["TotalCount"], "1", "no second filter");
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilter",
        params("b"),
        Tweak::default(),
    )
    .await
    .err(400, "IdempotentParameterMismatch");
    // Another token creates another filter; a failed request records nothing.
    let mut c = params("a");
    c[1].1 = "tok-2".into();
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilter",
        c,
        Tweak::default(),
    )
    .await
    .ok();
    assert_eq!(
        s.rcall("ListTrafficMirrorFilters", &[]).await.ok()["TotalCount"],
        "2"
    );
    let bad = p(&[
        ("RegionId", "r"),
        ("ClientToken", "tok-3"),
        ("TrafficMirrorFilterName", "https://x"),
    ]);
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilter",
        bad,
        Tweak::default(),
    )
    .await
    .err(400, "IllegalParam.TrafficMirrorFilterName");
    let good = p(&[
        ("RegionId", "r"),
        ("ClientToken", "tok-3"),
        ("TrafficMirrorFilterName", "ok"),
    ]);
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilter",
        good,
        Tweak::default(),
    )
    .await
    .ok();
    // A retried delete answers as the first one did.
    let id = a.ok()["TrafficMirrorFilterId"].as_str().unwrap().to_owned();
    let del = p(&[
        ("RegionId", "r"),
        ("ClientToken", "del-1"),
        ("TrafficMirrorFilterId", &id),
    ]);
    s.send(
        Scheme::Acs3,
        "DeleteTrafficMirrorFilter",
        del.clone(),
        Tweak::default(),
    )
    .await
    .ok();
    s.send(
        Scheme::Acs3,
        "DeleteTrafficMirrorFilter",
        del,
        Tweak::default(),
    )
    .await
    .ok();
    let long = p(&[
        ("RegionId", "r"),
        ("ClientToken", &"x".repeat(65)),
        ("TrafficMirrorFilterName", "n"),
    ]);
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilter",
        long,
        Tweak::default(),
    )
    .await
    .err(400, "IllegalParam.ClientToken");
}

#[tokio::test]
async fn dry_runs_check_everything_and_change_nothing() {
    let s = Srv::opened().await;
    let (id, source, target, filter) = s.session("3").await;
    let other = s.port("10.3.3.3").await;
    s.rcall(
        "CreateTrafficMirrorFilter",
        &[("DryRun", "true"), ("TrafficMirrorFilterName", "x")],
    )
    .await
    .err(400, "DryRunOperation");
    assert_eq!(
        s.rcall("ListTrafficMirrorFilters", &[]).await.ok()["TotalCount"],
        "1"
    );
    // A dry run reaches the service's checks (the priority is taken).
    s.rcall(
        "CreateTrafficMirrorSession",
        &[
            ("DryRun", "True"),
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorSourceIds.1", &other),
            ("TrafficMirrorTargetId", &target),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("Priority", "3"),
        ],
    )
    .await
    .err(400, "IllegalParam.Priority");
    s.rcall(
        "CreateTrafficMirrorSession",
        &[
            ("DryRun", "True"),
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorSourceIds.1", &other),
            ("TrafficMirrorTargetId", &target),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("Priority", "4"),
        ],
    )
    .await
    .err(400, "DryRunOperation");
    s.rcall(
        "DeleteTrafficMirrorSession",
        &[("TrafficMirrorSessionId", &id), ("DryRun", "TRUE")],
    )
    .await
    .err(400, "DryRunOperation");
    s.rcall(
        "UpdateTrafficMirrorSessionAttribute",
        &[
            ("TrafficMirrorSessionId", &id),
            ("DryRun", "true"),
            ("Priority", "99"),
        ],
    )
    .await
    .err(400, "DryRunOperation");
    s.rcall(
        "RemoveSourcesFromTrafficMirrorSession",
        &[
            ("TrafficMirrorSessionId", &id),
            ("DryRun", "true"),
            ("TrafficMirrorSourceIds.1", &source),
        ],
    )
    .await
    .err(400, "DryRunOperation");
    let list = s.sessions(&[]).await;
    assert_eq!(list["TotalCount"], "1");
    let x = &list["TrafficMirrorSessions"][0];
    assert_eq!(x["Priority"], 3);
    assert_eq!(x["TrafficMirrorSourceIds"], serde_json::json!([source]));
}

#[tokio::test]
async fn pagination() {
    let s = Srv::opened().await;
    let mut made = Vec::new();
    for i in 0..5 {
        let a = s
            .rcall(
                "CreateTrafficMirrorFilter",
                &[("TrafficMirrorFilterName", &format!("f{i}"))],
            )
            .await;
        made.push(a.ok()["TrafficMirrorFilterId"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut params = vec![("MaxResults", "2")];
        if !token.is_empty() {
            params.push(("NextToken", &token));
        }
        let a = s.rcall("ListTrafficMirrorFilters", &params).await;
        let body = a.ok().clone();
        assert_eq!(body["TotalCount"], "5");
        assert!(body["Count"].as_u64().unwrap() <= 2);
        seen.extend(ids(&body["TrafficMirrorFilters"], "TrafficMirrorFilterId"));
        token = body["NextToken"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, made);
    s.rcall("ListTrafficMirrorFilters", &[("MaxResults", "101")])
        .await
        .err(400, "IllegalParam.MaxResults");
    s.rcall("ListTrafficMirrorFilters", &[("NextToken", "garbage")])
        .await
        .err(400, "IllegalParam.NextToken");
}

#[tokio::test]
async fn tags_and_resource_groups() {
    let s = Srv::opened().await;
    let f1 = s.filter().await;
    let f2 = s.filter().await;
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &f1),
            ("ResourceId.2", &f2),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
            ("Tag.2.Key", "team"),
            ("Tag.2.Value", ""),
        ],
    )
    .await
    .ok();
    let a = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TrafficMirrorFilter"),
                ("ResourceId.1", &f1),
            ],
        )
        .await;
    let rows = a.ok()["TagResources"]["TagResource"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ResourceId"], f1.as_str());
    assert_eq!(rows[0]["TagKey"], "env");
    assert_eq!(rows[0]["TagValue"], "prod");
    assert_eq!(rows[1]["TagValue"], "");
    let a = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TRAFFICMIRRORFILTER"),
                ("Tag.1.Key", "env"),
                ("MaxResults", "3"),
            ],
        )
        .await;
    assert_eq!(
        a.ok()["TagResources"]["TagResource"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let next = a.ok()["NextToken"].as_str().unwrap().to_owned();
    assert!(!next.is_empty());
    let a = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TRAFFICMIRRORFILTER"),
                ("Tag.1.Key", "env"),
                ("MaxResults", "3"),
                ("NextToken", &next),
            ],
        )
        .await;
    assert_eq!(
        a.ok()["TagResources"]["TagResource"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(a.ok()["NextToken"], "");

    s.rcall(
        "UnTagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &f1),
            ("TagKey.1", "env"),
        ],
    )
    .await
    .ok();
    let l = s
        .rcall("ListTrafficMirrorFilters", &[("Tags.1.Key", "env")])
        .await;
    assert_eq!(
        ids(&l.ok()["TrafficMirrorFilters"], "TrafficMirrorFilterId"),
        vec![f2.clone()]
    );
    s.rcall(
        "UnTagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &f2),
            ("All", "true"),
        ],
    )
    .await
    .ok();
    let a = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TRAFFICMIRRORFILTER"),
                ("ResourceId.1", &f2),
            ],
        )
        .await;
    assert_eq!(a.ok()["TagResources"]["TagResource"], serde_json::json!([]));

    s.rcall(
        "MoveResourceGroup",
        &[
            ("ResourceType", "TrafficMirrorFilter"),
            ("ResourceId", &f2),
            ("NewResourceGroupId", "rg-new"),
        ],
    )
    .await
    .ok();
    let l = s
        .rcall("ListTrafficMirrorFilters", &[("ResourceGroupId", "rg-new")])
        .await;
    assert_eq!(
        ids(&l.ok()["TrafficMirrorFilters"], "TrafficMirrorFilterId"),
        vec![f2.clone()]
    );

    // Errors.
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &f1),
            ("Tag.1.Key", "aliyun:x"),
        ],
    )
    .await
    .err(400, "InvalidTagKey.Malformed");
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORSESSION"),
            ("ResourceId.1", "tms-00000000000000000000000000000000"),
            ("Tag.1.Key", "k"),
        ],
    )
    .await
    .err(400, "ResourceNotFound.TrafficMirrorSession");
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "VPC"),
            ("ResourceId.1", &f1),
            ("Tag.1.Key", "k"),
        ],
    )
    .await
    .err(400, "IllegalParam.ResourceType");
    let mut many = vec![
        ("ResourceType".to_owned(), "TRAFFICMIRRORFILTER".to_owned()),
        ("ResourceId.1".into(), f1.clone()),
        ("RegionId".into(), "r".into()),
    ];
    for i in 1..=21 {
        many.push((format!("Tag.{i}.Key"), format!("k{i}")));
    }
    s.send(Scheme::Acs3, "TagResources", many, Tweak::default())
        .await
        .err(400, "QuotaExceeded.TagNum");
    s.rcall(
        "ListTagResources",
        &[("ResourceType", "TRAFFICMIRRORFILTER")],
    )
    .await
    .err(400, "MissingParameter");
    // Tags go with their resource.
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &f1),
            ("Tag.1.Key", "gone"),
        ],
    )
    .await
    .ok();
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &f1)],
    )
    .await
    .ok();
    let a = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TRAFFICMIRRORFILTER"),
                ("Tag.1.Key", "gone"),
            ],
        )
        .await;
    assert_eq!(a.ok()["TagResources"]["TagResource"], serde_json::json!([]));
}

#[tokio::test]
async fn one_model_two_faces() {
    let s = Srv::opened().await;
    let (id, source, target, filter) = s.session("5").await;
    // Alibaba → Huawei.
    let uuid = |alibaba: &str| {
        uuid::Uuid::parse_str(&alibaba[4..])
            .unwrap()
            .hyphenated()
            .to_string()
    };
    let path = format!(
        "/v3/{}/vpc/traffic-mirror-sessions/{}",
        s.project,
        uuid(&id)
    );
    let (status, body) = s.huawei("GET", &path, None).await;
    assert_eq!(status, 200, "{body:?}");
    let hs = &body["traffic_mirror_session"];
    assert_eq!(hs["priority"], 5);
    assert_eq!(hs["traffic_mirror_filter_id"], uuid(&filter).as_str());
    assert_eq!(
        hs["traffic_mirror_sources"],
        serde_json::json!([uuid(&source)])
    );
    assert_eq!(hs["traffic_mirror_target_id"], uuid(&target).as_str());
    assert_eq!(hs["traffic_mirror_target_type"], "eni");
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORSESSION"),
            ("ResourceId.1", &id),
            ("Tag.1.Key", "xface"),
        ],
    )
    .await
    .ok();
    let (status, _) = s.huawei("DELETE", &path, None).await;
    assert_eq!(status, 204);
    // Its tags went with it, though the other face deleted it.
    let tags = s
        .rcall(
            "ListTagResources",
            &[
                ("ResourceType", "TRAFFICMIRRORSESSION"),
                ("Tag.1.Key", "xface"),
            ],
        )
        .await;
    assert_eq!(
        tags.ok()["TagResources"]["TagResource"],
        serde_json::json!([])
    );
    assert_eq!(s.sessions(&[]).await["TotalCount"], "0");
    // Huawei → Alibaba.
    let (status, body) = s
        .huawei(
            "POST",
            &format!("/v3/{}/vpc/traffic-mirror-filter-rules", s.project),
            Some(serde_json::json!({"traffic_mirror_filter_rule": {
                "traffic_mirror_filter_id": uuid(&filter), "direction": "ingress", "protocol": "udp",
                "ethertype": "IPv4", "action": "reject", "priority": 3, "destination_port_range": "53-53"}})),
        )
        .await;
    assert_eq!(status, 201, "{body:?}");
    let l = s
        .rcall(
            "ListTrafficMirrorFilters",
            &[("TrafficMirrorFilterIds.1", &filter)],
        )
        .await;
    let r = &l.ok()["TrafficMirrorFilters"][0]["IngressRules"][0];
    assert_eq!(r["Action"], "drop");
    assert_eq!(r["Protocol"], "UDP");
    assert_eq!(r["DestinationPortRange"], "53/53");
    let rule = r["TrafficMirrorFilterRuleId"].as_str().unwrap().to_owned();
    assert_eq!(
        uuid(&rule),
        body["traffic_mirror_filter_rule"]["id"].as_str().unwrap()
    );
    s.rcall(
        "DeleteTrafficMirrorFilter",
        &[("TrafficMirrorFilterId", &filter)],
    )
    .await
    .ok();
    let (status, _) = s
        .huawei(
            "GET",
            &format!(
                "/v3/{}/vpc/traffic-mirror-filters/{}",
                s.project,
                uuid(&filter)
            ),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn more_quota_and_state_codes() {
    let s = Srv::opened().await;
    let source = s.port("10.4.0.1").await;
    let filter = s.filter().await;
    for prio in ["11", "12", "13"] {
        let target = s.port(&format!("10.4.1.{prio}")).await;
        s.rcall(
            "CreateTrafficMirrorSession",
            &[
                ("TrafficMirrorFilterId", &filter),
                ("TrafficMirrorSourceIds.1", &source),
                ("TrafficMirrorTargetId", &target),
                ("TrafficMirrorTargetType", "NetworkInterface"),
                ("Priority", prio),
            ],
        )
        .await
        .ok();
    }
    let target = s.port("10.4.2.1").await;
    s.rcall(
        "CreateTrafficMirrorSession",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorSourceIds.1", &source),
            ("TrafficMirrorTargetId", &target),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("Priority", "14"),
        ],
    )
    .await
    .err(400, "QuotaExceeded.NetworkInterfaceRelatedSession");
    // A target without a fixed IP.
    let (status, body) = s
        .huawei(
            "POST",
            &format!("/v1/{}/ports", s.project),
            Some(serde_json::json!({"port": {"network_id": "n"}})),
        )
        .await;
    assert_eq!(status, 201);
    let bare = format!(
        "eni-{}",
        uuid::Uuid::parse_str(body["port"]["id"].as_str().unwrap())
            .unwrap()
            .simple()
    );
    let other = s.port("10.4.3.1").await;
    s.rcall(
        "CreateTrafficMirrorSession",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("TrafficMirrorSourceIds.1", &other),
            ("TrafficMirrorTargetId", &bare),
            ("TrafficMirrorTargetType", "NetworkInterface"),
            ("Priority", "15"),
        ],
    )
    .await
    .err(400, "IncorrectStatus.NetworkInterface");
    // Rules per direction.
    let mut params = vec![
        ("TrafficMirrorFilterId".to_owned(), filter.clone()),
        ("RegionId".to_owned(), "r".to_owned()),
    ];
    for i in 1..=10 {
        params.push((format!("IngressRules.{i}.Action"), "accept".into()));
        params.push((format!("IngressRules.{i}.Protocol"), "ALL".into()));
        params.push((format!("IngressRules.{i}.Priority"), i.to_string()));
    }
    s.send(
        Scheme::Acs3,
        "CreateTrafficMirrorFilterRules",
        params,
        Tweak::default(),
    )
    .await
    .ok();
    s.rcall(
        "CreateTrafficMirrorFilterRules",
        &[
            ("TrafficMirrorFilterId", &filter),
            ("IngressRules.1.Action", "accept"),
            ("IngressRules.1.Protocol", "ALL"),
            ("IngressRules.1.Priority", "11"),
        ],
    )
    .await
    .err(400, "QuotaExceeded.RuleNumPerFilter");
    // Tag rules.
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &filter),
            ("Tag.1.Key", "k"),
            ("Tag.2.Key", "k"),
        ],
    )
    .await
    .err(400, "DuplicatedParam.TagKey");
    s.rcall(
        "TagResources",
        &[
            ("ResourceType", "TRAFFICMIRRORFILTER"),
            ("ResourceId.1", &filter),
            ("Tag.1.Key", "k"),
            ("Tag.1.Value", "acs:v"),
        ],
    )
    .await
    .err(400, "InvalidTagValue.Malformed");
}
