//! End to end, as root, in network namespaces: the fleet view. With an agent mirroring vm1's
//! traffic, `tmirror host list` and `host show` show the agent connected, caught up, capturing
//! tap1; `tmirror session show` shows the copies (and their rate) the host delivered and that
//! it applied the session. A tenant's key gets no fleet view.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, root_or_skip, Cloud, Spec};
use tmirror_netlab::addr;

/// The cells of the row of `table` whose first cell is `first`, and the header's names.
fn row(table: &str, first: &str) -> Option<Vec<(String, String)>> {
    let mut lines = table.lines().skip_while(|l| !l.starts_with("HOST_ID"));
    let header: Vec<String> = lines.next()?.split_whitespace().map(String::from).collect();
    let cells = lines.find(|l| l.split_whitespace().next() == Some(first))?;
    Some(
        header
            .into_iter()
            .zip(cells.split_whitespace().map(String::from))
            .collect(),
    )
}

fn cell<'r>(row: &'r [(String, String)], name: &str) -> &'r str {
    &row.iter().find(|(h, _)| h == name).expect(name).1
}

#[test]
fn hosts_and_session_delivery_as_the_agents_report_them() {
    let Some(()) = root_or_skip("hosts_and_session_delivery_as_the_agents_report_them") else {
        return;
    };
    let mut cloud = Cloud::new("tme2e-fleet", 2);
    cloud.start_server();
    cloud.start_collector();
    cloud.start_echo("vm2");
    // Reports every second rather than every 25: the rates follow the traffic closely.
    cloud.start_agent_with(&["--poll-wait-secs", "1"]);

    let vm1 = cloud.vm_port(1);
    let target = cloud.collector_port();
    let filter = cloud.accept_all_ipv4("all");
    let session = cloud.session("fleet", &filter, &vm1, &target, Spec::new(1, 600, 128));
    cloud.wait_capturing(&["tap1"]);

    // Traffic in bounded bursts until a report shows a rate (at most 15 bursts).
    let mut delivered = None;
    for burst in 0..15 {
        let r = cloud.traffic(
            "vm1",
            &[
                "udp",
                &addr::vm4(2),
                "7001",
                "20",
                "100",
                &format!("b{burst}"),
            ],
        );
        assert_eq!(r["echoed"], 20, "vm1 and vm2 reach each other: {r}");
        let shown = cloud.cli_text(&["session", "show", &session]);
        if let Some(hv) = row(&shown, "hv") {
            if cell(&hv, "COPIES/S").parse::<f64>().unwrap() > 0.0 {
                delivered = Some((shown, hv));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (shown, hv) = delivered.expect("a report with copies per second above zero");
    assert_eq!(cell(&hv, "CONNECTED"), "true", "{shown}");
    assert_eq!(cell(&hv, "APPLIED"), "true", "{shown}");
    assert!(cell(&hv, "COPIES").parse::<u64>().unwrap() > 0, "{shown}");
    assert!(
        cell(&hv, "BYTES/S").parse::<f64>().unwrap() > 0.0,
        "{shown}"
    );
    assert!(shown.contains("applied_everywhere  true"), "{shown}");

    // The fleet: hv connected, caught up (once it reported the last revision), capturing.
    let mut list = Value::Null;
    assert!(
        eventually(Duration::from_secs(10), || {
            list = cloud.cli(&["host", "list"]);
            list["hosts"][0]["agent"]["lag"] == 0
        }),
        "hv catches up: {list}"
    );
    let agent = &list["hosts"][0]["agent"];
    assert_eq!(list["hosts"][0]["host_id"], "hv", "{list}");
    assert_eq!(agent["connected"], true, "{list}");
    assert_eq!(
        agent["counters"]["interfaces"]["tap1"]["state"], "capturing",
        "{list}"
    );
    let table = cloud.cli_text(&["host", "list"]);
    let hv = row(&table, "hv").expect("hv listed");
    assert_eq!(cell(&hv, "AGENT"), "connected", "{table}");
    assert_eq!(cell(&hv, "LAG"), "0", "{table}");
    assert_eq!(cell(&hv, "CAPTURING"), "1/1", "{table}");
    assert_eq!(cell(&hv, "DROPS"), "0", "{table}");
    let one = cloud.cli_text(&["host", "show", "hv"]);
    assert!(
        one.lines()
            .any(|l| l.starts_with("tap1") && l.contains("capturing")),
        "{one}"
    );

    // A tenant's key: no fleet view, and not this project's session.
    let project = cloud.project("other");
    let (_, file) = cloud.credential(&project, "admin", "other.json");
    for args in [&["host", "list"][..], &["host", "show", "hv"][..]] {
        let out = cloud.cli_as(&file, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("403") && err.contains("Forbidden"), "{err}");
    }
    let out = cloud.cli_as(&file, &["session", "show", &session]);
    assert_eq!(out.status.code(), Some(1));
}
