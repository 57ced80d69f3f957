//! A small cloud in Linux network namespaces, built with `ip` from iproute2: a hypervisor
//! whose VMs are namespaces joined to it by veth pairs (the hypervisor holds the host ends,
//! `tap1`, `tap2`, … and routes between them), and a collector on an underlay link.
//!
//! Everything a [`Lab`] creates (namespaces and so their interfaces, and the processes it
//! started) is removed when it is dropped, also when a test panics. Namespaces are named
//! `<prefix>-<name>`; creating a lab first removes leftovers of an earlier run with the same
//! prefix (one killed before it could clean up).
//!
//! Needs root. Addresses live only inside the lab's own namespaces.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether the process may build labs.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A set of namespaces and processes, removed on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    processes: Vec<(String, Child)>,
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn ip(args: &[&str]) -> io::Result<Output> {
    run(Command::new("ip").args(args))
}

/// Runs `ip [-n NS] -batch -` with `lines` as its commands: one process for many commands,
/// which keeps building a lab of many VMs fast. An error carries the failing command.
fn ip_batch(ns: Option<&str>, lines: &[String]) -> io::Result<()> {
    use std::io::Write;
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut script = lines.join("\n");
    script.push('\n');
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}-batch failed: {}",
            ns.map(|n| format!("-n {n} ")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// `ip netns add` run concurrently can hand out a namespace file before its bind mount is in
/// place (entering it then fails with EINVAL): one creation at a time in this process.
static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The sysctls of a quiet lab: no router solicitations or duplicate address detection on the
/// links made later, so that what crosses them is what a test sent (and what it caused).
const QUIET: [&str; 4] = [
    "net.ipv6.conf.default.router_solicitations=0",
    "net.ipv6.conf.all.router_solicitations=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.accept_dad=0",
];

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('-') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("namespace name {name:?}: non-empty, without '-'"),
        ));
    }
    Ok(())
}

impl Lab {
    /// An empty lab; removes namespaces `<prefix>-<name>` left by an earlier run.
    pub fn new(prefix: &str) -> io::Result<Lab> {
        let out = ip(&["netns", "list"])?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if is_leftover(prefix, name) {
                let _ = ip(&["netns", "del", name]);
            }
        }
        Ok(Lab {
            prefix: prefix.to_string(),
            namespaces: Vec::new(),
            processes: Vec::new(),
        })
    }

    /// The full name of the lab's namespace `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{}", self.prefix, name)
    }

    /// Creates namespace `name` (no `-` in it, see [`is_leftover`]) with its loopback up.
    pub fn add_namespace(&mut self, name: &str) -> io::Result<String> {
        Ok(self.add_namespaces(&[name])?.remove(0))
    }

    /// Creates namespaces `names` (none with a `-` in it, see [`is_leftover`]), each with
    /// its loopback up and quiet (see [`QUIET`]): one `ip -batch` for all of them, then one
    /// `ip netns exec … sysctl` each. Their full names, in order.
    pub fn add_namespaces(&mut self, names: &[&str]) -> io::Result<Vec<String>> {
        for name in names {
            check_name(name)?;
        }
        let all: Vec<String> = names.iter().map(|n| self.ns(n)).collect();
        {
            let _one = CREATE.lock().unwrap_or_else(|e| e.into_inner());
            // Recorded first: a batch that fails half-way still leaves nothing behind.
            self.namespaces.extend(all.iter().cloned());
            let adds: Vec<String> = all.iter().map(|ns| format!("netns add {ns}")).collect();
            ip_batch(None, &adds)?;
            // Wait until the new namespaces can be entered (see [`CREATE`]).
            let deadline = Instant::now() + Duration::from_secs(5);
            for ns in &all {
                while ip(&["-n", ns, "link", "set", "lo", "up"]).is_err() {
                    if Instant::now() > deadline {
                        return Err(io::Error::other(format!(
                            "namespace {ns} cannot be entered"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        for ns in &all {
            run(Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-qw"])
                .args(QUIET))?;
        }
        Ok(all)
    }

    /// Joins `a_if` in namespace `a` and `b_if` in `b` with a veth pair, both up.
    pub fn add_veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> io::Result<()> {
        let (na, nb) = (self.ns(a), self.ns(b));
        ip(&[
            "link", "add", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns", &nb,
        ])?;
        ip(&["-n", &na, "link", "set", a_if, "up"])?;
        ip(&["-n", &nb, "link", "set", b_if, "up"])?;
        Ok(())
    }

    /// Adds an address (`10.0.1.1/24`, `fd00::1/64`) to an interface.
    pub fn add_address(&self, ns: &str, interface: &str, cidr: &str) -> io::Result<()> {
        let ns = self.ns(ns);
        if cidr.contains(':') {
            ip(&["-n", &ns, "addr", "add", cidr, "dev", interface, "nodad"])?;
        } else {
            ip(&["-n", &ns, "addr", "add", cidr, "dev", interface])?;
        }
        Ok(())
    }

    /// Runs `ip -n NS ARGS…` (routes, links, …).
    pub fn ip(&self, ns: &str, args: &[&str]) -> io::Result<Output> {
        let ns = self.ns(ns);
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The command `program args…` inside namespace `ns`.
    pub fn command(&self, ns: &str, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(ns), program]).args(args);
        c
    }

    /// Runs a command to completion inside `ns`; an error carries its stderr.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> io::Result<Output> {
        run(&mut self.command(ns, program, args))
    }

    /// Starts a long-running process inside `ns`, its output appended to `log`. It is
    /// killed when the lab is dropped (or by [`Lab::kill`]). Returns its handle name.
    pub fn spawn(
        &mut self,
        name: &str,
        ns: &str,
        program: &str,
        args: &[&str],
        log: &Path,
    ) -> io::Result<()> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = self
            .command(ns, program, args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        self.processes.push((name.to_string(), child));
        Ok(())
    }

    /// Starts a process inside `ns` with piped stdout (for a helper that reports on it).
    pub fn spawn_piped(
        &mut self,
        name: &str,
        ns: &str,
        program: &str,
        args: &[&str],
    ) -> io::Result<&mut Child> {
        let child = self
            .command(ns, program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        self.processes.push((name.to_string(), child));
        Ok(&mut self.processes.last_mut().expect("just pushed").1)
    }

    /// The pid of process `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.processes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
    }

    /// Sends `signal` (`KILL`, `TERM`, `INT`) to process `name` and waits up to 10 s for it to
    /// exit; then forgets it. Returns its exit status, if it exited.
    pub fn kill(
        &mut self,
        name: &str,
        signal: &str,
    ) -> io::Result<Option<std::process::ExitStatus>> {
        let Some(i) = self.processes.iter().position(|(n, _)| n == name) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no process {name}"),
            ));
        };
        let (_, mut child) = self.processes.remove(i);
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(None)
    }

    /// Whether process `name` is still running.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.processes
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, c)| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.processes {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.processes {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace removes its interfaces, and with them the veth peers.
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Whether namespace `ns` is one a lab with `prefix` creates: `<prefix>-<name>`, `name` without
/// `-`. A lab's prefix may be the start of another's (`…-packet` and `…-packet-bypass`, two
/// tests running at the same time): the first must not take the second's namespaces for its
/// own leftovers and delete them under it.
pub fn is_leftover(prefix: &str, ns: &str) -> bool {
    ns.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|name| !name.is_empty() && !name.contains('-'))
}

/// Addresses of the standard topology.
pub mod addr {
    /// VM n (1-based): `10.0.n.2`, gateway `10.0.n.1`; IPv6 `fd00:n::2`, gateway `fd00:n::1`.
    pub fn vm4(n: u8) -> String {
        format!("10.0.{n}.2")
    }
    pub fn vm6(n: u8) -> String {
        format!("fd00:{n}::2")
    }
    /// The hypervisor's underlay address.
    pub const HYPERVISOR_UNDERLAY: &str = "192.168.77.1";
    /// The collector's address.
    pub const COLLECTOR: &str = "192.168.77.2";
}

/// The standard topology: namespaces `hv` (hypervisor), `vm1`…`vmN`, `col` (collector).
/// VM n's `eth0` is joined to `tapn` in `hv`; `hv`'s `ul0` to the collector's `eth0`. The
/// hypervisor routes between the VMs, IPv4 and IPv6.
///
/// Built with a few `ip -batch` runs (one for the links, one per namespace for its
/// addresses and routes) rather than a process per command: a hypervisor of 50 VMs takes
/// about a second instead of several.
pub fn mirror_cloud(prefix: &str, vms: u8) -> io::Result<Lab> {
    let mut lab = Lab::new(prefix)?;
    let vm_names: Vec<String> = (1..=vms).map(|n| format!("vm{n}")).collect();
    let mut names = vec!["hv", "col"];
    names.extend(vm_names.iter().map(String::as_str));
    lab.add_namespaces(&names)?;
    let (hv, col) = (lab.ns("hv"), lab.ns("col"));

    let mut links = vec![format!(
        "link add ul0 netns {hv} type veth peer name eth0 netns {col}"
    )];
    links.extend((1..=vms).map(|n| vm_link(&lab, n, None)));
    ip_batch(None, &links)?;

    let mut hv_lines = vec![
        "link set ul0 up".to_string(),
        format!("addr add {}/24 dev ul0", addr::HYPERVISOR_UNDERLAY),
    ];
    hv_lines.extend((1..=vms).flat_map(tap_setup));
    ip_batch(Some(&hv), &hv_lines)?;
    ip_batch(
        Some(&col),
        &[
            "link set eth0 up".to_string(),
            format!("addr add {}/24 dev eth0", addr::COLLECTOR),
        ],
    )?;
    for n in 1..=vms {
        ip_batch(Some(&lab.ns(&format!("vm{n}"))), &vm_setup(n))?;
    }
    lab.exec(
        "hv",
        "sysctl",
        &[
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ],
    )?;
    Ok(lab)
}

/// The `ip` line creating VM n's link: `tapn` in `hv` (of index `index`, if given) joined to
/// `eth0` in `vmn`.
fn vm_link(lab: &Lab, n: u8, index: Option<u32>) -> String {
    let index = index.map(|i| format!(" index {i}")).unwrap_or_default();
    format!(
        "link add tap{n}{index} netns {} type veth peer name eth0 netns {}",
        lab.ns("hv"),
        lab.ns(&format!("vm{n}"))
    )
}

/// The hypervisor's `ip` lines for `tapn`: up, with VM n's gateway addresses.
fn tap_setup(n: u8) -> [String; 3] {
    [
        format!("link set tap{n} up"),
        format!("addr add 10.0.{n}.1/24 dev tap{n}"),
        format!("addr add fd00:{n}::1/64 dev tap{n} nodad"),
    ]
}

/// VM n's `ip` lines for its `eth0`: up, addressed, routed through the hypervisor.
fn vm_setup(n: u8) -> [String; 5] {
    [
        "link set eth0 up".to_string(),
        format!("addr add {}/24 dev eth0", addr::vm4(n)),
        format!("addr add {}/64 dev eth0 nodad", addr::vm6(n)),
        format!("route add default via 10.0.{n}.1"),
        format!("route add default via fd00:{n}::1"),
    ]
}

/// Deletes VM n's link of [`mirror_cloud`] and creates it again, as a hypervisor does when
/// the VM restarts: `tapn` under index `index` (its old one, say) or under the next free one
/// (`None`), with the same addresses and routes.
pub fn recreate_vm_link(lab: &Lab, n: u8, index: Option<u32>) -> io::Result<()> {
    ip_batch(Some(&lab.ns("hv")), &[format!("link del tap{n}")])?;
    ip_batch(None, &[vm_link(lab, n, index)])?;
    ip_batch(Some(&lab.ns("hv")), &tap_setup(n))?;
    ip_batch(Some(&lab.ns(&format!("vm{n}"))), &vm_setup(n))
}

/// The index of `interface` in the lab's namespace `ns`.
pub fn interface_index(lab: &Lab, ns: &str, interface: &str) -> io::Result<u32> {
    let out = lab.ip(ns, &["-o", "link", "show", "dev", interface])?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no index for {interface} in {ns}: {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::is_leftover;

    #[test]
    fn leftovers_are_the_labs_own_namespaces_only() {
        assert!(is_leftover("tme2e-sel-packet", "tme2e-sel-packet-hv"));
        assert!(is_leftover("tme2e-sel-packet", "tme2e-sel-packet-vm2"));
        assert!(!is_leftover(
            "tme2e-sel-packet",
            "tme2e-sel-packet-bypass-hv"
        ));
        assert!(!is_leftover("tme2e-sel-packet", "tme2e-sel-packet-"));
        assert!(!is_leftover("tme2e-sel-packet", "tme2e-sel-packethv"));
        assert!(!is_leftover("tme2e-sel-packet", "tme2e-sel-raw-hv"));
    }
}
