"""Traffic mirror sessions: create, show, list, update, delete, add-sources, remove-sources
(reference §1.1 rows 1-7, §3.1, §4.1-4.3, §5.1)."""

import time

import pytest
from huaweicloudsdkvpc import v3 as hv3

from hwsupport import (TIMESTAMP_RE, UUID_RE, UpdateSessionOptionWithType, expect_error, raw, short,
                       uid)

SESSION_KEYS = {
    "id", "project_id", "name", "description", "traffic_mirror_filter_id", "traffic_mirror_sources",
    "traffic_mirror_target_id", "traffic_mirror_target_type", "virtual_network_id", "packet_length",
    "priority", "enabled", "type", "created_at", "updated_at",
}


def assert_session_shape(s, project_id):
    """JSON types of a session object as sent on the wire (§2 'JSON types on output', §3.1)."""
    assert SESSION_KEYS <= set(s), f"missing keys: {SESSION_KEYS - set(s)}"
    assert UUID_RE.match(s["id"])
    assert s["project_id"] == project_id
    for k in ("name", "description", "traffic_mirror_filter_id", "traffic_mirror_target_id",
              "traffic_mirror_target_type", "type"):
        assert isinstance(s[k], str), k
    assert isinstance(s["traffic_mirror_sources"], list)
    assert all(isinstance(x, str) for x in s["traffic_mirror_sources"])
    for k in ("virtual_network_id", "packet_length", "priority"):
        assert type(s[k]) is int, f"{k} must be a JSON integer, got {s[k]!r}"
    assert type(s["enabled"]) is bool, f"enabled must be a JSON boolean, got {s['enabled']!r}"
    assert TIMESTAMP_RE.match(s["created_at"]), s["created_at"]
    assert TIMESTAMP_RE.match(s["updated_at"]), s["updated_at"]


def test_create_with_required_fields_only_applies_defaults(res, project_id):
    flt = res.filter()
    src, tgt = res.port_ids(2)
    prio = res.priorities.next()
    name = f"s-{short()}"
    resp = res.create_session(name=name, filter_id=flt.id, sources=[src], target=tgt, priority=prio)
    assert resp.status_code == 201
    body = raw(resp)
    assert isinstance(body["request_id"], str) and body["request_id"]
    s = body["traffic_mirror_session"]
    assert_session_shape(s, project_id)
    assert s["name"] == name
    assert s["description"] == ""
    assert s["traffic_mirror_filter_id"] == flt.id
    assert s["traffic_mirror_sources"] == [src]
    assert s["traffic_mirror_target_id"] == tgt
    assert s["traffic_mirror_target_type"] == "eni"
    assert s["virtual_network_id"] == 1
    assert s["packet_length"] == 96
    assert s["priority"] == prio
    assert s["enabled"] is False
    assert s["type"] == "eni"
    assert s["created_at"] == s["updated_at"]

    # The SDK model agrees (the SDK converts with int()/bool(), so check the raw form above too).
    m = resp.traffic_mirror_session
    assert (m.virtual_network_id, m.packet_length, m.priority, m.enabled) == (1, 96, prio, False)
    assert resp.request_id == body["request_id"]


def test_create_accepts_strings_for_vni_packet_length_enabled(res):
    # The SDK declares these three as str in the create option (§4.1 quirk).
    s = raw(res.create_session(virtual_network_id="7", packet_length="128", enabled="true"))
    s = s["traffic_mirror_session"]
    assert (s["virtual_network_id"], s["packet_length"], s["enabled"]) == (7, 128, True)
    s = raw(res.create_session(virtual_network_id="0", packet_length="1460", enabled="false"))
    s = s["traffic_mirror_session"]
    assert (s["virtual_network_id"], s["packet_length"], s["enabled"]) == (0, 1460, False)


def test_create_accepts_numbers_and_booleans_like_terraform(res):
    s = raw(res.create_session(virtual_network_id=16777215, packet_length=1, enabled=True,
                               description="", type="eni"))["traffic_mirror_session"]
    assert (s["virtual_network_id"], s["packet_length"], s["enabled"]) == (16777215, 1, True)
    assert s["description"] == ""
    assert s["type"] == "eni"
    s = raw(res.create_session(enabled=False))["traffic_mirror_session"]
    assert s["enabled"] is False


def test_create_keeps_all_given_fields_and_source_order(res, project_id):
    flt = res.filter()
    sources = res.port_ids(3)
    tgt = res.port().id
    resp = res.create_session(name="full.session_1-x", description="mirror web tier",
                              filter_id=flt.id, sources=sources, target=tgt,
                              virtual_network_id="4242", packet_length="512", enabled="true")
    s = raw(resp)["traffic_mirror_session"]
    assert_session_shape(s, project_id)
    assert s["name"] == "full.session_1-x"
    assert s["description"] == "mirror web tier"
    assert s["traffic_mirror_sources"] == sources
    assert s["traffic_mirror_target_id"] == tgt
    assert (s["virtual_network_id"], s["packet_length"], s["enabled"]) == (4242, 512, True)


def test_create_with_zero_sources(res):
    # "A session may have zero sources" (issue 3, point 6); sources can be added later.
    s = raw(res.create_session(sources=[]))["traffic_mirror_session"]
    assert s["traffic_mirror_sources"] == []
    p = res.port().id
    assert raw(res.add_sources(s["id"], [p]))["traffic_mirror_session"]["traffic_mirror_sources"] == [p]


def test_updated_at_moves_on_update(res):
    created = raw(res.create_session())["traffic_mirror_session"]
    time.sleep(1.1)  # timestamps have whole seconds
    s = raw(res.update_session(created["id"], description="later"))["traffic_mirror_session"]
    assert s["created_at"] == created["created_at"]
    assert s["updated_at"] > created["updated_at"]
    s = raw(res.add_sources(created["id"], [res.port().id]))["traffic_mirror_session"]
    assert s["created_at"] == created["created_at"]


def test_priority_bounds_are_accepted(res):
    # 1 and 32766 are the documented bounds (§3.1).
    for p in (1, 32766):
        existing = res.list_sessions(priority=str(p)).traffic_mirror_sessions
        if existing:
            pytest.fail(f"priority {p} already used by {existing[0].id}; leftover from another run?")
        s = res.session(priority=p)
        assert s.priority == p


@pytest.mark.parametrize("field,value", [
    ("virtual_network_id", "16777216"),
    ("virtual_network_id", -1),
    ("virtual_network_id", "seven"),
    ("packet_length", "0"),
    ("packet_length", 1461),
    ("packet_length", "abc"),
    ("priority", 0),
    ("priority", 32767),
    ("enabled", "maybe"),
    ("name", ""),
    ("name", "x" * 65),
    ("name", "has space"),
    ("description", "<script>"),
    ("description", "d" * 256),
    ("traffic_mirror_target_type", "vm"),
    ("type", "vm"),
])
def test_create_rejects_invalid_values_and_creates_nothing(res, field, value):
    opt = res.session_option()
    setattr(opt, field, value)
    before = len(res.list_sessions().traffic_mirror_sessions)
    expect_error(lambda: res.create_session_from(opt), 400, "VPC.0101")
    assert len(res.list_sessions().traffic_mirror_sessions) == before


def test_show_returns_what_create_returned(res):
    created = raw(res.create_session(description="shown", virtual_network_id="9"))["traffic_mirror_session"]
    resp = res.show_session(created["id"])
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["traffic_mirror_session"] == created
    m = resp.traffic_mirror_session
    assert m.id == created["id"] and m.virtual_network_id == 9 and m.enabled is False


def test_list_contains_created_sessions(res, project_id):
    a = raw(res.create_session())["traffic_mirror_session"]
    b = raw(res.create_session())["traffic_mirror_session"]
    resp = res.list_sessions()
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    by_id = {s["id"]: s for s in body["traffic_mirror_sessions"]}
    assert by_id[a["id"]] == a and by_id[b["id"]] == b
    for s in body["traffic_mirror_sessions"]:
        assert_session_shape(s, project_id)
    ids = [s["id"] for s in body["traffic_mirror_sessions"]]
    assert ids.index(a["id"]) < ids.index(b["id"]), "list order must be creation order"
    assert body["page_info"]["current_count"] == len(ids)


def test_update_changes_given_fields_only(res, project_id):
    created = raw(res.create_session(description="before", virtual_network_id="3",
                                     packet_length="100"))["traffic_mirror_session"]
    sid = created["id"]
    new_prio = res.priorities.next()
    resp = res.update_session(sid, name="renamed", virtual_network_id=77, packet_length=1500 - 40,
                              priority=new_prio, enabled="true")
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    s = body["traffic_mirror_session"]
    assert_session_shape(s, project_id)
    assert s["name"] == "renamed"
    assert s["description"] == "before"
    assert (s["virtual_network_id"], s["packet_length"], s["priority"], s["enabled"]) == \
        (77, 1460, new_prio, True)
    assert s["traffic_mirror_sources"] == created["traffic_mirror_sources"]
    assert s["traffic_mirror_target_id"] == created["traffic_mirror_target_id"]
    assert s["traffic_mirror_filter_id"] == created["traffic_mirror_filter_id"]
    assert s["created_at"] == created["created_at"]
    assert s["updated_at"] >= created["updated_at"]
    assert raw(res.show_session(sid))["traffic_mirror_session"] == s

    # Only the description; an empty one is allowed (Terraform sends "").
    s2 = raw(res.update_session(sid, description=""))["traffic_mirror_session"]
    assert s2["description"] == ""
    assert s2["name"] == "renamed" and s2["virtual_network_id"] == 77 and s2["enabled"] is True


@pytest.mark.parametrize("value,expected", [("false", False), ("true", True), (False, False), (True, True)])
def test_update_enabled_string_or_boolean(res, value, expected):
    sid = res.session(enabled="false" if expected else "true").id
    s = raw(res.update_session(sid, enabled=value))["traffic_mirror_session"]
    assert s["enabled"] is expected
    assert raw(res.show_session(sid))["traffic_mirror_session"]["enabled"] is expected


def test_update_filter_and_target(res):
    s = res.session()
    f2 = res.filter().id
    t2 = res.port().id
    out = raw(res.update_session(s.id, traffic_mirror_filter_id=f2, traffic_mirror_target_id=t2,
                                 traffic_mirror_target_type="eni"))["traffic_mirror_session"]
    assert out["traffic_mirror_filter_id"] == f2
    assert out["traffic_mirror_target_id"] == t2
    assert out["traffic_mirror_sources"] == s.traffic_mirror_sources
    # The old filter is no longer in use and can be deleted.
    assert res.delete_filter(s.traffic_mirror_filter_id).status_code == 204


def test_update_terraform_style_full_body_with_type(res):
    created = raw(res.create_session(enabled=True))["traffic_mirror_session"]
    opt = UpdateSessionOptionWithType(
        type="eni", name=created["name"], description="", traffic_mirror_filter_id=created["traffic_mirror_filter_id"],
        traffic_mirror_target_id=created["traffic_mirror_target_id"], traffic_mirror_target_type="eni",
        virtual_network_id=created["virtual_network_id"], packet_length=created["packet_length"],
        priority=created["priority"], enabled=False)
    s = raw(res.update_session(created["id"], option=opt))["traffic_mirror_session"]
    assert s["enabled"] is False
    assert s["type"] == "eni"
    assert s["priority"] == created["priority"]


@pytest.mark.parametrize("field,value", [
    ("virtual_network_id", 16777216),
    ("packet_length", 0),
    ("priority", 32767),
    ("enabled", "yes"),
    ("name", "x" * 65),
    ("description", "a>b"),
])
def test_update_rejects_invalid_values_and_changes_nothing(res, field, value):
    created = raw(res.create_session())["traffic_mirror_session"]
    expect_error(lambda: res.update_session(created["id"], **{field: value}), 400, "VPC.0101")
    assert raw(res.show_session(created["id"]))["traffic_mirror_session"] == created


def test_delete(res):
    s = res.session()
    resp = res.delete_session(s.id)
    assert resp.status_code == 204
    expect_error(lambda: res.show_session(s.id), 404, "VPC.1701")
    assert s.id not in [x.id for x in res.list_sessions().traffic_mirror_sessions]
    expect_error(lambda: res.delete_session(s.id), 404, "VPC.1701")
    # Its ports and filter are free again.
    assert res.delete_port(s.traffic_mirror_target_id).status_code == 204
    assert res.delete_filter(s.traffic_mirror_filter_id).status_code == 204


def test_add_sources_appends_in_order(res, project_id):
    first = res.port().id
    s = res.session(sources=[first])
    p2, p3 = res.port_ids(2)
    resp = res.add_sources(s.id, [p3, p2])
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    out = body["traffic_mirror_session"]
    assert_session_shape(out, project_id)
    assert out["traffic_mirror_sources"] == [first, p3, p2]
    assert out["id"] == s.id and out["priority"] == s.priority
    assert raw(res.show_session(s.id))["traffic_mirror_session"]["traffic_mirror_sources"] == [first, p3, p2]


def test_remove_sources_keeps_order_of_the_rest(res, project_id):
    ports = res.port_ids(4)
    s = res.session(sources=ports)
    resp = res.remove_sources(s.id, [ports[2], ports[0]])
    assert resp.status_code == 200
    out = raw(resp)["traffic_mirror_session"]
    assert_session_shape(out, project_id)
    assert out["traffic_mirror_sources"] == [ports[1], ports[3]]
    assert res.show_session(s.id).traffic_mirror_session.traffic_mirror_sources == [ports[1], ports[3]]


def test_terraform_replaces_sources_remove_all_then_add(res):
    old = res.port_ids(2)
    s = res.session(sources=old)
    # Zero sources is a valid state (Terraform removes all, then adds).
    out = raw(res.remove_sources(s.id, old))["traffic_mirror_session"]
    assert out["traffic_mirror_sources"] == []
    assert res.show_session(s.id).traffic_mirror_session.traffic_mirror_sources in ([], None)
    assert raw(res.show_session(s.id))["traffic_mirror_session"]["traffic_mirror_sources"] == []
    new = res.port_ids(3)
    wanted = [new[1], old[0], new[2], new[0]]
    out = raw(res.add_sources(s.id, wanted))["traffic_mirror_session"]
    assert out["traffic_mirror_sources"] == wanted
    assert raw(res.show_session(s.id))["traffic_mirror_session"]["traffic_mirror_sources"] == wanted


def test_unknown_session_id_is_404_everywhere(res):
    missing = uid()
    port = res.port().id
    expect_error(lambda: res.show_session(missing), 404, "VPC.1701")
    expect_error(lambda: res.update_session(missing, name="x"), 404, "VPC.1701")
    expect_error(lambda: res.delete_session(missing), 404, "VPC.1701")
    expect_error(lambda: res.add_sources(missing, [port]), 404, "VPC.1701")
    expect_error(lambda: res.remove_sources(missing, [port]), 404, "VPC.1701")


def test_session_model_types_through_sdk(res):
    """What an SDK user reads: ints, a bool, lists of str."""
    m = res.show_session(res.session(virtual_network_id="12", enabled="true").id).traffic_mirror_session
    assert isinstance(m, hv3.TrafficMirrorSession)
    assert type(m.virtual_network_id) is int and type(m.packet_length) is int and type(m.priority) is int
    assert m.enabled is True
    assert isinstance(m.traffic_mirror_sources, list)
