"""Findings tracked until remediated (model risk operations), as the store hands them out."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from modelreg import clock

OPEN = "open"
PROPOSED = "remediation_proposed"
CLOSED = "closed"
STATUSES = (OPEN, PROPOSED, CLOSED)


@dataclass(frozen=True)
class TrackedFinding:
    id: int
    model: str
    version: str
    control_id: str
    purpose: str
    status: str
    severity: str
    clause_ids: tuple[str, ...]
    title_zh: str
    title_en: str
    owner: str
    due_at: datetime
    opened_at: datetime
    opened_evaluation_id: int
    last_evaluation_id: int
    occurrences: int
    last_result: dict
    remediation: str | None
    closed_at: datetime | None
    closed_by: str | None
    closure: dict | None
    updated_at: datetime

    def overdue(self, now: datetime | None = None) -> bool:
        return self.status != CLOSED and self.due_at < (now or clock.now())

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = clock.isoformat(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["overdue"] = self.overdue()
        return out
