"""The legacy Alibaba Python SDK: aliyun-python-sdk-core's `AcsClient` with the request classes of
aliyun-python-sdk-vpc. It signs every call with HMAC-SHA1 (SignatureVersion 1.0, parameters in
the query) and sends it as POST, or as GET when the request says so; each test runs both ways.

On `SignatureDoesNotMatch`, AcsClient (client.py `_get_server_exception`) takes the part of the
message after its `:` and compares it with its own string to sign: equal strings mean the
request arrived as signed, so the secret is wrong, and it raises `ServerException` with its own
code `InvalidAccessKeySecret`; different ones keep `SignatureDoesNotMatch`. A message without a
`:` made it die with IndexError.
"""

from __future__ import annotations

import importlib
import json
import uuid
import warnings

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type

import hwsupport
from alisupport import REGION, eni


class Legacy:
    """AcsClient pointed at the suite's server, every request sent with one HTTP method. Over
    https it verifies the certificate against the CA registered for the endpoint (AcsClient's
    `verify`, handed to requests; None there means the default trust store).

    The protocol must be the SDK's own constant: HttpResponse enables TLS only when
    `protocol is protocol_type.HTTPS` (identity, not equality), so an equal string that is not
    that object (one split from the endpoint) sends plain HTTP to the TLS port."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, method: str):
        scheme, host = endpoint.split("://", 1)
        self.protocol = {"http": protocol_type.HTTP, "https": protocol_type.HTTPS}[scheme]
        self.host = host.rstrip("/")
        self.method = method
        self.client = AcsClient(access_key, secret_key, REGION, timeout=20, connect_timeout=5,
                                verify=hwsupport.ca_file(endpoint))

    def request(self, action: str, **params):
        """The SDK's request class for `action`, with `params` set through its own setters
        (`set_<Name>`, e.g. `TrafficMirrorSourceIdss=[...]` for the repeat list)."""
        module = importlib.import_module(f"aliyunsdkvpc.request.v20160428.{action}Request")
        req = getattr(module, f"{action}Request")()
        for name, value in params.items():
            getattr(req, f"set_{name}")(value)
        req.set_endpoint(self.host)
        req.set_protocol_type(self.protocol)
        req.set_method(self.method)
        return req

    def call(self, action: str, **params) -> dict:
        return json.loads(self.client.do_action_with_exception(self.request(action, **params)))


def expect_server_error(call, code: str, status: int = 400) -> ServerException:
    try:
        result = call()
    except ServerException as e:
        assert (e.get_http_status(), e.get_error_code()) == (status, code), (
            f"expected {status} {code}, got {e.get_http_status()} {e.get_error_code()}: {e.get_error_msg()}")
        assert e.get_request_id() and e.get_error_msg()
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded: {result}")


@pytest.fixture(scope="module", params=["POST", "GET"])
def method(request):
    return request.param


@pytest.fixture(scope="module")
def legacy(server, method):
    sdk = Legacy(server.endpoint, server.access_key, server.secret_key, method)
    try:
        sdk.call("OpenTrafficMirrorService")
    except ServerException as e:
        assert e.get_error_code() == "ORDER.OPEND", e
    return sdk


@pytest.fixture
def made(legacy, res):
    """Sessions and filters the test made; deleted at the end (then `res` deletes the ports)."""
    created = {"sessions": [], "filters": []}
    yield created
    for action, key, rid in [("DeleteTrafficMirrorSession", "TrafficMirrorSessionId", s)
                             for s in created["sessions"]] + \
                            [("DeleteTrafficMirrorFilter", "TrafficMirrorFilterId", f)
                             for f in created["filters"]]:
        try:
            legacy.call(action, **{key: rid})
        except ServerException as e:
            assert e.get_error_code().startswith("ResourceNotFound."), e


def new_filter(legacy, made, **params) -> str:
    params.setdefault("TrafficMirrorFilterName", f"legacy-{uuid.uuid4().hex[:8]}")
    fid = legacy.call("CreateTrafficMirrorFilter", **params)["TrafficMirrorFilterId"]
    made["filters"].append(fid)
    return fid


def new_session(legacy, made, res, priorities, **params) -> str:
    params.setdefault("TrafficMirrorFilterId", new_filter(legacy, made))
    params.setdefault("TrafficMirrorSourceIdss", [eni(res.port().id)])
    params.setdefault("TrafficMirrorTargetId", eni(res.port().id))
    params.setdefault("TrafficMirrorTargetType", "NetworkInterface")
    params.setdefault("Priority", priorities.next())
    sid = legacy.call("CreateTrafficMirrorSession", **params)["TrafficMirrorSessionId"]
    made["sessions"].append(sid)
    return sid


def show_filter(legacy, fid) -> dict:
    body = legacy.call("ListTrafficMirrorFilters", TrafficMirrorFilterIdss=[fid])
    assert body["TotalCount"] == "1", body
    return body["TrafficMirrorFilters"][0]


def show_session(legacy, sid) -> dict:
    body = legacy.call("ListTrafficMirrorSessions", TrafficMirrorSessionIdss=[sid])
    assert body["TotalCount"] == "1", body
    return body["TrafficMirrorSessions"][0]


def test_filters_and_rules(legacy, made):
    # A name with characters the string to sign must encode: space, UTF-8, '/', '*', '~', ':'.
    name = "legacy é/*~:1"
    fid = new_filter(legacy, made, TrafficMirrorFilterName=name, TrafficMirrorFilterDescription="d",
                     IngressRuless=[{"Action": "accept", "Protocol": "TCP", "Priority": 1,
                                     "SourceCidrBlock": "10.0.0.0/8", "DestinationCidrBlock": "0.0.0.0/0",
                                     "DestinationPortRange": "80/443", "SourcePortRange": "-1/-1"}],
                     EgressRuless=[{"Action": "drop", "Protocol": "ALL", "Priority": 1,
                                    "SourceCidrBlock": "0.0.0.0/0", "DestinationCidrBlock": "0.0.0.0/0"}])
    assert fid.startswith("tmf-")
    f = show_filter(legacy, fid)
    assert (f["TrafficMirrorFilterName"], f["TrafficMirrorFilterDescription"]) == (name, "d")
    (i,) = f["IngressRules"]
    assert (i["Action"], i["Protocol"], i["DestinationPortRange"]) == ("accept", "TCP", "80/443")
    (e,) = f["EgressRules"]
    assert (e["Action"], e["Protocol"]) == ("drop", "ALL")

    legacy.call("UpdateTrafficMirrorFilterAttribute", TrafficMirrorFilterId=fid,
                TrafficMirrorFilterName="legacy renamed")
    assert show_filter(legacy, fid)["TrafficMirrorFilterName"] == "legacy renamed"

    added = legacy.call("CreateTrafficMirrorFilterRules", TrafficMirrorFilterId=fid,
                        IngressRuless=[{"Action": "accept", "Protocol": "UDP", "Priority": 2,
                                        "SourceCidrBlock": "0.0.0.0/0", "DestinationCidrBlock": "0.0.0.0/0",
                                        "DestinationPortRange": "53/53", "SourcePortRange": "-1/-1"}])
    (new,) = added["IngressRules"]
    rid = new["InstanceId"]
    legacy.call("UpdateTrafficMirrorFilterRuleAttribute", TrafficMirrorFilterRuleId=rid, Priority=5,
                RuleAction="drop")
    rules = {r["TrafficMirrorFilterRuleId"]: r for r in show_filter(legacy, fid)["IngressRules"]}
    assert (rules[rid]["Priority"], rules[rid]["Action"]) == (5, "drop")
    legacy.call("DeleteTrafficMirrorFilterRules", TrafficMirrorFilterId=fid, TrafficMirrorFilterRuleIdss=[rid])
    assert [r["TrafficMirrorFilterRuleId"] for r in show_filter(legacy, fid)["IngressRules"]] == [i["TrafficMirrorFilterRuleId"]]

    legacy.call("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid)
    assert legacy.call("ListTrafficMirrorFilters", TrafficMirrorFilterIdss=[fid])["TotalCount"] == "0"
    expect_server_error(lambda: legacy.call("DeleteTrafficMirrorFilter", TrafficMirrorFilterId=fid),
                        "ResourceNotFound.TrafficMirrorFilter")


def test_sessions(legacy, made, res, priorities):
    src2 = eni(res.port().id)
    sid = new_session(legacy, made, res, priorities, TrafficMirrorSessionName="legacy session",
                      Enabled=False, PacketLength=1500, VirtualNetworkId=42)
    assert sid.startswith("tms-")
    s = show_session(legacy, sid)
    assert (s["TrafficMirrorSessionName"], s["Enabled"], s["PacketLength"], s["VirtualNetworkId"]) == \
        ("legacy session", False, 1500, 42)
    (src1,) = s["TrafficMirrorSourceIds"]

    legacy.call("UpdateTrafficMirrorSessionAttribute", TrafficMirrorSessionId=sid,
                TrafficMirrorSessionName="legacy renamed", Enabled=True)
    s = show_session(legacy, sid)
    assert (s["TrafficMirrorSessionName"], s["Enabled"]) == ("legacy renamed", True)

    legacy.call("AddSourcesToTrafficMirrorSession", TrafficMirrorSessionId=sid, TrafficMirrorSourceIdss=[src2])
    assert sorted(show_session(legacy, sid)["TrafficMirrorSourceIds"]) == sorted([src1, src2])
    body = legacy.call("ListTrafficMirrorSessions", TrafficMirrorSourceId=src2)
    assert [x["TrafficMirrorSessionId"] for x in body["TrafficMirrorSessions"]] == [sid]
    legacy.call("RemoveSourcesFromTrafficMirrorSession", TrafficMirrorSessionId=sid,
                TrafficMirrorSourceIdss=[src1])
    assert show_session(legacy, sid)["TrafficMirrorSourceIds"] == [src2]

    legacy.call("DeleteTrafficMirrorSession", TrafficMirrorSessionId=sid)
    assert legacy.call("ListTrafficMirrorSessions", TrafficMirrorSessionIdss=[sid])["TotalCount"] == "0"
    expect_server_error(lambda: legacy.call("DeleteTrafficMirrorSession", TrafficMirrorSessionId=sid),
                        "ResourceNotFound.TrafficMirrorSession")
    expect_server_error(lambda: legacy.call("DeleteTrafficMirrorSession"), "MissingParameter")


def test_tags(legacy, made, res, priorities):
    key = f"k{uuid.uuid4().hex[:6]}"
    s1 = new_session(legacy, made, res, priorities, Tags=[{"Key": key, "Value": "v 1"}])
    s2 = new_session(legacy, made, res, priorities)
    assert [(t["Key"], t["Value"]) for t in show_session(legacy, s1)["Tags"]] == [(key, "v 1")]
    legacy.call("TagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceIds=[s2],
                Tags=[{"Key": key, "Value": "v 2"}, {"Key": "team", "Value": ""}])
    rows = legacy.call("ListTagResources", ResourceType="TRAFFICMIRRORSESSION",
                       ResourceIds=[s2])["TagResources"]["TagResource"]
    assert sorted((r["ResourceId"], r["TagKey"], r["TagValue"]) for r in rows) == \
        [(s2, key, "v 2"), (s2, "team", "")]
    body = legacy.call("ListTrafficMirrorSessions", Tagss=[{"Key": key}])
    assert {x["TrafficMirrorSessionId"] for x in body["TrafficMirrorSessions"]} == {s1, s2}
    body = legacy.call("ListTrafficMirrorSessions", Tagss=[{"Key": key, "Value": "v 2"}])
    assert [x["TrafficMirrorSessionId"] for x in body["TrafficMirrorSessions"]] == [s2]
    legacy.call("UnTagResources", ResourceType="TRAFFICMIRRORSESSION", ResourceIds=[s1, s2], TagKeys=[key])
    assert legacy.call("ListTrafficMirrorSessions", Tagss=[{"Key": key}])["TrafficMirrorSessions"] == []

    fid = new_filter(legacy, made, Tags=[{"Key": key, "Value": "f"}])
    body = legacy.call("ListTrafficMirrorFilters", Tagss=[{"Key": key, "Value": "f"}])
    assert [x["TrafficMirrorFilterId"] for x in body["TrafficMirrorFilters"]] == [fid]


def test_wrong_secret(server, method):
    bad = Legacy(server.endpoint, server.access_key, "wrong-secret", method)
    # Through the SDK: its normal ServerException. The server answers SignatureDoesNotMatch with
    # its string to sign, which equals the SDK's, so the SDK names the cause itself.
    e = expect_server_error(lambda: bad.call("GetTrafficMirrorServiceStatus"), "InvalidAccessKeySecret")
    assert "AccessKeySecret" in e.get_error_msg()

    # On the wire, through the SDK's own request path (AcsClient.get_response returns the raw
    # answer): SignatureDoesNotMatch, and what follows the ':' is the SDK's string to sign, with
    # parameters in the query and, for POST, in a form body (add_body_params) too.
    requests = [bad.request("GetTrafficMirrorServiceStatus")]
    if method == "POST":
        with_body = bad.request("ListTrafficMirrorFilters", TrafficMirrorFilterName="x y:z/é")
        with_body.add_body_params("OwnerAccount", "someone: else")
        requests.append(with_body)
    for req in requests:
        with warnings.catch_warnings():  # get_response goes through a deprecated alias
            warnings.simplefilter("ignore", DeprecationWarning)
            status, _, body = bad.client.get_response(req)
        answer = json.loads(body)
        assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch"), answer
        prefix, string_to_sign = answer["Message"].split(":")
        assert prefix == "Specified signature is not matched with our calculation. server string to sign is"
        assert string_to_sign == req.string_to_sign
        assert string_to_sign.startswith(f"{method}&%2F&")
        assert answer["RequestId"] and answer["Recommend"]


def test_unknown_access_key(server, method):
    unknown = Legacy(server.endpoint, "NOSUCHKEY", "x", method)
    expect_server_error(lambda: unknown.call("GetTrafficMirrorServiceStatus"), "InvalidAccessKeyId.NotFound", 404)
