//! The program's attachments follow the interfaces: an interface deleted and created again
//! under the same index (what `ip link add … index N` does, and a VM's tap re-created by a
//! hypervisor that keeps its indexes) has lost the program with its old device, and attaching
//! to it again must attach anew — while attaching to an interface still attached to must not
//! attach again. The agent learns of the deletion from the kernel's link announcements; without
//! them it asks the kernel where each kept attachment is (both paths tested). And only the
//! hooks whose direction has rules carry the program.
//!
//! Real frames: UDP datagrams sent out of a veth in a network namespace of the test thread's
//! own (gone with the thread, and its interfaces with it). Needs root; skips visibly otherwise.

use std::net::UdpSocket;
use std::process::Command;

use tmirror_agent::kernel::{Hooks, KernelSelector};
use tmirror_model::{Direction, RuleAction};

mod support;
use support::{accept_all, is_root, mirror_all, mirror_with, programs_on};

/// The source interface's index, kept across its re-creation.
const INDEX: u32 = 4242;
const SOURCE: &str = "src0";
/// A neighbour of `SOURCE` with a permanent entry: datagrams to it leave at once, no ARP.
const NEIGHBOUR: &str = "10.77.0.9";
const PORT: u16 = 4789 + 7;

fn ip(args: &str) {
    let ok = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .expect("run ip")
        .success();
    assert!(ok, "ip {args}");
}

/// Creates `SOURCE` (index `INDEX`) with its peer, addressed, with a permanent neighbour.
fn create_source() {
    ip(&format!(
        "link add name {SOURCE} index {INDEX} type veth peer name src1"
    ));
    ip(&format!("link set {SOURCE} up"));
    ip("link set src1 up");
    ip(&format!("addr add 10.77.0.1/24 dev {SOURCE}"));
    ip(&format!(
        "neigh add {NEIGHBOUR} lladdr 02:00:00:00:00:09 dev {SOURCE} nud permanent"
    ));
}

/// Sends `n` datagrams out of `SOURCE`.
fn send(n: usize) {
    let socket = UdpSocket::bind("10.77.0.1:0").expect("bind");
    for _ in 0..n {
        socket.send_to(b"attach", (NEIGHBOUR, PORT)).expect("send");
    }
}

/// The copies of our datagrams in the ring, by interface index.
fn copies(sel: &mut KernelSelector) -> Vec<u32> {
    let mut out = Vec::new();
    sel.drain(|c| {
        if c.packet.ports.is_some_and(|(_, d)| d == PORT) {
            out.push(c.ifindex);
        }
    });
    out
}

/// Attaches, sends, deletes and creates the interface again under its index, attaches again:
/// copies before, none from the new device until it is attached to, copies after; one
/// attachment at first, none more for a second attach to the same device, one more for the
/// new device.
fn follows_a_recreated_interface(sel: KernelSelector) {
    let mut sel = sel;
    assert_eq!(sel.attach(SOURCE).expect("attach"), INDEX);
    sel.install(&[(INDEX, accept_all(96, &[Direction::Egress]))])
        .expect("install");
    send(3);
    assert_eq!(copies(&mut sel), [INDEX; 3], "attached");
    assert_eq!(sel.attachments_made(), 1);

    // Attached already: nothing changes, and no frame is copied twice.
    assert_eq!(sel.attach(SOURCE).expect("attach again"), INDEX);
    send(3);
    assert_eq!(copies(&mut sel), [INDEX; 3], "attached once");
    assert_eq!(
        sel.attachments_made(),
        1,
        "the same device is not attached to anew"
    );

    // Deleted and created again under its index: the new device has no program...
    ip(&format!("link del {SOURCE}"));
    create_source();
    send(3);
    assert_eq!(
        copies(&mut sel),
        [0u32; 0],
        "the old links went with the old device"
    );
    // ...until attached again, as the agent's next look at its interfaces does.
    assert_eq!(sel.attach(SOURCE).expect("attach anew"), INDEX);
    send(3);
    assert_eq!(copies(&mut sel), [INDEX; 3], "attached anew");
    assert_eq!(sel.attachments_made(), 2);
    assert_eq!(sel.attached().collect::<Vec<_>>(), [INDEX]);
}

/// Runs `test` in a network namespace of a new thread's own, with `SOURCE` created; skips
/// it (saying so) when not root.
fn in_own_namespace(test: impl FnOnce() + Send + 'static) {
    if !is_root() {
        eprintln!("SKIPPED: the kernel attachment test needs root (loads BPF programs)");
        return;
    }
    std::thread::spawn(move || {
        // SAFETY: unshare has no memory preconditions; it moves only this thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        create_source();
        test();
    })
    .join()
    .expect("the test's thread");
}

#[test]
fn an_interface_created_again_under_its_index_is_attached_anew_by_its_deletion_notice() {
    in_own_namespace(|| {
        follows_a_recreated_interface(KernelSelector::load().expect("load the kernel program"))
    });
}

#[test]
fn without_deletion_notices_the_kernel_is_asked_where_an_attachment_is() {
    in_own_namespace(|| {
        let sel = KernelSelector::load().expect("load the kernel program");
        follows_a_recreated_interface(sel.without_link_watch())
    });
}

#[test]
fn a_port_leaving_its_bridge_keeps_its_attachment() {
    in_own_namespace(|| {
        ip("link add name br0 type bridge");
        ip(&format!("link set {SOURCE} master br0"));
        let mut sel = KernelSelector::load().expect("load the kernel program");
        assert_eq!(sel.attach(SOURCE).expect("attach"), INDEX);
        sel.install(&[(INDEX, accept_all(96, &[Direction::Egress]))])
            .expect("install");
        // The bridge announces the port's leaving as a deletion of family AF_BRIDGE: the
        // interface stays, and so must the program on it.
        ip(&format!("link set {SOURCE} nomaster"));
        assert!(!sel.forget_deleted(), "no interface was deleted");
        send(3);
        assert_eq!(copies(&mut sel), [INDEX; 3], "still attached");
        assert_eq!(sel.attachments_made(), 1);
        // A real deletion is told, once.
        ip("link del br0");
        ip(&format!("link del {SOURCE}"));
        assert!(sel.forget_deleted(), "src0 was deleted");
        assert!(!sel.forget_deleted(), "told once");
        assert_eq!(sel.attached().count(), 0);
    });
}

/// Sends `n` datagrams over the loopback interface and receives them: each crossed its
/// egress hook, then its ingress hook (in the receive softirq, perhaps later than the send
/// returned: received, it has crossed both). Received by a socket, so that no ICMP error
/// comes back.
fn send_local(n: usize) {
    let receiver = UdpSocket::bind(("127.0.0.1", PORT)).expect("bind the receiver");
    receiver
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..n {
        socket.send_to(b"hooks", ("127.0.0.1", PORT)).expect("send");
    }
    let mut buf = [0u8; 64];
    for _ in 0..n {
        receiver.recv_from(&mut buf).expect("receive what was sent");
    }
}

#[test]
fn only_the_hooks_whose_direction_has_rules_carry_the_program() {
    in_own_namespace(|| {
        ip("link set lo up");
        let egress = mirror_all(96, &[Direction::Egress]);
        let both = mirror_all(96, &[Direction::Ingress, Direction::Egress]);
        // The engine's directions are the source's: on the host end of a VM's interface,
        // what the VM sends (its egress) arrives at the ingress hook.
        assert_eq!(Hooks::needed(&egress, false), Hooks([false, true]));
        assert_eq!(Hooks::needed(&egress, true), Hooks([true, false]));
        assert_eq!(Hooks::needed(&both, true), Hooks::BOTH);
        assert_eq!(Hooks::needed(&mirror_all(96, &[]), false), Hooks::NONE);
        // A direction of rejects only selects nothing.
        let rejects = [
            (Direction::Ingress, RuleAction::Accept),
            (Direction::Egress, RuleAction::Reject),
        ];
        assert_eq!(
            Hooks::needed(&mirror_with(96, &rejects), false),
            Hooks([true, false])
        );

        let mut sel = KernelSelector::load().expect("load the kernel program");
        let lo = sel
            .attach_hooks("lo", Hooks::needed(&egress, false))
            .expect("attach");
        assert_eq!(programs_on("lo"), [0, 1], "the egress hook only");
        sel.install(&[(lo, accept_all(96, &[Direction::Egress]))])
            .expect("install");
        send_local(3);
        assert_eq!(copies(&mut sel), [lo; 3], "what lo sends");
        // The frames received were never examined: no program ran on them.
        assert_eq!(sel.stats(lo).seen, 3, "frames examined");

        // Rules for both directions: the ingress hook is added, the egress one kept.
        sel.attach_hooks("lo", Hooks::needed(&both, false))
            .expect("attach the other hook");
        assert_eq!(programs_on("lo"), [1, 1]);
        assert_eq!(sel.attachments_made(), 1, "lo was attached to already");
        sel.install(&[(lo, accept_all(96, &[Direction::Ingress, Direction::Egress]))])
            .expect("install");
        send_local(3);
        assert_eq!(copies(&mut sel), [lo; 6], "sent and received, once each");
        assert_eq!(sel.stats(lo).seen, 3 + 6);

        // Back to one direction, then to none: the program leaves the hooks.
        sel.attach_hooks("lo", Hooks([false, true]))
            .expect("detach");
        assert_eq!(programs_on("lo"), [0, 1]);
        // As the agent changes a plan's direction: the new hook added, the old one kept
        // until the new plan is in force, then dropped.
        sel.add_hooks("lo", Hooks([true, false])).expect("add");
        assert_eq!(programs_on("lo"), [1, 1]);
        sel.keep_hooks(lo, Hooks([true, false]));
        assert_eq!(programs_on("lo"), [1, 0]);
        assert_eq!(sel.attachments_made(), 1);
        sel.attach_hooks("lo", Hooks::NONE).expect("detach");
        assert_eq!(programs_on("lo"), [0, 0]);
        assert_eq!(sel.attached().count(), 0);
        send_local(3);
        assert_eq!(copies(&mut sel), [0u32; 0], "no hook, no copy");
    });
}
