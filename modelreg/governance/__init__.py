"""Governance: policy-driven gates, validation and monitoring runs, signed approvals, waivers, attestations."""

from __future__ import annotations


def install(registry) -> None:
    from modelreg.governance.requirements import install as _install

    _install(registry)
