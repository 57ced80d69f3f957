//! Compiles the kernel-side selection program (bpf/select.bpf.c) with clang; nothing
//! prebuilt is used. clang and the libbpf headers come from scripts/deps.sh.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/select.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("select.bpf.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{}-linux-gnu", env::consts::ARCH))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} could not compile {src} ({s}); the libbpf headers come with libbpf-dev (scripts/deps.sh)"),
        Err(e) => panic!("cannot run {clang} to compile {src}: {e}; install clang and libbpf-dev (scripts/deps.sh) or set CLANG"),
    }
}
