"""Business rules of sessions (issue 3, point 6; docs/huawei-errors.md), each refused request
checked to have changed nothing."""

import pytest

from hwsupport import expect_error, raw, uid


def snapshot(res):
    return raw(res.list_sessions())["traffic_mirror_sessions"]


def shown(res, sid):
    return raw(res.show_session(sid))["traffic_mirror_session"]


# ---- references ---------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["filter", "source", "target"])
def test_create_with_an_unknown_reference_is_404(res, missing):
    opt = res.session_option()
    if missing == "filter":
        opt.traffic_mirror_filter_id, code = uid(), "VPC.1702"
    elif missing == "source":
        opt.traffic_mirror_sources, code = [opt.traffic_mirror_sources[0], uid()], "VPC.1704"
    else:
        opt.traffic_mirror_target_id, code = uid(), "VPC.1704"
    before = snapshot(res)
    expect_error(lambda: res.create_session_from(opt), 404, code)
    assert snapshot(res) == before


def test_update_with_an_unknown_filter_or_target_is_404(res):
    s = shown(res, res.session().id)
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_filter_id=uid()), 404, "VPC.1702")
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_target_id=uid()), 404, "VPC.1704")
    assert shown(res, s["id"]) == s


def test_add_unknown_source_is_404_and_adds_nothing(res):
    s = shown(res, res.session().id)
    good = res.port().id
    expect_error(lambda: res.add_sources(s["id"], [good, uid()]), 404, "VPC.1704")
    assert shown(res, s["id"]) == s


# ---- targets ------------------------------------------------------------------------------------

def test_elb_target_must_be_a_load_balancer_of_the_project(res):
    before = snapshot(res)
    expect_error(lambda: res.create_session(target=uid(), target_type="elb"), 404, "ELB.8902")
    assert snapshot(res) == before
    s = shown(res, res.session().id)
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_target_type="elb",
                                            traffic_mirror_target_id=uid()), 404, "ELB.8902")
    # The type alone keeps the id: a port's id names no load balancer.
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_target_type="elb"), 404, "ELB.8902")
    assert shown(res, s["id"]) == s


def test_target_port_needs_a_fixed_ip(res):
    bare = res.port(fixed_ip=False).id
    before = snapshot(res)
    expect_error(lambda: res.create_session(target=bare), 400, "VPC.1714")
    assert snapshot(res) == before
    s = shown(res, res.session().id)
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_target_id=bare), 400, "VPC.1714")
    assert shown(res, s["id"]) == s
    # As a source it is fine.
    assert res.add_sources(s["id"], [bare]).traffic_mirror_session.traffic_mirror_sources[-1] == bare


def test_source_cannot_be_the_target(res):
    a, b = res.port_ids(2)
    before = snapshot(res)
    expect_error(lambda: res.create_session(sources=[a, b], target=b), 400, "VPC.1713")
    assert snapshot(res) == before
    tgt = res.port().id
    s = shown(res, res.session(sources=[a], target=tgt).id)
    expect_error(lambda: res.add_sources(s["id"], [tgt]), 400, "VPC.1713")
    expect_error(lambda: res.update_session(s["id"], traffic_mirror_target_id=a), 400, "VPC.1713")
    assert shown(res, s["id"]) == s


# ---- sources ------------------------------------------------------------------------------------

def test_duplicate_sources_are_refused(res):
    a, b = res.port_ids(2)
    before = snapshot(res)
    expect_error(lambda: res.create_session(sources=[a, b, a]), 400, "VPC.0101")
    assert snapshot(res) == before
    s = shown(res, res.session(sources=[a]).id)
    c = res.port().id
    expect_error(lambda: res.add_sources(s["id"], [c, c]), 400, "VPC.0101")
    assert shown(res, s["id"]) == s
    expect_error(lambda: res.remove_sources(s["id"], [a, a]), 400, "VPC.0101")
    assert shown(res, s["id"]) == s


def test_a_port_is_never_both_source_and_target_across_sessions(res):
    # Huawei is silent; AWS and Alibaba document that one ENI cannot be both a source and a
    # target (reference/mirroring-semantics.md), and mirrored copies must not be mirrored again.
    # tmirror applies it across sessions: the shared service serves the Alibaba face too.
    a, b, c, d = res.port_ids(4)
    s1 = res.session(sources=[a], target=b)
    before = snapshot(res)
    expect_error(lambda: res.create_session(sources=[c], target=a), 400, "VPC.1713")
    expect_error(lambda: res.create_session(sources=[b], target=c), 400, "VPC.1713")
    assert snapshot(res) == before
    s2 = shown(res, res.session(sources=[c], target=d).id)
    expect_error(lambda: res.add_sources(s2["id"], [b]), 400, "VPC.1713")
    expect_error(lambda: res.update_session(s2["id"], traffic_mirror_target_id=a), 400, "VPC.1713")
    assert shown(res, s2["id"]) == s2
    # Once s1 is gone, a is free to be a target.
    res.delete_session(s1.id)
    assert res.update_session(s2["id"], traffic_mirror_target_id=a).traffic_mirror_session.traffic_mirror_target_id == a


def test_add_an_existing_source_is_a_conflict(res):
    a, b = res.port_ids(2)
    s = shown(res, res.session(sources=[a]).id)
    expect_error(lambda: res.add_sources(s["id"], [a]), 409, "VPC.1712")
    expect_error(lambda: res.add_sources(s["id"], [b, a]), 409, "VPC.1712")
    assert shown(res, s["id"]) == s, "b must not have been added"


def test_remove_an_absent_source_is_a_conflict(res):
    a, b = res.port_ids(2)
    s = shown(res, res.session(sources=[a]).id)
    expect_error(lambda: res.remove_sources(s["id"], [b]), 409, "VPC.1712")
    expect_error(lambda: res.remove_sources(s["id"], [a, b]), 409, "VPC.1712")
    assert shown(res, s["id"]) == s, "a must not have been removed"


def test_at_most_ten_sources_per_session(res):
    ports = res.port_ids(11)
    before = snapshot(res)
    expect_error(lambda: res.create_session(sources=ports), 409, "VPC.0114")
    assert snapshot(res) == before
    s = shown(res, res.session(sources=ports[:10]).id)
    assert s["traffic_mirror_sources"] == ports[:10]
    expect_error(lambda: res.add_sources(s["id"], [ports[10]]), 409, "VPC.0114")
    assert shown(res, s["id"]) == s
    # Room again after a remove; order kept.
    res.remove_sources(s["id"], [ports[0]])
    out = raw(res.add_sources(s["id"], [ports[10]]))["traffic_mirror_session"]
    assert out["traffic_mirror_sources"] == ports[1:11]


def test_add_sources_over_the_quota_in_one_call(res):
    ports = res.port_ids(12)
    s = shown(res, res.session(sources=ports[:5]).id)
    expect_error(lambda: res.add_sources(s["id"], ports[5:12]), 409, "VPC.0114")
    assert shown(res, s["id"]) == s
    assert raw(res.add_sources(s["id"], ports[5:10]))["traffic_mirror_session"]["traffic_mirror_sources"] == ports[:10]


def test_a_port_is_a_source_of_at_most_three_sessions(res):
    shared = res.port().id
    flt = res.filter().id
    tgt = res.port().id
    first = [res.session(sources=[shared], filter_id=flt, target=tgt).id for _ in range(3)]
    before = snapshot(res)
    expect_error(lambda: res.create_session(sources=[shared], filter_id=flt, target=tgt), 409, "VPC.0114")
    assert snapshot(res) == before
    fourth = shown(res, res.session(sources=[res.port().id], filter_id=flt, target=tgt).id)
    expect_error(lambda: res.add_sources(fourth["id"], [shared]), 409, "VPC.0114")
    assert shown(res, fourth["id"]) == fourth
    # One of the three lets go: the fourth may take it.
    res.remove_sources(first[0], [shared])
    assert shared in res.add_sources(fourth["id"], [shared]).traffic_mirror_session.traffic_mirror_sources


# ---- priorities ---------------------------------------------------------------------------------

def test_session_priority_is_unique_in_the_project(res):
    a = shown(res, res.session().id)
    before = snapshot(res)
    expect_error(lambda: res.create_session(priority=a["priority"]), 409, "VPC.1710")
    assert snapshot(res) == before
    b = shown(res, res.session().id)
    expect_error(lambda: res.update_session(b["id"], priority=a["priority"]), 409, "VPC.1710")
    assert shown(res, b["id"]) == b
    # Same priority as itself is fine; a deleted session's priority is free again.
    assert res.update_session(b["id"], priority=b["priority"]).traffic_mirror_session.priority == b["priority"]
    res.delete_session(a["id"])
    assert res.update_session(b["id"], priority=a["priority"]).traffic_mirror_session.priority == a["priority"]


# ---- deletion of referenced resources -----------------------------------------------------------

def test_filter_in_use_cannot_be_deleted(res):
    flt = res.filter().id
    rule = res.rule(flt).id
    s = res.session(filter_id=flt)
    expect_error(lambda: res.delete_filter(flt), 409, "VPC.1711")
    assert res.show_filter(flt).traffic_mirror_filter.id == flt
    assert res.show_rule(rule).traffic_mirror_filter_rule.id == rule, "refused delete kept the rules"
    assert res.show_session(s.id).traffic_mirror_session.traffic_mirror_filter_id == flt
    # Rules of a filter in use can still be changed and deleted.
    assert res.delete_rule(rule).status_code == 204
    res.delete_session(s.id)
    assert res.delete_filter(flt).status_code == 204


def test_session_delete_frees_ports_and_filter(res):
    src, tgt = res.port_ids(2)
    flt = res.filter().id
    s = res.session(sources=[src], target=tgt, filter_id=flt)
    res.delete_session(s.id)
    assert res.delete_port(src).status_code == 204
    assert res.delete_port(tgt).status_code == 204
    assert res.delete_filter(flt).status_code == 204


def test_remove_sources_frees_the_port(res):
    a, b = res.port_ids(2)
    s = res.session(sources=[a, b])
    expect_error(lambda: res.delete_port(a), 409, "VPC.1711")
    res.remove_sources(s.id, [a])
    assert res.delete_port(a).status_code == 204
    assert shown(res, s.id)["traffic_mirror_sources"] == [b]
