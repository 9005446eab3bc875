#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's own fixtures.

Run once from the repository root before a long fuzzing run (see
docs/fuzzing.md); then `cargo fuzz cmin` keeps only what adds coverage.
Files are named by the SHA-1 of their content, as libFuzzer names them, so
re-running adds nothing twice.

  manifest   examples/*/plugin.toml, policy/tests/diagnostics/*/plugin.toml,
             the manifests of tests/authorize.toml
  grant      the grants from the same places
  target     every `url = "…"` in those files, and the case URLs of
             tests/authorize.toml
  ir_load    examples/*/policy.json, policy/tests/diagnostics/*/ir.json, and
             (if target/debug/netgrant is built) the compiled IR of every
             manifest/grant pair above
  authorize  structured input (`arbitrary`): no text seeds; it starts from
             the committed corpus, guided by fuzz/url.dict
"""

import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def add(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> int:
    manifests: list[bytes] = []
    pairs: list[tuple[bytes, bytes | None]] = []
    dirs = sorted(ROOT.glob("examples/*/")) + sorted(ROOT.glob("policy/tests/diagnostics/*/"))
    for d in dirs:
        m = d / "plugin.toml"
        g = d / "grant.toml"
        if m.exists():
            manifests.append(m.read_bytes())
            pairs.append((m.read_bytes(), g.read_bytes() if g.exists() else None))
        if g.exists():
            add("grant", g.read_bytes())
        for ir in ("policy.json", "ir.json"):
            if (d / ir).exists():
                add("ir_load", (d / ir).read_bytes())
    table = tomllib.loads((ROOT / "tests" / "authorize.toml").read_text())
    for p in table["policy"].values():
        manifests.append(p["manifest"].encode())
        add("grant", p["grant"].encode())
        pairs.append((p["manifest"].encode(), p["grant"].encode()))
    for m in manifests:
        add("manifest", m)

    urls = set()
    for m, g in pairs:
        for text in (m, g or b""):
            urls.update(re.findall(rb'^url\s*=\s*"([^"]*)"', text, re.M))
    for case in table["case"]:
        if "${" not in case["url"]:
            urls.add(case["url"].encode())
    for u in sorted(urls):
        add("target", u)

    netgrant = ROOT / "target" / "debug" / "netgrant"
    if netgrant.exists():
        with tempfile.TemporaryDirectory() as tmp:
            for i, (m, g) in enumerate(pairs):
                mp = pathlib.Path(tmp) / f"{i}.plugin.toml"
                mp.write_bytes(m)
                cmd = [str(netgrant), "compile", str(mp)]
                if g is not None:
                    gp = pathlib.Path(tmp) / f"{i}.grant.toml"
                    gp.write_bytes(g)
                    cmd += ["--grant", str(gp)]
                out = subprocess.run(cmd, capture_output=True)
                if out.returncode == 0:
                    add("ir_load", out.stdout)
    for t in sorted(CORPUS.iterdir()):
        print(f"{t.name}: {len(list(t.iterdir()))} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
