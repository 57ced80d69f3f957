//! Compiles the kernel-side selection program (bpf/select.bpf.c) with clang, and the
//! benchmark-only socket-filter prototype built on it (bpf/fanout.bpf.c, loaded by
//! examples/fanout.rs only); nothing prebuilt is used. clang and the libbpf headers come from
//! scripts/deps.sh.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    // One object per room for interfaces in the plan arrays (kernel.rs `OBJECTS`): the
    // arrays' size is fixed in the object, and the loader takes the smallest that fits.
    compile("bpf/select.bpf.c", "select.bpf.o", None);
    compile("bpf/select.bpf.c", "select-1024.bpf.o", Some(1024));
    compile("bpf/select.bpf.c", "select-4096.bpf.o", Some(4096));
    compile("bpf/fanout.bpf.c", "fanout.bpf.o", None);
}

fn compile(src: &str, object: &str, room: Option<u32>) {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join(object);
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .args(room.map(|r| format!("-DKERNEL_INTERFACES={r}")))
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
