"""Saved connections: `bullpy --profile NAME` against a password-protected Redis; passwords never printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bullpy.cli import main

PASSWORD = "pr0file-s3cret"


@pytest.fixture
def server(make_redis_server: Any) -> Any:
    return make_redis_server(password=PASSWORD)


def write(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def run(config: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env={"BULLPY_CONFIG": str(config), **(env or {})})
    assert PASSWORD not in result.output
    return result


def test_a_profile_takes_its_password_from_the_environment(server: Any, tmp_path: Path) -> None:
    config = write(tmp_path / "config.toml", f"""
[profiles.prod]
redis = "redis://127.0.0.1:{server.port}/0"
password_env = "BULLPY_TEST_PW"
prefix = "prof"
""", 0o644)  # no password in the file: any mode will do
    env = {"BULLPY_TEST_PW": PASSWORD}
    added = run(config, "--profile", "prod", "--format", "json", "add", "mq", "--data", "{}", env=env)
    assert added.exit_code == 0, added.output
    assert server.client().exists("prof:mq:1") == 1  # the profile's prefix and server
    after = run(config, "stats", "mq", "--profile", "prod", "--format", "json", env=env)
    assert after.exit_code == 0 and json.loads(after.stdout)[0]["waiting"] == 1
    by_env = run(config, "--format", "json", "stats", "mq", env={**env, "BULLPY_PROFILE": "prod"})
    assert by_env.exit_code == 0, by_env.output
    overridden = run(config, "--profile", "prod", "--prefix", "other", "stats", "mq", env=env)
    assert overridden.exit_code == 1 and "no queue 'mq' under prefix 'other'" in overridden.output

    unset = run(config, "--profile", "prod", "stats", "mq", env={"BULLPY_TEST_PW": None})
    assert unset.exit_code == 1 and "$BULLPY_TEST_PW, which is not set" in unset.output
    unknown = run(config, "--profile", "staging", "stats", "mq")
    assert unknown.exit_code == 1 and "no profile 'staging'" in unknown.output and "prod" in unknown.output
    listed = run(config, "--format", "json", "profiles")
    assert json.loads(listed.stdout) == [{"profile": "prod", "redis": f"redis://127.0.0.1:{server.port}/0",
                                          "prefix": "prof", "cluster": None, "password": "$BULLPY_TEST_PW"}]


def test_a_password_in_a_readable_file_is_refused(server: Any, tmp_path: Path) -> None:
    text = f"""
[profiles.local]
redis = "redis://:{PASSWORD}@127.0.0.1:{server.port}/0"

[profiles.other]
redis = "redis://127.0.0.1:{server.port}/0"
password = "{PASSWORD}"
"""
    config = write(tmp_path / "config.toml", text, 0o644)
    for args in (["--profile", "local", "queues"], ["--profile", "other", "queues"], ["profiles"]):
        refused = run(config, *args)
        assert refused.exit_code == 1, refused.output
        assert "holds a password and its group or others may read it (mode 0644)" in refused.output
        assert f"chmod 600 {config}" in refused.output
    config.chmod(0o600)
    for name in ("local", "other"):
        ok = run(config, "--profile", name, "--format", "json", "queues")
        assert ok.exit_code == 0, ok.output
    listed = run(config, "profiles")
    assert listed.exit_code == 0 and "redis://:***@127.0.0.1" in listed.stdout and "in the file" in listed.stdout


def test_a_bad_profiles_file_says_what_is_wrong(tmp_path: Path) -> None:
    missing = run(tmp_path / "nope.toml", "--profile", "x", "queues")
    assert missing.exit_code == 1 and "no profiles file at" in missing.output
    bad = write(tmp_path / "bad.toml", "[profiles.x]\nredis_url = 'redis://h'\n", 0o600)
    wrong = run(bad, "--profile", "x", "queues")
    assert wrong.exit_code == 1 and "unknown keys redis_url" in wrong.output
