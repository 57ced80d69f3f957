"""The TLS run for Alibaba's SDKs (see ../huawei/test_tls.py): `alibabacloud-vpc20160428` and the
legacy `AcsClient` reach the server only through the CA the suite gives them (`Config.ca`,
`AcsClient(verify=...)`); without it they fail on the certificate. Skipped in the plain run.

The new SDK's client without the CA runs in a fresh interpreter: darabonba-core (1.0.9) keeps
one requests Session per `protocol://host:port` for the whole process, and its adapter's one
SSLContext is where urllib3 loads a client's `ca`; so once any client of that host and port
passed the CA, every later client of it in the process trusts it too, `ca` or not. (The
suite's own clients all pass the CA, so this does not weaken what they check.)"""

import json
import os
import subprocess
import sys

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkvpc.request.v20160428.GetTrafficMirrorServiceStatusRequest import GetTrafficMirrorServiceStatusRequest
from alibabacloud_vpc20160428 import models as vpc

import alisupport
import hwsupport
from alisupport import REGION

CERT_ERROR = "certificate verify failed"


@pytest.fixture(scope="module")
def tls(server):
    if server.ca_file is None:
        pytest.skip("plain HTTP run (TMIRROR_CONFORMANCE_TLS unset or 0)")
    return server


def host(server):
    return server.endpoint.split("://", 1)[1]


def status(client):
    return client.get_traffic_mirror_service_status(vpc.GetTrafficMirrorServiceStatusRequest(region_id=REGION))


def test_the_suites_client_verifies_against_the_servers_certificate(tls, scheme):
    client = alisupport.make_client(tls.endpoint, tls.access_key, tls.secret_key, scheme)
    assert (client._protocol, client._ca) == ("https", str(tls.ca_file))
    assert status(client).status_code == 200


# Run by test_new_sdk_without_the_ca_is_refused in a fresh interpreter (see the docstring).
NO_CA_CLIENT = """
import json, os
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_vpc20160428 import models as vpc
from alibabacloud_vpc20160428.client import Client
cfg = Config(access_key_id=os.environ["AK"], access_key_secret=os.environ["SK"], endpoint=os.environ["HOST"],
             protocol="https", region_id="cn-hangzhou", read_timeout=20000, connect_timeout=5000)
try:
    out = Client(cfg).get_traffic_mirror_service_status(
        vpc.GetTrafficMirrorServiceStatusRequest(region_id="cn-hangzhou"))
    print(json.dumps({"raised": None, "status": out.status_code}))
except Exception as e:
    print(json.dumps({"raised": type(e).__name__, "message": str(e)}))
"""


def test_new_sdk_without_the_ca_is_refused(tls):
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env.update(AK=tls.access_key, SK=tls.secret_key, HOST=host(tls))
    proc = subprocess.run([sys.executable, "-c", NO_CA_CLIENT], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["raised"], f"a client without the CA reached the server: {out}"
    assert CERT_ERROR in out["message"].lower(), out


def legacy_status(server, **client_options):
    client = AcsClient(server.access_key, server.secret_key, REGION, timeout=20, connect_timeout=5,
                       **client_options)
    req = GetTrafficMirrorServiceStatusRequest()
    req.set_endpoint(host(server))
    req.set_protocol_type(protocol_type.HTTPS)  # the constant itself: see test_legacy_sdk.Legacy
    return client.do_action_with_exception(req)


def test_legacy_sdk_without_the_ca_is_refused(tls, monkeypatch):
    # AcsClient's default `verify` is ALIBABA_CLOUD_CA_BUNDLE, else requests' default trust store.
    monkeypatch.delenv("ALIBABA_CLOUD_CA_BUNDLE", raising=False)
    with pytest.raises(ClientException) as e:
        legacy_status(tls)
    assert CERT_ERROR in str(e.value).lower(), e.value
    assert b"Enabled" in legacy_status(tls, verify=hwsupport.ca_file(tls.endpoint))
