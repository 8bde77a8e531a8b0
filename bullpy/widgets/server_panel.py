"""The dashboard's Redis panel: version, memory used and allowed, eviction policy, clients, operations per second."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _display as D
from ..queue import Queue
from ..utils import text
from ._common import W

#: How long a ``CONFIG GET maxmemory-policy`` answer is trusted (only asked where INFO does not tell).
POLICY_TTL_MS = 60_000


def _num(info: dict[str, Any], key: str) -> int | None:
    value = info.get(key)
    try:
        return None if value is None else int(float(text(value)))
    except ValueError:
        return None


@dataclass(frozen=True)
class RedisInfo:
    """What the panel shows of one server; None where INFO does not say (or is refused)."""

    where: str
    version: str | None = None
    mode: str | None = None
    role: str | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    policy: str | None = None
    clients: int | None = None
    ops_per_sec: int | None = None
    uptime_s: int | None = None

    @property
    def info_refused(self) -> bool:
        return self.version is None


class ServerPanel(W.HTML):  # type: ignore[misc]
    """One Redis server (where one or more of the dashboard's queues live); one INFO a refresh."""

    def __init__(self, queue: Queue) -> None:
        super().__init__()
        self.add_class("bullpy-redis")
        self.queue = queue
        self.where = queue.server.describe()
        self.info = RedisInfo(self.where)
        self._policy_checked: tuple[int, str | None] | None = None

    def read(self, now: int) -> None:
        server = self.queue.server
        info = server.info("default")
        policy = info.get("maxmemory_policy")
        if policy is None:  # INFO refused or silent: CONFIG GET, at most once a minute
            if self._policy_checked is None or now - self._policy_checked[0] > POLICY_TTL_MS:
                self._policy_checked = (now, server.config_get("maxmemory-policy"))
            policy = self._policy_checked[1]
        self.info = RedisInfo(
            self.where,
            version=None if info.get("redis_version") is None else text(info["redis_version"]),
            mode=None if info.get("redis_mode") is None else text(info["redis_mode"]),
            role=None if info.get("role") is None else text(info["role"]),
            used_memory=_num(info, "used_memory"), maxmemory=_num(info, "maxmemory"),
            policy=text(policy) if policy else None,
            clients=_num(info, "connected_clients"), ops_per_sec=_num(info, "instantaneous_ops_per_sec"),
            uptime_s=_num(info, "uptime_in_seconds"),
        )

    def render(self) -> None:
        i = self.info
        head = f"<b>Redis</b> <code>{D.esc(i.where)}</code>"
        if i.info_refused:
            policy = D.esc(i.policy) if i.policy else "unknown"
            self.value = (f"<div>{head} <span style='{D.MUTED}'>· INFO is not allowed for this user: version, "
                          f"memory and load unknown · maxmemory-policy <span data-bullpy-redis='policy'>{policy}"
                          f"</span></span></div>")
            return
        if i.maxmemory:
            share = 100 * (i.used_memory or 0) / i.maxmemory
            color = "#d62728" if share >= 90 else "#ff7f0e" if share >= 75 else "#2ca02c"
            memory = (f"{D.format_bytes(i.used_memory)} of {D.format_bytes(i.maxmemory)} "
                      f"<span class='bullpy-progress' title='{share:.0f}%' style='display:inline-block;width:70px;"
                      f"height:8px;background:#e6e6e6;border-radius:4px;overflow:hidden;vertical-align:middle'>"
                      f"<span style='display:block;height:100%;width:{min(share, 100):.0f}%;background:{color}'></span>"
                      f"</span> {share:.0f}%")
        else:
            memory = f"{D.format_bytes(i.used_memory)} <span style='{D.MUTED}'>(no maxmemory limit)</span>"
        policy_color = "#2ca02c" if i.policy == "noeviction" else "#b00020"
        cells = [
            ("version", (f"<span data-bullpy-redis='version'>{D.esc(i.version)}</span>"
                         f"{f' ({D.esc(i.mode)}, {D.esc(i.role)})' if i.mode and i.role else ''}")),
            ("memory", f"<span data-bullpy-redis='memory'>{memory}</span>"),
            ("eviction", (f"<span data-bullpy-redis='policy' style='color:{policy_color}'>"
                          f"{D.esc(i.policy or 'unknown')}</span>")),
            ("clients", f"<span data-bullpy-redis='clients'>{i.clients if i.clients is not None else '–'}</span>"),
            ("ops/s", f"<span data-bullpy-redis='ops'>{i.ops_per_sec if i.ops_per_sec is not None else '–'}</span>"),
            ("up", D.esc(D.format_duration(i.uptime_s * 1000)) if i.uptime_s is not None else "–"),
        ]
        body = " ".join(f"<span style='margin-right:14px;white-space:nowrap'><span style='{D.MUTED}'>{k}</span> {v}"
                        f"</span>" for k, v in cells)
        self.value = f"<div>{head}</div><div style='display:flex;flex-wrap:wrap'>{body}</div>"
