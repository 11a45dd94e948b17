"""The audit log as the registry exposes it: reading events, verifying the log (against a checkpoint), and
issuing signed checkpoints (itself an audited change)."""

from __future__ import annotations

import json
from pathlib import Path

from modelreg import clock
from modelreg.audit import log as audit_log
from modelreg.domain.entities import AuditEvent, VerifyReport
from modelreg.errors import BadInput, NotFound, VerificationFailed
from modelreg.registry.core import RegistryCore
from modelreg.store import repo


class AuditMixin(RegistryCore):
    def audit_log(
        self, name: str | None = None, version: str | None = None, *, limit: int | None = None
    ) -> list[AuditEvent]:
        with self.reading(model=name if version is not None else None, version=version) as rd:
            if name is not None and version is None and repo.get_model(rd.session, name) is None:
                raise NotFound(f"model {name!r} is not registered")
            return audit_log.list_events(rd.session, name, version, limit=limit)

    def audit_verify(
        self, checkpoint_path: str | Path | None = None, *, trusted_key: str | Path | None = None
    ) -> VerifyReport:
        """Recompute the whole log. With a checkpoint: check its signature and that today's log extends it."""
        from modelreg import signing
        from modelreg.audit import checkpoint as cp_mod
        from modelreg.audit.consistency import verify_against_checkpoint

        checkpoint = cp_mod.Checkpoint.load(checkpoint_path) if checkpoint_path else None
        self.ensure_schema()
        report = audit_log.verify_snapshot(self.engine)
        if checkpoint is None or not report.ok:
            return report
        if trusted_key is not None:
            public = signing.load_public_key(Path(trusted_key))
        else:
            public = signing.ensure_key(self.settings.audit_key_path).public_key()
        return verify_against_checkpoint(self.engine, report, checkpoint, public)

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
        key = signing.ensure_key(self.settings.audit_key_path)
        with self.change("audit.checkpoint") as tx:
            size, root = audit_log.state(tx.session)
            cp = cp_mod.sign_checkpoint(size, root, key, time=clock.isoformat(clock.now()))
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

        return signing.public_key_to_pem(signing.ensure_key(self.settings.audit_key_path).public_key())


def require_ok(report: VerifyReport) -> VerifyReport:
    if not report.ok:
        raise VerificationFailed(report.problem or "verification failed")
    return report
