"""The command line of the standalone pack verifier (the last source of ``standalone_verify.py``).

``python verify_pack.py PACK.zip --trusted-key evidence.pub [--trusted-key audit.pub] [--checkpoint CP]
[--json]`` prints the same verdict as ``modelreg evidence verify`` and exits the same way: 0 verified, 1 a
problem found, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys

from modelreg.errors import MissingExtra, ModelregError
from modelreg.evidence.verify import verify_pack

STANDALONE_MISSING_SM2 = (
    "error: this pack holds SM2 keys or signatures and tongsuopy is not installed: pip install tongsuopy"
)


def standalone_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_pack.py",
        description="Verify a modelreg evidence pack offline (standard library + cryptography; SM2 packs "
        "also need tongsuopy).",
    )
    parser.add_argument("pack", help="the evidence pack (.zip)")
    parser.add_argument(
        "--trusted-key",
        dest="trusted",
        action="append",
        default=[],
        help="a trusted Ed25519 or SM2 public key (PEM); repeatable: the evidence key, and the audit key "
        "for --checkpoint",
    )
    parser.add_argument(
        "--checkpoint", help="a signed audit checkpoint the pack's log must be consistent with"
    )
    parser.add_argument("--json", dest="as_json", action="store_true", help="machine-readable JSON output")
    args = parser.parse_args(argv)  # usage errors: argparse prints one usage line and exits 2
    try:
        result = verify_pack(args.pack, trusted_keys=args.trusted, checkpoint=args.checkpoint)
    except MissingExtra:
        print(STANDALONE_MISSING_SM2, file=sys.stderr)
        return 2
    except ModelregError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(result.json_text() if args.as_json else result.text())
    return 0 if result.ok else 1
