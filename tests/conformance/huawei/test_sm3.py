"""SDK-HMAC-SM3: the SDK's SM3Signer, chosen with `HttpConfig.signing_algorithm =
SigningAlgorithm.HMAC_SM3` (huaweicloudsdkcore auth/credentials.py `_SIGNER_CASE`). It signs
like the default signer with SM3 for every hash and the HMAC, and names the algorithm in
`Authorization: SDK-HMAC-SM3 ...`; the SDK hashes with `hashlib.new('sm3')` (OpenSSL)."""

import pytest
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm
from huaweicloudsdkvpc import v2 as hv2
from huaweicloudsdkvpc import v3 as hv3

from hwsupport import Resources, expect_error, make_clients, raw


@pytest.fixture
def sm3(server, priorities):
    """Resources through SM3-signing v3 and v2 clients; deletes what the test created."""
    v3, v2 = make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id,
                          signing_algorithm=SigningAlgorithm.HMAC_SM3)
    r = Resources(v3, v2, priorities)
    yield r
    r.cleanup()


def test_requests_are_signed_with_sm3(server):
    # What goes on the wire is the SM3 scheme, not SHA-256 under another name.
    recorder = []
    v3, _ = make_clients(server.endpoint, server.access_key, server.secret_key, server.project_id,
                         recorder=recorder, signing_algorithm=SigningAlgorithm.HMAC_SM3)
    assert v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest(limit=1)).status_code == 200
    sent = recorder[-1].request.headers["Authorization"]
    assert sent.startswith("SDK-HMAC-SM3 Access="), sent


def test_create_list_update_delete(sm3, res):
    port, source, target = sm3.port(), sm3.port().id, sm3.port().id
    assert sm3.show_port(port.id).port.id == port.id
    assert port.id in [p.id for p in sm3.v2.list_ports(hv2.ListPortsRequest(id=[port.id])).ports]

    f = sm3.filter(name="sm3-filter", description="é / *")
    rule = sm3.rule(f.id, protocol="udp", destination_port_range="53-53", source_cidr_block="10.0.0.0/8")
    s = sm3.session(sources=[source], target=target, filter_id=f.id, name="sm3-session")

    # The default-signed client sees the same resources.
    assert res.show_session(s.id).traffic_mirror_session.name == "sm3-session"
    assert [r.id for r in sm3.list_rules(traffic_mirror_filter_id=f.id).traffic_mirror_filter_rules] == [rule.id]
    assert sm3.show_filter(f.id).traffic_mirror_filter.description == "é / *"
    listed = sm3.list_sessions(id=[s.id]).traffic_mirror_sessions
    assert [(x.id, x.traffic_mirror_sources) for x in listed] == [(s.id, [source])]

    sm3.update_session(s.id, name="sm3-renamed")
    sm3.add_sources(s.id, [port.id])
    assert sorted(sm3.show_session(s.id).traffic_mirror_session.traffic_mirror_sources) == sorted([source, port.id])
    sm3.update_rule(rule.id, priority=7)
    assert raw(sm3.show_rule(rule.id))["traffic_mirror_filter_rule"]["priority"] == 7

    assert sm3.delete_session(s.id).status_code == 204
    assert sm3.delete_rule(rule.id).status_code == 204
    assert sm3.delete_filter(f.id).status_code == 204
    assert sm3.delete_port(port.id).status_code == 204
    expect_error(lambda: sm3.show_session(s.id), 404, "VPC.1701")
    assert sm3.list_filters(id=[f.id]).traffic_mirror_filters == []


def test_wrong_secret_is_refused_like_the_gateway(server):
    sk = server.secret_key
    wrong = sk[:-1] + ("A" if sk[-1] != "A" else "B")
    v3, v2 = make_clients(server.endpoint, server.access_key, wrong, server.project_id,
                          signing_algorithm=SigningAlgorithm.HMAC_SM3)
    e = expect_error(lambda: v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest()),
                     401, "APIGW.0301")
    assert "signature" in e.error_msg
    expect_error(lambda: v3.create_traffic_mirror_filter(hv3.CreateTrafficMirrorFilterRequest(
        hv3.CreateTrafficMirrorFilterRequestBody(hv3.CreateTrafficMirrorFilterOption(name="intruder")))),
        401, "APIGW.0301")
    expect_error(lambda: v2.list_ports(hv2.ListPortsRequest()), 401, "APIGW.0301")
