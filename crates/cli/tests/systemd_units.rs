//! The systemd units in `packaging/systemd`: each passes `systemd-analyze verify` without a
//! warning (a misspelt option is only warned about, and ignored, by systemd), keeps the
//! hardening options this project promises, holds only the capabilities its program needs,
//! and scores "OK" or better in `systemd-analyze security`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Unit, and the capabilities it may hold (bounding set and ambient set alike).
const UNITS: [(&str, &str); 4] = [
    ("tmirror-serve.service", ""),
    ("tmirror-agent.service", "CAP_NET_RAW CAP_NET_ADMIN"),
    ("tmirror-capture.service", ""),
    ("tmirror-capture-tap.service", "CAP_NET_ADMIN"),
];

/// Options every unit sets, as written.
const HARDENING: [&str; 12] = [
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "SystemCallArchitectures=native",
    "DynamicUser=yes",
];

/// `systemd-analyze security` exposure (tenths) a unit may not exceed: 3.0, well inside its
/// "OK" band; an unhardened service scores 9.6.
const MAX_EXPOSURE: &str = "30";

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd")
}

fn analyze() -> Option<()> {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            eprintln!("SKIPPED: systemd-analyze is not installed (scripts/deps.sh installs it)");
            None
        }
    }
}

/// The unit's text with its `ExecStart` pointing at the binary under test (verify checks
/// that the program exists).
fn installed(dir: &Path, name: &str) -> (PathBuf, String) {
    let text = std::fs::read_to_string(units_dir().join(name)).expect("unit file");
    let here = text.replace("/usr/local/bin/tmirror", env!("CARGO_BIN_EXE_tmirror"));
    let path = dir.join(name);
    std::fs::write(&path, &here).unwrap();
    (path, text)
}

fn value<'t>(text: &'t str, key: &str) -> Vec<&'t str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn every_unit_verifies_cleanly_and_keeps_its_hardening() {
    if analyze().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shipped: Vec<String> = std::fs::read_dir(units_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".service"))
        .collect();
    assert_eq!(
        shipped.len(),
        UNITS.len(),
        "every unit is checked: {shipped:?}"
    );
    for (name, capabilities) in UNITS {
        let (path, text) = installed(dir.path(), name);
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.trim().is_empty(), "{name} has warnings: {stderr}");

        for option in HARDENING {
            assert!(text.lines().any(|l| l == option), "{name} lacks {option}");
        }
        for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
            assert_eq!(value(&text, key), [capabilities], "{name}: {key}");
        }
        let exec = value(&text, "ExecStart");
        assert_eq!(exec.len(), 1, "{name}");
        assert!(exec[0].starts_with("/usr/local/bin/tmirror "), "{name}");

        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(format!("--threshold={MAX_EXPOSURE}"))
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        let last = report.lines().last().unwrap_or_default().to_owned();
        assert!(out.status.success(), "{name} is too exposed: {last}");
        eprintln!("{last}");
    }
}

#[test]
fn a_misspelt_option_is_caught() {
    if analyze().is_none() {
        return;
    }
    // The check above relies on verify's warnings: make sure it gives one.
    let dir = tempfile::tempdir().unwrap();
    let (path, text) = installed(dir.path(), "tmirror-serve.service");
    let here = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        here.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"),
    )
    .unwrap();
    assert!(text.contains("NoNewPrivileges=yes"));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NoNewPrivilege"), "{stderr}");
}
