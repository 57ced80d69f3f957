//! Compiles the kernel-side selection program (bpf/select.bpf.c) with clang, and the
//! benchmark-only socket-filter prototype built on it (bpf/fanout.bpf.c, loaded by
//! examples/fanout.rs only); nothing prebuilt is used. clang and the libbpf headers come from
//! scripts/deps.sh.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    compile("bpf/select.bpf.c", "select.bpf.o");
    compile("bpf/fanout.bpf.c", "fanout.bpf.o");
}

fn compile(src: &str, object: &str) {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(object);
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
