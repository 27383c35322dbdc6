#!/usr/bin/env python3
"""Regenerate every Python-made test fixture of clipguide (tokenizer, tiny CLIP checkpoints, preprocessing, configs).

    pip install torch transformers open_clip_torch ftfy
    python3 tools/make_fixtures.py            # everything
    python3 tools/make_fixtures.py tokenizer  # or any of: tokenizer cases models preprocess configs grads

Deterministic: fixed seeds everywhere, CPU only, 2 threads. Written against torch 2.x,
transformers 5.x, tokenizers 0.23, ftfy 6.3, Pillow 13. See tests/fixtures/README.md for the
file formats. The "slow" reference tokenizer is a line-for-line port of transformers 4.x's
pure-Python CLIPTokenizer (transformers 5 no longer ships it); tools/check_slow_tokenizer.py
compares the port with the real thing under transformers<5.
"""

import gzip
import html
import importlib.util
import json
import os
import random
import sys
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TOKENIZER_JSON = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"

BOS_ID = 49406
EOS_ID = 49407
CONTEXT_LENGTH = 77
N_MERGES = 49152 - 256 - 2  # what OpenAI's simple_tokenizer keeps: 48894 merges


# ----------------------------------------------------------------------------------------------
# Tokenizer: vocabulary exactly as OpenAI's simple_tokenizer builds it.
# ----------------------------------------------------------------------------------------------


def bpe_merges_path() -> Path:
    # find_spec does not execute open_clip/__init__ (which needs torchvision); we only need a data file.
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("open_clip_torch is not installed: pip install open_clip_torch")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        sys.exit(f"{path} is missing; reinstall open_clip_torch")
    return path


@lru_cache
def bytes_to_unicode() -> dict:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


@lru_cache
def clip_vocab_and_merges():
    lines = gzip.open(bpe_merges_path()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {tok: i for i, tok in enumerate(vocab)}
    assert len(encoder) == 49408, len(encoder)
    assert encoder["<|startoftext|>"] == BOS_ID and encoder["<|endoftext|>"] == EOS_ID
    return encoder, merges


def build_tokenizer_json() -> None:
    from transformers import CLIPTokenizer

    encoder, merges = clip_vocab_and_merges()
    # transformers 5's CLIPTokenizer builds the same tokenizers pipeline that transformers 4's
    # slow->fast CLIPConverter produced (NFC + \s+ -> " " + lowercase, the CLIP split regex,
    # byte-level BPE with "</w>" suffix, RobertaProcessing bos/eos).
    tok = CLIPTokenizer(vocab=dict(encoder), merges=[tuple(m) for m in merges])
    backend = tok.backend_tokenizer
    assert backend.get_vocab_size(with_added_tokens=True) == 49408, backend.get_vocab_size()
    assert tok.bos_token_id == BOS_ID and tok.eos_token_id == EOS_ID and tok.pad_token_id == EOS_ID
    from tokenizers import Tokenizer

    # Match byte-for-byte what transformers 4's converter wrote into the published CLIP tokenizer.json
    # files: special tokens marked normalized, and no special-token alternatives in the Split regex
    # (they are matched as added tokens before pre-tokenization, so behaviour is the same).
    spec = json.loads(backend.to_str())
    for added in spec["added_tokens"]:
        added["normalized"] = True
    split = spec["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split"
    split["pattern"]["Regex"] = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
    TOKENIZER_JSON.parent.mkdir(parents=True, exist_ok=True)
    Tokenizer.from_str(json.dumps(spec)).save(str(TOKENIZER_JSON), pretty=False)

    reloaded = Tokenizer.from_file(str(TOKENIZER_JSON))
    assert reloaded.get_vocab_size() == 49408
    assert reloaded.token_to_id("<|startoftext|>") == BOS_ID
    assert reloaded.token_to_id("<|endoftext|>") == EOS_ID
    ids = reloaded.encode("a photo of a cat").ids
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407], ids  # well-known CLIP ids
    print(f"tokenizer: wrote {TOKENIZER_JSON.relative_to(ROOT)} ({TOKENIZER_JSON.stat().st_size} bytes), vocab 49408")


class SlowClipTokenizer:
    """Port of transformers 4.x CLIPTokenizer (pure Python, ftfy installed) for plain text.

    Texts containing the literal special tokens are not supported (the fixtures have none)."""

    def __init__(self):
        import ftfy
        import regex

        self.fix_text = ftfy.fix_text
        self.re = regex
        self.encoder, merges = clip_vocab_and_merges()
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = bytes_to_unicode()
        self.cache = {}
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = {(a, b) for a, b in zip(word, word[1:])}
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = {(a, b) for a, b in zip(word, word[1:])}
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str, max_length: int = CONTEXT_LENGTH) -> list:
        text = self.re.sub(r"\s+", " ", self.fix_text(text)).strip().lower()
        ids = []
        for token in self.re.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        # truncation=True, max_length=77 with special tokens: content keeps 75 ids, EOS stays last.
        return [BOS_ID] + ids[: max_length - 2] + [EOS_ID]


# ----------------------------------------------------------------------------------------------
# Tokenizer test strings.
# ----------------------------------------------------------------------------------------------

HAND_WRITTEN = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    " \t\n ",
    "a",
    "A",
    "a photo of a cat",
    "A PHOTO OF A CAT",
    "A Photo Of A Cat",
    "  a   photo\tof\na\r\ncat  ",
    "a\u00a0photo\u00a0of\u00a0a\u00a0cat",
    "a\u2003photo\u2009of\u3000a cat",
    "a\u200bphoto\u200bof a cat",
    "a\u00adphoto",
    "a\x00b\x07c\x1bd",
    "sunflower oil painting, highly detailed",
    "an astronaut riding a horse on mars, trending on artstation",
    "I'm here", "you're there", "we've been", "they'll go", "she'd say", "it's fine", "don't stop",
    "I'M HERE", "IT'S", "DON'T", "We'Ve", "o'clock", "rock'n'roll", "'s", "'t'", "''", "'''s",
    "it\u2019s curly", "\u201cquoted\u201d text", "\u2018single\u2019", "l\u2019\u00e9t\u00e9",
    "caf\u00e9", "cafe\u0301", "na\u00efve fa\u00e7ade", "\u00c9COLE", "stra\u00dfe", "STRASSE", "\u0130stanbul", "\u0131",
    "Ångström", "Øresund", "Dvořák", "Łódź", "Ελληνικά", "ΣΊΣΥΦΟΣ", "русский текст", "Ünïcödé",
    "日本語のテキスト", "中文字符测试", "한국어 텍스트", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ﾊﾝｶｸ", "カタカナ", "ひらがな",
    "עברית", "العربية", "हिन्दी", "ไทย", "ქართული", "Հայերեն", "𝔣𝔯𝔞𝔨𝔱𝔲𝔯", "𝐁𝐨𝐥𝐝", "①②③", "Ⅻ", "½ ¾",
    "🐱", "🐱🐶", "a 🐱 cat", "👍🏽", "👨‍👩‍👧‍👦", "🇯🇵🇫🇷", "❤️", "☀︎", "★☆", "♥", "→←↑↓", "∑∫√∞", "°C", "™®©",
    "ﬁne ﬂowers", "Ĳssel", "Ⅸ", "µ", "Ω", "K", "ℌ",
    "Ã©tÃ©", "cafÃ©", "â€œmojibakeâ€\x9d", "Ã¼ber",
    "&amp;", "&lt;b&gt;bold&lt;/b&gt;", "fish &amp; chips", "&#39;quoted&#39;", "&quot;hi&quot;", "&nbsp;space",
    "&amp;amp;", "<b>bold</b> &amp; more", "&copy; 2024", "&eacute;t&eacute;", "& not an entity", "AT&T",
    "1", "12", "123", "1234567890", "3.14159", "1,000,000", "-42", "+7", "1e10", "0x1F", "2024-01-01", "12:30pm",
    "v1.5", "4k", "8K UHD", "1920x1080", "50mm f/1.8", "No. 9", "#1", "100%", "$5.99", "€10", "£3", "¥100",
    "١٢٣", "४२", "一二三",
    "!!!", "???", "...", "!?!?", "---", "___", "***", "~~~", "@@@", "###", "$$$", "%%%", "^^^", "&&&", "|||",
    "hello, world!", "wait... what?!", "(parens)", "[brackets]", "{braces}", "<angles>", "a/b\\c", "semi;colon:",
    "\"double\"", "'single'", "`back`", "a--b", "a—b–c", "…", "«guillemets»", "¿qué?", "¡hola!",
    "((masterpiece))", "(best quality:1.2)", "[low quality]", "{{{epic}}}", "(a:1.5), (b:0.8)",
    "masterpiece, best quality, (ultra-detailed:1.4), [[blurry]], ((photorealistic)), 8k, RAW photo",
    "(((1girl))), solo, long_hair, blue_eyes, looking_at_viewer, smile, (detailed face:1.3)",
    "portrait of a woman, by greg rutkowski and alphonse mucha, (art nouveau:1.1), [sketch:painting:0.5]",
    "<lora:styleX:0.7> a castle, BREAK sunset sky", "AND", "a cat AND a dog",
    "hyphen-ated words", "under_score_words", "camelCaseWords", "snake_case_AND_CAPS", "e-mail", "co-op",
    "www.example.com", "https://example.com/path?x=1&y=2", "user@example.com", "#hashtag", "@mention",
    "tab\tseparated\tvalues", "line\nbreaks\nhere", "mixed \t \n \r whitespace", "trailing   ", "   leading",
    "x" * 40, "ab" * 30, "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40",
    " ".join(["cat"] * 74),
    " ".join(["cat"] * 75),
    " ".join(["cat"] * 76),
    " ".join(["cat"] * 100),
    "9" * 80,
    "🐱" * 40,
    "!" * 200,
]

WORDS = (
    "a an the of in on at with by for from and or but photo painting drawing sketch render portrait landscape "
    "cat dog bird horse fish tree flower sunflower rose forest mountain river ocean sea sky cloud sun moon star "
    "city street house castle tower bridge car train ship robot astronaut knight wizard dragon girl boy woman man "
    "old young happy sad red orange yellow green blue purple pink black white golden silver dark bright neon "
    "detailed highly intricate beautiful epic dramatic cinematic lighting volumetric fog rain snow night sunset "
    "sunrise morning evening watercolor oil acrylic digital concept art trending artstation unreal engine octane "
    "hdr 8k 4k ultra realistic photorealistic surreal abstract minimalist baroque renaissance impressionist cubist "
    "by greg rutkowski alphonse mucha studio ghibli pixar van gogh monet rembrandt vermeer hokusai lovecraft "
    "steampunk cyberpunk vaporwave synthwave fantasy scifi horror noir vintage retro futuristic ancient medieval"
).split()
UNICODE_POOL = (
    "é è ê ë à â ä ç ñ ö ü ß ø å æ œ ł ž š č ř ğ ı İ ş ą ę ő ű ē ā ī ū "
    "日 本 語 中 文 字 한 국 어 ア イ ウ あ い う ж ы щ я ω λ π Σ α β γ δ א ב ع ب "
    "🐱 🐶 🌻 🌙 ⭐ 🔥 💧 🎨 🏰 🚀 🤖 👍 ✨ ❄️ ☕ ♪ ♫ ★ → ∞ ≈ ≠ ± × ÷ ° ‰ § ¶ † ‡ • … ‘ ’ “ ” « » ¿ ¡ ﬁ ｆ １ ①"
).split()
PUNCT_POOL = list(",.;:!?-_()[]{}<>/\\|@#$%^&*+=~`'\"") + ["...", "!!", "?!", "--", "(( ", " ))", ":1.2)", "&amp;", "&lt;", "&#39;"]
WHITESPACE_POOL = [" ", " ", " ", "  ", "\t", "\n", " \n ", "\r\n", "\u00a0", "   \t "]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'LL"]


def generated_cases(rng: random.Random, count: int) -> list:
    out = []
    kinds = ["prompt", "a1111", "unicode", "punct", "numbers", "whitespace", "contraction", "case", "long", "mixed"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        n = rng.randint(1, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        if kind == "prompt":
            text = " ".join(words)
            if rng.random() < 0.5:
                text = ", ".join(" ".join(words[j : j + 3]) for j in range(0, n, 3))
        elif kind == "a1111":
            parts = []
            for w in words:
                r = rng.random()
                if r < 0.3:
                    parts.append(f"({w}:{rng.uniform(0.3, 1.8):.{rng.randint(1, 2)}f})")
                elif r < 0.45:
                    d = rng.randint(1, 3)
                    parts.append("(" * d + w + ")" * d)
                elif r < 0.55:
                    parts.append("[" + w + "]")
                elif r < 0.6:
                    parts.append("{" + w + "}")
                else:
                    parts.append(w)
            text = rng.choice([", ", ",", " ", " , "]).join(parts)
        elif kind == "unicode":
            text = "".join(
                rng.choice(UNICODE_POOL) + (rng.choice(WORDS) if rng.random() < 0.5 else "") + rng.choice(["", " ", " "])
                for _ in range(n)
            )
        elif kind == "punct":
            text = "".join(rng.choice(WORDS) + rng.choice(PUNCT_POOL) * rng.randint(1, 3) for _ in range(n))
        elif kind == "numbers":
            pieces = []
            for w in words:
                r = rng.random()
                if r < 0.25:
                    pieces.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
                elif r < 0.4:
                    pieces.append(f"{rng.uniform(-100, 100):.{rng.randint(1, 4)}f}")
                elif r < 0.5:
                    pieces.append(w + str(rng.randint(0, 99)))
                elif r < 0.6:
                    pieces.append(f"{rng.randint(1, 4096)}x{rng.randint(1, 4096)}")
                else:
                    pieces.append(w)
            text = " ".join(pieces)
        elif kind == "whitespace":
            text = rng.choice(WHITESPACE_POOL) * rng.randint(0, 2)
            text += "".join(w + rng.choice(WHITESPACE_POOL) for w in words)
        elif kind == "contraction":
            text = " ".join(w + (rng.choice(CONTRACTIONS) if rng.random() < 0.4 else "") for w in words)
        elif kind == "case":
            text = " ".join(words)
            text = "".join(c.upper() if rng.random() < 0.5 else c for c in text)
        elif kind == "long":
            m = rng.randint(40, 110)
            text = ", ".join(rng.choice(WORDS) for _ in range(m))
        else:
            pools = [WORDS, UNICODE_POOL, PUNCT_POOL, WHITESPACE_POOL, CONTRACTIONS, [str(d) for d in range(10)]]
            text = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 30)))
        out.append(text)
    return out


def write_cases() -> None:
    from tokenizers import Tokenizer

    rng = random.Random(20240611)
    texts = list(dict.fromkeys(HAND_WRITTEN + generated_cases(rng, 1150)))
    slow = SlowClipTokenizer()
    fast = Tokenizer.from_file(str(TOKENIZER_JSON))
    fast.enable_truncation(CONTEXT_LENGTH)
    cases, differing = [], []
    for text in texts:
        ids = slow.encode(text)
        fast_ids = fast.encode(text).ids
        assert len(ids) <= CONTEXT_LENGTH and ids[0] == BOS_ID and ids[-1] == EOS_ID
        case = {"text": text, "ids": ids}
        if fast_ids != ids:
            case["fast_ids"] = fast_ids
            differing.append(case)
        cases.append(case)
    path = FIXTURES / "tokenizer" / "cases.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cases, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"cases: {len(cases)} strings, {len(differing)} differ between slow (ftfy) and fast; {path.stat().st_size} bytes")
    for case in differing[:40]:
        print(f"  differs: {case['text']!r}\n    slow {case['ids']}\n    fast {case['fast_ids']}")


# ----------------------------------------------------------------------------------------------
# Tiny random-weight CLIP checkpoints and their reference activations.
# ----------------------------------------------------------------------------------------------

TINY_MODELS = {
    "tiny-clip-quickgelu": dict(
        seed=1234,
        dtype="float16",
        text=dict(
            vocab_size=49408, hidden_size=16, num_attention_heads=2, num_hidden_layers=2, intermediate_size=40,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
        ),
        vision=dict(
            hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=64,
            image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        ),
        projection_dim=24,
    ),
    "tiny-clip-gelu": dict(
        seed=5678,
        dtype="float32",
        text=dict(
            vocab_size=1000, hidden_size=48, num_attention_heads=4, num_hidden_layers=3, intermediate_size=96,
            max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
            bos_token_id=998, eos_token_id=500, pad_token_id=1,
        ),
        vision=dict(
            hidden_size=64, num_attention_heads=4, num_hidden_layers=3, intermediate_size=128,
            image_size=48, patch_size=16, hidden_act="gelu", layer_norm_eps=1e-5,
        ),
        projection_dim=40,
    ),
}
LOGIT_SCALE_LOG = 2.5  # stored parameter; logits use exp(2.5) = 12.18...
QUICKGELU_PROMPTS = ["a photo of a cat", "sunflower oil painting, highly detailed", ""]


def reinit_weights(model, torch) -> None:
    """Non-default random weights so every parameter (incl. layer-norm affine) matters in the references."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(LOGIT_SCALE_LOG)
            elif "layer_norm" in name or "layernorm" in name or "layrnorm" in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif "position_embedding" in name:
                p.copy_(0.05 * torch.randn_like(p))
            else:  # linear / conv / token embedding / class embedding / projections
                p.copy_(0.1 * torch.randn_like(p))


def gelu_input_ids(torch, cfg) -> "torch.Tensor":
    gen = torch.Generator().manual_seed(99)
    bos, eos, pad = cfg["bos_token_id"], cfg["eos_token_id"], cfg["pad_token_id"]
    rows = []
    for length in (5, 12, 77):
        body = torch.randint(2, 1000, (length - 2,), generator=gen)
        body[body == eos] = 501  # the eos id appears only where we put it
        body[body == bos] = 997
        row = torch.full((77,), pad, dtype=torch.int64)
        row[0] = bos
        row[1 : length - 1] = body
        row[length - 1] = eos
        rows.append(row)
    # Row 1 (length 12) holds the largest id 999 before its eos: argmax pooling would pick the wrong token.
    rows[1][5] = 999
    ids = torch.stack(rows)
    assert (ids[1] == 999).nonzero()[0, 0] < (ids[1] == eos).nonzero()[0, 0]
    assert ids[2, 76] == eos and (ids[2] == eos).sum() == 1
    return ids


def make_tiny_model(name: str, spec: dict) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPModel

    out_dir = FIXTURES / name
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec["seed"])
    config = CLIPConfig(
        text_config=spec["text"],
        vision_config=spec["vision"],
        projection_dim=spec["projection_dim"],
        logit_scale_init_value=LOGIT_SCALE_LOG,
    )
    config.text_config.projection_dim = spec["projection_dim"]
    config.vision_config.projection_dim = spec["projection_dim"]
    model = CLIPModel(config)
    reinit_weights(model, torch)
    model.to(getattr(torch, spec["dtype"]))
    model.save_pretrained(out_dir, safe_serialization=True)
    for extra in out_dir.iterdir():
        if extra.name not in ("config.json", "model.safetensors", "reference.safetensors", "param_grads.safetensors"):
            extra.unlink()

    # References come from the checkpoint as stored (f16-rounded for quickgelu), upcast to f32.
    model = CLIPModel.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    tcfg = spec["text"]

    if name == "tiny-clip-quickgelu":
        slow = SlowClipTokenizer()
        rows = [slow.encode(t) for t in QUICKGELU_PROMPTS]
        input_ids = torch.full((3, 77), tcfg["pad_token_id"], dtype=torch.int64)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
    else:
        input_ids = gelu_input_ids(torch, tcfg)

    s = spec["vision"]["image_size"]
    pixel_values = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(spec["seed"] + 1))

    with torch.no_grad():
        t_out = model.text_model(input_ids=input_ids, output_hidden_states=True)
        text_embeds = model.text_projection(t_out.pooler_output)
        v_out = model.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        image_embeds = model.visual_projection(v_out.pooler_output)
        full = model(input_ids=input_ids, pixel_values=pixel_values)

        # The public feature API must agree with the tower + projection computed above.
        tf = model.get_text_features(input_ids=input_ids)
        tf = tf.pooler_output if hasattr(tf, "pooler_output") else tf
        imf = model.get_image_features(pixel_values=pixel_values)
        imf = imf.pooler_output if hasattr(imf, "pooler_output") else imf
        assert torch.allclose(tf, text_embeds) and torch.allclose(imf, image_embeds)

        # Pin down the hidden-state conventions documented in the README.
        t_hs = torch.stack(t_out.hidden_states)
        v_hs = torch.stack(v_out.hidden_states)
        n_t, n_v = tcfg["num_hidden_layers"], spec["vision"]["num_hidden_layers"]
        assert t_hs.shape[0] == n_t + 1 and v_hs.shape[0] == n_v + 1
        assert torch.allclose(t_hs[0], model.text_model.embeddings(input_ids=input_ids))
        assert torch.allclose(t_out.last_hidden_state, model.text_model.final_layer_norm(t_hs[-1]))
        assert torch.allclose(
            v_hs[0], model.vision_model.pre_layrnorm(model.vision_model.embeddings(pixel_values))
        )
        assert torch.equal(v_out.last_hidden_state, v_hs[-1])
        assert torch.allclose(v_out.pooler_output, model.vision_model.post_layernorm(v_hs[-1][:, 0]))
        first_eos = (input_ids == tcfg["eos_token_id"]).int().argmax(-1)
        assert torch.allclose(t_out.pooler_output, t_out.last_hidden_state[torch.arange(3), first_eos])

        logit_scale = model.logit_scale.exp()
        ie = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        te = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        assert torch.allclose(full.logits_per_image, logit_scale * ie @ te.T, atol=1e-5)

    px = pixel_values.clone().requires_grad_(True)
    for p in model.parameters():
        p.requires_grad_(False)
    emb = model.get_image_features(pixel_values=px)
    emb = emb.pooler_output if hasattr(emb, "pooler_output") else emb
    loss = torch.nn.functional.cosine_similarity(emb, text_embeds[0:1].detach(), dim=-1).sum()
    loss.backward()
    grad_pixels = px.grad.detach()
    assert grad_pixels.abs().max() > 0

    tensors = {
        "input_ids": input_ids.to(torch.int64),
        "text_hidden_states": t_hs,
        "text_last_hidden_state": t_out.last_hidden_state,
        "text_pooled": t_out.pooler_output,
        "text_embeds": text_embeds,
        "pixel_values": pixel_values,
        "vision_hidden_states": v_hs,
        "vision_last_hidden_state": v_out.last_hidden_state,
        "vision_pooled": v_out.pooler_output,
        "image_embeds": image_embeds,
        "logits_per_image": full.logits_per_image,
        "logits_per_text": full.logits_per_text,
        "logit_scale": logit_scale.reshape(()),
        "grad_pixels_loss": loss.detach().reshape(()),
        "grad_pixels": grad_pixels,
    }
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(out_dir / "reference.safetensors"), metadata={"generator": "tools/make_fixtures.py"})
    print(f"{name}: stored {spec['dtype']}; reference tensors:")
    for k, v in tensors.items():
        print(f"  {k:26s} {str(v.dtype):14s} {list(v.shape)}")
    print(f"  logit_scale={logit_scale.item():.6f} loss={loss.item():.6f} |grad|max={grad_pixels.abs().max().item():.3e}")
    print(f"  logits_per_image={full.logits_per_image.tolist()}")


def make_models() -> None:
    import torch

    torch.set_num_threads(2)
    for name, spec in TINY_MODELS.items():
        make_tiny_model(name, spec)


def make_param_grads() -> None:
    """Gradients of every weight of the committed tiny-clip-quickgelu checkpoint (read, not
    remade), so tests can prove that training (`clipguide train`, which differentiates the same
    model code through `Var`s) computes transformers' gradients."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPModel

    torch.set_num_threads(2)
    out_dir = FIXTURES / "tiny-clip-quickgelu"
    model = CLIPModel.from_pretrained(out_dir, dtype=torch.float32, attn_implementation="eager").eval()
    s = model.config.vision_config.image_size
    p = model.config.projection_dim
    g = torch.Generator().manual_seed(7)
    pixel_values = torch.randn(3, 3, s, s, generator=g)
    # Three captions padded with EOS (the trainer pads to the longest caption the same way).
    from tokenizers import Tokenizer

    fast = Tokenizer.from_file(str(TOKENIZER_JSON))
    rows = [fast.encode(t).ids for t in ["a red circle", "two blue stars at the top left", "ring"]]
    width = max(len(r) for r in rows)
    input_ids = torch.full((3, width), EOS_ID, dtype=torch.int64)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r)
    w_image = torch.randn(3, p, generator=g)
    w_text = torch.randn(3, p, generator=g)
    w_logits = torch.randn(3, 3, generator=g)
    image = model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)
    text = model.text_projection(model.text_model(input_ids=input_ids).pooler_output)
    ie = image / image.norm(dim=-1, keepdim=True)
    te = text / text.norm(dim=-1, keepdim=True)
    # Every weight, the temperature included, reaches this scalar.
    loss = (ie * w_image).sum() + (te * w_text).sum() + (model.logit_scale.exp() * (ie @ te.T) * w_logits).sum()
    loss.backward()
    tensors = {
        "pixel_values": pixel_values,
        "input_ids": input_ids,
        "w_image": w_image,
        "w_text": w_text,
        "w_logits": w_logits,
        "loss": loss.detach().reshape(()),
    }
    missing = [n for n, q in model.named_parameters() if q.grad is None]
    assert not missing, f"no gradient for {missing}"
    token = "text_model.embeddings.token_embedding.weight"
    for n, q in model.named_parameters():
        if n != token:
            tensors["grad." + n] = q.grad
    # The token table's gradient is zero outside the ids used; keep those rows only (3 MB → 2 KB).
    used = torch.unique(input_ids)
    grad = model.text_model.embeddings.token_embedding.weight.grad
    assert grad[[i for i in range(grad.shape[0]) if i not in set(used.tolist())]].abs().max() == 0
    tensors["grad_rows_ids." + token] = used
    tensors["grad_rows." + token] = grad[used]
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(out_dir / "param_grads.safetensors"), metadata={"generator": "tools/make_fixtures.py grads"})
    print(f"tiny-clip-quickgelu/param_grads.safetensors: loss={loss.item():.6f}, {len(tensors) - 7} gradient tensors")


# ----------------------------------------------------------------------------------------------
# Image preprocessing references.
# ----------------------------------------------------------------------------------------------

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def preprocess_images() -> dict:
    import numpy as np
    from PIL import Image, ImageDraw

    def gradient(w, h, seed):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        rgb = np.stack(
            [255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1), 255 * (0.5 + 0.5 * np.sin((x + 2 * y) / 9.0 + seed))],
            axis=-1,
        )
        return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")

    landscape = gradient(300, 200, 0)
    d = ImageDraw.Draw(landscape)
    d.ellipse((40, 30, 140, 130), fill=(250, 20, 30))
    d.rectangle((180, 60, 280, 180), fill=(10, 200, 40), outline=(0, 0, 0), width=3)
    d.line((0, 199, 299, 0), fill=(255, 255, 255), width=2)
    portrait = gradient(200, 300, 1)
    d = ImageDraw.Draw(portrait)
    d.polygon([(100, 20), (180, 280), (20, 280)], fill=(30, 30, 220))
    d.ellipse((70, 120, 130, 180), fill=(255, 255, 0))
    tiny = gradient(40, 25, 2)
    d = ImageDraw.Draw(tiny)
    d.rectangle((5, 5, 15, 20), fill=(0, 0, 0))
    d.point([(30, 10), (31, 11), (32, 12)], fill=(255, 255, 255))
    rgba = np.array(gradient(64, 64, 3).convert("RGBA"))
    yy, xx = np.mgrid[0:64, 0:64]
    alpha = np.clip(255 * xx / 63.0, 0, 255)
    alpha[(yy - 32) ** 2 + (xx - 32) ** 2 < 100] = 255  # opaque disc
    alpha[:16, :16] = 0  # fully transparent corner whose hidden colour must not leak
    rgba[..., 3] = np.rint(alpha).astype(np.uint8)
    rgba[:16, :16, :3] = (255, 0, 255)
    return {
        "landscape_300x200": landscape,
        "portrait_200x300": portrait,
        "tiny_40x25": tiny,
        "rgba_64x64": Image.fromarray(rgba, "RGBA"),
    }


def manual_clip_preprocess(img, size: int):
    """The processor's pipeline spelled out (documented in the README); checked against the processor."""
    import numpy as np
    from PIL import Image

    if img.mode != "RGB":
        # transformers 5 composites transparency onto white (transformers 4 dropped the alpha channel).
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), rgba).convert("RGB")
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = img.resize((nw, nh), Image.BICUBIC)  # PIL bicubic on uint8, result rounded to uint8
    top, left = (nh - size) // 2, (nw - size) // 2
    x = np.asarray(img, dtype=np.float64)[top : top + size, left : left + size] / 255.0
    return ((x - np.array(CLIP_MEAN)) / np.array(CLIP_STD)).transpose(2, 0, 1).astype(np.float32)


def make_preprocess() -> None:
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file
    # The PIL backend is the classic CLIPImageProcessor pipeline; pinning it keeps the numbers
    # independent of whether torchvision happens to be installed (transformers 5 prefers it).
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor

    torch.set_num_threads(2)
    out_dir = FIXTURES / "preprocess"
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}, do_convert_rgb=True
    )
    assert np.allclose(proc.image_mean, CLIP_MEAN) and np.allclose(proc.image_std, CLIP_STD)
    tensors = {}
    for name, img in preprocess_images().items():
        path = out_dir / f"{name}.png"
        img.save(path, optimize=False, compress_level=9)
        loaded = Image.open(path)
        loaded.load()
        pv = proc(images=loaded, return_tensors="pt")["pixel_values"]
        assert pv.shape == (1, 3, 64, 64), pv.shape
        tensors[f"pixel_values_{name}"] = pv[0].to(torch.float32).contiguous()
        manual = manual_clip_preprocess(loaded, 64)
        assert np.abs(manual - pv[0].numpy()).max() < 1e-5, "README's description of the pipeline is wrong"
        print(f"preprocess: {path.name} {loaded.mode} {loaded.size} -> pixel_values_{name} [3,64,64]")
    save_file(tensors, str(out_dir / "reference.safetensors"), metadata={"processor": type(proc).__name__})
    print(f"preprocess: processor class {type(proc).__name__}, resample {proc.resample}")


# ----------------------------------------------------------------------------------------------
# Published configs (reconstructed, see README) and what a parser must read from them.
# ----------------------------------------------------------------------------------------------


def _legacy_subconfig(version: str, newer_keys: bool, **values) -> dict:
    """A sub-config block as transformers 4.x serialised it: every PretrainedConfig default spelled out."""
    block = {
        "_name_or_path": "",
        "add_cross_attention": False,
        "architectures": None,
        "attention_dropout": 0.0,
        "bad_words_ids": None,
        "bos_token_id": None,
        "chunk_size_feed_forward": 0,
        "cross_attention_hidden_size": None,
        "decoder_start_token_id": None,
        "diversity_penalty": 0.0,
        "do_sample": False,
        "dropout": 0.0,
        "early_stopping": False,
        "encoder_no_repeat_ngram_size": 0,
        "eos_token_id": None,
        "finetuning_task": None,
        "forced_bos_token_id": None,
        "forced_eos_token_id": None,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1"},
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "is_decoder": False,
        "is_encoder_decoder": False,
        "label2id": {"LABEL_0": 0, "LABEL_1": 1},
        "layer_norm_eps": 1e-05,
        "length_penalty": 1.0,
        "max_length": 20,
        "min_length": 0,
        "no_repeat_ngram_size": 0,
        "num_beam_groups": 1,
        "num_beams": 1,
        "num_return_sequences": 1,
        "output_attentions": False,
        "output_hidden_states": False,
        "output_scores": False,
        "pad_token_id": None,
        "prefix": None,
        "problem_type": None,
        "pruned_heads": {},
        "remove_invalid_values": False,
        "repetition_penalty": 1.0,
        "return_dict": True,
        "return_dict_in_generate": False,
        "sep_token_id": None,
        "task_specific_params": None,
        "temperature": 1.0,
        "tie_encoder_decoder": False,
        "tie_word_embeddings": True,
        "tokenizer_class": None,
        "top_k": 50,
        "top_p": 1.0,
        "torch_dtype": None,
        "torchscript": False,
        "transformers_version": version,
        "use_bfloat16": False,
    }
    if newer_keys:  # keys PretrainedConfig gained by 4.24
        block.update(
            {
                "begin_suppress_tokens": None,
                "exponential_decay_length_penalty": None,
                "suppress_tokens": None,
                "tf_legacy_loss": False,
                "typical_p": 1.0,
            }
        )
    block.update(values)
    return dict(sorted(block.items()))


def _text_block(version, newer, **kw):
    base = dict(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_act="quick_gelu", hidden_size=512,
        intermediate_size=2048, max_position_embeddings=77, model_type="clip_text_model",
        num_attention_heads=8, num_hidden_layers=12, projection_dim=512, vocab_size=49408,
    )
    base.update(kw)
    return _legacy_subconfig(version, newer, **base)


def _vision_block(version, newer, **kw):
    base = dict(
        hidden_act="quick_gelu", hidden_size=768, image_size=224, intermediate_size=3072,
        model_type="clip_vision_model", num_attention_heads=12, num_hidden_layers=12, patch_size=32,
        projection_dim=512,
    )
    if newer:
        base["num_channels"] = 3
    base.update(kw)
    return _legacy_subconfig(version, newer, **base)


def published_configs() -> dict:
    v416 = "4.16.0.dev0"
    b32 = {
        "_name_or_path": "openai/clip-vit-base-patch32",
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": 512,
        "text_config": _text_block(v416, False),
        "text_config_dict": None,
        "transformers_version": None,
        "vision_config": _vision_block(v416, False),
        "vision_config_dict": None,
    }
    b16 = json.loads(json.dumps(b32))
    b16["_name_or_path"] = "openai/clip-vit-base-patch16"
    b16["vision_config"]["patch_size"] = 16
    l14 = {
        "_name_or_path": "clip-vit-large-patch14/",
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": 768,
        "text_config": _text_block(
            v416, False, hidden_size=768, intermediate_size=3072, num_attention_heads=12, projection_dim=768
        ),
        "text_config_dict": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "projection_dim": 768,
        },
        "torch_dtype": "float32",
        "transformers_version": None,
        "vision_config": _vision_block(
            v416, False, hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
            patch_size=14, projection_dim=768,
        ),
        "vision_config_dict": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "patch_size": 14,
            "projection_dim": 768,
        },
    }
    v424 = "4.24.0.dev0"
    h14 = {
        "_commit_hash": None,
        "_name_or_path": "",
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": 1024,
        "text_config": _text_block(
            v424, True, hidden_act="gelu", hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
            num_hidden_layers=24,
        ),
        "text_config_dict": {
            "hidden_act": "gelu",
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
        },
        "torch_dtype": "float32",
        "transformers_version": None,
        "vision_config": _vision_block(
            v424, True, hidden_act="gelu", hidden_size=1280, intermediate_size=5120, num_attention_heads=16,
            num_hidden_layers=32, patch_size=14,
        ),
        "vision_config_dict": {
            "hidden_act": "gelu",
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_attention_heads": 16,
            "num_hidden_layers": 32,
            "patch_size": 14,
        },
    }
    return {
        "openai-clip-vit-base-patch32": b32,
        "openai-clip-vit-base-patch16": b16,
        "openai-clip-vit-large-patch14": l14,
        "laion-CLIP-ViT-H-14-laion2B-s32B-b79K": h14,
    }


def _expected(text, vision, projection_dim, eos):
    t = dict(zip(["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"], text[:4]))
    t.update(vocab_size=49408, max_position_embeddings=77, hidden_act=text[4], eos_token_id=eos, pad_token_id=1)
    v = dict(zip(["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"], vision[:4]))
    v.update(patch_size=vision[4], image_size=224, hidden_act=vision[5])
    return {"text": t, "vision": v, "projection_dim": projection_dim}


# eos_token_id is what transformers resolves: 2 where the file has only the legacy text_config block
# (meaning "pool at argmax of input_ids"); 49407 where a text_config_dict exists, because transformers
# rebuilds the text config from that dict plus today's CLIPTextConfig defaults. Both pool the same
# position for real CLIP token ids (49407 is the largest id and argmax returns the first maximum).
EXPECTED_CONFIGS = {
    "openai-clip-vit-base-patch32": _expected((512, 12, 8, 2048, "quick_gelu"), (768, 12, 12, 3072, 32, "quick_gelu"), 512, 2),
    "openai-clip-vit-base-patch16": _expected((512, 12, 8, 2048, "quick_gelu"), (768, 12, 12, 3072, 16, "quick_gelu"), 512, 2),
    "openai-clip-vit-large-patch14": _expected((768, 12, 12, 3072, "quick_gelu"), (1024, 24, 16, 4096, 14, "quick_gelu"), 768, 49407),
    "laion-CLIP-ViT-H-14-laion2B-s32B-b79K": _expected((1024, 24, 16, 4096, "gelu"), (1280, 32, 16, 5120, 14, "gelu"), 1024, 49407),
}


def make_configs() -> None:
    from transformers import CLIPConfig

    out_dir = FIXTURES / "configs"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, cfg in published_configs().items():
        d = out_dir / name
        d.mkdir(exist_ok=True)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        loaded = CLIPConfig.from_pretrained(d)
        exp = EXPECTED_CONFIGS[name]
        got = {
            "text": {k: getattr(loaded.text_config, k) for k in exp["text"]},
            "vision": {k: getattr(loaded.vision_config, k) for k in exp["vision"]},
            "projection_dim": loaded.projection_dim,
        }
        print(f"configs: {name}: {json.dumps(got)}")
        assert got == exp, f"{name}: transformers read {got}, expected {exp}"
    (out_dir / "expected.json").write_text(json.dumps(EXPECTED_CONFIGS, indent=2) + "\n")
    print("configs: all four load with transformers.CLIPConfig and match expected.json")


# ----------------------------------------------------------------------------------------------

STEPS = {
    "tokenizer": build_tokenizer_json,
    "cases": write_cases,
    "models": make_models,
    "preprocess": make_preprocess,
    "configs": make_configs,
    "grads": make_param_grads,
}


def main(argv) -> None:
    steps = argv or list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        sys.exit(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    for step in steps:
        STEPS[step]()
    # Each fixture script keeps its own files under 5 MB; openclip/ and tokenizer/open_clip_ids.json
    # are tools/make_openclip_fixtures.py's.
    openclip = {FIXTURES / "openclip", FIXTURES / "tokenizer" / "open_clip_ids.json"}
    total = sum(
        f.stat().st_size
        for f in FIXTURES.rglob("*")
        if f.is_file() and not any(f == o or o in f.parents for o in openclip)
    )
    print(f"tests/fixtures total (this script's files): {total} bytes")
    if total > 5 * 1024 * 1024:
        sys.exit("tests/fixtures exceeds 5 MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
