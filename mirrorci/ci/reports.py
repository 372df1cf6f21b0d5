"""Results become step outputs and a Markdown report: the same for every platform.

Outputs are strings (what `$GITHUB_OUTPUT` and a dotenv report hold); the report
is what `$GITHUB_STEP_SUMMARY` shows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .. import log
from ..checkout import CheckoutResult
from . import outputs as out


def checkout_result(summary: Mapping[str, Any]) -> CheckoutResult:
    """The CLI's JSON summary of a checkout as the result it came from."""
    names = {f.name for f in dataclasses.fields(CheckoutResult)}
    return CheckoutResult(**{k: v for k, v in summary.items() if k in names})


def checkout_outputs(result: CheckoutResult) -> dict[str, str]:
    return {
        "commit": result.head,
        "ref": result.ref,
        "method": result.method,
        "origin-fetched": "true" if result.final_fetch else "false",
        "bytes-from-mirror": str(result.bytes_from_mirror),
        "bytes-from-origin": str(result.bytes_from_origin),
        "submodules": "\n".join(f"{s.get('commit', '')} {s.get('method', '')} {s.get('path', '')}"
                                for s in result.submodules),
    }


def existing_clone_outputs(ref: str) -> dict[str, str]:
    """The platform's own fetch updates the clone that is there: nothing came from a mirror."""
    return {"commit": "", "ref": ref, "method": "existing", "origin-fetched": "true",
            "bytes-from-mirror": "0", "bytes-from-origin": "0", "submodules": ""}


def _bytes(row: Mapping[str, Any]) -> str:
    labels = (("bytes_from_mirror", "from the mirror"), ("bytes_from_origin", "from origin"))
    parts = [f"{out.human_bytes(int(row[key]))} {label}" for key, label in labels if row.get(key) is not None]
    return f" ({', '.join(parts)})" if parts else ""


def _submodule_rows(result: CheckoutResult) -> list[tuple[str, object]]:
    return [(f"Submodule `{s.get('path', '?')}`",
             f"`{str(s.get('commit', ''))[:12]}` via {s.get('method', '?')}{_bytes(s)}") for s in result.submodules]


def _lfs_rows(result: CheckoutResult) -> list[tuple[str, object]]:
    if not result.lfs:
        return []
    parts = [f"{key.replace('_', ' ')}: {out.human_bytes(int(value)) if 'bytes' in key else value}"
             for key, value in sorted(result.lfs.items()) if isinstance(value, (int, float, str)) and value != ""]
    return [("LFS objects", ", ".join(parts) or "none")]


def checkout_report(result: CheckoutResult, url: str) -> str:
    rows: list[tuple[str, object]] = [
        ("Repository", log.redact_url(url)),
        ("Commit", f"`{result.head}` ({result.ref or 'HEAD'})"),
        ("Method", result.method + (f" ({result.apply_path})" if result.apply_path else "")),
        ("From the mirror", out.human_bytes(result.bytes_from_mirror)),
        ("From origin",
         out.human_bytes(result.bytes_from_origin) if result.final_fetch else "nothing (no fetch needed)"),
    ]
    rows += [(f"Fallback from {f['method']}", f["reason"]) for f in result.fallbacks]
    rows += _submodule_rows(result) + _lfs_rows(result)
    if result.timings.get("total") is not None:
        rows.append(("Time", f"{result.timings['total']:.1f} s"))
    return "### mirrorci checkout\n\n" + out.markdown_table(rows)


def publish_outputs(summary: Mapping[str, Any]) -> dict[str, str]:
    torrent = summary.get("torrent") or {}
    return {
        "name": summary["name"],
        "bundle-url": summary["bundle"]["url"],
        "bundle-sha256": summary["bundle"]["sha256"],
        "bundle-size": str(summary["bundle"]["size"]),
        "bundle-list-url": summary.get("bundle_list_url") or "",
        "refs": "\n".join(f"{oid} {ref}" for ref, oid in sorted(summary.get("refs", {}).items())),
        "info-hash": str(torrent.get("info_hash") or ""),
    }


def publish_report(summary: Mapping[str, Any]) -> str:
    b = summary["bundle"]
    rows: list[tuple[str, object]] = [
        ("Mirror", f"`{summary['name']}` in {summary['store']}"),
        ("Bundle", f"[{b['key']}]({b['url']})" if b["url"].startswith("http") else f"`{b['url']}`"),
        ("Size", f"{out.human_bytes(b['size'])}, {b['refs']} refs"),
        ("sha256", f"`{b['sha256']}`"),
    ]
    torrent = summary.get("torrent") or {}
    if torrent.get("info_hash"):
        rows.append(("Info hash", f"`{torrent['info_hash']}`"))
    rows += [(f"`{ref}`", f"`{oid[:12]}`") for ref, oid in sorted(summary.get("refs", {}).items())]
    if summary.get("timings", {}).get("total") is not None:
        rows.append(("Time", f"{summary['timings']['total']:.1f} s"))
    return "### mirrorci publish\n\n" + out.markdown_table(rows)
