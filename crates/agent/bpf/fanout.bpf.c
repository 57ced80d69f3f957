// SPDX-License-Identifier: (MIT OR Apache-2.0) AND GPL-2.0-only
//
// Benchmark-only prototype (issue 17, docs/dataplane.md "PACKET_FANOUT against the eBPF
// back-end"): the TCX program's selection run instead as the socket filter of AF_PACKET
// sockets joined in a PACKET_FANOUT group. Nothing of the agent loads it; the example
// crates/agent/examples/fanout.rs does, for bench/dataplane.sh.
//
// The same parser and classifier as the TCX program (select.bpf.c, included whole so the
// semantics cannot drift; its maps come along, only `plans` and `stats` are used here). A
// socket filter cannot hand the session to user space, only a length: it returns 0 for a
// frame no session selects (the kernel drops it before it is copied into the ring) and, for
// a selected one, its copy length, but at least the headers the engine reads (up to
// SNAP_HEADROOM), so that user space can find the session again by deciding on what it got.

/* A socket filter may not read the frame in place: every header through the helper. */
#define SELECT_HELPER_LOADS_ONLY
#include "select.bpf.c"

/* sll_pkttype of frames the interface sends (linux/if_packet.h). */
#define PACKET_OUTGOING 4
/* tmirror-packet's SNAP_HEADROOM: bytes the engine may read to decide. */
#define SNAP_HEADROOM 256

/* The frame's snap length: 0 (not captured) or what the selected copy needs. */
static __always_inline __u32 snap_length(struct __sk_buff *skb)
{
	if (skb->mark == OWN_COPY_MARK)
		return 0;
	__u32 zero = 0;
	/* Sockets bound to every interface see them all: the plan says which are sources. */
	const struct iface *ifc = plan_of(skb->ifindex);
	if (!ifc)
		return 0;
	__u32 slot = ifc->stats_slot;
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);
	if (c)
		c->seen++;
	__u32 outgoing = skb->pkt_type == PACKET_OUTGOING;
	__u32 dir = (outgoing ^ ifc->host_side) & 1;
	struct pkt *p = bpf_map_lookup_elem(&scratch, &zero);
	if (!p)
		return 0;
	__builtin_memset(p, 0, sizeof(*p));
	if (parse(skb, p) < 0)
		return 0;
	int s = classify(ifc, dir, p);
	if (s < 0 || s >= MAX_SESSIONS)
		return 0;
	/* The copy length as the TCX program computes it (the ring holds the frame without a
	 * tag the kernel keeps apart, as the TCX program's data does). */
	__u32 copy = skb->len;
	__u32 want = ifc->packet_length[s & (MAX_SESSIONS - 1)];
	if (copy > want)
		copy = want;
	if (copy > ifc->max_copy)
		copy = ifc->max_copy;
	__u32 headers = skb->len < SNAP_HEADROOM ? skb->len : SNAP_HEADROOM;
	if (copy < headers)
		copy = headers;
	if (c)
		c->selected++;
	return copy;
}

/* The body stays in an inline helper, as select.bpf.c's does: a program that names `plans`
 * itself gets its maps emitted before `plan_template`, and clang (14) then describes
 * `struct iface` in the BTF only as a forward declaration, which leaves the loader unable to
 * size the plan map. */
SEC("socket")
int tmirror_fanout(struct __sk_buff *skb)
{
	return snap_length(skb);
}
