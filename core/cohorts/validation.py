"""The validation report of a cohort: what is wrong with the input, and for whom.

Errors stop an ingest before anything is written; warnings describe what pmx did about a
problem it could resolve (dropped a patient without survival, kept the primary-tumour sample
of a patient with several, ...). Every finding names the offending patients and files, so a
user can fix the input without guessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

from pmx.errors import DataError

__all__ = ["Finding", "ValidationReport", "CohortValidationError"]

Level = Literal["error", "warning"]


@dataclass
class Finding:
    level: Level
    code: str
    message: str
    patients: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, limit: int = 8) -> str:
        text = f"[{self.level}] {self.code}: {self.message}"
        for label, items in (("patients", self.patients), ("files", self.files)):
            if items:
                shown = ", ".join(items[:limit])
                more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
                text += f"\n    {label} ({len(items)}): {shown}{more}"
        return text


class ValidationReport:
    """An ordered list of findings with error/warning helpers."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, level: Level, code: str, message: str, patients: Iterable[Any] = (),
            files: Iterable[Any] = ()) -> Finding:
        finding = Finding(level, code, message, sorted({str(p) for p in patients}),
                          list(dict.fromkeys(str(f) for f in files)))
        self.findings.append(finding)
        return finding

    def error(self, code: str, message: str, patients: Iterable[Any] = (), files: Iterable[Any] = ()) -> Finding:
        return self.add("error", code, message, patients, files)

    def warning(self, code: str, message: str, patients: Iterable[Any] = (), files: Iterable[Any] = ()) -> Finding:
        return self.add("warning", code, message, patients, files)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self, level: Level | None = None) -> list[str]:
        return [f.code for f in self.findings if level is None or f.level == level]

    def find(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": len(self.errors), "warnings": len(self.warnings),
                "findings": [f.as_dict() for f in self.findings]}

    def format(self, limit: int = 8) -> str:
        if not self.findings:
            return "validation: no problems found"
        head = f"validation: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        ordered = self.errors + self.warnings
        return "\n".join([head, *(f.format(limit) for f in ordered)])

    def raise_if_errors(self, what: str = "cohort") -> None:
        if self.errors:
            raise CohortValidationError(self, what)


class CohortValidationError(DataError):
    """Raised when a cohort has errors; carries the full report (nothing was written)."""

    def __init__(self, report: ValidationReport, what: str = "cohort"):
        self.report = report
        super().__init__(f"{what} has {len(report.errors)} error(s); nothing was written. Fix them and rerun.\n"
                         + report.format())
