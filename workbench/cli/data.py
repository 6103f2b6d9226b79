"""`workbench corpus`: what a corpus holds, before training on it.
"""

from __future__ import annotations

import json


def add_parsers(sub) -> None:
    c = sub.add_parser("corpus", help="inspect corpora")
    csub = c.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    cs = csub.add_parser("stats", help="bytes, characters, lines and documents of each source")
    cs.add_argument("paths", nargs="+", help='files, folders or "builtin:NAME"')
    cs.add_argument("--glob", default="**/*", help="files to take from folders (default **/*)")
    cs.add_argument("--field", default="text", help="JSONL field / CSV column holding the text (default text)")
    cs.add_argument("--errors", choices=("strict", "replace"), default="strict",
                    help="invalid UTF-8: stop (strict) or substitute U+FFFD (replace)")
    cs.add_argument("--json", action="store_true", help="print JSON")


def cmd_corpus(args) -> int:
    from workbench.engine.corpus import Corpus

    stats = Corpus(args.paths, glob=args.glob, text_field=args.field, encoding_errors=args.errors).stats()
    if args.json:
        import dataclasses

        print(json.dumps({"sources": [dataclasses.asdict(s) for s in stats.sources],
                          "total": {k: getattr(stats, k) for k in ("files", "bytes", "chars", "lines", "documents")}}))
        return 0
    rows = [(s.source, s.kind, s.files, s.bytes, s.chars, s.lines, s.documents) for s in stats.sources]
    if len(rows) > 1:
        rows.append(("total", "", stats.files, stats.bytes, stats.chars, stats.lines, stats.documents))
    head = ("source", "kind", "files", "bytes", "chars", "lines", "documents")
    cells = [head] + [(r[0], r[1]) + tuple(f"{v:,}" for v in r[2:]) for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    for c in cells:
        print("  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w) for i, (v, w) in enumerate(zip(c, widths))))
    return 0
