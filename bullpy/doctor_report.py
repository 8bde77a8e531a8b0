"""What ``bullpy doctor`` reports (``bullpy.doctor.diagnose``): findings with a severity, code, message and fix,
and the report that renders them for a terminal or as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["DoctorReport", "Finding", "Severity"]


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found."""

    severity: Severity
    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity.value, "code": self.code, "message": self.message,
                "details": dict(self.details), "fix": self.fix}


@dataclass(frozen=True)
class DoctorReport:
    """Every finding for one queue, worst first."""

    queue: str
    prefix: str
    redis: str
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> tuple[Finding, ...]:
        """The warnings and errors (a healthy queue has none)."""
        return tuple(f for f in self.findings if f.severity is not Severity.INFO)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        """0 without problems, 1 with warnings only, 2 with an error: for ``bullpy doctor``'s exit status."""
        return max((f.severity.rank for f in self.findings), default=0)

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def to_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "prefix": self.prefix, "redis": self.redis, "ok": self.ok,
                "findings": [f.to_dict() for f in self.findings]}

    def render(self) -> str:
        """Plain text for a terminal: one block per finding, then a verdict."""
        lines = [f"bullpy doctor: queue {self.queue!r} (prefix {self.prefix!r}) on {self.redis}"]
        for f in self.findings:
            lines.append(f"{f.severity.value.upper():8} {f.code}: {f.message}")
            if f.fix:
                lines.append(f"{'':8} fix: {f.fix}")
        errors = sum(f.severity is Severity.ERROR for f in self.findings)
        warnings = sum(f.severity is Severity.WARNING for f in self.findings)
        if errors or warnings:
            lines.append(f"{errors} error(s), {warnings} warning(s)")
        else:
            lines.append("no problems found")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()
