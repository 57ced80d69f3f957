//! Replays the fuzz seed corpus and every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`) through exactly the checks the fuzz targets make
//! (`tests/fuzz_checks/mod.rs`), so a fixed crash stays fixed without nightly tools.

mod fuzz_checks;

use std::path::Path;

use tmirror_packet::*;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_file() && !name.starts_with('.') && !name.ends_with(".md") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn parse_frame_inputs() {
    let inputs = inputs("parse_frame");
    assert!(inputs.len() >= 10, "seed corpus missing");
    let mut ip = 0;
    for (name, data) in &inputs {
        eprintln!("{name}");
        fuzz_checks::parse_frame(data);
        if parse(data).is_ok() {
            ip += 1;
        }
    }
    assert!(ip >= 8, "most seeds are IP packets");
}

#[test]
fn decap_inputs() {
    let inputs = inputs("decap");
    assert!(inputs.len() >= 5, "seed corpus missing");
    for (name, data) in &inputs {
        eprintln!("{name}");
        fuzz_checks::decap(data);
        // the seeds are all valid copies
        if name.contains("/seeds/") {
            if name.ends_with("payload_only") {
                assert!(decapsulate_payload(data).is_ok(), "{name}");
            } else {
                assert!(decapsulate_frame(data, VXLAN_PORT).is_ok(), "{name}");
            }
        }
    }
}

#[test]
fn plan_inputs() {
    let inputs = inputs("plan");
    assert!(inputs.len() >= 3, "seed corpus missing");
    for (name, data) in &inputs {
        eprintln!("{name}");
        fuzz_checks::plan(data);
    }
}
