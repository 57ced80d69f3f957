// SPDX-License-Identifier: (MIT OR Apache-2.0) AND GPL-2.0-only
//
// tmirror's kernel-side selection: a TCX classifier on each source interface's ingress and
// egress hooks. It evaluates the interface's mirror plan (sessions and rules, compiled by the
// agent from tmirror-packet's own lowering) with exactly the packet engine's semantics
// (crates/packet: parse.rs, filter.rs, classify.rs, plan.rs) and writes each selected packet,
// cut to its copy length, with its session into one BPF ring buffer shared by all interfaces.
// It never changes, drops or delays a packet: it always answers TCX_NEXT.
//
// Plan updates are atomic: the agent builds a complete new plan map and swaps it into the
// one-slot map-in-map `plans`; a program run looks the slot up once, so it sees all of one
// plan, and the kernel frees the old map only after every run that holds it has ended.
// A plan is one array: its first TABLE_ENTRIES entries are an open-addressed table from
// interface index to the entry of that interface's plan, which follow (the kernel's hash map
// by interface index cost a third of an unselected frame; docs/dataplane.md).
//
// The record layout and the limits below are mirrored in crates/agent/src/sys/bpf.rs.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SESSIONS 16
#define MAX_RULES 64     /* per direction, all sessions of the interface, both IP versions */
#define MAX_IFACES 4096
#define TABLE_SLOTS 1024   /* (interface index, entry) pairs per table entry */
#define TABLE_ENTRIES 16   /* 16,384 slots for at most MAX_IFACES interfaces: a quarter full */
#define PROBES 16          /* an interface sits within this many slots of its hash's */
#define COPY_BUF 16384   /* power of two: a masked length is always inside the buffer */
#define MAX_COPY 9216    /* longest copy the kernel makes; longer plans stay in user space */
#define RING_BYTES (32 << 20)  /* the default; the loader sets the size asked for */
#define BATCH_FLUSH 16384 /* a CPU's batch goes to the ring once it holds this many bytes */
#define FLUSH_NS 1000000 /* or once its first copy has waited this long (1 ms) */
#define MAX_CPUS 4096    /* entries of `batches` the loader may ask for */
#define OWN_COPY_MARK 0x746d6972
#define TCX_NEXT -1

#ifndef BPF_F_TIMER_CPU_PIN /* kernel 6.7; older headers lack it */
#define BPF_F_TIMER_CPU_PIN (1ULL << 1)
#endif
#define CLOCK_MONOTONIC 1
#define barrier() asm volatile("" ::: "memory")

#define VERDICT_NOT_MIRRORED (-1)
#define VERDICT_MALFORMED (-2)
#define VERDICT_NOT_IP (-3)

struct rule {
	__u32 src_net[4];
	__u32 src_mask[4];
	__u32 dst_net[4];
	__u32 dst_mask[4];
	__u16 sport_lo, sport_hi, dport_lo, dport_hi;
	__u8 version;      /* 4 or 6 */
	__u8 protocol;
	__u8 any_protocol;
	__u8 ports;        /* the rule constrains ports */
	__u8 accept;
	__u8 session;      /* index in the plan, sessions in evaluation order */
	__u8 pad[2];
};

struct iface {
	__u32 generation;
	__u8 host_side;    /* captured on the host end of a VM's interface: directions swap */
	__u8 n_sessions;
	__u16 max_copy;
	__u16 n_rules[2];  /* [0] ingress, [1] egress (the engine's directions) */
	__u16 packet_length[MAX_SESSIONS];
	__u32 stats_slot;  /* the interface's entry in `stats`, stable while it is mirrored */
	struct rule rules[2][MAX_RULES];
};

struct record {
	__u32 generation;
	__u32 ifindex;
	__u32 wire_len;
	__u16 copy_len;
	__u16 data_len;
	__u8 session;
	__u8 outgoing;
	__u8 version;
	__u8 protocol;
	__u8 has_ports;
	__u8 vlan_present;
	__u16 vlan_tci;
	__u16 vlan_proto;
	__u16 sport;
	__u16 dport;
	__u8 non_first;    /* a fragment other than the first */
	__u8 fragment;     /* any fragment of a fragmented datagram (parse.rs `fragment`) */
	__u32 src[4];
	__u32 dst[4];
	__u32 stats_slot;  /* the interface's counters, should the ring refuse the copy's batch */
	__u32 pad;
};

_Static_assert(sizeof(struct rule) == 80, "sys/bpf.rs: KRule");
_Static_assert(sizeof(struct iface) == 48 + 2 * MAX_RULES * 80, "sys/bpf.rs: KIface");
_Static_assert(__builtin_offsetof(struct iface, stats_slot) == 44, "sys/bpf.rs: KIface");
_Static_assert(sizeof(struct record) == 72, "sys/bpf.rs: RECORD_LEN");
struct slot {
	__u32 ifindex;     /* 0: empty (no interface has index 0) */
	__u32 entry;
};

_Static_assert(TABLE_SLOTS * sizeof(struct slot) <= sizeof(struct iface), "a table part is an entry");
_Static_assert(TABLE_ENTRIES * TABLE_SLOTS >= 4 * MAX_IFACES, "the table stays a quarter full");

/* Past this many unread bytes a copy wakes a polling consumer at once: set by the loader
 * from the ring's size (sys/bpf.rs `wake_bytes`; this default is the default ring's). */
volatile const __u32 wake_bytes = RING_BYTES / 16;

struct counters {
	__u64 seen;
	__u64 selected;
	__u64 ring_full;
};

/* Entries 0 .. TABLE_ENTRIES - 1: the table, TABLE_SLOTS slots each; then one entry per
 * planned interface, with room for KERNEL_INTERFACES of them (build.rs builds an object for
 * each of sys/bpf.rs KERNEL_ROOMS; the loader takes the smallest that holds the agent's
 * --kernel-max-interfaces). Every plan array has that one size: the verifier then inlines
 * the program's look-ups in them, which it does not for inner arrays of varying size
 * (BPF_F_INNER_MAP) — on the source's core the program's share fell from about 3.6 % to
 * 3.15 % of its samples (docs/performance.md). */
#ifndef KERNEL_INTERFACES
#define KERNEL_INTERFACES 256 /* sys/bpf.rs KERNEL_INTERFACES */
#endif
struct plan_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TABLE_ENTRIES + KERNEL_INTERFACES);
	__type(key, __u32);
	__type(value, struct iface);
} plan_template SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct plan_array);
} plans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} copies SEC(".maps");

/* A CPU's copies on their way to the ring, records back to back (each at a multiple of 8
 * bytes). The ring's reservation, commit and fill check cost about 40 ns a copy, a third of a
 * selected frame (docs/dataplane.md); on a faster core, with whole 1,400-byte frames each in
 * a record of its own, `bpf_ringbuf_output`'s own work (its copy aside) took 15 % of the
 * source's core (performance.md): a batch pays them once for all of its copies, of every
 * length. It goes to the ring when it holds BATCH_FLUSH bytes, when the
 * drain thread sleeps (a lone copy is not held), or when its timer fires, FLUSH_NS after its
 * first copy. */
struct batch {
	struct bpf_timer timer;
	__u32 used;        /* bytes of `buf` taken, a multiple of 8 below BATCH_FLUSH */
	__u8 armed;        /* the timer is started and will flush the batch */
	__u8 timer_ready;  /* bpf_timer_init and the callback done */
	__u8 busy;         /* a program run is appending (see `flush_timer`) */
	__u8 pad;
	__u64 buf[(BATCH_FLUSH + sizeof(struct record) + COPY_BUF) / 8];
};

/* One entry per possible CPU (the loader sets the count), indexed by the CPU a run is on:
 * only that CPU appends to it, and its timer is pinned there. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, struct batch);
} batches SEC(".maps");

/* How the drain thread waits, set by it: 0 (the initial value) = asleep on the ring until
 * woken, 1 = polling it every millisecond or so because copies are flowing. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} consumer SEC(".maps");

/* Per interface, per CPU, at the interface's `stats_slot`: an array, whose lookup kernels
 * from 6.10 inline (a hash by ifindex cost about 9 ns a frame; sys/bpf.rs). The agent zeroes
 * a slot before a plan names it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

struct pkt {
	__u32 src[4];
	__u32 dst[4];
	__u8 version;
	__u8 protocol;
	__u8 has_ports;
	__u8 non_first;
	__u16 sport;
	__u16 dport;
	__u8 fragment;
};

/* The frame's parse, per CPU (parsing into the stack measured slower). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt);
} scratch SEC(".maps");

/* Header buffers: aligned so that `load` copies and `be16`/`be32` read them in words. */
#define HDR __attribute__((aligned(4)))

/* A header's `len` bytes at `off` (a constant length at every call site): read in place
 * when the frame's linear part holds them, as it does for nearly every frame, which spares
 * the helper call; copied by the kernel otherwise (a paged frame, a short linear part). */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
#ifndef SELECT_HELPER_LOADS_ONLY /* socket filters may not read skb->data (fanout.bpf.c) */
	__u8 *data = (__u8 *)(long)skb->data;
	__u8 *end = (__u8 *)(long)skb->data_end;
	/* Bounded for the verifier: no header starts 64 KiB into a frame. */
	if (off < 0x10000) {
		__u8 *from = data + off;
		if (from + len <= end) {
			/* Word by word (every header buffer is HDR-aligned, every length even):
			 * a memcpy from a byte pointer is a load and a store per byte. A frame's
			 * headers need not be aligned: the verifier allows unaligned reads of a
			 * frame where the architecture makes them efficiently (x86-64, arm64); a
			 * kernel that refuses the program leaves `--capture auto` on AF_PACKET. */
			if (len % 4 == 0) {
#pragma unroll
				for (__u32 i = 0; i < len / 4; i++)
					((__u32 *)to)[i] = ((const __u32 *)from)[i];
			} else {
#pragma unroll
				for (__u32 i = 0; i < len / 2; i++)
					((__u16 *)to)[i] = ((const __u16 *)from)[i];
			}
			return 0;
		}
	}
#endif
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* A header's big-endian fields, read from its HDR-aligned copy with one load each: a 16-bit
 * field sits at an even offset, a 32-bit one at a multiple of 4. */
static __always_inline __u16 be16(const __u8 *b)
{
	return bpf_ntohs(*(const __u16 *)b);
}

static __always_inline __u32 be32(const __u8 *b)
{
	return bpf_ntohl(*(const __u32 *)b);
}

/* parse.rs `transport`: the transport header of a first (or only) fragment. */
static __always_inline int transport(struct __sk_buff *skb, struct pkt *p, __u32 off, __u32 wire)
{
	__u8 h[20] HDR;
	switch (p->protocol) {
	case 6: /* TCP */
		if (wire < 20 || load(skb, off, h, 20))
			return VERDICT_MALFORMED;
		{
			__u32 doff = (h[12] >> 4) * 4;
			if (doff < 20 || doff > wire)
				return VERDICT_MALFORMED;
		}
		break;
	case 17: /* UDP */
		if (wire < 8 || load(skb, off, h, 8))
			return VERDICT_MALFORMED;
		{
			__u32 len = be16(h + 4);
			if (len < 8 || len > wire)
				return VERDICT_MALFORMED;
		}
		break;
	case 1:  /* ICMP */
	case 58: /* ICMPv6 */
		return wire < 8 ? VERDICT_MALFORMED : 0;
	default:
		return 0;
	}
	p->has_ports = 1;
	p->sport = be16(h);
	p->dport = be16(h + 2);
	return 0;
}

/* parse.rs `parse_ipv4`; `len`: bytes from the IP header to the end of the frame. */
static __always_inline int ipv4(struct __sk_buff *skb, struct pkt *p, __u32 l3, __u32 len)
{
	__u8 h[20] HDR;
	if (len < 20 || load(skb, l3, h, 20))
		return VERDICT_MALFORMED;
	if (h[0] >> 4 != 4)
		return VERDICT_MALFORMED;
	__u32 ihl = (h[0] & 0x0f) * 4;
	__u32 total = be16(h + 2);
	if (ihl < 20 || total < ihl || total > len || ihl > len)
		return VERDICT_MALFORMED;
	p->version = 4;
	p->protocol = h[9];
	p->src[3] = be32(h + 12);
	p->dst[3] = be32(h + 16);
	__u16 flags_offset = be16(h + 6);
	/* More fragments, or an offset: a fragment. */
	p->fragment = (flags_offset & 0x3fff) != 0;
	if ((flags_offset & 0x1fff) != 0) {
		p->non_first = 1;
		return 0;
	}
	return transport(skb, p, l3 + ihl, total - ihl);
}

/* parse.rs `parse_ipv6`, extension headers walked as the engine walks them. */
static __always_inline int ipv6(struct __sk_buff *skb, struct pkt *p, __u32 l3, __u32 len)
{
	__u8 h[40] HDR;
	if (len < 40) {
		/* The engine's first checks, in its order, all end in Malformed. */
		return VERDICT_MALFORMED;
	}
	if (load(skb, l3, h, 40))
		return VERDICT_MALFORMED;
	if (h[0] >> 4 != 6)
		return VERDICT_MALFORMED;
	__u32 end = 40 + (__u32)be16(h + 4);
	if (end > len)
		return VERDICT_MALFORMED;
	p->version = 6;
	for (int i = 0; i < 4; i++) {
		p->src[i] = be32(h + 8 + 4 * i);
		p->dst[i] = be32(h + 24 + 4 * i);
	}
	__u8 next = h[6];
	__u32 off = 40;
	__u32 walked = 0;
	int non_first = 0;
	int done = 0;
	for (int i = 0; i < 9; i++) {
		__u8 e[4] HDR;
		__u32 hlen;
		switch (next) {
		case 0:   /* Hop-by-Hop: only directly after the fixed header (RFC 8200 §4.1) */
			if (walked > 0)
				return VERDICT_MALFORMED;
			/* fallthrough */
		case 43:  /* Routing */
		case 60:  /* Destination Options */
		case 135: /* Mobility */
		case 139: /* HIP */
		case 140: /* Shim6 */
			if (off + 2 > end || load(skb, l3 + off, e, 2))
				return VERDICT_MALFORMED;
			hlen = ((__u32)e[1] + 1) * 8;
			if (off + hlen > end)
				return VERDICT_MALFORMED;
			next = e[0];
			off += hlen;
			break;
		case 51:  /* AH */
			if (off + 2 > end || load(skb, l3 + off, e, 2))
				return VERDICT_MALFORMED;
			hlen = ((__u32)e[1] + 2) * 4;
			if (off + hlen > end)
				return VERDICT_MALFORMED;
			next = e[0];
			off += hlen;
			break;
		case 44:  /* Fragment */
			if (off + 8 > end || load(skb, l3 + off, e, 4))
				return VERDICT_MALFORMED;
			next = e[0];
			off += 8;
			/* The M flag, or an offset: a fragment (an atomic fragment has neither). */
			if ((be16(e + 2) & 0xfff9) != 0)
				p->fragment = 1;
			if ((be16(e + 2) >> 3) != 0) {
				non_first = 1;
				done = 1;
			}
			break;
		default:
			done = 1;
			break;
		}
		if (done)
			break;
		walked++;
		if (walked > 8)
			return VERDICT_MALFORMED;
	}
	p->protocol = next;
	if (non_first) {
		p->non_first = 1;
		return 0;
	}
	return transport(skb, p, l3 + off, end - off);
}

static __always_inline int is_vlan(__u16 et)
{
	return et == 0x8100 || et == 0x88A8 || et == 0x9100;
}

/* parse.rs `parse_captured` on the whole frame; a tag the kernel holds apart counts first. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u32 len = skb->len;
	__u8 b[2] HDR;
	if (len < 14 || load(skb, 12, b, 2))
		return VERDICT_MALFORMED;
	__u16 et = be16(b);
	__u32 off = 14;
	__u32 tags = 0;
	if (skb->vlan_present) {
		/* The frame as on the wire starts with this tag; the in-frame ethertype follows. */
		tags = 1;
	}
	for (int i = 0; i < 3; i++) {
		if (!is_vlan(et))
			break;
		if (tags == 2)
			return VERDICT_NOT_IP;
		if (off + 4 > len || load(skb, off + 2, b, 2))
			return VERDICT_MALFORMED;
		et = be16(b);
		off += 4;
		tags++;
	}
	if (et == 0x0800)
		return ipv4(skb, p, off, len - off);
	if (et == 0x86DD)
		return ipv6(skb, p, off, len - off);
	return VERDICT_NOT_IP;
}

static __always_inline int matches(const struct rule *r, const struct pkt *p)
{
	if (r->version != p->version)
		return 0;
	if (!r->any_protocol && r->protocol != p->protocol)
		return 0;
	for (int k = 0; k < 4; k++) {
		if ((p->src[k] & r->src_mask[k]) != r->src_net[k])
			return 0;
		if ((p->dst[k] & r->dst_mask[k]) != r->dst_net[k])
			return 0;
	}
	if (r->ports) {
		if (!p->has_ports)
			return 0;
		if (p->sport < r->sport_lo || p->sport > r->sport_hi)
			return 0;
		if (p->dport < r->dport_lo || p->dport > r->dport_hi)
			return 0;
	}
	return 1;
}

/* classify.rs: the first session, in order, whose first matching rule is an accept. */
static __always_inline int classify(const struct iface *ifc, __u32 dir, const struct pkt *p)
{
	__u32 n = ifc->n_rules[dir];
	int skip = -1;
	for (__u32 i = 0; i < MAX_RULES; i++) {
		if (i >= n)
			break;
		const struct rule *r = &ifc->rules[dir][i];
		if (r->session == skip)
			continue;
		if (!matches(r, p))
			continue;
		if (r->accept)
			return r->session;
		skip = r->session;
	}
	return VERDICT_NOT_MIRRORED;
}

/* Whether the drain thread polls the ring on its own (copies are flowing) rather than
 * sleeping until a copy wakes it. */
static __always_inline int consumer_polls(void)
{
	__u32 zero = 0;
	__u32 *polling = bpf_map_lookup_elem(&consumer, &zero);
	return polling && *polling;
}

/* A wake-up is an interrupt and a scheduler round trip, paid per copy when every copy wakes
 * the consumer (the kernel's default wakes it whenever it has caught up, which a fast
 * consumer always has). A consumer asleep on the ring is always woken: a lone copy is not
 * held. One that polls on its own while copies flow is left to its poll, but for the batch
 * that takes the ring past `wake_bytes` (`len`: bytes of this batch): once per crossing, not
 * per batch, so a consumer that falls behind is not flooded with wake-ups. Two CPUs crossing
 * together may both miss it; the consumer's poll comes all the same. */
static __always_inline __u64 wake_flags(__u32 len, int polling)
{
	if (!polling)
		return BPF_RB_FORCE_WAKEUP;
	__u64 avail = bpf_ringbuf_query(&copies, BPF_RB_AVAIL_DATA);
	/* 8: the ring's own header of a record. */
	if (avail <= wake_bytes && avail + len + 8 > wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Fibonacci hashing (2^32 / golden ratio) for an interface's first place in the table, and a
 * second multiplier for its second: the top 4 bits of the product choose the table entry, the
 * next 10 the slot. */
#define HASH_FIRST 2654435769u
#define HASH_SECOND 2246822519u

/* Searches the PROBES slots from `h`'s for `ifindex`: its entry, or 0; `*full` set when all
 * of them were taken by other interfaces (the agent then placed it at its second place). */
static __always_inline __u32 find(void *plan, __u32 h, __u32 ifindex, int *full)
{
	__u32 part = h >> 28;
	const struct slot *table = bpf_map_lookup_elem(plan, &part);
	if (!table)
		return 0;
	__u32 first = (h >> 18) & (TABLE_SLOTS - 1);
	for (__u32 i = 0; i < PROBES; i++) {
		const struct slot *s = &table[(first + i) & (TABLE_SLOTS - 1)];
		if (s->ifindex == ifindex)
			return s->entry;
		if (s->ifindex == 0)
			return 0;
	}
	*full = 1;
	return 0;
}

/* The plan of the interface of index `ifindex`, or none. The agent puts an interface in the
 * first free slot of the PROBES from its first place, or when all of them are taken, of those
 * from its second (kernel.rs `plan_table`, sys/bpf.rs `table_slots`); an empty slot ends a
 * search. */
static __always_inline const struct iface *plan_of(__u32 ifindex)
{
	__u32 zero = 0;
	void *plan = bpf_map_lookup_elem(&plans, &zero);
	if (!plan)
		return 0;
	int full = 0;
	__u32 entry = find(plan, ifindex * HASH_FIRST, ifindex, &full);
	if (entry == 0 && full)
		entry = find(plan, ifindex * HASH_SECOND, ifindex, &full);
	if (entry < TABLE_ENTRIES)
		return 0;
	return bpf_map_lookup_elem(plan, &entry);
}

struct lost {
	struct batch *b;
	__u32 at;
	__u32 used;
};

/* bpf_loop callback: the record at `at` of a batch the ring had no room for, counted as a
 * ring drop of its interface instead of a copy. */
static long count_lost(__u32 i, struct lost *l)
{
	if (l->at >= l->used)
		return 1;
	const struct record *r = (const struct record *)((__u8 *)l->b->buf + (l->at & (BATCH_FLUSH - 8)));
	__u32 slot = r->stats_slot;
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);
	if (c) {
		c->selected--;
		c->ring_full++;
	}
	l->at += (sizeof(struct record) + r->data_len + 7) & ~7u;
	return 0;
}

/* Hands the batch's first `used` bytes to the ring as one record and empties it; `polling`:
 * how the drain thread waits (`consumer_polls`), which decides the wake-up. */
static __always_inline void flush(struct batch *b, __u32 used, int polling)
{
	b->used = 0;
	/* Two checks, not one folded into `used - 1 >= size`, whose bound the verifier does
	 * not carry back to `used`. */
	if (used == 0)
		return;
	barrier_var(used);
	if (used > sizeof(b->buf))
		return;
	if (bpf_ringbuf_output(&copies, b->buf, used, wake_flags(used, polling))) {
		struct lost l = {.b = b, .at = 0, .used = used};
		bpf_loop(BATCH_FLUSH / sizeof(struct record) + 1, count_lost, &l, 0);
	}
}

/* The batch's timer: sends what the batch holds. A program run on this CPU cannot be
 * interrupted by it (both run with bottom halves off), but for BPF_PROG_TEST_RUN's: then
 * it comes back a little later rather than take a batch half written. */
static int flush_timer(void *map, __u32 *key, struct batch *b)
{
	if (b->busy) {
		/* Not armed if it cannot come back: the interrupted run, when it adds its
		 * record, then starts the timer again or sends the batch. */
		if (bpf_timer_start(&b->timer, FLUSH_NS / 16, BPF_F_TIMER_CPU_PIN))
			b->armed = 0;
		return 0;
	}
	b->armed = 0;
	flush(b, b->used, consumer_polls());
	return 0;
}

/* Makes sure the batch's timer will send it; false when the timer cannot (a kernel without
 * pinned BPF timers, before 6.7), and the caller sends the batch at once. */
static __always_inline int flush_later(struct batch *b)
{
	if (b->armed)
		return 1;
	if (!b->timer_ready) {
		bpf_timer_init(&b->timer, &batches, CLOCK_MONOTONIC);
		if (bpf_timer_set_callback(&b->timer, flush_timer))
			return 0;
		b->timer_ready = 1;
	}
	if (bpf_timer_start(&b->timer, FLUSH_NS, BPF_F_TIMER_CPU_PIN))
		return 0;
	b->armed = 1;
	return 1;
}

/* A record was added to this CPU's batch, which now takes `used` bytes: sends the batch when
 * the drain thread sleeps, when it is full enough, or when no timer can send it later; holds
 * it otherwise. (The verifier checks the timer's callback, and with it the loss path, once
 * for every state that reaches here: both stay small.) */
static __always_inline void hold_or_send(struct batch *b, __u32 used)
{
	int polling = consumer_polls();
	if (!polling || used >= BATCH_FLUSH || !flush_later(b))
		flush(b, used, polling);
	else
		b->used = used;
}

static __always_inline int select_packet(struct __sk_buff *skb, __u32 outgoing)
{
	if (skb->mark == OWN_COPY_MARK)
		return TCX_NEXT;
	__u32 zero = 0;
	const struct iface *ifc = plan_of(skb->ifindex);
	if (!ifc)
		return TCX_NEXT;
	/* Read again: the index the look-up narrowed stays out of the verifier's states. */
	__u32 ifindex = skb->ifindex;
	__u32 slot = ifc->stats_slot;
	struct counters *c = bpf_map_lookup_elem(&stats, &slot);
	if (c)
		c->seen++;
	/* plan.rs `PipelinePlan::direction`: ingress is what the source receives. */
	__u32 dir = (outgoing ^ ifc->host_side) & 1;
	/* No rule in this direction selects nothing: skip the parse. The agent attaches the
	 * program only to the hooks whose direction has accept rules (kernel.rs `Hooks`): this
	 * is for the moments a plan changes, and for callers that attach to both. */
	if (ifc->n_rules[dir] == 0)
		return TCX_NEXT;
	struct pkt *p = bpf_map_lookup_elem(&scratch, &zero);
	if (!p)
		return TCX_NEXT;
	__builtin_memset(p, 0, sizeof(*p));
	if (parse(skb, p) < 0)
		return TCX_NEXT;
	int s = classify(ifc, dir, p);
	if (s < 0 || s >= MAX_SESSIONS)
		return TCX_NEXT;
	__u32 wire = skb->len + (skb->vlan_present ? 4 : 0);
	__u32 copy = wire;
	__u32 want = ifc->packet_length[s & (MAX_SESSIONS - 1)];
	if (copy > want)
		copy = want;
	if (copy > ifc->max_copy)
		copy = ifc->max_copy;
	if (copy > MAX_COPY)
		copy = MAX_COPY;
	__u32 data_len = copy < skb->len ? copy : skb->len;
	if (data_len == 0)
		return TCX_NEXT;
	__u32 cpu = bpf_get_smp_processor_id();
	struct batch *b = bpf_map_lookup_elem(&batches, &cpu);
	if (!b)
		return TCX_NEXT;
	/* Another run is appending on this CPU: this one interrupted it, which only a
	 * BPF_PROG_TEST_RUN allows (a softirq running the attached program in its middle). The
	 * copy is counted as lost rather than written over the other's record. */
	if (b->busy) {
		if (c)
			c->ring_full++;
		return TCX_NEXT;
	}
	b->busy = 1;
	barrier();
	/* Masked for the verifier; `used` always is a multiple of 8 below BATCH_FLUSH. */
	__u32 off = b->used & (BATCH_FLUSH - 8);
	struct record *r = (struct record *)((__u8 *)b->buf + off);
	r->generation = ifc->generation;
	r->ifindex = ifindex;
	r->wire_len = wire;
	r->copy_len = copy;
	r->data_len = data_len;
	r->session = s;
	r->outgoing = outgoing;
	r->version = p->version;
	r->protocol = p->protocol;
	r->has_ports = p->has_ports;
	r->vlan_present = skb->vlan_present ? 1 : 0;
	r->vlan_tci = skb->vlan_tci;
	r->vlan_proto = bpf_ntohs(skb->vlan_proto);
	r->sport = p->sport;
	r->dport = p->dport;
	r->non_first = p->non_first;
	r->fragment = p->fragment;
	r->stats_slot = slot;
	for (int k = 0; k < 4; k++) {
		r->src[k] = p->src[k];
		r->dst[k] = p->dst[k];
	}
	/* The same value, in a form whose bounds [1, COPY_BUF] the verifier sees without
	 * following a comparison made on another register. */
	__u32 n = ((data_len - 1) & (COPY_BUF - 1)) + 1;
	if (bpf_skb_load_bytes(skb, 0, r + 1, n)) {
		barrier();
		b->busy = 0;
		return TCX_NEXT;
	}
	if (c)
		c->selected++;
	__u32 len = (sizeof(struct record) + n + 7) & ~7u;
	hold_or_send(b, off + len);
	barrier();
	b->busy = 0;
	return TCX_NEXT;
}

SEC("classifier/ingress")
int tmirror_ingress(struct __sk_buff *skb)
{
	return select_packet(skb, 0);
}

SEC("classifier/egress")
int tmirror_egress(struct __sk_buff *skb)
{
	return select_packet(skb, 1);
}

char LICENSE[] SEC("license") = "GPL";
