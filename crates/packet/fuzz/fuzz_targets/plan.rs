//! Rules, sessions and a frame all from the fuzzer's bytes: every evaluator agrees (checks in
//! tests/fuzz_checks/mod.rs, shared with tests/fuzz_regression.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

fuzz_target!(|data: &[u8]| fuzz_checks::plan(data));
