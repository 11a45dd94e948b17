"""Model risk operations (模型风险运营): the review calendar, findings tracked until remediated, the model
inventory (台账), the validation report and vendor-supplied models.

Light by design: nothing here imports pandas, MLflow or the monitors, so ``modelreg due`` and ``modelreg finding``
start fast; the inventory's xlsx writer and the report's DOCX/PDF writers import their libraries lazily.
"""

from __future__ import annotations

from typing import Any

VENDOR_CARD_FIELD = "vendor"  # model card field naming the supplier of a vendor (third-party) model


def vendor_of(version: Any) -> str | None:
    """The supplier of a vendor-supplied version (declared at registration in its model card), else None."""
    value = (getattr(version, "model_card", None) or {}).get(VENDOR_CARD_FIELD)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def effective_pack(pack: Any, version: Any) -> Any:
    """The pack as it applies to this version: a vendor-supplied version gets the pack's vendor view."""
    return pack.for_vendor() if vendor_of(version) and getattr(pack, "vendor_models", None) else pack
