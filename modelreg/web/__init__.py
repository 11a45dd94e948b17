"""The auditor's read-only web view (审计只读视图): server-rendered bilingual HTML, no JavaScript.

The service mounts ``create_web_app(...)`` at ``/ui``. Every page calls the same functions the CLI calls
(inventory rows, version show/history, findings, signed records, audit log, inclusion proofs, checkpoint
verification, the evidence pack builder); nothing here writes registry state. The only POSTs are login and
logout, both CSRF-protected; every other non-GET method is refused before any handler runs.
"""

from __future__ import annotations

from modelreg.web.app import create_web_app

__all__ = ["create_web_app"]
