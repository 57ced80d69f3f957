"""Helpers for the Huawei conformance tests: SDK clients, resource factories with clean-up,
error assertions and raw-JSON access.

Everything goes through the official SDK's request and option model classes. Where a test must
see the wire form (JSON integer versus string, a key that is absent), it reads
`response.to_json_object()`, the SDK's own view of the raw body.

Over TLS (TMIRROR_CONFORMANCE_TLS=1) each server's self-signed certificate is the one CA its
clients trust: conftest.py registers it for the server's endpoint (`trust`), and every client
made here, and in aliyun/alisupport.py and the Node.js script, passes it to the SDK's own CA
option with verification on. An https endpoint nobody registered gets no CA: the SDK's default
trust store, which does not hold it.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from urllib.parse import urlsplit

import requests

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkvpc import v2 as hv2
from huaweicloudsdkvpc import v3 as hv3

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
PROJECT_RE = re.compile(r"^[0-9a-f]{32}$")


# endpoint -> the CA file (PEM) its clients verify the server's certificate against.
_CA_FILES: dict[str, str] = {}


def trust(endpoint, ca_file):
    """Clients of `endpoint` verify its certificate against `ca_file` (conftest.run_server)."""
    _CA_FILES[endpoint] = str(ca_file)


def ca_file(endpoint):
    """The CA file registered for `endpoint`, or None (plain HTTP, or the default trust store)."""
    return _CA_FILES.get(endpoint)


def http_config(endpoint):
    """`HttpConfig.get_default_config()` for `endpoint`: over https the SDK verifies the server's
    certificate against the CA registered for it (`ssl_ca_cert`), never skipping verification."""
    cfg = HttpConfig.get_default_config()
    cfg.ignore_ssl_verification = False
    ca = ca_file(endpoint)
    if ca is not None:
        cfg.ssl_ca_cert = ca
    return cfg


def make_clients(endpoint, access_key, secret_key, project_id, recorder=None, signing_algorithm=None):
    """The v3 (traffic mirroring) and v2 (/v1 ports) clients, configured as in reference §10.

    With `recorder` (a list), every HTTP response is appended to it through the SDK's own
    HttpHandler hook, so tests can look at headers the response models do not carry.
    `signing_algorithm` (huaweicloudsdkcore.signer.algorithm.SigningAlgorithm) replaces the
    default SDK-HMAC-SHA256, e.g. HMAC_SM3 for the SDK's SM3Signer.
    """
    cfg = http_config(endpoint)
    cfg.timeout = (5, 60)
    if signing_algorithm is not None:
        cfg.signing_algorithm = signing_algorithm
    creds = BasicCredentials(access_key, secret_key, project_id)
    clients = []
    for klass in (hv3.VpcClient, hv2.VpcClient):
        builder = klass.new_builder().with_http_config(cfg).with_credentials(creds).with_endpoints([endpoint])
        if recorder is not None:
            builder = builder.with_http_handler(
                HttpHandler().add_response_handler(lambda **kw: recorder.append(kw["response"])))
        clients.append(builder.build())
    return tuple(clients)


def admin_call(endpoint, access_key, secret_key, method, path, body=None):
    """`method path` on tmirror's admin API (/admin/v1), signed like the Huawei face by the SDK's
    own SDK-HMAC-SHA256 signer (the SDK has no client for this API); returns (status, JSON).
    Over https, `requests` verifies the certificate against the CA registered for `endpoint`."""
    url = urlsplit(endpoint)
    data = json.dumps(body).encode() if body is not None else b""
    request = SdkRequest(method=method, schema=url.scheme, host=url.netloc, resource_path=path,
                         query_params=[], header_params={"Content-Type": "application/json"},
                         body=data)
    Signer(BasicCredentials(access_key, secret_key)).sign(request)
    resp = requests.request(method, f"{url.scheme}://{url.netloc}{request.uri}", data=data,
                            headers=request.header_params, timeout=30, verify=ca_file(endpoint) or True)
    return resp.status_code, (resp.json() if resp.content else None)


def admin_credential(endpoint, access_key, secret_key, project, role):
    """A new credential of `role` in `project`, made through the admin API with the operator's
    (or the project admin's) key; returns {"access_key", "secret_key", "project_id"}."""
    status, body = admin_call(endpoint, access_key, secret_key, "POST",
                              f"/admin/v1/projects/{project}/credentials", {"role": role})
    assert status == 201, f"credential create: {status} {body}"
    c = body["credential"]
    assert (c["project_id"], c["role"]) == (project, role), c
    return {k: c[k] for k in ("access_key", "secret_key", "project_id")}


def admin_tenant(endpoint, access_key, secret_key, name, role="member"):
    """A new project named `name` and a credential of `role` in it, made through the admin API
    with the operator's key; returns the credential as `admin_credential` does."""
    status, body = admin_call(endpoint, access_key, secret_key, "POST", "/admin/v1/projects", {"name": name})
    assert status == 201, f"project create: {status} {body}"
    return admin_credential(endpoint, access_key, secret_key, body["project"]["id"], role)


def raw(response):
    """The response body as JSON, exactly as the server sent it."""
    return response.to_json_object()


def expect_error(call, status, code):
    """Run `call()`, expect the SDK to raise ClientRequestException(status, code); return it."""
    try:
        result = call()
    except ClientRequestException as e:
        assert (e.status_code, e.error_code) == (status, code), (
            f"expected {status} {code}, got {e.status_code} {e.error_code}: {e.error_msg}")
        assert isinstance(e.error_msg, str) and e.error_msg.strip(), "error_msg must explain the error"
        assert e.request_id, "X-Request-Id header missing on the error response"
        return e
    raise AssertionError(f"expected {status} {code}, the call succeeded: {result}")


def uid():
    return str(uuid.uuid4())


def short():
    return uuid.uuid4().hex[:10]


class PriorityCounter:
    """Unique session priorities for this run, above any that exist already."""

    def __init__(self, v3):
        existing = [s.priority for s in list_all_sessions(v3)]
        start = max([999] + existing) + 1
        self._it = itertools.count(start)

    def next(self):
        p = next(self._it)
        assert p <= 32766, "ran out of session priorities"
        return p


def list_all_sessions(v3, **query):
    out, marker = [], None
    while True:
        req = hv3.ListTrafficMirrorSessionsRequest(limit=2000, marker=marker, **query)
        resp = v3.list_traffic_mirror_sessions(req)
        out += resp.traffic_mirror_sessions or []
        nxt = resp.page_info.next_marker if resp.page_info else None
        if not nxt:
            return out
        marker = nxt


class CreatePortOptionWithBinding(hv2.CreatePortOption):
    """CreatePortOption plus the two binding attributes tmirror's data plane uses.

    The SDK's CreatePortOption (3.1.219) has no `binding:*` fields: Huawei sets bindings itself
    when an ECS attaches a NIC. tmirror has no compute service, so its v1 API accepts
    `binding:host_id` (the agent host) and `binding:profile` ({"interface_name", "capture_side"})
    on create. The SDK serialises a model by walking `openapi_types` and mapping each attribute
    through `attribute_map`, so a subclass that adds the two attributes there makes the SDK send
    them like any other field: this is how a user of the official SDK would do it.
    """

    openapi_types = dict(hv2.CreatePortOption.openapi_types,
                         binding_host_id="str", binding_profile="object")
    attribute_map = dict(hv2.CreatePortOption.attribute_map,
                         binding_host_id="binding:host_id", binding_profile="binding:profile")

    def __init__(self, binding_host_id=None, binding_profile=None, **kwargs):
        super().__init__(**kwargs)
        self.binding_host_id = binding_host_id
        self.binding_profile = binding_profile


class UpdatePortOptionWithBinding(hv2.UpdatePortOption):
    """UpdatePortOption plus `binding:host_id`/`binding:profile`, for the same reason as
    CreatePortOptionWithBinding: a port moves to another agent host, or its capture side changes."""

    openapi_types = dict(hv2.UpdatePortOption.openapi_types,
                         binding_host_id="str", binding_profile="object")
    attribute_map = dict(hv2.UpdatePortOption.attribute_map,
                         binding_host_id="binding:host_id", binding_profile="binding:profile")

    def __init__(self, binding_host_id=None, binding_profile=None, **kwargs):
        super().__init__(**kwargs)
        self.binding_host_id = binding_host_id
        self.binding_profile = binding_profile


class UpdateSessionOptionWithType(hv3.UpdateTrafficMirrorSessionOption):
    """UpdateTrafficMirrorSessionOption plus `type`, which Terraform sends on every update
    (reference §4.2/§11) although SDK 3.1.219 dropped it from the model."""

    openapi_types = dict(hv3.UpdateTrafficMirrorSessionOption.openapi_types, type="str")
    attribute_map = dict(hv3.UpdateTrafficMirrorSessionOption.attribute_map, type="type")

    def __init__(self, type=None, **kwargs):
        super().__init__(**kwargs)
        self.type = type


_ip_counter = itertools.count(1)


def next_ip():
    n = next(_ip_counter)
    return f"198.18.{n // 250}.{n % 250 + 1}"


NETWORK_ID = uid()
SUBNET_ID = uid()
# A network belongs to the first project that uses it: the operator's ports go to another.
OPERATOR_NETWORK_ID = uid()


class Resources:
    """Creates resources through the SDK and remembers them for clean-up."""

    def __init__(self, v3, v2, priorities, network_id=NETWORK_ID):
        self.v3, self.v2, self.priorities = v3, v2, priorities
        self.network_id = network_id
        self.sessions, self.rules, self.filters, self.ports = [], [], [], []
        self._rule_priority = itertools.count(1)

    # ---- ports (v1) -------------------------------------------------------------------------

    def port_option(self, name=None, fixed_ip=True, binding_host_id=None, binding_profile=None, **kw):
        kw.setdefault("network_id", self.network_id)
        if fixed_ip is True:
            kw["fixed_ips"] = [hv2.FixedIp(subnet_id=SUBNET_ID, ip_address=next_ip())]
        elif fixed_ip:
            kw["fixed_ips"] = [hv2.FixedIp(subnet_id=SUBNET_ID, ip_address=fixed_ip)]
        name = name if name is not None else f"conf-port-{short()}"
        if binding_host_id is not None or binding_profile is not None:
            return CreatePortOptionWithBinding(binding_host_id=binding_host_id,
                                               binding_profile=binding_profile, name=name, **kw)
        return hv2.CreatePortOption(name=name, **kw)

    def create_port(self, **kw):
        """Returns the SDK response of create_port."""
        resp = self.v2.create_port(hv2.CreatePortRequest(hv2.CreatePortRequestBody(self.port_option(**kw))))
        self.ports.append(resp.port.id)
        return resp

    def port(self, **kw):
        return self.create_port(**kw).port

    def port_ids(self, n, **kw):
        return [self.port(**kw).id for _ in range(n)]

    def show_port(self, port_id):
        return self.v2.show_port(hv2.ShowPortRequest(port_id))

    def delete_port(self, port_id):
        return self.v2.delete_port(hv2.DeletePortRequest(port_id))

    # ---- filters ----------------------------------------------------------------------------

    def create_filter(self, name=None, description=None):
        name = name if name is not None else f"conf-filter-{short()}"
        opt = hv3.CreateTrafficMirrorFilterOption(name=name, description=description)
        resp = self.v3.create_traffic_mirror_filter(
            hv3.CreateTrafficMirrorFilterRequest(hv3.CreateTrafficMirrorFilterRequestBody(opt)))
        self.filters.append(resp.traffic_mirror_filter.id)
        return resp

    def filter(self, **kw):
        return self.create_filter(**kw).traffic_mirror_filter

    def show_filter(self, filter_id):
        return self.v3.show_traffic_mirror_filter(hv3.ShowTrafficMirrorFilterRequest(filter_id))

    def update_filter(self, filter_id, **kw):
        return self.v3.update_traffic_mirror_filter(hv3.UpdateTrafficMirrorFilterRequest(
            filter_id, hv3.UpdateTrafficMirrorFilterRequestBody(hv3.UpdateTrafficMirrorFilterOption(**kw))))

    def delete_filter(self, filter_id):
        return self.v3.delete_traffic_mirror_filter(hv3.DeleteTrafficMirrorFilterRequest(filter_id))

    def list_filters(self, **query):
        return self.v3.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest(**query))

    # ---- rules ------------------------------------------------------------------------------

    def create_rule(self, filter_id, direction="ingress", protocol="tcp", ethertype="IPv4",
                    action="accept", priority=None, **kw):
        priority = priority if priority is not None else next(self._rule_priority)
        opt = hv3.CreateTrafficMirrorFilterRuleOption(
            traffic_mirror_filter_id=filter_id, direction=direction, protocol=protocol,
            ethertype=ethertype, action=action, priority=priority, **kw)
        resp = self.v3.create_traffic_mirror_filter_rule(
            hv3.CreateTrafficMirrorFilterRuleRequest(hv3.CreateTrafficMirrorFilterRuleRequestBody(opt)))
        self.rules.append(resp.traffic_mirror_filter_rule.id)
        return resp

    def rule(self, filter_id, **kw):
        return self.create_rule(filter_id, **kw).traffic_mirror_filter_rule

    def show_rule(self, rule_id):
        return self.v3.show_traffic_mirror_filter_rule(hv3.ShowTrafficMirrorFilterRuleRequest(rule_id))

    def update_rule(self, rule_id, **kw):
        return self.v3.update_traffic_mirror_filter_rule(hv3.UpdateTrafficMirrorFilterRuleRequest(
            rule_id,
            hv3.UpdateTrafficMirrorFilterRuleRequestBody(hv3.UpdateTrafficMirrorFilterRuleOption(**kw))))

    def delete_rule(self, rule_id):
        return self.v3.delete_traffic_mirror_filter_rule(hv3.DeleteTrafficMirrorFilterRuleRequest(rule_id))

    def list_rules(self, **query):
        return self.v3.list_traffic_mirror_filter_rules(hv3.ListTrafficMirrorFilterRulesRequest(**query))

    # ---- sessions ---------------------------------------------------------------------------

    def session_option(self, sources=None, target=None, filter_id=None, priority=None, name=None,
                       target_type="eni", **kw):
        if filter_id is None:
            filter_id = self.filter().id
        if sources is None:
            sources = [self.port().id]
        if target is None:
            target = self.port().id
        return hv3.CreateTrafficMirrorSessionOption(
            name=name if name is not None else f"conf-session-{short()}",
            traffic_mirror_filter_id=filter_id, traffic_mirror_sources=sources,
            traffic_mirror_target_id=target, traffic_mirror_target_type=target_type,
            priority=priority if priority is not None else self.priorities.next(), **kw)

    def create_session_from(self, option):
        resp = self.v3.create_traffic_mirror_session(
            hv3.CreateTrafficMirrorSessionRequest(hv3.CreateTrafficMirrorSessionRequestBody(option)))
        self.sessions.append(resp.traffic_mirror_session.id)
        return resp

    def create_session(self, **kw):
        """Returns the SDK response of create_traffic_mirror_session; missing parts are made."""
        return self.create_session_from(self.session_option(**kw))

    def session(self, **kw):
        return self.create_session(**kw).traffic_mirror_session

    def show_session(self, session_id):
        return self.v3.show_traffic_mirror_session(hv3.ShowTrafficMirrorSessionRequest(session_id))

    def update_session(self, session_id, option=None, **kw):
        option = option if option is not None else hv3.UpdateTrafficMirrorSessionOption(**kw)
        return self.v3.update_traffic_mirror_session(hv3.UpdateTrafficMirrorSessionRequest(
            session_id, hv3.UpdateTrafficMirrorSessionRequestBody(option)))

    def delete_session(self, session_id):
        return self.v3.delete_traffic_mirror_session(hv3.DeleteTrafficMirrorSessionRequest(session_id))

    def add_sources(self, session_id, sources):
        return self.v3.add_sources_to_traffic_mirror_session(hv3.AddSourcesToTrafficMirrorSessionRequest(
            session_id, hv3.AddSourcesToTrafficMirrorSessionRequestBody(
                hv3.TrafficMirrorSourcesOption(traffic_mirror_sources=sources))))

    def remove_sources(self, session_id, sources):
        return self.v3.remove_sources_from_traffic_mirror_session(
            hv3.RemoveSourcesFromTrafficMirrorSessionRequest(
                session_id, hv3.RemoveSourcesFromTrafficMirrorSessionRequestBody(
                    hv3.TrafficMirrorSourcesOption(traffic_mirror_sources=sources))))

    def list_sessions(self, **query):
        return self.v3.list_traffic_mirror_sessions(hv3.ListTrafficMirrorSessionsRequest(**query))

    # ---- clean-up ---------------------------------------------------------------------------

    def cleanup(self):
        """Delete in dependency order; what the test deleted itself answers 404."""
        errors = []
        for ids, delete in ((self.sessions, self.delete_session), (self.rules, self.delete_rule),
                            (self.filters, self.delete_filter), (self.ports, self.delete_port)):
            for rid in reversed(ids):
                try:
                    delete(rid)
                except ClientRequestException as e:
                    if e.status_code != 404:
                        errors.append(f"{delete.__name__}({rid}): {e.status_code} {e.error_code} {e.error_msg}")
                except Exception as e:  # noqa: BLE001 - report, keep cleaning
                    errors.append(f"{delete.__name__}({rid}): {e!r}")
            ids.clear()
        if errors:
            raise AssertionError("clean-up failed:\n" + "\n".join(errors))
