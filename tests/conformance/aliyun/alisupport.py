"""Helpers for the Alibaba conformance tests: SDK clients for the three signature schemes, resource
factories that clean up, and error assertions on the SDK's exception fields.

Everything goes through the official `alibabacloud-vpc20160428` client and its request models,
exactly as a user calls it (reference/aliyun-api.md §13); ports come from the Huawei v1 API
(there is no Alibaba ENI API in tmirror).
"""

from __future__ import annotations

import uuid

from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_vpc20160428 import models as vpc
from alibabacloud_vpc20160428.client import Client
from alibabacloud_slb20140515.client import Client as SlbClient

import hwsupport

REGION = "cn-hangzhou"


# `Config.signature_algorithm` per scheme: unset selects ACS3-HMAC-SHA256; "v2" the legacy RPC
# HMAC-SHA1 signer; any other value is the V3 algorithm name itself (tea-openapi's do_request
# passes it to Utils.hash / signature_method, which know ACS3-HMAC-SM3).
SIGNATURE_ALGORITHMS = {"acs3": None, "v2": "v2", "sm3": "ACS3-HMAC-SM3"}


def make_client(endpoint: str, access_key: str, secret_key: str, scheme: str) -> Client:
    """The VPC client; see `make_config`."""
    return Client(make_config(endpoint, access_key, secret_key, scheme))


def make_slb_client(endpoint: str, access_key: str, secret_key: str, scheme: str) -> SlbClient:
    """The CLB (SLB 2014-05-15) client, on the same endpoint; see `make_config`."""
    return SlbClient(make_config(endpoint, access_key, secret_key, scheme))


def make_config(endpoint: str, access_key: str, secret_key: str, scheme: str) -> Config:
    """`scheme`: "acs3" (the SDK's default ACS3-HMAC-SHA256), "v2" (HMAC-SHA1) or "sm3"
    (ACS3-HMAC-SM3). The endpoint's scheme is the client's `protocol`; over https the SDK
    verifies the certificate against the CA registered for the endpoint (`Config.ca`, which
    tea-openapi hands to darabonba's `ca` runtime option; `ignore_ssl` stays unset)."""
    protocol, host = endpoint.split("://", 1)
    cfg = Config(access_key_id=access_key, access_key_secret=secret_key, endpoint=host.rstrip("/"),
                 protocol=protocol, ca=hwsupport.ca_file(endpoint), region_id=REGION,
                 read_timeout=20000, connect_timeout=5000)
    algorithm = SIGNATURE_ALGORITHMS[scheme]
    if algorithm is not None:
        cfg.signature_algorithm = algorithm
    return cfg


def ensure_open(client: Client):
    """Opens the traffic mirror service once per account; ORDER.OPEND means it already is."""
    try:
        client.open_traffic_mirror_service(vpc.OpenTrafficMirrorServiceRequest(region_id=REGION))
    except AlibabaCloudException as e:
        assert e.code == "ORDER.OPEND", e


def token() -> str:
    return uuid.uuid4().hex


def expect_error(call, code: str, status: int = 400):
    """Run `call()`, expect the SDK to raise with this code and status; return the exception."""
    try:
        result = call()
    except AlibabaCloudException as e:
        assert (e.status_code, e.code) == (status, code), (
            f"expected {status} {code}, got {e.status_code} {e.code}: {e.message}")
        assert e.request_id and e.request_id == e.request_id.upper(), e.request_id
        assert isinstance(e.message, str) and e.data["Message"] in e.message and e.request_id in e.message
        assert e.data["HostId"] and e.data["Recommend"] and e.data["Message"], e.data
        assert e.data["statusCode"] == status
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded: {result.body}")


def uuid_of(alibaba_id: str) -> str:
    """The canonical id behind `tms-...`, `tmf-...`, `tmr-...`, `eni-...`."""
    return str(uuid.UUID(hex=alibaba_id.split("-", 1)[1]))


def eni(port_id: str) -> str:
    """The Alibaba id of a Huawei port id."""
    return "eni-" + uuid.UUID(port_id).hex


class Ali:
    """Alibaba resources through the SDK, deleted at the end of the test."""

    def __init__(self, client: Client, hres, priorities):
        self.c, self.hres, self.priorities = client, hres, priorities
        self.sessions: list[str] = []
        self.filters: list[str] = []

    # ---- ports (Huawei v1) ----------------------------------------------------------------

    def eni(self) -> str:
        return eni(self.hres.port().id)

    # ---- filters ------------------------------------------------------------------------

    def create_filter(self, **kw):
        kw.setdefault("region_id", REGION)
        kw.setdefault("traffic_mirror_filter_name", f"conf-{uuid.uuid4().hex[:8]}")
        resp = self.c.create_traffic_mirror_filter(vpc.CreateTrafficMirrorFilterRequest(**kw))
        if not kw.get("dry_run"):
            self.filters.append(resp.body.traffic_mirror_filter_id)
        return resp

    def filter(self, **kw) -> str:
        return self.create_filter(**kw).body.traffic_mirror_filter_id

    def list_filters(self, **kw):
        kw.setdefault("region_id", REGION)
        return self.c.list_traffic_mirror_filters(vpc.ListTrafficMirrorFiltersRequest(**kw)).body

    def show_filter(self, filter_id):
        body = self.list_filters(traffic_mirror_filter_ids=[filter_id])
        assert body.total_count == "1", body
        return body.traffic_mirror_filters[0]

    def delete_filter(self, filter_id, **kw):
        return self.c.delete_traffic_mirror_filter(vpc.DeleteTrafficMirrorFilterRequest(
            region_id=REGION, traffic_mirror_filter_id=filter_id, **kw))

    # ---- sessions -----------------------------------------------------------------------

    def create_session(self, sources=None, target=None, filter_id=None, priority=None, **kw):
        kw.setdefault("region_id", REGION)
        req = vpc.CreateTrafficMirrorSessionRequest(
            traffic_mirror_filter_id=filter_id or self.filter(),
            traffic_mirror_source_ids=sources if sources is not None else [self.eni()],
            traffic_mirror_target_id=target or self.eni(),
            traffic_mirror_target_type=kw.pop("traffic_mirror_target_type", "NetworkInterface"),
            priority=priority if priority is not None else self.priorities.next(), **kw)
        resp = self.c.create_traffic_mirror_session(req)
        if not kw.get("dry_run"):
            self.sessions.append(resp.body.traffic_mirror_session_id)
        return resp

    def session(self, **kw) -> str:
        return self.create_session(**kw).body.traffic_mirror_session_id

    def list_sessions(self, **kw):
        kw.setdefault("region_id", REGION)
        return self.c.list_traffic_mirror_sessions(vpc.ListTrafficMirrorSessionsRequest(**kw)).body

    def show_session(self, session_id):
        body = self.list_sessions(traffic_mirror_session_ids=[session_id])
        assert body.total_count == "1", body
        return body.traffic_mirror_sessions[0]

    def delete_session(self, session_id, **kw):
        return self.c.delete_traffic_mirror_session(vpc.DeleteTrafficMirrorSessionRequest(
            region_id=REGION, traffic_mirror_session_id=session_id, **kw))

    # ---- clean-up -----------------------------------------------------------------------

    def cleanup(self):
        errors = []
        for ids, delete, gone in ((self.sessions, self.delete_session, "ResourceNotFound.TrafficMirrorSession"),
                                  (self.filters, self.delete_filter, "ResourceNotFound.TrafficMirrorFilter")):
            for rid in reversed(ids):
                try:
                    delete(rid)
                except AlibabaCloudException as e:
                    if e.code != gone:
                        errors.append(f"{delete.__name__}({rid}): {e.code} {e.message}")
            ids.clear()
        if errors:
            raise AssertionError("clean-up failed:\n" + "\n".join(errors))
