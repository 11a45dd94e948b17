"""One pack built from a PostgreSQL registry (the same code path as SQLite, a different database)."""

from __future__ import annotations

import json

import pytest

from tests.evidence.conftest import (
    CARD,
    MLFLOW_INFO,
    NAME,
    VERSION,
    base_registry,
    env_for,
    german_frames,
    members,
)


@pytest.mark.postgres
def test_pack_from_postgresql_verifies(pg_url, tmp_path):
    from modelreg import settings as settings_mod
    from modelreg.evidence import build_pack, verify_pack

    settings = settings_mod.load(environ=env_for(tmp_path, pg_url))
    reg, c = base_registry(settings)
    try:
        train, holdout = german_frames()
        dev = c.as_user("dev")
        # Registry text reaches the pages escaped: a hostile card field or purpose stays text.
        card = {**CARD, "limitations": '<script>alert("x")</script> <img src=http://evil.example/x.png>'}
        reg.as_user("dev").register(
            NAME,
            VERSION,
            owner="dev",
            risk_tier="medium",
            purpose="PD scoring <i>x</i>",
            mlflow_info=MLFLOW_INFO,
            model_card=card,
        )
        dev.attach_data(NAME, VERSION, role="training", data=train)
        dev.attach_data(NAME, VERSION, role="validation", data=holdout)
        dev.attest(NAME, VERSION, control="CHK-DP-01", comment="feature classification done")
        out = tmp_path / "pg.zip"
        summary = build_pack(reg.as_user("aud"), NAME, VERSION, out)
        assert reg.engine.dialect.name == "postgresql"
        report = reg.audit_verify()
        assert (summary.tree_size, summary.root_hash) == (report.size, report.root_hash)
        result = verify_pack(out, trusted_keys=[settings.evidence_key_path.with_name("evidence.key.pub")])
        assert result.ok, result.problems
        files = members(out)
        manifest = json.loads(files["manifest.json"])
        assert manifest["registry"]["database"] == "postgresql"
        assert summary.audit_events == 4 and summary.signed_records == 1
        assert len(result.signer_key_ids) == 1
        for page in ("index.html", "model_card.html", "disclosure.html"):
            text = files[page].decode()
            assert "<script" not in text and "<img src=http" not in text and "<i>x</i>" not in text, page
            assert "PD scoring &lt;i&gt;x&lt;/i&gt;" in text, page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in files["model_card.html"].decode()
    finally:
        reg.engine.dispose()
