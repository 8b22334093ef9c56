"""Build (or check) the GLUE copy bundled in adapterlib/resources/glue from a GLUE folder.

    python tools/bundle_glue.py ../shared/glue           # write <TASK>/<file>.tsv.xz and MANIFEST.json
    python tools/bundle_glue.py ../shared/glue --check   # verify the committed bundle against the folder

The source folder must hold SOURCES.md with one table row per file (rows, bytes, sha256, source repo,
commit, path, git blob id), as ../shared/glue does. xz (preset 9e) is deterministic, so a rebuild from
the same files gives the same bytes and the same compressed sha256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1] / "adapterlib" / "resources" / "glue"
FILES = ["RTE/train.tsv", "RTE/dev.tsv", "MRPC/train.tsv", "MRPC/dev.tsv", "STS-B/train.tsv", "STS-B/dev.tsv",
         "CoLA/train.tsv", "CoLA/dev.tsv", "SST-2/train.tsv", "SST-2/dev.tsv", "WNLI/train.tsv", "WNLI/dev.tsv",
         "QNLI/dev.tsv"]
HEADERLESS = {"CoLA"}
XZ_PRESET = 9 | lzma.PRESET_EXTREME


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sources(glue: Path) -> dict:
    """file -> provenance, from the table in SOURCES.md."""
    out = {}
    for line in (glue / "SOURCES.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] in FILES:
            name, rows, size, digest, repo, commit, path, blob = cells
            out[name] = {"rows": int(rows), "bytes": int(size), "sha256": digest,
                         "source": {"repo": repo, "commit": commit, "path": path, "git_blob": blob}}
    missing = sorted(set(FILES) - set(out))
    if missing:
        sys.exit(f"{glue / 'SOURCES.md'}: no table row for {missing}")
    return out


def data_rows(name: str, raw: bytes) -> int:
    lines = raw.decode("utf-8").splitlines()
    return len(lines) - (0 if name.split("/")[0] in HEADERLESS else 1)


def build_manifest(glue: Path) -> tuple[dict, dict]:
    """The manifest and {compressed file name: compressed bytes} for every bundled file."""
    provenance, files, blobs = sources(glue), {}, {}
    for name in FILES:
        raw = (glue / name).read_bytes()
        info = provenance[name]
        checks = {"sha256": sha256(raw), "bytes": len(raw), "rows": data_rows(name, raw)}
        bad = {k: (v, info[k]) for k, v in checks.items() if v != info[k]}
        if bad:
            sys.exit(f"{glue / name}: does not match SOURCES.md (found, documented): {bad}")
        packed = lzma.compress(raw, preset=XZ_PRESET)
        if lzma.decompress(packed) != raw:
            sys.exit(f"{name}: xz round trip is not byte-identical")
        blobs[name + ".xz"] = packed
        files[name] = {"rows": checks["rows"], "bytes": len(raw), "sha256": checks["sha256"],
                       "compressed": name + ".xz", "compressed_bytes": len(packed),
                       "compressed_sha256": sha256(packed), "source": info["source"]}
    manifest = {
        "format": 1,
        "description": "GLUE files bundled with adapterlib; each <TASK>/<file>.tsv.xz decompresses to exactly "
                       "the original file (sha256 = 'sha256'). Built by tools/bundle_glue.py.",
        "compression": "xz (preset 9e)",
        "files": files,
    }
    return manifest, blobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("glue_dir", type=Path, help="GLUE folder with SOURCES.md (e.g. ../shared/glue)")
    p.add_argument("--check", action="store_true", help="compare the committed bundle instead of writing it")
    args = p.parse_args(argv)
    manifest, blobs = build_manifest(args.glue_dir)
    text = json.dumps(manifest, indent=1) + "\n"
    if args.check:
        stale = [n for n, b in blobs.items() if not (BUNDLE / n).is_file() or (BUNDLE / n).read_bytes() != b]
        if (BUNDLE / "MANIFEST.json").read_text() != text:
            stale.append("MANIFEST.json")
        print("bundle is up to date" if not stale else f"stale: {stale}")
        return 1 if stale else 0
    for name, packed in blobs.items():
        (BUNDLE / name).parent.mkdir(parents=True, exist_ok=True)
        (BUNDLE / name).write_bytes(packed)
    (BUNDLE / "MANIFEST.json").write_text(text)
    total = sum(map(len, blobs.values()))
    raw = sum(f["bytes"] for f in manifest["files"].values())
    print(f"wrote {len(blobs)} files to {BUNDLE}: {total:,} bytes compressed ({raw:,} bytes as TSV)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
