//! Frame parsing and the whole per-packet path on arbitrary bytes (checks in
//! tests/fuzz_checks/mod.rs, shared with tests/fuzz_regression.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

fuzz_target!(|data: &[u8]| fuzz_checks::parse_frame(data));
