//! `tmirror demo` (root): it mirrors, says where the pcapng is, and leaves nothing behind,
//! also when interrupted with Ctrl-C half-way; `tmirror demo --lb` shares the flows between
//! two collectors and moves a stopped one's to the other.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{root_or_skip, BIN};

fn demo_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("tmdemo-"))
        .map(str::to_string)
        .collect()
}

/// Both demos build the same namespaces (`tmdemo-…`): one at a time.
static ONE_DEMO: Mutex<()> = Mutex::new(());

#[test]
fn demo_mirrors_and_cleans_up_also_on_ctrl_c() {
    let Some(()) = root_or_skip("demo_mirrors_and_cleans_up_also_on_ctrl_c") else {
        return;
    };
    let _one = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("4242"))
        .unwrap_or_else(|| panic!("no VNI 4242 in the report:\n{stdout}"));
    let packets: u64 = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    // 5 UDP datagrams out, and both directions of the TCP conversation (handshake, three
    // messages and their echoes, the close): the echoed UDP is not selected.
    assert!(packets >= 5 + 10, "too few copies: {report}");
    let pcap = dir.path().join("pcap/vni-4242-0.pcapng");
    assert!(stdout.contains(&pcap.display().to_string()), "{stdout}");
    assert!(std::fs::metadata(&pcap).unwrap().len() > 0);
    assert!(
        demo_namespaces().is_empty(),
        "namespaces left: {:?}",
        demo_namespaces()
    );

    // Interrupted once the cloud exists: still nothing left.
    let mut child = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in lines.by_ref() {
        if line.unwrap().contains("describing the VMs' ports") {
            break;
        }
        assert!(Instant::now() < deadline, "demo did not get going");
    }
    assert!(
        !demo_namespaces().is_empty(),
        "the demo's namespaces exist while it runs"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted demo reports it");
    assert!(
        demo_namespaces().is_empty(),
        "namespaces left after Ctrl-C: {:?}",
        demo_namespaces()
    );
    let leftovers = Command::new("pgrep")
        .args(["-f", &format!("{} (serve|agent|capture)", BIN)])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "processes left after Ctrl-C: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
}

/// `collector1 N flows, collector2 M flows` of the demo's summary line that starts with `what`.
fn shares(stdout: &str, what: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(what))
        .unwrap_or_else(|| panic!("no {what:?} line in the report:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split([',', ':'])
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(c), Some(n), Some("flows")) if c.starts_with("collector") => n.parse().ok(),
                _ => None,
            }
        })
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    (numbers[0], numbers[1])
}

#[test]
fn demo_lb_shares_the_flows_and_moves_a_stopped_collectors() {
    let Some(()) = root_or_skip("demo_lb_shares_the_flows_and_moves_a_stopped_collectors") else {
        return;
    };
    let _one = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--lb", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo --lb failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 40 flows, one datagram each: shared while both run (each takes some), all on
    // collector1 once collector2 is stopped and marked OFFLINE.
    let (one, two) = shares(&stdout, "both up");
    assert!(one > 0 && two > 0, "not shared: {one} and {two}\n{stdout}");
    assert_eq!(one + two, 40, "copies lost or doubled\n{stdout}");
    assert_eq!(
        shares(&stdout, "collector2 stopped"),
        (40, 0),
        "the stopped collector's flows did not move\n{stdout}"
    );
    assert!(stdout.contains("OFFLINE"), "{stdout}");
    for name in ["collector1", "collector2"] {
        let files = std::fs::read_dir(dir.path().join("pcap").join(name))
            .unwrap()
            .count();
        assert!(files > 0, "{name} wrote no pcapng");
    }
    assert!(
        demo_namespaces().is_empty(),
        "namespaces left: {:?}",
        demo_namespaces()
    );
}
