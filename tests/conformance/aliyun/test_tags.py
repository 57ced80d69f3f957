"""TagResources, UnTagResources, ListTagResources and MoveResourceGroup, and the Tags and
ResourceGroupId filters of the list operations."""

from alibabacloud_vpc20160428 import models as vpc

from alisupport import REGION, expect_error


def tag(ali, rtype, ids, pairs):
    return ali.tag_resources(vpc.TagResourcesRequest(
        region_id=REGION, resource_type=rtype, resource_id=ids,
        tag=[vpc.TagResourcesRequestTag(key=k, value=v) for k, v in pairs]))


def list_tags(ali, rtype, ids=None, pairs=None, **kw):
    return ali.list_tag_resources(vpc.ListTagResourcesRequest(
        region_id=REGION, resource_type=rtype, resource_id=ids,
        tag=[vpc.ListTagResourcesRequestTag(key=k, value=v) for k, v in (pairs or [])] or None, **kw)).body


def test_tag_list_untag_sessions(ares, ali):
    s1, s2 = ares.session(), ares.session()
    tag(ali, "TRAFFICMIRRORSESSION", [s1, s2], [("env", "prod"), ("team", "")])
    body = list_tags(ali, "TrafficMirrorSession", ids=[s1])
    rows = body.tag_resources.tag_resource
    assert [(r.resource_id, r.tag_key, r.tag_value) for r in rows] == [(s1, "env", "prod"), (s1, "team", "")]
    assert rows[0].resource_type == "TRAFFICMIRRORSESSION"
    # By tag, in pages.
    first = list_tags(ali, "TRAFFICMIRRORSESSION", pairs=[("env", "prod")], max_results=3)
    mine = [r for r in first.tag_resources.tag_resource if r.resource_id in (s1, s2)]
    assert mine and first.next_token is not None
    # List filters by tag.
    got = ares.list_sessions(tags=[vpc.ListTrafficMirrorSessionsRequestTags(key="env", value="prod")],
                             traffic_mirror_session_ids=[s1, s2])
    assert {s.traffic_mirror_session_id for s in got.traffic_mirror_sessions} == {s1, s2}
    ali.un_tag_resources(vpc.UnTagResourcesRequest(
        region_id=REGION, resource_type="TRAFFICMIRRORSESSION", resource_id=[s1], tag_key=["env"]))
    got = ares.list_sessions(tags=[vpc.ListTrafficMirrorSessionsRequestTags(key="env")],
                             traffic_mirror_session_ids=[s1, s2])
    assert [s.traffic_mirror_session_id for s in got.traffic_mirror_sessions] == [s2]
    assert [(t.key, t.value) for t in ares.show_session(s1).tags] == [("team", "")]
    ali.un_tag_resources(vpc.UnTagResourcesRequest(
        region_id=REGION, resource_type="TRAFFICMIRRORSESSION", resource_id=[s2], all=True))
    assert ares.show_session(s2).tags == []
    ali.move_resource_group(vpc.MoveResourceGroupRequest(
        region_id=REGION, resource_type="TrafficMirrorSession", resource_id=s2, new_resource_group_id="rg-s"))
    assert ares.show_session(s2).resource_group_id == "rg-s"
    got = ares.list_sessions(resource_group_id="rg-s", traffic_mirror_session_ids=[s1, s2])
    assert [s.traffic_mirror_session_id for s in got.traffic_mirror_sessions] == [s2]


def test_filter_tags_resource_groups_and_errors(ares, ali):
    f = ares.filter(tag=[vpc.CreateTrafficMirrorFilterRequestTag(key="a", value="1")], resource_group_id="rg-a")
    got = ares.list_filters(tags=[vpc.ListTrafficMirrorFiltersRequestTags(key="a", value="1")])
    assert f in [x.traffic_mirror_filter_id for x in got.traffic_mirror_filters]
    assert ares.show_filter(f).resource_group_id == "rg-a"
    ali.move_resource_group(vpc.MoveResourceGroupRequest(
        region_id=REGION, resource_type="TrafficMirrorFilter", resource_id=f, new_resource_group_id="rg-b"))
    assert ares.show_filter(f).resource_group_id == "rg-b"
    got = ares.list_filters(resource_group_id="rg-b")
    assert [x.traffic_mirror_filter_id for x in got.traffic_mirror_filters] == [f]
    assert ares.list_filters(resource_group_id="rg-a", traffic_mirror_filter_ids=[f]).total_count == "0"

    expect_error(lambda: tag(ali, "TRAFFICMIRRORFILTER", [f], [("acs:x", "1")]), "InvalidTagKey.Malformed")
    expect_error(lambda: tag(ali, "TRAFFICMIRRORFILTER", [f], [("k", "http://x")]), "InvalidTagValue.Malformed")
    expect_error(lambda: tag(ali, "TRAFFICMIRRORFILTER", [f], [(f"k{i}", "v") for i in range(21)]),
                 "QuotaExceeded.TagNum")
    expect_error(lambda: tag(ali, "TRAFFICMIRRORFILTER", ["tmf-" + "0" * 32], [("k", "v")]),
                 "ResourceNotFound.TrafficMirrorFilter")
    expect_error(lambda: tag(ali, "VSWITCH", [f], [("k", "v")]), "IllegalParam.ResourceType")
    expect_error(lambda: list_tags(ali, "TRAFFICMIRRORFILTER"), "MissingParameter")
    expect_error(lambda: ali.move_resource_group(vpc.MoveResourceGroupRequest(
        region_id=REGION, resource_type="TrafficMirrorSession", resource_id="tms-" + "0" * 32,
        new_resource_group_id="rg-b")), "ResourceNotFound.TrafficMirrorSession")

    # Tags and groups go with their resource.
    ares.delete_filter(f)
    body = list_tags(ali, "TRAFFICMIRRORFILTER", ids=[f])
    assert body.tag_resources.tag_resource == []
