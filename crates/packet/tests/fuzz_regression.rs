//! Replays the fuzz seed corpus and every input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`) through the same checks the fuzz targets make, so a fixed
//! crash stays fixed without nightly tools.

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
    let plan_l = MirrorPlan::<u32>::new(
        Vec::new(),
        PlanConfig {
            evaluation: Evaluation::Linear,
            ..PlanConfig::default()
        },
    );
    let mut ip = 0;
    for (name, data) in &inputs {
        if parse(data).is_ok() {
            ip += 1;
        }
        for dir in tmirror_model::Direction::ALL {
            let v = plan_l.decide(data, dir);
            assert!(!matches!(v, Verdict::Mirror(_)), "{name}");
        }
    }
    assert!(ip >= 8, "most seeds are IP packets");
}

#[test]
fn decap_inputs() {
    let inputs = inputs("decap");
    assert!(inputs.len() >= 5, "seed corpus missing");
    for (name, data) in &inputs {
        let frame = decapsulate_frame(data, VXLAN_PORT);
        let payload = decapsulate_payload(data);
        if let Ok(d) = frame {
            let start = d.inner.as_ptr() as usize - data.as_ptr() as usize;
            assert!(start >= 50 && start + d.inner.len() <= data.len(), "{name}");
        }
        if !name.ends_with("payload_only") {
            assert!(frame.is_ok(), "{name}: {frame:?}");
        } else {
            assert!(payload.is_ok(), "{name}");
        }
    }
}
