"""Writes crates/clipguide-zeroshot/tests/fixtures/wordnet/: a tiny WordNet database in the format
of Debian's wordnet-base (/usr/share/wordnet: index.POS sorted lines, data.POS lines found by byte
offset), cut from the installed database for a few lemmas with each synset's offset rewritten to
its place in the small file. Needs `apt-get install wordnet-base`."""
from pathlib import Path

SRC = Path("/usr/share/wordnet")
OUT = Path(__file__).resolve().parent.parent / "crates/clipguide-zeroshot/tests/fixtures/wordnet"
LEMMAS = {"noun": ["circle", "disc", "doughnut", "plus_sign"], "adj": ["crimson", "azure"]}
HEADER = "  1 This fixture is cut from WordNet 3.0, Copyright 2006 by Princeton University.\n"

OUT.mkdir(parents=True, exist_ok=True)
for pos, lemmas in LEMMAS.items():
    index = {l.split(" ", 1)[0]: l for l in (SRC / f"index.{pos}").read_text().splitlines(True) if not l.startswith("  ")}
    data = (SRC / f"data.{pos}").read_bytes()
    rows, blocks, pos_bytes = [], [], len(HEADER.encode())
    remap = {}
    for lemma in lemmas:
        fields = index[lemma].split()
        # Only the first sense is read; the others stay (pointing at the first sense's synset)
        # so the index lines keep their real shape.
        first = fields[-int(fields[2])]
        if first not in remap:
            start = int(first)
            line = data[start:data.index(b"\n", start) + 1]
            remap[first] = f"{pos_bytes:08d}"
            blocks.append(remap[first].encode() + line[8:])
            pos_bytes += len(blocks[-1])
        offs = [remap[first]] * int(fields[2])
        rows.append(" ".join(fields[: len(fields) - len(offs)] + offs) + "  \n")
    (OUT / f"index.{pos}").write_text(HEADER + "".join(sorted(rows)))
    (OUT / f"data.{pos}").write_bytes(HEADER.encode() + b"".join(blocks))
print(f"wrote {OUT}")
