"""Alibaba fixtures: the official `alibabacloud-vpc20160428` client against the suite's server,
once with the default ACS3-HMAC-SHA256 signature, once with `signature_algorithm='v2'`
(HMAC-SHA1) and once with `signature_algorithm='ACS3-HMAC-SM3'`: every test that uses `ali`
runs in the three modes.

The server, the Huawei clients (`v2` creates the ports sessions need), `res` and `priorities`
come from ../conftest.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import alisupport  # noqa: E402


@pytest.fixture(scope="session", params=["acs3", "v2", "sm3"])
def scheme(request):
    return request.param


@pytest.fixture(scope="session")
def ali(server, scheme):
    """The VPC client in one signature mode, with the traffic mirror service opened."""
    client = alisupport.make_client(server.endpoint, server.access_key, server.secret_key, scheme)
    alisupport.ensure_open(client)
    return client


@pytest.fixture
def ares(ali, res, priorities):
    """Alibaba resource factories; deletes what the test created (then `res` its ports)."""
    r = alisupport.Ali(ali, res, priorities)
    yield r
    r.cleanup()
