"""Lifecycle moves: the transition table applied (submit, send back, deploy with replacement, retire),
suspend and resume, and the gate requirements each move must pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from modelreg import clock
from modelreg.domain.entities import AuditEvent, ModelVersion
from modelreg.domain.records import VersionState
from modelreg.domain.stages import (
    FLAG_MOVES,
    GATES,
    REPLACEMENTS,
    Stage,
    Transition,
    allowed_actions,
    find_transition,
)
from modelreg.errors import BadInput, GateRefused, InvalidTransition
from modelreg.registry.core import Change, RegistryCore, clean
from modelreg.registry.gates import GateContext, Unmet
from modelreg.store import repo


@dataclass(frozen=True)
class TransitionResult:
    version: ModelVersion
    event: AuditEvent
    replaced: ModelVersion | None = None

    def to_dict(self) -> dict:
        return {
            "version": self.version.to_dict(),
            "event": self.event.to_dict(),
            "replaced": self.replaced.to_dict() if self.replaced else None,
        }


def _verb(action: str) -> str:
    return action.replace("_", "-")


class LifecycleMixin(RegistryCore):
    def submit(self, name: str, version: str) -> TransitionResult:
        return self._transition("submit", name, version, reason=None)

    def send_back(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self._transition("send_back", name, version, reason=reason)

    def deploy(self, name: str, version: str, *, replace: str | None = None) -> TransitionResult:
        if replace is not None and replace not in REPLACEMENTS:
            raise BadInput(f"--replace must be {' or '.join(REPLACEMENTS)}. Got {replace!r} instead.")
        return self._transition("deploy", name, version, reason=None, replace=replace)

    def retire(self, name: str, version: str, *, reason: str) -> TransitionResult:
        return self._transition("retire", name, version, reason=reason)

    def gate_check(self, name: str, version: str, gate: str, action: str) -> list[Unmet]:
        """What would be unmet if ``action`` were attempted now (nothing is written)."""
        with self.reading(model=name, version=version) as rd:
            assert rd.target is not None
            return self.unmet(rd.session, gate, action, rd.target, {})

    def gate_report(self, session: Session, target: VersionState) -> dict[str, list[Unmet]]:
        """Every gate's unmet requirements as they stand now (for evidence packs), in the caller's snapshot."""
        return {gate: self.unmet(session, gate, gate, target, {}) for gate in GATES}

    def unmet(
        self, session: Session, gate: str | None, action: str, target: VersionState, options: dict
    ) -> list[Unmet]:
        """Evaluate every requirement registered for ``gate`` against ``target`` in the caller's snapshot."""
        if gate is None:
            return []
        ctx = GateContext(
            gate=gate,
            action=action,
            actor=self.actor,
            version=target.version,
            version_id=target.id,
            datasets=repo.datasets(session, target),
            session=session,
            options=options,
        )
        unmet: list[Unmet] = []
        for requirement in self.requirements.get(gate, []):
            unmet.extend(requirement(ctx))
        return unmet

    def _transition(
        self, action: str, name: str, version: str, *, reason: str | None, replace: str | None = None
    ) -> TransitionResult:
        version = str(version)
        reason = clean(reason, "--reason", required=False, limit=4000)
        with self.change(action, model=name, version=version) as tx:
            target = tx.target
            assert target is not None
            source = target.version.stage
            transition: Transition | None = find_transition(action, source)
            if transition is None:
                can = allowed_actions(source)
                raise InvalidTransition(
                    f"cannot {_verb(action)} {name} {version}: it is in {source.value}"
                    + (
                        f" (allowed from there: {', '.join(_verb(a) for a in can)})"
                        if can
                        else " (no further moves)"
                    )
                )
            if transition.needs_reason and not reason:
                raise BadInput(f"{_verb(action)} needs --reason")
            unmet = self.unmet(
                tx.session, transition.gate, action, target, {"replace": replace, "reason": reason}
            )
            current = (
                repo.deployed_version(tx.session, target.model_id)
                if transition.target is Stage.DEPLOY
                else None
            )
            if current is not None and current.id == target.id:
                current = None
            replacement = REPLACEMENTS.get(replace) if replace else None
            if current is not None and replacement is not None and replacement.gate is not None:
                # Retiring the version being replaced is a retirement too: it passes the retire gate.
                note = f"replaced by version {version}"
                for u in self.unmet(
                    tx.session, replacement.gate, replacement.gate, current, {"reason": note}
                ):
                    unmet.append(
                        Unmet(
                            u.requirement,
                            f"retiring version {current.version.version}: {u.message_en}",
                            f"退出版本 {current.version.version}：{u.message_zh}",
                            u.clause_ids,
                            u.control_id,
                        )
                    )
            if unmet:
                raise GateRefused(
                    f"{_verb(action)} {name} {version} refused: {len(unmet)} requirement(s) unmet",
                    unmet=[u.to_dict() for u in unmet],
                )
            moves: list[tuple[VersionState, str, str, str | None, str]] = []
            replaced = None
            if current is not None:
                if replacement is None:
                    raise InvalidTransition(
                        f"{name} version {current.version.version} is deployed: pass --replace retire|demote to replace it"
                    )
                note = f"replaced by version {version}"
                moves.append((current, current.stage, replacement.target.value, note, replacement.action))
                replaced = repo.set_stage(tx.session, current, replacement.target).version
            moves.append((target, target.stage, transition.target.value, reason, action))
            updated = repo.set_stage(tx.session, target, transition.target).version
            payload: dict[str, Any] = {"from": source.value, "to": transition.target.value}
            if reason:
                payload["reason"] = reason
            if replaced is not None:
                payload["replaced"] = {"version": replaced.version, "to": replaced.stage.value}
            event = tx.event(transition.event, payload=payload)
            for moved, src, dst, why, act in moves:
                repo.add_transition(
                    tx.session,
                    version_id=moved.id,
                    action=act,
                    source=src,
                    target=dst,
                    actor=self.actor,
                    reason=why,
                    at=event.at,
                    audit_seq=event.seq,
                )
            tx.project(action, updated, {"replaced": replaced})
            return TransitionResult(updated, event, replaced)

    def suspend(
        self, name: str, version: str, *, reason: str, actor_note: dict | None = None
    ) -> TransitionResult:
        reason = clean(reason, "--reason", limit=4000)  # type: ignore[assignment]
        with self.change("suspend", model=name, version=str(version)) as tx:
            return self.flag(tx, "suspend", reason=reason, extra=actor_note)

    def resume(self, name: str, version: str, *, reason: str) -> TransitionResult:
        reason = clean(reason, "--reason", limit=4000)  # type: ignore[assignment]
        with self.change("resume", model=name, version=str(version)) as tx:
            return self.flag(tx, "resume", reason=reason)

    def flag(
        self,
        tx: Change,
        action: str,
        *,
        reason: str,
        extra: dict | None = None,
        target: VersionState | None = None,
    ) -> TransitionResult:
        """Suspend or resume ``target`` (default: the change's target) inside an open change.

        Governance calls it in a monitoring run's own change to suspend at once on an ``on_breach: suspend``
        breach, so the evaluation and the suspension commit together."""
        move = FLAG_MOVES[action]
        state = target or tx.target
        assert state is not None
        v = state.version
        if v.stage is not move.stage:
            raise InvalidTransition(
                f"cannot {action} {v.model} {v.version}: only a deployed version can be {action}ed; it is in {v.stage.value}"
            )
        if v.suspended == move.suspended:
            raise InvalidTransition(
                f"{v.model} {v.version} is already {'suspended' if move.suspended else 'running (not suspended)'}"
            )
        updated = repo.set_suspended(tx.session, state, move.suspended)
        event = tx.event(
            move.event, model=v.model, version=v.version, payload={"reason": reason, **(extra or {})}
        )
        repo.add_transition(
            tx.session,
            version_id=state.id,
            action=action,
            source=v.stage.value,
            target=v.stage.value,
            actor=self.actor,
            reason=reason,
            at=clock.now(),
            audit_seq=event.seq,
        )
        tx.project(action, updated.version)
        return TransitionResult(updated.version, event)
