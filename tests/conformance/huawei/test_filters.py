"""Traffic mirror filters: create, show, list, update, delete (reference §1.1 rows 8-12, §3.2,
§4.4, §5.2); filters embed their rules."""

import pytest

from hwsupport import TIMESTAMP_RE, UUID_RE, expect_error, raw, short, uid


def assert_filter_shape(f, project_id):
    for k in ("id", "project_id", "name", "description", "ingress_rules", "egress_rules",
              "created_at", "updated_at", "type"):
        assert k in f, f"missing key {k}"
    assert UUID_RE.match(f["id"])
    assert f["project_id"] == project_id
    assert isinstance(f["name"], str) and isinstance(f["description"], str)
    assert isinstance(f["ingress_rules"], list) and isinstance(f["egress_rules"], list)
    assert f["type"] == "eni"
    assert TIMESTAMP_RE.match(f["created_at"]), f["created_at"]
    assert TIMESTAMP_RE.match(f["updated_at"]), f["updated_at"]


def test_create_like_the_official_example(res, project_id):
    name = f"test1-{short()}"
    resp = res.create_filter(name=name, description="description")
    assert resp.status_code == 201
    body = raw(resp)
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert resp.request_id == body["request_id"]
    f = body["traffic_mirror_filter"]
    assert_filter_shape(f, project_id)
    assert f["name"] == name
    assert f["description"] == "description"
    assert f["ingress_rules"] == [] and f["egress_rules"] == []
    assert f["created_at"] == f["updated_at"]
    m = resp.traffic_mirror_filter
    assert (m.id, m.name, m.type) == (f["id"], name, "eni")


def test_description_defaults_to_empty_string(res):
    f = raw(res.create_filter())["traffic_mirror_filter"]
    assert f["description"] == ""


@pytest.mark.parametrize("name", ["", "n" * 65, "bad name", "semi;colon"])
def test_create_rejects_invalid_names(res, name):
    before = [f.id for f in res.list_filters().traffic_mirror_filters]
    expect_error(lambda: res.create_filter(name=name), 400, "VPC.0101")
    assert [f.id for f in res.list_filters().traffic_mirror_filters] == before


@pytest.mark.parametrize("description", ["<b>", "x" * 256])
def test_create_rejects_invalid_descriptions(res, description):
    name = f"f-{short()}"
    expect_error(lambda: res.create_filter(name=name, description=description), 400, "VPC.0101")
    assert res.list_filters(name=name).traffic_mirror_filters in ([], None)


def test_name_limits_accepted(res):
    name = "a" * 64
    assert res.filter(name=name).name == name
    assert res.filter(name="中文_名称-1.0").name == "中文_名称-1.0"
    d = "d" * 255
    assert raw(res.create_filter(description=d))["traffic_mirror_filter"]["description"] == d


def test_show_embeds_current_rules(res, project_id):
    f = res.filter()
    in2 = raw(res.create_rule(f.id, direction="ingress", priority=20))["traffic_mirror_filter_rule"]
    in1 = raw(res.create_rule(f.id, direction="ingress", priority=10, protocol="udp"))["traffic_mirror_filter_rule"]
    eg = raw(res.create_rule(f.id, direction="egress", priority=10, action="reject"))["traffic_mirror_filter_rule"]
    resp = res.show_filter(f.id)
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    shown = body["traffic_mirror_filter"]
    assert_filter_shape(shown, project_id)
    # Complete rule objects, as show-rule returns them; each direction in ascending priority.
    assert shown["ingress_rules"] == [raw(res.show_rule(in1["id"]))["traffic_mirror_filter_rule"],
                                      raw(res.show_rule(in2["id"]))["traffic_mirror_filter_rule"]]
    assert shown["egress_rules"] == [raw(res.show_rule(eg["id"]))["traffic_mirror_filter_rule"]]
    assert all(r["direction"] == "ingress" for r in shown["ingress_rules"])
    assert all(r["direction"] == "egress" for r in shown["egress_rules"])
    m = resp.traffic_mirror_filter
    assert [r.id for r in m.ingress_rules] == [in1["id"], in2["id"]]
    assert [r.priority for r in m.ingress_rules] == [10, 20]
    assert [r.id for r in m.egress_rules] == [eg["id"]]

    # Rule changes show up in the filter.
    res.delete_rule(in1["id"])
    res.update_rule(eg["id"], action="accept")
    shown = raw(res.show_filter(f.id))["traffic_mirror_filter"]
    assert [r["id"] for r in shown["ingress_rules"]] == [in2["id"]]
    assert [r["action"] for r in shown["egress_rules"]] == ["accept"]


def test_list_embeds_rules(res, project_id):
    f = res.filter()
    r = raw(res.create_rule(f.id, direction="egress"))["traffic_mirror_filter_rule"]
    other = res.filter()
    resp = res.list_filters()
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    by_id = {x["id"]: x for x in body["traffic_mirror_filters"]}
    for x in body["traffic_mirror_filters"]:
        assert_filter_shape(x, project_id)
    assert by_id[f.id]["egress_rules"] == [raw(res.show_rule(r["id"]))["traffic_mirror_filter_rule"]]
    assert by_id[f.id]["ingress_rules"] == []
    assert by_id[other.id]["ingress_rules"] == [] and by_id[other.id]["egress_rules"] == []
    assert body["page_info"]["current_count"] == len(body["traffic_mirror_filters"])
    ids = [x["id"] for x in body["traffic_mirror_filters"]]
    assert ids.index(f.id) < ids.index(other.id)


def test_update_name_and_description(res, project_id):
    created = raw(res.create_filter(description="old"))["traffic_mirror_filter"]
    res.create_rule(created["id"])
    new_name = f"renamed-{short()}"
    resp = res.update_filter(created["id"], name=new_name)
    assert resp.status_code == 200
    body = raw(resp)
    assert isinstance(body["request_id"], str)
    f = body["traffic_mirror_filter"]
    assert_filter_shape(f, project_id)
    assert f["name"] == new_name and f["description"] == "old"
    assert f["created_at"] == created["created_at"]
    assert f["updated_at"] >= created["updated_at"]
    assert len(f["ingress_rules"]) == 1, "update keeps the rules and embeds them"
    f = raw(res.update_filter(created["id"], description=""))["traffic_mirror_filter"]
    assert f["name"] == new_name and f["description"] == ""
    assert raw(res.show_filter(created["id"]))["traffic_mirror_filter"] == f


def test_update_rejects_invalid_values_and_changes_nothing(res):
    created = raw(res.create_filter())["traffic_mirror_filter"]
    expect_error(lambda: res.update_filter(created["id"], name=""), 400, "VPC.0101")
    expect_error(lambda: res.update_filter(created["id"], description="<x>"), 400, "VPC.0101")
    assert raw(res.show_filter(created["id"]))["traffic_mirror_filter"] == created


def test_delete_cascades_to_rules(res):
    f = res.filter()
    rules = [res.rule(f.id, direction=d, priority=p).id for d in ("ingress", "egress") for p in (1, 2)]
    resp = res.delete_filter(f.id)
    assert resp.status_code == 204
    expect_error(lambda: res.show_filter(f.id), 404, "VPC.1702")
    assert f.id not in [x.id for x in res.list_filters().traffic_mirror_filters]
    for rid in rules:
        expect_error(lambda: res.show_rule(rid), 404, "VPC.1703")
    assert res.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules in ([], None)
    listed = {r.id for r in res.list_rules().traffic_mirror_filter_rules or []}
    assert not listed & set(rules)
    expect_error(lambda: res.delete_filter(f.id), 404, "VPC.1702")


def test_unknown_filter_id_is_404_everywhere(res):
    missing = uid()
    expect_error(lambda: res.show_filter(missing), 404, "VPC.1702")
    expect_error(lambda: res.update_filter(missing, name="x"), 404, "VPC.1702")
    expect_error(lambda: res.delete_filter(missing), 404, "VPC.1702")
