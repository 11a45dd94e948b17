"""The audit log as the registry exposes it: reading events, verifying the log (against a checkpoint), and
issuing signed checkpoints (itself an audited change)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from modelreg import clock
from modelreg.audit import log as audit_log
from modelreg.audit.replay import ReplayReport
from modelreg.domain.entities import AuditEvent, VerifyReport
from modelreg.errors import BadInput, NotFound, VerificationFailed
from modelreg.registry.core import RegistryCore
from modelreg.store import repo

MSG_MIXED_CHECKPOINT = (
    "the checkpoint is over a {got} tree but this registry's audit log uses {have}: it is not a checkpoint of "
    "this log"
)


class AuditMixin(RegistryCore):
    def audit_log(
        self, name: str | None = None, version: str | None = None, *, limit: int | None = None
    ) -> list[AuditEvent]:
        with self.reading(model=name if version is not None else None, version=version) as rd:
            if name is not None and version is None and repo.get_model(rd.session, name) is None:
                raise NotFound(f"model {name!r} is not registered")
            return audit_log.list_events(rd.session, name, version, limit=limit)

    def audit_verify(
        self,
        checkpoint_path: str | Path | None = None,
        *,
        trusted_key: str | Path | None = None,
        tables: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> VerifyReport:
        """Recompute the whole log and check its signatures; with a checkpoint, check its signature and that
        today's log extends it; then (``tables``) replay the log and check the tables against it."""
        from modelreg import signing
        from modelreg.audit import checkpoint as cp_mod
        from modelreg.audit.consistency import verify_against_checkpoint

        checkpoint = cp_mod.Checkpoint.load(checkpoint_path) if checkpoint_path else None
        self.ensure_schema()
        from sqlalchemy.exc import DBAPIError

        try:
            report = audit_log.verify_snapshot(self.engine, progress=progress)
        except (DBAPIError, self.engine.dialect.dbapi.Error, audit_log.AuditStateMissing) as exc:  # type: ignore[union-attr]
            # A dropped audit table is a verification result (the log is gone), not an internal error.
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            return VerifyReport(
                False,
                0,
                "",
                problem=f"the audit log cannot be read (audit table missing or damaged): {first[0] if first else type(exc).__name__}",
            )
        if report.ok and checkpoint is not None:
            if trusted_key is not None:
                public = signing.load_public_key(Path(trusted_key))
            else:
                # Read-only: use the registry's audit key if it exists, never create one (a fresh key could not
                # have signed the checkpoint anyway, and a verifying command must write nothing).
                private_path = Path(self.settings.audit_key_path)
                pub_path = signing.public_key_path_for(private_path)
                if pub_path.exists():
                    public = signing.load_public_key(pub_path)
                elif private_path.exists():
                    public = signing.load_private_key(private_path).public_key()
                else:
                    return VerifyReport(
                        False,
                        report.size,
                        report.root_hash,
                        problem=f"no audit key at {private_path} to check the checkpoint's signature with: pass --trusted-key (the checkpoint's .pub file)",
                        checkpoint=json.loads(checkpoint.to_json()),
                    )
            tree_hash, _ = audit_log.crypto_settings(self.engine)
            if checkpoint.tree_hash != tree_hash:
                raise BadInput(MSG_MIXED_CHECKPOINT.format(have=tree_hash, got=checkpoint.tree_hash))
            report = verify_against_checkpoint(self.engine, report, checkpoint, public, tree_hash)
        if not report.ok or not tables:
            return report
        if progress is not None:
            progress("replaying the log against the tables")
        replayed = self.replay()
        if replayed.ok:
            return replace(report, replay=replayed.to_dict())
        first = replayed.divergences[0]
        return replace(
            report,
            ok=False,
            first_bad_seq=first.seq,
            problem=replayed.first_line(),
            replay=replayed.to_dict(),
        )

    def replay(self, name: str | None = None, version: str | None = None) -> ReplayReport:
        """The tables against the state the audit log proves (all of it, or one model / version)."""
        from modelreg.audit.replay import replay

        self.ensure_schema()
        return replay(self.engine, model=name, version=version)

    def rotate_event_key(self) -> dict:
        """Replace the registry's event key: the new key is introduced by an ``audit.signing_key`` event that the
        old key endorses, so the chain of keys stays anchored at whichever one an auditor trusts. The old private
        key is kept beside it (``<key>.<key id>.retired``) for the record, never used again. Other processes
        holding the old key (a running service) must be restarted: they refuse to write after the rotation."""
        from modelreg import signing
        from modelreg.audit.event_signing import SIGNING_KEY_EVENT, EventSigner

        old = self.event_signer()
        path = Path(self.settings.audit_key_path)
        pub = signing.public_key_path_for(path)
        retired = path.with_name(f"{path.name}.{old.key_id.split(':')[-1][:16]}.retired")
        with self.change("audit.rotate_key") as tx:
            # The key files change inside the transaction: if anything fails, the old key is put back.
            path.replace(retired)
            pub.unlink(missing_ok=True)
            try:
                new = EventSigner.from_private_key(signing.write_key_pair(path, pub))
                event = audit_log.append_event(
                    tx.session,
                    SIGNING_KEY_EVENT,
                    actor=self.actor,
                    payload=new.key_event_payload(previous=old),
                    db_role=self.db_role(tx.session),
                    signer=new,
                )
                tx.events.append(event)
            except BaseException:
                path.unlink(missing_ok=True)
                pub.unlink(missing_ok=True)
                retired.replace(path)
                pub.write_bytes(old.public_key_pem.encode())
                raise
        self._event_signer = new
        return {
            "seq": event.seq,
            "key_id": new.key_id,
            "previous_key_id": old.key_id,
            "retired_key": str(retired),
        }

    def audit_leaf_hashes(self) -> list[bytes]:
        """Every event's leaf hash in order (for inclusion and consistency proofs)."""
        self.ensure_schema()
        return audit_log.leaf_hashes(self.engine)

    def audit_checkpoint(self, out: str | Path) -> dict:
        from modelreg import signing
        from modelreg.audit import checkpoint as cp_mod

        out = Path(out)
        if out.exists() and out.is_dir():
            raise BadInput(f"-o {out} is a folder; give a file name")
        key = self.registry_key(self.settings.audit_key_path)
        with self.change("audit.checkpoint") as tx:
            size, root = audit_log.state(tx.session)
            tree_hash, _ = audit_log.crypto_settings(tx.session)
            cp = cp_mod.sign_checkpoint(
                size, root, key, time=clock.isoformat(clock.now()), tree_hash=tree_hash
            )
            # The checkpoint is issued first and then recorded: the record is itself event #size, outside it.
            tx.event(
                "audit.checkpoint",
                payload={"size": size, "root_hash": root.hex(), "key_id": cp.key_id},
            )
            repo.add_checkpoint(tx.session, size, json.loads(cp.to_json()), clock.now())
        out.parent.mkdir(parents=True, exist_ok=True)
        cp.save(out)
        pub = signing.public_key_to_pem(key.public_key())
        pub_path = out.with_suffix(out.suffix + ".pub")
        pub_path.write_bytes(pub)
        return {"checkpoint": json.loads(cp.to_json()), "file": str(out), "public_key": str(pub_path)}

    def audit_public_key_pem(self) -> bytes:
        from modelreg import signing

        return signing.public_key_to_pem(self.registry_key(self.settings.audit_key_path).public_key())


def require_ok(report: VerifyReport) -> VerifyReport:
    if not report.ok:
        raise VerificationFailed(report.problem or "verification failed")
    return report
