"""One model, two faces: what the Alibaba SDK creates the Huawei SDK reads and deletes, and
the reverse."""

from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkvpc import v3 as hv3

from alisupport import eni, expect_error, uuid_of


def test_alibaba_to_huawei(ares, v3):
    src, tgt = ares.eni(), ares.eni()
    flt = ares.filter(traffic_mirror_filter_name="x-face")
    prio = ares.priorities.next()
    sid = ares.session(sources=[src], target=tgt, filter_id=flt, priority=prio, virtual_network_id=42,
                       packet_length=100, traffic_mirror_session_name="xface")
    h = v3.show_traffic_mirror_session(hv3.ShowTrafficMirrorSessionRequest(uuid_of(sid))).traffic_mirror_session
    assert (h.id, h.name, h.priority, h.virtual_network_id, h.packet_length) == (uuid_of(sid), "xface", prio, 42, 100)
    assert h.traffic_mirror_filter_id == uuid_of(flt)
    assert h.traffic_mirror_sources == [uuid_of(src)]
    assert (h.traffic_mirror_target_id, h.traffic_mirror_target_type) == (uuid_of(tgt), "eni")
    f = v3.show_traffic_mirror_filter(hv3.ShowTrafficMirrorFilterRequest(uuid_of(flt))).traffic_mirror_filter
    assert f.name == "x-face"
    v3.delete_traffic_mirror_session(hv3.DeleteTrafficMirrorSessionRequest(uuid_of(sid)))
    assert ares.list_sessions(traffic_mirror_session_ids=[sid]).total_count == "0"
    expect_error(lambda: ares.delete_session(sid), "ResourceNotFound.TrafficMirrorSession")


def test_huawei_to_alibaba(ares, res, v3):
    s = res.session()
    sid = "tms-" + s.id.replace("-", "")
    a = ares.show_session(sid)
    assert a.priority == s.priority
    assert a.traffic_mirror_source_ids == [eni(p) for p in s.traffic_mirror_sources]
    assert a.traffic_mirror_target_id == eni(s.traffic_mirror_target_id)
    assert a.traffic_mirror_target_type == "NetworkInterface"
    assert a.traffic_mirror_filter_id == "tmf-" + s.traffic_mirror_filter_id.replace("-", "")
    r = res.rule(s.traffic_mirror_filter_id, direction="egress", protocol="udp", action="reject",
                 destination_port_range="53-53")
    f = ares.show_filter(a.traffic_mirror_filter_id)
    (rule,) = f.egress_rules
    assert rule.traffic_mirror_filter_rule_id == "tmr-" + r.id.replace("-", "")
    assert (rule.action, rule.protocol, rule.destination_port_range) == ("drop", "UDP", "53/53")
    ares.delete_session(sid)
    try:
        v3.show_traffic_mirror_session(hv3.ShowTrafficMirrorSessionRequest(s.id))
        raise AssertionError("the session is still visible through the Huawei face")
    except ClientRequestException as e:
        assert e.status_code == 404
