"""Saved connections for ``bullpy --profile NAME``: a TOML file of named Redis URLs, prefixes and passwords.

The file is ``$BULLPY_CONFIG``, else ``$XDG_CONFIG_HOME/bullpy/config.toml`` (``~/.config/bullpy/config.toml``)::

    [profiles.prod]
    redis = "rediss://bullpy@redis.prod.internal:6380/0"
    password_env = "PROD_REDIS_PASSWORD"   # the password comes from the environment at run time
    prefix = "bull"
    cluster = false

A password may also sit in the file (``password = "..."`` or inside the URL); the file is then refused while
its group or others may read it (``chmod 600`` it). No password is ever printed: URLs are shown masked.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click

from ..connection import safe_url

_KEYS = frozenset({"redis", "password", "password_env", "prefix", "cluster"})


def config_path() -> Path:
    """Where the profiles are read from."""
    if os.environ.get("BULLPY_CONFIG"):
        return Path(os.environ["BULLPY_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bullpy" / "config.toml"


@dataclass(frozen=True)
class Profile:
    """One saved connection."""

    name: str
    redis: str | None
    prefix: str | None
    cluster: bool | None
    password: str | None = None
    password_env: str | None = None

    def url(self) -> str | None:
        """The Redis URL with the password put in (from the environment or the file)."""
        password = self.password
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise click.ClickException(f"profile {self.name!r} takes its password from ${self.password_env}, "
                                           "which is not set")
        if self.redis is None or password is None:
            return self.redis
        parts = urlsplit(self.redis)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0] if at else ""
        return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{hosts}"))

    def describe(self) -> dict[str, Any]:
        """What ``bullpy profiles`` shows: never a password."""
        source = (f"${self.password_env}" if self.password_env else "in the file" if self.password or
                  (self.redis and _url_password(self.redis)) else "")
        return {"profile": self.name, "redis": safe_url(self.redis) if self.redis else "",
                "prefix": self.prefix or "", "cluster": self.cluster, "password": source}


def _url_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None or "password=" in urlsplit(url).query
    except ValueError:
        return True  # cannot tell: treat it as secret


def _read(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        try:
            import tomli as tomllib
        except ImportError:
            raise click.ClickException("reading profiles needs Python 3.11+ or `pip install tomli`") from None
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        raise click.ClickException(f"no profiles file at {path} (set $BULLPY_CONFIG, or create it; "
                                   "see `bullpy profiles --help`)") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{path} is not valid TOML: {exc}") from None
    return data


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile of the file, checked: known keys only, and no password in a file others may read."""
    path = path or config_path()
    data = _read(path)
    table = data.get("profiles", {})
    if not isinstance(table, dict):
        raise click.ClickException(f"{path}: [profiles] must be a table of profiles")
    profiles: dict[str, Profile] = {}
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise click.ClickException(f"{path}: profile {name!r} must be a table")
        unknown = set(entry) - _KEYS
        if unknown:
            raise click.ClickException(f"{path}: profile {name!r} has unknown keys {', '.join(sorted(unknown))} "
                                       f"(known: {', '.join(sorted(_KEYS))})")
        for key in ("redis", "password", "password_env", "prefix"):
            if key in entry and not isinstance(entry[key], str):
                raise click.ClickException(f"{path}: profile {name!r}: {key} must be a string")
        if "cluster" in entry and not isinstance(entry["cluster"], bool):
            raise click.ClickException(f"{path}: profile {name!r}: cluster must be true or false")
        profiles[name] = Profile(name, entry.get("redis"), entry.get("prefix"), entry.get("cluster"),
                                 entry.get("password"), entry.get("password_env"))
    holds_secret = any(p.password or (p.redis and _url_password(p.redis)) for p in profiles.values())
    if holds_secret:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
            raise click.ClickException(
                f"{path} holds a password and its group or others may read it (mode {mode:04o}): run "
                f"`chmod 600 {path}`, or move the password to the environment (password_env = \"VAR\")")
    return profiles


def load_profile(name: str) -> Profile:
    """The named profile, or an error listing the names the file has."""
    profiles = load_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise click.ClickException(f"no profile {name!r} in {config_path()} (profiles: {known})")
    return profiles[name]
