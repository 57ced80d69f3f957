"""The wire form through the SDK's generic `call_api`: parameters in a form body (as Terraform
sends them), owner parameters that are ignored, the error fields the SDK exposes, and a bad
secret."""

from alibabacloud_tea_openapi import utils_models as om
from alibabacloud_vpc20160428 import models as vpc
from darabonba.runtime import RuntimeOptions

import alisupport
from alisupport import REGION, expect_error


def rpc(client, action, query=None, body=None):
    params = om.Params(action=action, version="2016-04-28", protocol="HTTP", pathname="/", method="POST",
                       auth_type="AK", style="RPC", req_body_type="formData", body_type="json")
    return client.call_api(params, om.OpenApiRequest(query=query or {}, body=body), RuntimeOptions())


def test_form_body_parameters(ali, ares):
    name = "form-" + ares.eni()[-6:]
    out = rpc(ali, "CreateTrafficMirrorFilter", query={"RegionId": REGION},
              body={"TrafficMirrorFilterName": name, "IngressRules.1.Action": "accept",
                    "IngressRules.1.Protocol": "TCP", "IngressRules.1.Priority": "1",
                    "IngressRules.1.DestinationPortRange": "22/22", "OwnerId": "123",
                    "ResourceOwnerAccount": "someone"})
    assert out["statusCode"] == 200
    fid = out["body"]["TrafficMirrorFilterId"]
    ares.filters.append(fid)
    f = ares.show_filter(fid)
    assert f.traffic_mirror_filter_name == name
    assert f.ingress_rules[0].destination_port_range == "22/22"


def test_raw_shapes(ali, ares):
    sid = ares.session()
    out = rpc(ali, "ListTrafficMirrorSessions", query={"RegionId": REGION, "TrafficMirrorSessionIds.1": sid})
    body = out["body"]
    assert isinstance(body["TotalCount"], str) and body["TotalCount"] == "1"
    assert body["NextToken"] == ""
    s = body["TrafficMirrorSessions"][0]
    for key in ("Priority", "VirtualNetworkId", "PacketLength"):
        assert isinstance(s[key], int), key
    assert isinstance(s["Enabled"], bool)
    assert isinstance(s["TrafficMirrorSourceIds"], list) and isinstance(s["Tags"], list)
    out = rpc(ali, "ListTrafficMirrorFilters", query={"RegionId": REGION, "MaxResults": "1"})
    assert isinstance(out["body"]["Count"], int) and isinstance(out["body"]["MaxResults"], int)
    assert out["headers"]["x-request-id"] == out["body"]["RequestId"]


def test_error_fields(ali):
    e = expect_error(lambda: ali.delete_traffic_mirror_session(vpc.DeleteTrafficMirrorSessionRequest(
        region_id=REGION, traffic_mirror_session_id="tms-nope")), "ResourceNotFound.TrafficMirrorSession")
    assert "tms-nope" in e.data["Message"]
    assert e.data["Recommend"].endswith(e.request_id)
    expect_error(lambda: ali.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest()),
                 "MissingParameter")
    expect_error(lambda: rpc(ali, "DescribeVpcs", query={"RegionId": REGION}), "InvalidAction.NotFound", 404)


def test_wrong_secret_and_unknown_key(server, scheme):
    bad = alisupport.make_client(server.endpoint, server.access_key, "wrong-secret", scheme)
    expect_error(lambda: bad.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest()),
                 "SignatureDoesNotMatch")
    unknown = alisupport.make_client(server.endpoint, "NOSUCHKEY", "x", scheme)
    expect_error(lambda: unknown.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest()),
                 "InvalidAccessKeyId.NotFound", 404)
