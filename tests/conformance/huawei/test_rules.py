"""Traffic mirror filter rules: create, show, list, update, delete (reference §1.1 rows 13-17,
§3.3, §4.5, §4.6, §5.3)."""

import pytest

from hwsupport import TIMESTAMP_RE, UUID_RE, expect_error, raw, uid

OPTIONAL = ("source_cidr_block", "destination_cidr_block", "source_port_range", "destination_port_range")


def unset(rule, key):
    """An optional field that was never set: the official examples leave it out; a null or ""
    reads the same to the SDK and to Terraform (§2 'Omitted fields')."""
    return rule.get(key) in (None, "")


def assert_rule_shape(r, project_id, filter_id):
    for k in ("id", "project_id", "description", "traffic_mirror_filter_id", "direction", "ethertype",
              "protocol", "action", "priority", "created_at", "updated_at"):
        assert k in r, f"missing key {k}"
    assert UUID_RE.match(r["id"])
    assert r["project_id"] == project_id
    assert r["traffic_mirror_filter_id"] == filter_id
    assert type(r["priority"]) is int, f"priority must be a JSON integer, got {r['priority']!r}"
    assert TIMESTAMP_RE.match(r["created_at"]), r["created_at"]
    assert TIMESTAMP_RE.match(r["updated_at"]), r["updated_at"]


def test_create_like_the_official_example(res, project_id):
    # SPEC CreateTrafficMirrorFilterRule: "ipv4" comes back "IPv4", the CIDR's trailing space is
    # trimmed, the description defaults to "", and unset fields stay unset.
    f = res.filter()
    resp = res.create_rule(f.id, direction="ingress", ethertype="ipv4", protocol="ICMP",
                           source_cidr_block="192.168.0.0/24 ", action="accept", priority=29)
    assert resp.status_code == 201
    body = raw(resp)
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert resp.request_id == body["request_id"]
    r = body["traffic_mirror_filter_rule"]
    assert_rule_shape(r, project_id, f.id)
    assert r["direction"] == "ingress"
    assert r["ethertype"] == "IPv4"
    assert r["protocol"] == "ICMP"
    assert r["source_cidr_block"] == "192.168.0.0/24"
    assert r["action"] == "accept"
    assert r["priority"] == 29
    assert r["description"] == ""
    for k in ("destination_cidr_block", "source_port_range", "destination_port_range"):
        assert unset(r, k), f"{k} was not sent, yet came back as {r[k]!r}"
    assert r["created_at"] == r["updated_at"]
    m = resp.traffic_mirror_filter_rule
    assert (m.id, m.priority, m.ethertype, m.protocol) == (r["id"], 29, "IPv4", "ICMP")


def test_create_with_every_field(res, project_id):
    f = res.filter()
    r = raw(res.create_rule(f.id, direction="egress", protocol="tcp", ethertype="IPv4", action="reject",
                            priority=65535, description="web", source_cidr_block="10.0.0.0/8",
                            destination_cidr_block="0.0.0.0/0", source_port_range="80-200",
                            destination_port_range="1-65535"))["traffic_mirror_filter_rule"]
    assert_rule_shape(r, project_id, f.id)
    assert (r["direction"], r["protocol"], r["ethertype"], r["action"], r["priority"], r["description"]) == \
        ("egress", "tcp", "IPv4", "reject", 65535, "web")
    assert (r["source_cidr_block"], r["destination_cidr_block"]) == ("10.0.0.0/8", "0.0.0.0/0")
    assert (r["source_port_range"], r["destination_port_range"]) == ("80-200", "1-65535")


def test_create_ipv6_rule(res):
    f = res.filter()
    r = raw(res.create_rule(f.id, protocol="udp", ethertype="ipv6", source_cidr_block="2002:50::44/128",
                            destination_cidr_block="::/0", destination_port_range="53-53",
                            priority=1))["traffic_mirror_filter_rule"]
    assert r["ethertype"] == "IPv6"
    assert (r["source_cidr_block"], r["destination_cidr_block"]) == ("2002:50::44/128", "::/0")
    assert r["destination_port_range"] == "53-53"
    assert unset(r, "source_port_range")


@pytest.mark.parametrize("protocol,ethertype", [
    ("tcp", "IPv4"), ("TCP", "IPv4"), ("Tcp", "IPv4"), ("udp", "IPv4"), ("UDP", "IPv6"),
    ("icmp", "IPv4"), ("ICMP", "IPv4"), ("icmpv6", "IPv6"), ("ICMPV6", "IPv6"), ("IcmpV6", "IPv6"),
    ("all", "IPv4"), ("ALL", "IPv6"),
])
def test_protocol_is_echoed_as_sent(res, protocol, ethertype):
    f = res.filter()
    rid = res.rule(f.id, protocol=protocol, ethertype=ethertype).id
    assert raw(res.show_rule(rid))["traffic_mirror_filter_rule"]["protocol"] == protocol
    listed = raw(res.list_rules(traffic_mirror_filter_id=f.id))["traffic_mirror_filter_rules"]
    assert [x["protocol"] for x in listed] == [protocol]


@pytest.mark.parametrize("ethertype,expected", [
    ("ipv4", "IPv4"), ("IPV4", "IPv4"), ("IPv4", "IPv4"), ("ipv6", "IPv6"), ("IPV6", "IPv6"), ("iPv6", "IPv6"),
])
def test_ethertype_is_normalised(res, ethertype, expected):
    f = res.filter()
    r = raw(res.create_rule(f.id, ethertype=ethertype, protocol="all"))["traffic_mirror_filter_rule"]
    assert r["ethertype"] == expected
    assert raw(res.show_rule(r["id"]))["traffic_mirror_filter_rule"]["ethertype"] == expected


def test_cidr_whitespace_is_trimmed(res):
    f = res.filter()
    r = raw(res.create_rule(f.id, source_cidr_block=" 10.1.0.0/16", destination_cidr_block="10.2.0.0/16 "))
    r = r["traffic_mirror_filter_rule"]
    assert (r["source_cidr_block"], r["destination_cidr_block"]) == ("10.1.0.0/16", "10.2.0.0/16")


@pytest.mark.parametrize("field,value", [
    ("priority", 0),
    ("priority", 65536),
    ("direction", "inbound"),
    ("action", "drop"),
    ("protocol", "gre"),
    ("ethertype", "IPv5"),
    ("source_cidr_block", "300.1.1.0/24"),
    ("destination_cidr_block", "10.0.0.0/33"),
    ("source_cidr_block", "not-a-cidr"),
    ("source_port_range", "80"),
    ("source_port_range", "200-80"),
    ("destination_port_range", "0-10"),
    ("destination_port_range", "1-65536"),
    ("description", "<rule>"),
    ("description", "x" * 256),
    # A CIDR of the other address family than the ethertype.
    ("source_cidr_block", "2002:50::/64"),
    # ICMP pairs with IPv4 and ICMPV6 with IPv6 (§5.3).
    ("protocol", "icmpv6"),
])
def test_create_rejects_invalid_values_and_creates_nothing(res, field, value):
    f = res.filter()
    kw = dict(direction="ingress", protocol="tcp", ethertype="IPv4", action="accept", priority=5)
    kw[field] = value
    expect_error(lambda: res.create_rule(f.id, **kw), 400, "VPC.0101")
    assert res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules in ([], None)
    shown = raw(res.show_filter(f.id))["traffic_mirror_filter"]
    assert shown["ingress_rules"] == [] and shown["egress_rules"] == []


@pytest.mark.parametrize("protocol,ethertype", [("icmp", "IPv4"), ("icmpv6", "IPv6"), ("all", "IPv4")])
@pytest.mark.parametrize("field", ["source_port_range", "destination_port_range"])
def test_port_ranges_are_refused_for_protocols_without_ports(res, protocol, ethertype, field):
    f = res.filter()
    expect_error(lambda: res.create_rule(f.id, protocol=protocol, ethertype=ethertype, **{field: "80-80"}),
                 400, "VPC.0101")
    assert res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules in ([], None)


def test_icmp_is_ipv4_only(res):
    f = res.filter()
    expect_error(lambda: res.create_rule(f.id, protocol="ICMP", ethertype="IPv6"), 400, "VPC.0101")
    assert res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules in ([], None)


def test_unknown_filter_at_create_is_404(res):
    expect_error(lambda: res.create_rule(uid()), 404, "VPC.1702")


def test_show(res, project_id):
    f = res.filter()
    created = raw(res.create_rule(f.id, description="shown", source_port_range="1-2"))["traffic_mirror_filter_rule"]
    resp = res.show_rule(created["id"])
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    assert body["traffic_mirror_filter_rule"] == created
    assert_rule_shape(body["traffic_mirror_filter_rule"], project_id, f.id)


def test_list_by_filter(res, project_id):
    f = res.filter()
    a = raw(res.create_rule(f.id, direction="ingress", priority=7))["traffic_mirror_filter_rule"]
    b = raw(res.create_rule(f.id, direction="egress", priority=3))["traffic_mirror_filter_rule"]
    other = res.filter()
    c = raw(res.create_rule(other.id))["traffic_mirror_filter_rule"]
    resp = res.list_rules(traffic_mirror_filter_id=f.id)
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    assert body["traffic_mirror_filter_rules"] == [a, b], "exact match on the filter id, creation order"
    assert body["page_info"]["current_count"] == 2
    everything = raw(res.list_rules())["traffic_mirror_filter_rules"]
    ids = [x["id"] for x in everything]
    assert ids.index(a["id"]) < ids.index(b["id"]) < ids.index(c["id"])
    for x in everything:
        assert_rule_shape(x, project_id, x["traffic_mirror_filter_id"])


def test_update_merges_into_the_stored_rule(res, project_id):
    f = res.filter()
    created = raw(res.create_rule(f.id, direction="egress", protocol="tcp", ethertype="IPv4",
                                  source_cidr_block="10.0.0.0/8", source_port_range="80-81",
                                  priority=11))["traffic_mirror_filter_rule"]
    resp = res.update_rule(created["id"], description="changed", priority=12, action="reject",
                           destination_cidr_block="192.168.1.0/24 ", destination_port_range="443-443")
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    r = body["traffic_mirror_filter_rule"]
    assert_rule_shape(r, project_id, f.id)
    assert (r["description"], r["priority"], r["action"]) == ("changed", 12, "reject")
    assert r["destination_cidr_block"] == "192.168.1.0/24"
    assert r["destination_port_range"] == "443-443"
    # Untouched fields stay, direction and filter cannot change.
    assert (r["source_cidr_block"], r["source_port_range"]) == ("10.0.0.0/8", "80-81")
    assert (r["direction"], r["protocol"], r["ethertype"]) == ("egress", "tcp", "IPv4")
    assert r["created_at"] == created["created_at"]
    assert r["updated_at"] >= created["updated_at"]
    assert raw(res.show_rule(created["id"]))["traffic_mirror_filter_rule"] == r
    # Protocol case on update is echoed too; ethertype normalised.
    r = raw(res.update_rule(created["id"], protocol="UDP", ethertype="ipv4"))["traffic_mirror_filter_rule"]
    assert (r["protocol"], r["ethertype"]) == ("UDP", "IPv4")
    assert r["source_port_range"] == "80-81"


@pytest.mark.parametrize("new_protocol,new_ethertype", [("icmp", None), ("all", None), ("ALL", "IPv4"),
                                                        ("icmpv6", "IPv6")])
def test_protocol_change_without_ports_clears_port_ranges(res, new_protocol, new_ethertype):
    # Terraform's case: udp/IPv4 with 80-81 and 1-65535 becomes icmpv6/IPv6 without sending the
    # port fields, and expects both ranges to come back empty (§5.3 'Partial updates').
    f = res.filter()
    rid = res.rule(f.id, protocol="udp", ethertype="IPv4", source_port_range="80-81",
                   destination_port_range="1-65535").id
    kw = {"protocol": new_protocol, "description": ""}
    if new_ethertype:
        kw["ethertype"] = new_ethertype
    r = raw(res.update_rule(rid, **kw))["traffic_mirror_filter_rule"]
    assert r["protocol"] == new_protocol
    assert unset(r, "source_port_range") and unset(r, "destination_port_range"), r
    shown = raw(res.show_rule(rid))["traffic_mirror_filter_rule"]
    assert unset(shown, "source_port_range") and unset(shown, "destination_port_range"), shown
    # And back to tcp: the ranges stay gone until given again.
    r = raw(res.update_rule(rid, protocol="tcp", ethertype="IPv4"))["traffic_mirror_filter_rule"]
    assert unset(r, "source_port_range") and unset(r, "destination_port_range")
    r = raw(res.update_rule(rid, source_port_range="22-22"))["traffic_mirror_filter_rule"]
    assert r["source_port_range"] == "22-22"


def test_update_rejects_port_ranges_on_icmp_and_changes_nothing(res):
    f = res.filter()
    created = raw(res.create_rule(f.id, protocol="icmp", ethertype="IPv4"))["traffic_mirror_filter_rule"]
    expect_error(lambda: res.update_rule(created["id"], destination_port_range="80-80"), 400, "VPC.0101")
    assert raw(res.show_rule(created["id"]))["traffic_mirror_filter_rule"] == created


@pytest.mark.parametrize("field,value", [
    ("priority", 0), ("priority", 65536), ("action", "drop"), ("protocol", "sctp"), ("ethertype", "v4"),
    ("source_cidr_block", "10.0.0.0/40"), ("source_port_range", "9-8"), ("description", "<x>"),
])
def test_update_rejects_invalid_values_and_changes_nothing(res, field, value):
    f = res.filter()
    created = raw(res.create_rule(f.id, source_port_range="10-20"))["traffic_mirror_filter_rule"]
    expect_error(lambda: res.update_rule(created["id"], **{field: value}), 400, "VPC.0101")
    assert raw(res.show_rule(created["id"]))["traffic_mirror_filter_rule"] == created


def test_delete(res):
    f = res.filter()
    r = res.rule(f.id)
    keep = res.rule(f.id)
    resp = res.delete_rule(r.id)
    assert resp.status_code == 204
    expect_error(lambda: res.show_rule(r.id), 404, "VPC.1703")
    assert [x.id for x in res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules] == [keep.id]
    assert [x["id"] for x in raw(res.show_filter(f.id))["traffic_mirror_filter"]["ingress_rules"]] == [keep.id]
    expect_error(lambda: res.delete_rule(r.id), 404, "VPC.1703")


def test_unknown_rule_id_is_404_everywhere(res):
    missing = uid()
    expect_error(lambda: res.show_rule(missing), 404, "VPC.1703")
    expect_error(lambda: res.update_rule(missing, description="x"), 404, "VPC.1703")
    expect_error(lambda: res.delete_rule(missing), 404, "VPC.1703")


# ---- priorities and quota ---------------------------------------------------------------------

def test_rule_priority_is_unique_per_filter_and_direction(res):
    f = res.filter()
    first = raw(res.create_rule(f.id, direction="ingress", priority=100))["traffic_mirror_filter_rule"]
    expect_error(lambda: res.create_rule(f.id, direction="ingress", priority=100, protocol="udp"), 409, "VPC.1710")
    assert [r.id for r in res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules] == [first["id"]]
    # The other direction, and another filter, may use it.
    eg = res.rule(f.id, direction="egress", priority=100)
    assert eg.priority == 100
    other = res.filter()
    assert res.rule(other.id, direction="ingress", priority=100).priority == 100
    # Update to a taken priority is refused and changes nothing.
    second = raw(res.create_rule(f.id, direction="ingress", priority=101))["traffic_mirror_filter_rule"]
    expect_error(lambda: res.update_rule(second["id"], priority=100), 409, "VPC.1710")
    assert raw(res.show_rule(second["id"]))["traffic_mirror_filter_rule"] == second
    # Updating a rule to its own priority is no conflict; a freed priority can be reused.
    assert res.update_rule(second["id"], priority=101).traffic_mirror_filter_rule.priority == 101
    res.delete_rule(first["id"])
    assert res.update_rule(second["id"], priority=100).traffic_mirror_filter_rule.priority == 100


def test_at_most_ten_rules_per_direction(res):
    f = res.filter()
    for p in range(1, 11):
        res.rule(f.id, direction="ingress", priority=p)
    expect_error(lambda: res.create_rule(f.id, direction="ingress", priority=11), 409, "VPC.0114")
    listed = res.list_rules(traffic_mirror_filter_id=f.id, direction="ingress").traffic_mirror_filter_rules
    assert [r.priority for r in listed] == list(range(1, 11))
    # The other direction has its own ten.
    for p in range(1, 11):
        res.rule(f.id, direction="egress", priority=p)
    expect_error(lambda: res.create_rule(f.id, direction="egress", priority=11), 409, "VPC.0114")
    shown = raw(res.show_filter(f.id))["traffic_mirror_filter"]
    assert len(shown["ingress_rules"]) == 10 and len(shown["egress_rules"]) == 10
    # Deleting one frees a place.
    res.delete_rule(listed[0].id)
    assert res.rule(f.id, direction="ingress", priority=11).priority == 11
