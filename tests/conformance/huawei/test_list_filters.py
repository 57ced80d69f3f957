"""Query filters of the three v3 list operations: exact match per field, OR across repeated
values of one key, AND across keys (reference §6)."""

import pytest

from hwsupport import expect_error, raw, short, uid


def session_ids(res, **q):
    return [s.id for s in res.list_sessions(**q).traffic_mirror_sessions or []]


def filter_ids(res, **q):
    return [f.id for f in res.list_filters(**q).traffic_mirror_filters or []]


def rule_ids(res, **q):
    return [r.id for r in res.list_rules(**q).traffic_mirror_filter_rules or []]


def test_terraform_filter_rules_data_source_case(res):
    # TF acceptance test: rules with priorities 333, 555 and 666; the query
    # direction=ingress&protocol=tcp&action=accept&priority=555 returns only the 555 rule.
    f = res.filter()
    r333 = res.rule(f.id, direction="ingress", protocol="tcp", action="accept", priority=333).id
    r555 = res.rule(f.id, direction="ingress", protocol="tcp", action="accept", priority=555).id
    r666 = res.rule(f.id, direction="ingress", protocol="udp", action="reject", priority=666).id
    e555 = res.rule(f.id, direction="egress", protocol="tcp", action="accept", priority=555).id
    resp = res.list_rules(direction="ingress", protocol="tcp", action="accept", priority="555")
    assert [r.id for r in resp.traffic_mirror_filter_rules] == [r555]
    assert raw(resp)["page_info"]["current_count"] == 1
    # Each key alone.
    assert rule_ids(res, traffic_mirror_filter_id=f.id, priority="555") == [r555, e555]
    assert rule_ids(res, traffic_mirror_filter_id=f.id, direction="egress") == [e555]
    assert rule_ids(res, traffic_mirror_filter_id=f.id, protocol="udp") == [r666]
    assert rule_ids(res, traffic_mirror_filter_id=f.id, action="accept") == [r333, r555, e555]
    # Repeated keys are OR'ed.
    assert rule_ids(res, traffic_mirror_filter_id=f.id, priority=["333", "666"]) == [r333, r666]
    assert rule_ids(res, id=[r666, r333]) == [r333, r666]
    assert rule_ids(res, traffic_mirror_filter_id=f.id, id=[r666, e555], direction="ingress") == [r666]


def test_rule_filters_on_cidrs_ports_and_description(res):
    f = res.filter()
    a = res.rule(f.id, source_cidr_block="10.0.0.0/8", destination_cidr_block="192.168.0.0/16",
                 source_port_range="80-80", destination_port_range="1000-2000", description=f"d-{short()}")
    b = res.rule(f.id, source_cidr_block="10.0.0.0/8", protocol="udp")
    c = res.rule(f.id)
    q = dict(traffic_mirror_filter_id=f.id)
    assert rule_ids(res, **q, source_cidr_block="10.0.0.0/8") == [a.id, b.id]
    assert rule_ids(res, **q, destination_cidr_block="192.168.0.0/16") == [a.id]
    assert rule_ids(res, **q, source_port_range="80-80") == [a.id]
    assert rule_ids(res, **q, destination_port_range="1000-2000") == [a.id]
    assert rule_ids(res, description=a.description) == [a.id]
    assert rule_ids(res, **q, source_cidr_block="10.0.0.0/8", protocol="udp") == [b.id]
    assert rule_ids(res, **q, source_cidr_block="172.16.0.0/12") == []
    assert c.id in rule_ids(res, **q)


def test_filter_list_filters(res):
    tag = short()
    a = res.filter(name=f"fa-{tag}", description=f"desc-{tag}")
    b = res.filter(name=f"fb-{tag}", description=f"desc-{tag}")
    c = res.filter(name=f"fa-{tag}")
    assert filter_ids(res, id=[a.id]) == [a.id]
    assert filter_ids(res, id=[c.id, a.id]) == [a.id, c.id]
    assert filter_ids(res, name=f"fa-{tag}") == [a.id, c.id]
    assert filter_ids(res, description=f"desc-{tag}") == [a.id, b.id]
    assert filter_ids(res, name=f"fa-{tag}", description=f"desc-{tag}") == [a.id]
    assert filter_ids(res, name=f"fa-{tag}", id=[b.id, c.id]) == [c.id]
    assert filter_ids(res, name=f"f-{tag}") == [], "exact match, not a prefix or substring"
    assert filter_ids(res, id=uid()) == []
    # created_at is an exact-match filter too (whole seconds, so others may share it).
    created = raw(res.show_filter(a.id))["traffic_mirror_filter"]["created_at"]
    listed = raw(res.list_filters(created_at=created))["traffic_mirror_filters"]
    assert a.id in [x["id"] for x in listed]
    assert all(x["created_at"] == created for x in listed)


def test_session_list_filters(res):
    tag = short()
    flt = res.filter().id
    flt2 = res.filter().id
    t1, t2 = res.port_ids(2)
    a = res.session(name=f"sa-{tag}", filter_id=flt, target=t1, virtual_network_id="11",
                    packet_length="200", enabled="true", description=f"d-{tag}")
    b = res.session(name=f"sb-{tag}", filter_id=flt, target=t2, virtual_network_id="12",
                    packet_length="200", enabled="false")
    c = res.session(name=f"sa-{tag}", filter_id=flt2, target=t2, virtual_network_id="11", enabled="false")
    mine = [a.id, b.id, c.id]

    def q(**kw):
        return [i for i in session_ids(res, **kw) if i in mine]

    assert session_ids(res, id=[a.id]) == [a.id]
    assert session_ids(res, id=[c.id, a.id]) == [a.id, c.id]
    assert session_ids(res, name=f"sa-{tag}") == [a.id, c.id]
    assert session_ids(res, description=f"d-{tag}") == [a.id]
    assert session_ids(res, traffic_mirror_filter_id=flt) == [a.id, b.id]
    assert session_ids(res, traffic_mirror_target_id=t2) == [b.id, c.id]
    assert q(traffic_mirror_target_type="eni") == mine
    assert q(type="eni") == mine
    # Terraform's data source sends these as strings.
    assert q(virtual_network_id="11") == [a.id, c.id]
    assert q(packet_length="200") == [a.id, b.id]
    assert q(packet_length="96") == [c.id]
    assert session_ids(res, priority=str(b.priority)) == [b.id]
    assert session_ids(res, priority=[str(c.priority), str(a.priority)]) == [a.id, c.id]
    assert q(enabled="true") == [a.id]
    assert q(enabled="false") == [b.id, c.id]
    # AND across keys.
    assert session_ids(res, name=f"sa-{tag}", enabled="false") == [c.id]
    assert session_ids(res, traffic_mirror_filter_id=flt, virtual_network_id="11") == [a.id]
    assert session_ids(res, traffic_mirror_filter_id=flt2, traffic_mirror_target_id=t1) == []
    assert session_ids(res, name=f"s-{tag}") == []


def test_query_values_that_need_encoding(res):
    # The SDK percent-encodes query values and signs the canonical form (reference §9.2 step 4):
    # non-ASCII, spaces, '/' and a literal '+' must all reach the filter unchanged.
    tag = short()
    a = res.filter(name=f"中文_{tag}", description=f"web/db tier + more {tag}")
    b = res.filter(name=f"plain-{tag}", description=f"web db tier  more {tag}")
    assert filter_ids(res, name=f"中文_{tag}") == [a.id]
    assert filter_ids(res, description=f"web/db tier + more {tag}") == [a.id]
    assert filter_ids(res, description=f"web db tier  more {tag}") == [b.id]
    s = res.session(description=f"100% ~mirror~ & co. {tag}")
    assert session_ids(res, description=f"100% ~mirror~ & co. {tag}") == [s.id]


def test_session_timestamp_filters(res):
    s = raw(res.create_session())["traffic_mirror_session"]
    for key in ("created_at", "updated_at"):
        listed = raw(res.list_sessions(**{key: s[key]}))["traffic_mirror_sessions"]
        assert s["id"] in [x["id"] for x in listed]
        assert all(x[key] == s[key] for x in listed)


@pytest.mark.parametrize("lister,query", [
    ("sessions", {"priority": "high"}),
    ("sessions", {"virtual_network_id": "x"}),
    ("sessions", {"packet_length": "1.5"}),
    ("sessions", {"enabled": "maybe"}),
    ("sessions", {"created_at": "yesterday"}),
    ("filters", {"updated_at": "2023-02-23"}),
    ("rules", {"priority": "first"}),
])
def test_malformed_query_values_are_refused(res, lister, query):
    fn = {"sessions": res.list_sessions, "filters": res.list_filters, "rules": res.list_rules}[lister]
    expect_error(lambda: fn(**query), 400, "VPC.0101")
