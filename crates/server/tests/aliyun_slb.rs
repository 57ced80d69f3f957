//! The CLB (SLB 2014-05-15) subset of the Alibaba face through signed requests: load
//! balancers, backend servers (ENIs and addresses), their health, the UDP listener that is the
//! health check, and who may call what — every refusal in Alibaba's error body, changing nothing
//! (`docs/load-balancers.md`). The official SDK's view is `tests/conformance/aliyun/test_slb.py`.

#[path = "aliyun_support.rs"]
mod support;

use serde_json::{json, Value};
use support::{p, Answer, Scheme, Srv, Tweak};

/// SLB's API version: what tells its actions from the VPC face's on the shared endpoint.
const SLB: &str = "2014-05-15";

/// An SLB action, signed (ACS3) with SLB's version and a `RegionId`.
async fn slb(s: &Srv, action: &str, params: &[(&str, &str)]) -> Answer {
    let mut all = p(params);
    all.push(("RegionId".into(), "cn-hangzhou".into()));
    let tweak = Tweak {
        version: Some(SLB.into()),
        ..Tweak::default()
    };
    s.send(Scheme::Acs3, action, all, tweak).await
}

async fn create(s: &Srv, params: &[(&str, &str)]) -> String {
    let a = slb(s, "CreateLoadBalancer", params).await;
    a.ok()["LoadBalancerId"].as_str().unwrap().to_owned()
}

async fn attribute(s: &Srv, lb: &str) -> Value {
    slb(
        s,
        "DescribeLoadBalancerAttribute",
        &[("LoadBalancerId", lb)],
    )
    .await
    .ok()
    .clone()
}

/// `(ServerId, Type, Weight, Description)` of each backend server, as the attribute shows them
/// (their ports are in DescribeHealthStatus).
fn servers(attr: &Value) -> Vec<(String, String, i64, String)> {
    attr["BackendServers"]["BackendServer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["ServerId"].as_str().unwrap().to_owned(),
                s["Type"].as_str().unwrap().to_owned(),
                s["Weight"].as_i64().unwrap(),
                s["Description"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// How many load balancers the project holds.
async fn count(s: &Srv) -> i64 {
    slb(s, "DescribeLoadBalancers", &[("PageSize", "100")])
        .await
        .ok()["TotalCount"]
        .as_i64()
        .unwrap()
}

/// Whether `message` names an id in its canonical (hyphenated UUID) spelling, which this face
/// never shows.
fn has_canonical_id(message: &str) -> bool {
    message
        .split(|c: char| !c.is_ascii_hexdigit() && c != '-')
        .any(|w| w.len() == 36 && w.parse::<uuid::Uuid>().is_ok())
}

/// A load balancer id nobody holds, in the face's spelling.
fn unknown_lb() -> String {
    format!("lb-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_load_balancer_is_created_described_and_deleted() {
    let s = Srv::start().await;
    let lb = create(
        &s,
        &[
            ("LoadBalancerName", "collectors"),
            ("Address", "10.0.0.9"),
            ("VpcId", "vpc-1"),
            ("LoadBalancerSpec", "slb.s1.small"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "ids"),
        ],
    )
    .await;
    assert!(lb.starts_with("lb-") && lb.len() == 35, "{lb}");

    let listed = slb(&s, "DescribeLoadBalancers", &[("LoadBalancerId", &lb)]).await;
    let listed = listed.ok();
    assert_eq!(
        (
            &listed["TotalCount"],
            &listed["PageNumber"],
            &listed["PageSize"]
        ),
        (&json!(1), &json!(1), &json!(10)),
        "integers, as the SDK's model has them"
    );
    let one = &listed["LoadBalancers"]["LoadBalancer"][0];
    assert_eq!(one["LoadBalancerId"], lb.as_str());
    assert_eq!(one["LoadBalancerName"], "collectors");
    assert_eq!(one["LoadBalancerStatus"], "active");
    assert_eq!(one["AddressType"], "intranet");
    assert_eq!(one["NetworkType"], "vpc");
    assert_eq!(
        one["LoadBalancerSpec"], "slb.s1.small",
        "kept and shown back"
    );
    assert_eq!(
        one["Tags"]["Tag"],
        json!([{"TagKey": "team", "TagValue": "ids"}])
    );
    let by_name = slb(
        &s,
        "DescribeLoadBalancers",
        &[("LoadBalancerName", "collectors-not")],
    )
    .await;
    assert_eq!(by_name.ok()["TotalCount"], 0);

    let attr = attribute(&s, &lb).await;
    assert_eq!(attr["Address"], "10.0.0.9");
    assert_eq!(attr["BackendServers"]["BackendServer"], json!([]));
    assert_eq!(attr["ListenerPorts"]["ListenerPort"], json!([]));

    slb(&s, "DeleteLoadBalancer", &[("LoadBalancerId", &lb)])
        .await
        .ok();
    for action in ["DescribeLoadBalancerAttribute", "DeleteLoadBalancer"] {
        slb(&s, action, &[("LoadBalancerId", &lb)])
            .await
            .err(400, "InvalidLoadBalancerId.NotFound");
    }
    let listed = slb(&s, "DescribeLoadBalancers", &[("LoadBalancerId", &lb)]).await;
    assert_eq!(listed.ok()["TotalCount"], 0);
}

#[tokio::test]
async fn bad_load_balancer_requests_change_nothing() {
    let s = Srv::start().await;
    let before = count(&s).await;
    for (params, code) in [
        (vec![("AddressType", "internet")], "InvalidParameter"),
        (vec![("Address", "10.0.0.300")], "InvalidParameter"),
        (vec![("DeleteProtection", "on")], "InvalidParameter"),
        (
            vec![("LoadBalancerName", &*"x".repeat(81))],
            "InvalidParameter",
        ),
    ] {
        let a = slb(&s, "CreateLoadBalancer", &params).await;
        a.err(400, code);
        assert!(
            a.body["Recommend"]
                .as_str()
                .unwrap()
                .contains("product=Slb"),
            "{:?}",
            a.body
        );
    }
    // RegionId is required: sent without it.
    let tweak = Tweak {
        version: Some(SLB.into()),
        ..Tweak::default()
    };
    s.send(Scheme::Acs3, "CreateLoadBalancer", vec![], tweak)
        .await
        .err(400, "MissingParameter");
    assert_eq!(count(&s).await, before);
    for bad in [unknown_lb(), "lb-short".into(), "i-123".into()] {
        slb(
            &s,
            "DescribeLoadBalancerAttribute",
            &[("LoadBalancerId", &bad)],
        )
        .await
        .err(400, "InvalidLoadBalancerId.NotFound");
    }
    slb(&s, "DescribeLoadBalancers", &[("PageSize", "101")])
        .await
        .err(400, "InvalidParameter");
    // An action the subset lacks, of SLB's version.
    slb(&s, "DescribeRegions", &[])
        .await
        .err(404, "InvalidAction.NotFound");
}

#[tokio::test]
async fn backend_servers_by_eni_and_address_are_added_set_removed_and_their_health_shown() {
    let s = Srv::start().await;
    let lb = create(&s, &[]).await;
    let eni = s.port("10.0.0.7").await;
    s.port("10.0.0.8").await;
    let add = |items: Value| {
        let s = &s;
        let lb = lb.clone();
        async move {
            slb(
                s,
                "AddBackendServers",
                &[
                    ("LoadBalancerId", &lb),
                    ("BackendServers", &items.to_string()),
                ],
            )
            .await
        }
    };
    let got = add(json!([
        {"ServerId": eni, "Type": "eni", "Description": "sensor-1"},
        {"ServerId": "10.0.0.8", "Type": "ip", "Weight": "30", "Port": 6081},
        // The same server and port again in one request: only the first is taken.
        {"ServerId": eni, "Type": "eni", "Weight": 7},
    ]))
    .await;
    let got = got.ok();
    assert_eq!(got["LoadBalancerId"], lb.as_str());
    // The answer's weights are text, as the SDK's model has them.
    let weights: Vec<&Value> = got["BackendServers"]["BackendServer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["Weight"])
        .collect();
    assert_eq!(weights, [&json!("100"), &json!("30")]);
    let attr = attribute(&s, &lb).await;
    assert_eq!(
        servers(&attr),
        [
            (eni.clone(), "eni".into(), 100, "sensor-1".into()),
            ("10.0.0.8".into(), "ip".into(), 30, String::new()),
        ]
    );
    assert_eq!(
        attr["BackendServers"]["BackendServer"][0]["ServerIp"],
        "10.0.0.7"
    );
    let by_server = slb(
        &s,
        "DescribeLoadBalancers",
        &[("ServerIntranetAddress", "10.0.0.8")],
    )
    .await;
    assert_eq!(by_server.ok()["TotalCount"], 1);

    // No listener, no check: every server "unavailable", on its own port.
    let health = slb(&s, "DescribeHealthStatus", &[("LoadBalancerId", &lb)]).await;
    let health: Vec<(Value, Value, Value)> = health.ok()["BackendServers"]["BackendServer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["ServerId"].clone(),
                b["Port"].clone(),
                b["ServerHealthStatus"].clone(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [
            (json!(eni), json!(4789), json!("unavailable")),
            (json!("10.0.0.8"), json!(6081), json!("unavailable")),
        ]
    );

    let set = slb(
        &s,
        "SetBackendServers",
        &[
            ("LoadBalancerId", &lb),
            (
                "BackendServers",
                &json!([{"ServerId": "10.0.0.8", "Weight": 0},
                    {"ServerId": eni, "Description": "renamed"}])
                .to_string(),
            ),
        ],
    )
    .await;
    set.ok();
    let attr = attribute(&s, &lb).await;
    assert_eq!(
        servers(&attr),
        [
            (eni.clone(), "eni".into(), 100, "renamed".into()),
            ("10.0.0.8".into(), "ip".into(), 0, String::new()),
        ]
    );
    let removed = slb(
        &s,
        "RemoveBackendServers",
        &[
            ("LoadBalancerId", &lb),
            (
                "BackendServers",
                &json!([{"ServerId": eni, "Type": "eni"}]).to_string(),
            ),
        ],
    )
    .await;
    removed.ok();
    let attr = attribute(&s, &lb).await;
    assert_eq!(
        servers(&attr),
        [("10.0.0.8".into(), "ip".into(), 0, String::new())]
    );
}

#[tokio::test]
async fn backend_server_errors_are_alibabas_and_change_nothing() {
    let s = Srv::start().await;
    let lb = create(&s, &[]).await;
    let eni = s.port("10.0.0.7").await;
    let fresh = s.port("10.0.0.8").await;
    let call = |action: &'static str, items: String| {
        let s = &s;
        let lb = lb.clone();
        async move {
            slb(
                s,
                action,
                &[("LoadBalancerId", &lb), ("BackendServers", &items)],
            )
            .await
        }
    };
    call(
        "AddBackendServers",
        json!([{"ServerId": eni, "Type": "eni"}]).to_string(),
    )
    .await
    .ok();
    let before = attribute(&s, &lb).await["BackendServers"].clone();
    let unknown_eni = format!("eni-{}", uuid::Uuid::new_v4().simple());
    let twenty_one: Vec<Value> = (0..21)
        .map(|i| json!({"ServerId": format!("10.9.0.{i}"), "Type": "ip"}))
        .collect();
    for (items, code) in [
        // A good server first: the call is all or nothing.
        (
            json!([{"ServerId": fresh, "Type": "eni"}, {"ServerId": eni, "Type": "eni"}]),
            "DuplicatedParam.BackendServers",
        ),
        (
            json!([{"ServerId": fresh, "Type": "eni"}, {"ServerId": unknown_eni, "Type": "eni"}]),
            "ResourceNotFound.NetworkInterface",
        ),
        (
            json!([{"ServerId": "i-bp1h5u3fv54ytf", "Type": "ecs"}]),
            "InvalidParameter",
        ),
        // SLB's default type is ecs, which tmirror has not.
        (json!([{"ServerId": fresh}]), "InvalidParameter"),
        // Not an address of the project's.
        (
            json!([{"ServerId": "192.0.2.1", "Type": "ip"}]),
            "IllegalParam.ServerIp",
        ),
        (
            json!([{"ServerId": fresh, "Type": "eni", "Weight": 101}]),
            "InvalidParameter",
        ),
        (
            json!([{"ServerId": fresh, "Type": "eni", "Port": 0}]),
            "InvalidParameter",
        ),
        (json!([{"Type": "eni"}]), "MissingParameter"),
        (Value::Array(twenty_one), "InvalidParameter"),
    ] {
        let a = call("AddBackendServers", items.to_string()).await;
        a.err(400, code);
        // The face's ids only, never a canonical UUID.
        assert!(
            !has_canonical_id(a.body["Message"].as_str().unwrap()),
            "{:?}",
            a.body
        );
    }
    call("AddBackendServers", "{not json".into())
        .await
        .err(400, "InvalidParameter");
    for action in ["RemoveBackendServers", "SetBackendServers"] {
        // One known server and one that is not: neither changes.
        call(
            action,
            json!([{"ServerId": eni, "Type": "eni", "Weight": 5},
                {"ServerId": fresh, "Type": "eni", "Weight": 5}])
            .to_string(),
        )
        .await
        .err(400, "ResourceNotFound.BackendServer");
    }
    slb(
        &s,
        "AddBackendServers",
        &[
            ("LoadBalancerId", &unknown_lb()),
            (
                "BackendServers",
                &json!([{"ServerId": fresh, "Type": "eni"}]).to_string(),
            ),
        ],
    )
    .await
    .err(400, "InvalidLoadBalancerId.NotFound");
    assert_eq!(attribute(&s, &lb).await["BackendServers"], before);
    slb(
        &s,
        "DescribeHealthStatus",
        &[("LoadBalancerId", &lb), ("ListenerPort", "53")],
    )
    .await
    .err(400, "InvalidParameter.ListenerNotFound");
}

#[tokio::test]
async fn the_udp_listener_is_the_health_check() {
    let s = Srv::start().await;
    let lb = create(&s, &[]).await;
    // Loopback: the health checker probes the member once the listener runs.
    let eni = s.port("127.77.0.7").await;
    slb(
        &s,
        "AddBackendServers",
        &[
            ("LoadBalancerId", &lb),
            (
                "BackendServers",
                &json!([{"ServerId": eni, "Type": "eni"}]).to_string(),
            ),
        ],
    )
    .await
    .ok();
    let listener = |extra: &[(&'static str, &'static str)]| {
        let mut params = vec![
            ("LoadBalancerId", lb.clone()),
            ("ListenerPort", "53".to_owned()),
            ("BackendServerPort", "4789".to_owned()),
            ("Bandwidth", "-1".to_owned()),
        ];
        for (k, v) in extra {
            params.retain(|(key, _)| key != k);
            params.push((k, (*v).to_owned()));
        }
        let s = &s;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            slb(s, "CreateLoadBalancerUDPListener", &params).await
        }
    };
    // What a tmirror listener cannot do is refused, and nothing is made.
    for (extra, code) in [
        (vec![("Bandwidth", "0")], "InvalidParameter"),
        (vec![("ListenerPort", "0")], "InvalidParameter"),
        (vec![("VServerGroupId", "rsp-1")], "InvalidParameter"),
        (vec![("healthCheckInterval", "51")], "InvalidParameter"),
    ] {
        listener(&extra).await.err(400, code);
    }
    assert_eq!(
        attribute(&s, &lb).await["ListenerPorts"]["ListenerPort"],
        json!([])
    );

    listener(&[
        ("healthCheckInterval", "3"),
        ("HealthyThreshold", "4"),
        ("HealthCheckConnectPort", "7070"),
    ])
    .await
    .ok();
    listener(&[]).await.err(400, "ListenerAlreadyExists");
    listener(&[("ListenerPort", "54")])
        .await
        .err(400, "QuotaExceeded.ListenerNum");
    let show = || async {
        slb(
            &s,
            "DescribeLoadBalancerUDPListenerAttribute",
            &[("LoadBalancerId", &lb), ("ListenerPort", "53")],
        )
        .await
        .ok()
        .clone()
    };
    let got = show().await;
    assert_eq!(
        (
            &got["Status"],
            &got["HealthCheck"],
            &got["HealthCheckInterval"]
        ),
        (&json!("stopped"), &json!("on"), &json!(3))
    );
    assert_eq!(
        (&got["HealthyThreshold"], &got["HealthCheckConnectPort"]),
        (&json!(4), &json!(7070))
    );
    // Stopped: the check is set but disabled, as the other face shows it; members unjudged.
    let monitors = format!("/v3/{}/elb/healthmonitors", s.project);
    let (status, body) = s.huawei("GET", &monitors, None).await;
    assert_eq!(
        (status, &body["healthmonitors"][0]["admin_state_up"]),
        (200, &json!(false))
    );

    slb(
        &s,
        "StartLoadBalancerListener",
        &[("LoadBalancerId", &lb), ("ListenerPort", "53")],
    )
    .await
    .ok();
    assert_eq!(show().await["Status"], "running");
    let (_, body) = s.huawei("GET", &monitors, None).await;
    let m = &body["healthmonitors"][0];
    assert_eq!(
        (
            &m["type"],
            &m["delay"],
            &m["max_retries"],
            &m["monitor_port"]
        ),
        (&json!("UDP_CONNECT"), &json!(3), &json!(4), &json!(7070))
    );
    // The members' health starts over under the new check; the answer names the listener.
    let health = slb(&s, "DescribeHealthStatus", &[("LoadBalancerId", &lb)]).await;
    let b = &health.ok()["BackendServers"]["BackendServer"][0];
    assert_eq!(
        (&b["ListenerPort"], &b["Protocol"]),
        (&json!(53), &json!("udp"))
    );

    slb(
        &s,
        "SetLoadBalancerUDPListenerAttribute",
        &[
            ("LoadBalancerId", &lb),
            ("ListenerPort", "53"),
            ("HealthCheckSwitch", "off"),
        ],
    )
    .await
    .ok();
    let (_, body) = s.huawei("GET", &monitors, None).await;
    assert_eq!(body["healthmonitors"], json!([]), "the check is off");
    slb(
        &s,
        "DeleteLoadBalancerListener",
        &[("LoadBalancerId", &lb), ("ListenerPort", "53")],
    )
    .await
    .ok();
    slb(
        &s,
        "DescribeLoadBalancerUDPListenerAttribute",
        &[("LoadBalancerId", &lb), ("ListenerPort", "53")],
    )
    .await
    .err(400, "InvalidParameter.ListenerNotFound");
}

#[tokio::test]
async fn only_the_project_may_see_and_only_writers_may_change() {
    let s = Srv::start().await;
    let lb = create(&s, &[("LoadBalancerName", "mine")]).await;
    let eni = s.port("10.0.0.7").await;
    let servers = json!([{"ServerId": eni, "Type": "eni"}]).to_string();

    // Another project's load balancer is an id nobody holds, word for word.
    let them = s.tenant("other", "member").await;
    for target in [lb.clone(), unknown_lb()] {
        for (action, extra) in [
            ("DescribeLoadBalancerAttribute", None),
            ("DeleteLoadBalancer", None),
            ("DescribeHealthStatus", None),
            (
                "AddBackendServers",
                Some(("BackendServers", servers.as_str())),
            ),
        ] {
            let mut params = vec![("LoadBalancerId", target.as_str())];
            params.extend(extra);
            let a = slb(&them, action, &params).await;
            a.err(400, "InvalidLoadBalancerId.NotFound");
            assert!(a.body["Message"].as_str().unwrap().contains(&target));
        }
    }
    let listed = slb(&them, "DescribeLoadBalancers", &[("LoadBalancerId", &lb)]).await;
    assert_eq!(listed.ok()["TotalCount"], 0);

    // A reader describes and writes nothing.
    let reader = s.admin_credential(&s.project, "reader").await;
    assert_eq!(attribute(&reader, &lb).await["LoadBalancerName"], "mine");
    for (action, params) in [
        ("CreateLoadBalancer", vec![("LoadBalancerName", "intruder")]),
        ("DeleteLoadBalancer", vec![("LoadBalancerId", lb.as_str())]),
        (
            "AddBackendServers",
            vec![
                ("LoadBalancerId", lb.as_str()),
                ("BackendServers", &servers),
            ],
        ),
        (
            "CreateLoadBalancerUDPListener",
            vec![
                ("LoadBalancerId", lb.as_str()),
                ("ListenerPort", "53"),
                ("BackendServerPort", "53"),
                ("Bandwidth", "-1"),
            ],
        ),
    ] {
        let a = slb(&reader, action, &params).await;
        a.err(403, "Forbidden.RAM");
    }
    let listed = slb(
        &s,
        "DescribeLoadBalancers",
        &[("LoadBalancerName", "intruder")],
    )
    .await;
    assert_eq!(listed.ok()["TotalCount"], 0);
    let attr = attribute(&s, &lb).await;
    assert_eq!(attr["BackendServers"]["BackendServer"], json!([]));
    assert_eq!(attr["ListenerPorts"]["ListenerPort"], json!([]));

    // Unsigned, or signed with another secret: refused before anything is read.
    let unsigned = s
        .raw(
            &format!("Action=DescribeLoadBalancerAttribute&Version={SLB}&RegionId=cn-hangzhou&LoadBalancerId={lb}"),
            &[],
            "",
        )
        .await;
    unsigned.err(400, "IncompleteSignature");
    let forged = s
        .send(
            Scheme::Acs3,
            "DeleteLoadBalancer",
            p(&[("RegionId", "cn-hangzhou"), ("LoadBalancerId", &lb)]),
            Tweak {
                version: Some(SLB.into()),
                secret: Some("not-the-secret".into()),
                ..Tweak::default()
            },
        )
        .await;
    forged.err(400, "SignatureDoesNotMatch");
    assert_eq!(attribute(&s, &lb).await["LoadBalancerName"], "mine");
}
