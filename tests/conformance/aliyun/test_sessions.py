"""Traffic mirror sessions through the Alibaba SDK: create, list (shapes, types, filters),
update, add and remove sources, delete, and the service's rules as Alibaba error codes."""

from alibabacloud_vpc20160428 import models as vpc

from alisupport import REGION, expect_error, token


def test_create_list_update_delete(ares, ali):
    src, src2, tgt = ares.eni(), ares.eni(), ares.eni()
    flt = ares.filter()
    prio = ares.priorities.next()
    resp = ares.create_session(
        sources=[src], target=tgt, filter_id=flt, priority=prio, virtual_network_id=77,
        enabled=True, packet_length=9000 - 500, traffic_mirror_session_name="my session~*",
        traffic_mirror_session_description="desc", resource_group_id="rg-conf",
        tag=[vpc.CreateTrafficMirrorSessionRequestTag(key="k1", value="v 1/é")])
    sid = resp.body.traffic_mirror_session_id
    assert sid.startswith("tms-") and len(sid) == 36
    assert resp.body.resource_group_id == "rg-conf"
    assert resp.body.request_id == resp.body.request_id.upper()

    s = ares.show_session(sid)
    assert s.traffic_mirror_session_name == "my session~*"
    assert s.traffic_mirror_session_description == "desc"
    assert s.traffic_mirror_session_status == "Created"
    assert s.traffic_mirror_session_business_status == "Normal"
    assert s.enabled is True
    assert (s.priority, s.virtual_network_id, s.packet_length) == (prio, 77, 8500)
    assert s.traffic_mirror_filter_id == flt
    assert s.traffic_mirror_source_ids == [src]
    assert (s.traffic_mirror_target_id, s.traffic_mirror_target_type) == (tgt, "NetworkInterface")
    assert s.resource_group_id == "rg-conf"
    assert [(t.key, t.value) for t in s.tags] == [("k1", "v 1/é")]
    assert s.creation_time.endswith("Z")

    ali.add_sources_to_traffic_mirror_session(vpc.AddSourcesToTrafficMirrorSessionRequest(
        region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_source_ids=[src2]))
    ali.update_traffic_mirror_session_attribute(vpc.UpdateTrafficMirrorSessionAttributeRequest(
        region_id=REGION, traffic_mirror_session_id=sid, enabled=False, packet_length=64,
        traffic_mirror_session_name="renamed", virtual_network_id=0))
    s = ares.show_session(sid)
    assert (s.enabled, s.packet_length, s.virtual_network_id) == (False, 64, 0)
    assert s.traffic_mirror_session_name == "renamed"
    assert s.traffic_mirror_source_ids == [src, src2]
    ali.remove_sources_from_traffic_mirror_session(vpc.RemoveSourcesFromTrafficMirrorSessionRequest(
        region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_source_ids=[src]))
    assert ares.show_session(sid).traffic_mirror_source_ids == [src2]

    # List filters.
    assert ares.list_sessions(traffic_mirror_source_id=src2).total_count == "1"
    assert ares.list_sessions(traffic_mirror_source_id=src).total_count == "0"
    assert ares.list_sessions(traffic_mirror_target_id=tgt).total_count == "1"
    assert ares.list_sessions(traffic_mirror_filter_id=flt).total_count == "1"
    assert ares.list_sessions(traffic_mirror_session_name="renamed", priority=prio).total_count == "1"
    assert ares.list_sessions(traffic_mirror_session_ids=[sid], enabled=True).total_count == "0"
    assert ares.list_sessions(traffic_mirror_session_ids=[sid], enabled=False).total_count == "1"

    ares.delete_session(sid)
    assert ares.list_sessions(traffic_mirror_session_ids=[sid]).total_count == "0"
    expect_error(lambda: ares.delete_session(sid), "ResourceNotFound.TrafficMirrorSession")


def test_defaults(ares):
    sid = ares.session()
    s = ares.show_session(sid)
    assert s.packet_length == 1500
    assert s.enabled is False
    assert 0 <= s.virtual_network_id <= 16777215
    assert s.resource_group_id
    assert s.tags == []


def test_business_rules(ares, ali):
    src, tgt, other = ares.eni(), ares.eni(), ares.eni()
    flt = ares.filter()
    prio = ares.priorities.next()
    sid = ares.session(sources=[src], target=tgt, filter_id=flt, priority=prio)
    expect_error(lambda: ares.create_session(sources=[other], target=tgt, filter_id=flt, priority=prio),
                 "IllegalParam.Priority")
    expect_error(lambda: ares.create_session(sources=[other, other], target=tgt, filter_id=flt),
                 "DuplicatedParam.SourceInstanceIds")
    expect_error(lambda: ares.create_session(sources=[tgt], target=other, filter_id=flt),
                 "OperationDenied.DuplicateRole")
    expect_error(lambda: ares.create_session(sources=[other], target=src, filter_id=flt),
                 "OperationDenied.DuplicateRole")
    expect_error(lambda: ares.create_session(sources=["eni-doesnotexist"], target=tgt, filter_id=flt),
                 "ResourceNotFound.NetworkInterface")
    expect_error(lambda: ares.create_session(sources=[other], target=tgt,
                                             filter_id="tmf-" + "0" * 32),
                 "ResourceNotFound.TrafficMirrorFilter")
    expect_error(lambda: ares.create_session(sources=[other], target="lb-123", filter_id=flt,
                                             traffic_mirror_target_type="SLB"),
                 "InvalidLoadBalancerId.NotFound")
    expect_error(lambda: ares.create_session(sources=[other], target=tgt, filter_id=flt, priority=32767),
                 "IllegalParam.Priority")
    expect_error(lambda: ares.create_session(sources=[other], target=tgt, filter_id=flt, packet_length=63),
                 "IllegalParam.PacketLength")
    expect_error(lambda: ares.create_session(sources=[other], target=tgt, filter_id=flt,
                                             virtual_network_id=16777216),
                 "IllegalParam.VirtualNetworkId")
    expect_error(lambda: ares.create_session(sources=[other], target=tgt, filter_id=flt,
                                             traffic_mirror_session_name="https://x"),
                 "IllegalParam.TrafficMirrorSessionName")
    expect_error(lambda: ali.add_sources_to_traffic_mirror_session(vpc.AddSourcesToTrafficMirrorSessionRequest(
        region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_source_ids=[src])),
        "OperationDenied.SourceAlreadyInSession")
    expect_error(lambda: ali.remove_sources_from_traffic_mirror_session(
        vpc.RemoveSourcesFromTrafficMirrorSessionRequest(
            region_id=REGION, traffic_mirror_session_id=sid, traffic_mirror_source_ids=[other])),
        "OperationDenied.SourceNotInSession")
    expect_error(lambda: ares.delete_filter(flt), "DependencyViolation.TrafficMirrorSession")
    expect_error(lambda: ali.update_traffic_mirror_session_attribute(
        vpc.UpdateTrafficMirrorSessionAttributeRequest(
            region_id=REGION, traffic_mirror_session_id="tms-" + "f" * 32, enabled=True)),
        "ResourceNotFound.TrafficMirrorSession")


def test_sessions_per_source_quota(ares):
    src = ares.eni()
    flt = ares.filter()
    for _ in range(3):
        ares.session(sources=[src], filter_id=flt)
    expect_error(lambda: ares.create_session(sources=[src], filter_id=flt),
                 "QuotaExceeded.NetworkInterfaceRelatedSession")


def test_client_token(ares):
    tok = token()
    src, tgt, flt, prio = ares.eni(), ares.eni(), ares.filter(), ares.priorities.next()
    a = ares.create_session(sources=[src], target=tgt, filter_id=flt, priority=prio, client_token=tok)
    b = ares.create_session(sources=[src], target=tgt, filter_id=flt, priority=prio, client_token=tok)
    assert a.body.traffic_mirror_session_id == b.body.traffic_mirror_session_id
    assert a.body.request_id != b.body.request_id
    assert ares.list_sessions(traffic_mirror_source_id=src).total_count == "1"
    expect_error(lambda: ares.create_session(sources=[src], target=tgt, filter_id=flt,
                                             priority=ares.priorities.next(), client_token=tok),
                 "IdempotentParameterMismatch")


def test_dry_run(ares, ali):
    src, tgt, flt, prio = ares.eni(), ares.eni(), ares.filter(), ares.priorities.next()
    expect_error(lambda: ares.create_session(sources=[src], target=tgt, filter_id=flt, priority=prio,
                                             dry_run=True), "DryRunOperation")
    assert ares.list_sessions(traffic_mirror_source_id=src).total_count == "0"
    # Validation still happens on a dry run, down to the service's rules.
    expect_error(lambda: ares.create_session(sources=[src, src], target=tgt, filter_id=flt,
                                             dry_run=True), "DuplicatedParam.SourceInstanceIds")
    sid = ares.session(sources=[src], target=tgt, filter_id=flt, priority=prio)
    expect_error(lambda: ares.delete_session(sid, dry_run=True), "DryRunOperation")
    expect_error(lambda: ali.update_traffic_mirror_session_attribute(
        vpc.UpdateTrafficMirrorSessionAttributeRequest(
            region_id=REGION, traffic_mirror_session_id=sid, enabled=True, dry_run=True)),
        "DryRunOperation")
    assert ares.show_session(sid).enabled is False
