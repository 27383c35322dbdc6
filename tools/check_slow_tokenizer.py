#!/usr/bin/env python3
"""Check the fixtures against transformers 4.x's own slow (pure-Python) CLIPTokenizer and its slow->fast converter.

transformers 5 dropped the slow CLIPTokenizer, so tools/make_fixtures.py carries a port of it. Run this in an
environment with transformers<5 (no torch needed) to prove the port and tokenizer.json are faithful:

    python3 -m venv /tmp/tf4 && /tmp/tf4/bin/pip install "transformers<5" ftfy regex
    /tmp/tf4/bin/python tools/check_slow_tokenizer.py
"""

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_JSON = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"
CASES = ROOT / "tests" / "fixtures" / "tokenizer" / "cases.json"


def main() -> int:
    import transformers
    from transformers import CLIPTokenizer, CLIPTokenizerFast

    if int(transformers.__version__.split(".")[0]) >= 5:
        sys.exit(f"needs transformers<5 (found {transformers.__version__}): the slow CLIPTokenizer is gone in 5.x")
    ours = json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))
    vocab = ours["model"]["vocab"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in ours["model"]["merges"]]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        slow = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"))
        converted = CLIPTokenizerFast(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"))
    try:
        import ftfy  # noqa: F401
    except ImportError:
        sys.exit("install ftfy: the reference ids were made with ftfy's fix_text")
    assert slow.fix_text is not None

    ref = json.loads(converted.backend_tokenizer.to_str())
    failures = 0
    for key in ("added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"):
        if ref[key] != ours[key]:
            failures += 1
            print(f"tokenizer.json {key} differs from transformers {transformers.__version__}'s converter:\n"
                  f"  ours {ours[key]}\n  ref  {ref[key]}")
    ref_merges = [" ".join(m) if isinstance(m, list) else m for m in ref["model"]["merges"]]
    if ref["model"]["vocab"] != vocab or ref_merges != merges:
        failures += 1
        print("tokenizer.json vocab/merges differ from the converter's")

    cases = json.loads(CASES.read_text(encoding="utf-8"))
    fast_diff = 0
    for case in cases:
        ids = slow(case["text"], truncation=True, max_length=77)["input_ids"]
        if ids != case["ids"]:
            failures += 1
            print(f"slow ids differ for {case['text']!r}:\n  file {case['ids']}\n  slow {ids}")
        fast = converted(case["text"], truncation=True, max_length=77)["input_ids"]
        fast_diff += fast != case["ids"]
        if fast != case.get("fast_ids", case["ids"]):
            failures += 1
            print(f"converted-fast ids differ for {case['text']!r}:\n  file {case.get('fast_ids')}\n  fast {fast}")
    print(f"transformers {transformers.__version__}: {len(cases)} cases, {failures} failures, "
          f"{fast_diff} where the fast tokenizer disagrees with the slow one (expected, see README)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
