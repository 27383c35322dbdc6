#!/usr/bin/env python3
"""Reads a clipguide store with DuckDB alone, to prove the Parquet contract other engines rely on.

    pip install duckdb
    clipguide index DIR                       # or --files LIST --shard I/N --out STORE + --merge
    python3 tools/store_duckdb.py DIR/.clipguide-store [--images DIR --clipguide target/release/clipguide]

Checks: every part the manifest names holds the rows it says, with the manifest's model and
dimension; every embedding is a unit vector. With --images and --clipguide, the nearest
neighbours of the first stored image computed in SQL (list_cosine_similarity) are compared
with `clipguide search --store STORE --image DIR/PATH --json`. Exits non-zero on a mismatch.
"""

import argparse
import json
import os
import subprocess
import sys

import duckdb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("--images", help="the folder the store indexes (paths are relative to it)")
    ap.add_argument("--clipguide", help="the clipguide binary, to compare its search with SQL")
    ap.add_argument("--top", type=int, default=5)
    a = ap.parse_args()
    m = json.load(open(os.path.join(a.store, "manifest.json")))
    assert m["format"] == "clipguide-store" and m["version"] == 1, m
    files = [os.path.join(a.store, p["file"]) for p in m["parts"]]
    con = duckdb.connect()
    con.execute(f"create view s as select * from read_parquet({files!r}, filename = true)")
    print(con.sql("describe s"))
    for p, f in zip(m["parts"], files):
        n = con.execute("select count(*) from s where filename = ?", [f]).fetchone()[0]
        assert n == p["rows"], f"{f}: {n} rows, the manifest says {p['rows']}"
    bad = con.execute(
        "select count(*) from s where model <> ? or len(embedding) <> ?"
        " or abs(list_dot_product(embedding, embedding) - 1) > 0.01",
        [m["model"], m["dim"]],
    ).fetchone()[0]
    assert bad == 0, f"{bad} rows with another model, dimension or a non-unit embedding"
    total = con.execute("select count(*) from s").fetchone()[0]
    print(f"{total} rows in {len(files)} parts: model, dimension and unit norms as the manifest says")
    if not (a.images and a.clipguide):
        return
    first = con.execute("select path from s order by path limit 1").fetchone()[0]
    sql = con.execute(
        "select path, list_cosine_similarity(embedding, (select embedding from s where path = ?)) as score"
        " from s order by score desc, path limit ?",
        [first, a.top],
    ).fetchall()
    out = subprocess.run(
        [a.clipguide, "--json", "search", "--store", a.store, "--image",
         os.path.join(a.images, first), "--top", str(a.top)],
        check=True, capture_output=True, text=True,
    ).stdout
    rust = [(r["path"], r["score"]) for r in json.loads(out)["results"]]
    for (ps, ss), (pr, sr) in zip(sql, rust):
        print(f"  {ss:.4f} {ps:<30} {sr:.4f} {pr}")
    same = [p for p, _ in sql] == [p for p, _ in rust]
    close = all(abs(x[1] - y[1]) < 0.01 for x, y in zip(sql, rust))
    if not (same and close):
        sys.exit("DuckDB and clipguide disagree on the nearest neighbours")
    print(f"the {a.top} nearest neighbours of {first} agree between DuckDB and clipguide")


if __name__ == "__main__":
    main()
