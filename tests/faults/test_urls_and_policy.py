"""No server needed: the ``redis+sentinel://`` URL (Python and Node read it alike, never print its passwords),
and which failures the retry policy treats as transient."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import redis

from bullpy import _sentinel, connection
from bullpy.errors import (
    RedisAuthenticationFailed,
    RedisOutOfMemory,
    RedisPermissionDenied,
    RedisReadOnly,
    RedisUnavailable,
)
from bullpy.retry import RetryPolicy, is_transient

from ..interop.peer import BRIDGE_DIR, node_available

URL = "redis+sentinel://app:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:26381/mymaster/3?sentinel_password=s3cret"


def test_sentinel_url_is_parsed() -> None:
    spec = _sentinel.parse_url(URL)
    assert spec.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381))
    assert (spec.service, spec.db, spec.username, spec.password) == ("mymaster", 3, "app", "p@ss")
    assert spec.sentinel_password == "s3cret" and spec.sentinel_username is None
    assert "p@ss" not in repr(spec) and "s3cret" not in repr(spec)
    assert _sentinel.parse_url("redis+sentinel://h/svc").db == 0
    assert _sentinel.parse_url("redis+sentinel://h/svc?db=2&socket_timeout=1.5").socket_options == {"socket_timeout": 1.5}


@pytest.mark.parametrize(("url", "error"), [
    ("redis+sentinel:///svc", "without Sentinels"),
    ("redis+sentinel://h:26379", "without a service name"),
    ("redis+sentinel://h:26379/", "without a service name"),
    ("redis+sentinel://h:port/svc", "bad port 'port'"),
    ("redis+sentinel://:secret@h:99999/svc", "bad port '99999'"),
    ("redis+sentinel://h/svc/x", "db must be a number"),
    ("redis+sentinel://h/svc/0/more", "/service_name[/db]"),
    ("redis+sentinel://h/svc?ssl=true", "unknown redis+sentinel:// URL option 'ssl'"),
])
def test_bad_sentinel_urls_say_what_is_wrong_without_the_password(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)) as info:
        _sentinel.parse_url(url)
    assert "secret" not in str(info.value)


def test_safe_url_masks_both_passwords() -> None:
    shown = connection.safe_url(URL)
    assert "p%40ss" not in shown and "p@ss" not in shown and "s3cret" not in shown
    assert shown.startswith("redis+sentinel://app:***@10.0.0.1:26380,sentinel-b,[::1]:26381/mymaster/3?")
    assert "sentinel_password=***" in shown


def test_sentinel_environment_variables_make_the_same_url() -> None:
    env = {"REDIS_SENTINELS": "10.0.0.1:26380, sentinel-b", "REDIS_SENTINEL_NAME": "mymaster",
           "REDIS_PASSWORD": "p@ss", "REDIS_USERNAME": "app", "REDIS_DB": "3", "REDIS_SENTINEL_PASSWORD": "s3cret"}
    url = connection.env_url(env)
    assert url is not None
    spec = _sentinel.parse_url(url)
    assert spec.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379))
    assert (spec.service, spec.db, spec.username, spec.password, spec.sentinel_password) == \
        ("mymaster", 3, "app", "p@ss", "s3cret")
    with pytest.raises(ValueError, match="REDIS_SENTINEL_NAME"):
        connection.env_url({"REDIS_SENTINELS": "h:26379"})


@pytest.mark.skipif(not node_available(), reason="Node.js or bridge/node_modules is missing")
def test_node_reads_the_same_sentinel_url() -> None:
    script = (
        "const c = require('./lib/redis-config');"
        "const o = c.optionsFromUrl(process.argv[1]);"
        "console.log(JSON.stringify({o, shown: c.describeRedis(o), ro: o.reconnectOnError(new Error('READONLY x')),"
        " other: o.reconnectOnError(new Error('ERR x'))}));"
    )
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run([node, "-e", script, URL], cwd=BRIDGE_DIR, capture_output=True, text=True, check=True,
                         timeout=30).stdout
    got = json.loads(out)
    opts = got["o"]
    assert opts["sentinels"] == [{"host": "10.0.0.1", "port": 26380}, {"host": "sentinel-b", "port": 26379},
                                 {"host": "::1", "port": 26381}]
    assert (opts["name"], opts["db"], opts["username"], opts["password"], opts["sentinelPassword"]) == \
        ("mymaster", 3, "app", "p@ss", "s3cret")
    assert opts["failoverDetector"] is True
    assert got["ro"] == 2 and got["other"] is False  # READONLY: reconnect and resend
    assert got["shown"] == "redis+sentinel://app:***@10.0.0.1:26380,sentinel-b:26379,[::1]:26381/mymaster/3" \
        "?sentinel_password=***"


def test_retry_policy_validates_and_backs_off_within_bounds() -> None:
    policy = RetryPolicy(attempts=5, first_delay=0.1, max_delay=0.3, deadline=10)
    for retry in range(1, 10):
        ceiling = min(0.3, 0.1 * 2 ** (retry - 1))
        assert ceiling / 2 <= policy.delay(retry) <= ceiling
    for bad in ({"attempts": 0}, {"attempts": 1.5}, {"first_delay": -1}, {"deadline": float("inf")}):
        with pytest.raises(ValueError, match="RetryPolicy"):
            RetryPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("error", "transient"), [
    (redis.ConnectionError("Connection closed by server."), True),
    (redis.TimeoutError("Timeout reading"), True),
    (redis.BusyLoadingError("Redis is loading the dataset in memory"), True),
    (redis.ReadOnlyError("You can't write against a read only replica."), True),
    (redis.ResponseError("MASTERDOWN Link with MASTER is down"), True),
    (redis.ResponseError("NOREPLICAS Not enough good replicas to write."), True),
    (RedisUnavailable("cannot reach Redis at h:1 db 0"), True),
    (RedisReadOnly("read-only", where="h:1 db 0", user="default"), True),
    (redis.AuthenticationError("invalid password"), False),
    (RedisAuthenticationFailed("refused", where="h:1 db 0", user="default"), False),
    (RedisPermissionDenied("NOPERM", where="h:1 db 0", user="u"), False),
    (RedisOutOfMemory("OOM", where="h:1 db 0", user="u"), False),
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), False),
    (redis.ResponseError("ERR Error running script"), False),
    (ValueError("bad input"), False),
])
def test_what_is_retried(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
