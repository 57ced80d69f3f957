"""The TLS run (TMIRROR_CONFORMANCE_TLS=1): every server of the suite serves https with the
certificate `serve --tls-self-signed` made, and the suite's clients pass it to their SDK as the
one CA to trust, verification on. These tests show that verification really is on: the same
calls without that CA, or with another server's certificate as the CA, fail on the certificate
and reach nothing. Skipped in the plain-HTTP run, whose own check is the first test."""

import ssl
import urllib.error
import urllib.request

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SslHandShakeException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkvpc import v3 as hv3

from hwsupport import http_config

CERT_ERROR = "certificate verify failed"


@pytest.fixture(scope="module")
def tls(server):
    if server.ca_file is None:
        pytest.skip("plain HTTP run (TMIRROR_CONFORMANCE_TLS unset or 0)")
    return server


def v3_client(server, cfg):
    creds = BasicCredentials(server.access_key, server.secret_key, server.project_id)
    return hv3.VpcClient.new_builder().with_http_config(cfg).with_credentials(creds) \
        .with_endpoints([server.endpoint]).build()


def list_filters(client):
    return client.list_traffic_mirror_filters(hv3.ListTrafficMirrorFiltersRequest(limit=1))


def test_endpoint_scheme_follows_the_run(server):
    if server.ca_file is None:
        assert server.endpoint.startswith("http://")
    else:
        assert server.endpoint.startswith("https://")
        assert server.ca_file == server.data_dir / "tls-cert.pem"
        assert server.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_the_suites_config_verifies_against_the_servers_certificate(tls):
    cfg = http_config(tls.endpoint)
    assert cfg.ignore_ssl_verification is False
    assert cfg.ssl_ca_cert == str(tls.ca_file)
    assert list_filters(v3_client(tls, cfg)).status_code == 200


def test_huawei_sdk_without_the_ca_is_refused(tls):
    # The SDK's default configuration: verification on, its default trust store (certifi).
    cfg = HttpConfig.get_default_config()
    assert cfg.ignore_ssl_verification is False and cfg.ssl_ca_cert is None
    with pytest.raises(SslHandShakeException) as e:
        list_filters(v3_client(tls, cfg))
    assert CERT_ERROR in str(e.value).lower(), e.value


def test_huawei_sdk_with_another_servers_certificate_is_refused(tls, quota_server):
    # quota_server's certificate names 127.0.0.1 too, but it is not this server's.
    assert quota_server.ca_file.read_bytes() != tls.ca_file.read_bytes()
    cfg = HttpConfig.get_default_config()
    cfg.ssl_ca_cert = str(quota_server.ca_file)
    with pytest.raises(SslHandShakeException) as e:
        list_filters(v3_client(tls, cfg))
    assert CERT_ERROR in str(e.value).lower(), e.value


def test_admin_api_and_health_without_the_ca_are_refused(tls):
    # What hwsupport.admin_call and conftest's health check use, without the CA.
    url = f"{tls.endpoint}/healthz"
    with pytest.raises(requests.exceptions.SSLError, match="(?i)" + CERT_ERROR):
        requests.get(url, timeout=10)
    assert requests.get(url, timeout=10, verify=str(tls.ca_file)).status_code == 200
    with pytest.raises(urllib.error.URLError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError), e.value
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    with urllib.request.urlopen(url, timeout=10, context=context) as r:
        assert r.status == 200


def test_plain_http_to_the_tls_port_gets_no_answer(tls):
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(tls.endpoint.replace("https://", "http://", 1) + "/healthz", timeout=10)
