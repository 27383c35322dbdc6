#!/usr/bin/env python3
"""Regenerate the rinna Japanese CLIP / CLOOB test fixtures of clipguide (tests/fixtures/rinna/).

    pip install torch torchvision transformers sentencepiece safetensors pillow
    python3 tools/make_rinna_fixtures.py            # everything
    python3 tools/make_rinna_fixtures.py models     # or any of: spiece models cases

rinna/japanese-clip-vit-b-16 and rinna/japanese-cloob-vit-b-16 are a transformers BertModel (text) and
ViTModel (vision), both without pooler, plus two bias-free projections, in one `pytorch_model.bin`.
rinna's own `japanese_clip` package is not on PyPI, so this script re-implements what it computes
(documented in the `rinna/` section of tests/fixtures/README.md) on top of transformers' BertModel and
ViTModel, for tiny random-weight checkpoints in rinna's file layout:

- `spiece`: trains a small sentencepiece unigram model on an inline corpus and writes it with
  rinna/japanese-roberta-base style special_tokens_map.json / tokenizer_config.json into each model folder.
- `models`: tiny-clip/ and tiny-cloob/: config.json, pytorch_model.bin and reference.safetensors.
  The references are computed from the model loaded back from the written files and from the
  committed spiece.model.
- `cases`: tokenizer_cases.json, rinna's tokenize() on ~400 strings, from the committed spiece.model.

Deterministic: fixed seeds, CPU only, 2 threads, sentencepiece trained with one thread (the script
trains it twice and checks the bytes agree). Written against torch 2.15, torchvision 0.29,
transformers 5.25, sentencepiece 0.2.3, Pillow 13.
"""

import hashlib
import io
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "rinna"
PNG_DIR = FIXTURES / "preprocess"
PNG_NAMES = ["landscape_300x200.png", "portrait_200x300.png", "tiny_40x25.png", "rgba_64x64.png"]
SIZE_LIMIT = 4_500_000  # everything under tests/fixtures/rinna/, together
CASES = OUT / "tokenizer_cases.json"
SPIECE_SOURCE = OUT / "tiny-clip" / "spiece.model"  # the committed copy every reference is computed from

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
LOGIT_SCALE_LOG = 2.5
CONTEXT_LENGTH = 77

# Special pieces, in id order after <unk>=0, <s>=1, </s>=2 (rinna/japanese-roberta-base has [CLS]=4, [MASK]=6).
SPECIAL_PIECES = ["[PAD]", "[CLS]", "[SEP]", "[MASK]"]
SPIECE_VOCAB_SIZE = 1500
SPIECE_OPTIONS = dict(
    model_type="unigram",
    vocab_size=SPIECE_VOCAB_SIZE,
    character_coverage=1.0,
    normalization_rule_name="nmt_nfkc",
    add_dummy_prefix=True,
    remove_extra_whitespaces=True,
    split_by_unicode_script=True,
    split_by_number=True,
    split_digits=False,
    byte_fallback=False,
    max_sentencepiece_length=16,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
    unk_piece="<unk>",
    bos_piece="<s>",
    eos_piece="</s>",
    user_defined_symbols=SPECIAL_PIECES,
    num_threads=1,
    input_sentence_size=0,  # use every sentence: no sampling
    shuffle_input_sentence=False,
    seed_sentencepiece_size=1_000_000,
    minloglevel=2,
)

SPECIAL_TOKENS_MAP = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
TOKENIZER_CONFIG = {
    "tokenizer_class": "T5Tokenizer",
    "do_lower_case": True,
    "extra_ids": 0,
    "additional_special_tokens": [],
    "model_max_length": 512,
    "sp_model_kwargs": {},
    **SPECIAL_TOKENS_MAP,
}

PROMPTS = [
    "「ひまわりの油絵」",
    "Kyoto, Japan at the North Pole",
    "犬の写真",
    "",
    "ＡＢＣｱｲｳ123",
    "🐱 猫がソファで寝ている　Cat!",
    "夕暮れの京都の街並み、古い木造の家々と石畳の道、遠くに見える五重塔、提灯の柔らかな光、"
    "着物を着た人々が静かに歩いている、雨上がりの空気、水たまりに映る灯り、高精細な写真、"
    "映画のような構図、東京タワーと富士山と桜の花びらが舞う春の朝、美しい油絵のように細かく描かれた風景",
]

MODELS = {
    "tiny-clip": dict(
        seed=4101,
        model_type="clip",
        projection_dim=24,
        text=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
        vision=dict(image_size=32, patch_size=8, hidden_size=48, num_hidden_layers=2, num_attention_heads=3,
                    intermediate_size=96),
        legacy_position_ids=True,  # old transformers (<4.31) stored embeddings.position_ids in the state dict
    ),
    "tiny-cloob": dict(
        seed=4202,
        model_type="cloob",
        projection_dim=16,
        text=dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=40),
        vision=dict(image_size=40, patch_size=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64),
        legacy_position_ids=False,
        init_inv_tau=30.0,
        scale_hopfield=15.0,
    ),
}


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def setup_torch():
    import torch

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    return torch


def write_json(path: Path, obj, indent=2) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# sentencepiece model, trained on an inline corpus.
# ----------------------------------------------------------------------------------------------

JA_NOUNS = (
    "犬 猫 鳥 魚 馬 牛 花 桜 ひまわり 薔薇 山 川 海 空 雲 雨 雪 風 星 月 太陽 森 木 草 石 道 橋 町 街 村 駅 電車 車 自転車 "
    "飛行機 船 家 部屋 窓 扉 机 椅子 本 写真 絵 油絵 水彩画 漫画 映画 音楽 料理 寿司 ラーメン 天ぷら お茶 コーヒー "
    "ケーキ パン 果物 りんご みかん いちご 子供 女の子 男の子 先生 学生 友達 家族 人々 侍 忍者 ロボット 宇宙 "
    "東京 京都 大阪 北海道 沖縄 富士山 東京タワー 五重塔 神社 お寺 城 庭園 公園 学校 病院 図書館 夜景 夕焼け 朝日 "
    "北極 南極 砂漠 島 湖 滝 火山 紅葉 提灯 着物 浴衣 傘 帽子 眼鏡 時計 カメラ スマートフォン コンピュータ テレビ "
    "ギター ピアノ ドラゴン 妖精 魔法使い 怪獣 宇宙船 惑星 銀河 風景 肖像画 背景 光 影 色 夢 心 春 夏 秋 冬 朝 昼 夜"
).split()
JA_ADJS = (
    "美しい 可愛い 大きな 小さな 古い 新しい 赤い 青い 白い 黒い 明るい 暗い 静かな 賑やかな 綺麗な 不思議な "
    "懐かしい 楽しい 悲しい 高い 低い 長い 短い 暖かい 寒い 柔らかな 鮮やかな 幻想的な 写実的な 巨大な 小さい"
).split()
JA_VERBS = (
    "走っている 寝ている 座っている 笑っている 泣いている 飛んでいる 泳いでいる 歩いている 食べている 見ている "
    "描かれた 撮影された 輝いている 咲いている 降っている 光っている 立っている 遊んでいる 歌っている 待っている"
).split()
JA_PARTICLES = "の が は を に で と も へ から まで".split()
JA_TEMPLATES = [
    "{a}{n}の写真",
    "{n}{p}{v}",
    "{a}{n}{p}{n2}{p2}{v}。",
    "{n}と{n2}の{a}絵",
    "「{n}」という名前の{n2}",
    "{n}、{n2}、そして{n3}。",
    "{n}の{n2}を描いた{a}油絵",
    "これは{a}{n}です。",
    "{n}が{n2}の上で{v}！",
    "{n}は{v}の？",
    "{a}{n}・{n2}・{n3}",
    "{n}〜{n2}",
    "{n}{p}{a}{n2}{p2}{v}写真、高画質",
    "{n}に{n2}がいる風景",
]
EN_WORDS = (
    "a photo of the cat dog sunflower oil painting Kyoto Japan at North Pole highly detailed beautiful portrait "
    "landscape anime style by artist trending on artstation 4k 8k HDR red blue green sky night city street "
    "Tokyo tower Mount Fuji cherry blossom temple shrine girl boy robot dragon castle river ocean snow winter "
    "summer sunset sunrise light shadow camera lens digital art illustration watercolor sketch cute small big "
    "and with in of on for from old new happy sad fantasy science fiction spaceship galaxy CLIP model image text"
).split()
EMOJI = ["🐱", "🐶", "🌻", "🌸", "🗾", "🗻", "🍣", "🍜", "🎌", "👍", "❤️", "😀", "😂", "✨", "🔥", "🎉",
         "👨‍👩‍👧", "👩‍💻", "🏳️‍🌈", "👍🏽", "🇯🇵"]
FULLWIDTH = ["ＡＢＣ", "ＸＹＺ", "ａｂｃ", "１２３", "４５６７８９０", "ｱｲｳｴｵ", "ｶﾞｷﾞｸﾞ", "ﾊﾟﾋﾟﾌﾟ", "ｷｮｳﾄ", "ﾄｳｷｮｳ",
             "！", "？", "（全角）", "＃", "％", "＆", "＠", "ｰ", "｡", "､", "｢ｶﾀｶﾅ｣"]
# Characters the generated corpus would otherwise miss, so that the tokenizer cases are not mostly <unk>
# (Greek lower case makes Python's final-sigma rule visible). Space-separated: one character each.
EXTRA_CHARS = (
    "世 吾 和 商 国 報 境 字 定 店 弧 当 意 抜 括 文 昭 波 注 漢 無 界 章 紫 言 読 輩 速 鑑 題 "
    "α β γ δ ε ζ η θ ι κ λ μ ν ξ ο π ρ σ ς τ υ φ χ ψ ω ß à é î õ ü ǆ "
    "― ‘ ’ “ ” ※ ← ↑ → ↓ ★ ☆ ♪ 〈 〉 《 》 【 】 〒 ゝ ゞ ヽ ヾ 🤣 🚀 🧑"
)
PUNCT = "、 。 「 」 『 』 ・ 〜 ！ ？ （ ） ： ； … ー ＿ ～ , . ! ? ( ) : ; - _ / ' \" # % & @ + = * [ ] < > { } |".split()


def corpus_lines() -> list:
    rnd = random.Random(20240601)
    lines = []

    def pick(xs):
        return xs[rnd.randrange(len(xs))]

    for _ in range(2600):
        t = pick(JA_TEMPLATES)
        lines.append(t.format(a=pick(JA_ADJS), n=pick(JA_NOUNS), n2=pick(JA_NOUNS), n3=pick(JA_NOUNS),
                              p=pick(JA_PARTICLES), p2=pick(JA_PARTICLES), v=pick(JA_VERBS)))
    for _ in range(900):
        k = rnd.randint(3, 10)
        words = [pick(EN_WORDS) for _ in range(k)]
        line = " ".join(words)
        if rnd.random() < 0.5:
            line = line.capitalize()
        lines.append(line + pick([".", ",", "!", "?", ""]))
    for _ in range(600):  # mixed Japanese / English / numbers / emoji / full- and half-width forms
        parts = [pick(JA_NOUNS), pick(EN_WORDS), str(rnd.randint(0, 2025)), pick(EMOJI), pick(FULLWIDTH),
                 pick(PUNCT), pick(JA_ADJS) + pick(JA_NOUNS)]
        rnd.shuffle(parts)
        lines.append(pick(["", " ", "　"]).join(parts[: rnd.randint(2, len(parts))]))
    for _ in range(300):
        lines.append(f"{rnd.randint(1, 12)}月{rnd.randint(1, 28)}日 {rnd.randint(1990, 2030)}年 "
                     f"{rnd.randint(1, 99999):,}円 {rnd.randint(0, 100)}% {rnd.random():.2f}")
    # Every kana, so that no kana is unknown.
    hira = "".join(chr(c) for c in range(0x3041, 0x3097))
    kata = "".join(chr(c) for c in range(0x30A1, 0x30FB))
    lines += [hira, kata, hira[::-1], kata[::-1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz 0123456789",
              EXTRA_CHARS]
    return lines


def train_spiece() -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus_lines()), model_writer=buf, **SPIECE_OPTIONS)
    return buf.getvalue()


def load_sp(path: Path = SPIECE_SOURCE):
    import sentencepiece as spm

    if not path.exists():
        sys.exit(f"{rel(path)} is missing: run `python3 tools/make_rinna_fixtures.py spiece` first")
    return spm.SentencePieceProcessor(model_file=str(path))


def special_ids(sp) -> dict:
    ids = {k: sp.piece_to_id(v) for k, v in SPECIAL_TOKENS_MAP.items()}
    for k, i in ids.items():
        assert sp.id_to_piece(i) == SPECIAL_TOKENS_MAP[k], (k, i)
    assert ids["unk_token"] == 0 and len(set(ids.values())) == len(ids), ids
    return ids


def _proto_fields(buf: bytes):
    """Minimal protobuf wire-format reader (the sentencepiece wheel's pb2 module needs `protobuf`)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, value


def _varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


PIECE_TYPES = {1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}


def normalizer_spec(sp) -> dict:
    """ModelProto: 1 pieces {1 piece, 2 score, 3 type}, 3 normalizer_spec {1 name, 2 precompiled_charsmap,
    3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces}, 5 denormalizer_spec."""
    pieces, norm, denorm = [], {}, None
    for field, value in _proto_fields(sp.serialized_model_proto()):
        if field == 1:
            p = dict(_proto_fields(value))
            pieces.append((p[1].decode("utf-8"), PIECE_TYPES[p.get(3, 1)]))
        elif field == 3:
            norm = dict(_proto_fields(value))
        elif field == 5:
            denorm = dict(_proto_fields(value)).get(1, b"").decode() or None
    types = {}
    for _, t in pieces:
        types[t] = types.get(t, 0) + 1
    return {
        "name": norm[1].decode(),
        "add_dummy_prefix": bool(norm.get(3, 1)),  # proto2 defaults: true, true, true
        "remove_extra_whitespaces": bool(norm.get(4, 1)),
        "escape_whitespaces": bool(norm.get(5, 1)),
        "precompiled_charsmap_bytes": len(norm.get(2, b"")),
        "denormalizer": denorm,
        "piece_types": types,
        "first_pieces": [(i, *pieces[i]) for i in range(9)],
    }


def make_spiece() -> None:
    data = train_spiece()
    again = train_spiece()
    if data != again:
        sys.exit("sentencepiece training is not deterministic within one process")
    for name in MODELS:
        d = OUT / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "spiece.model").write_bytes(data)
        write_json(d / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
        write_json(d / "tokenizer_config.json", TOKENIZER_CONFIG)
    sp = load_sp()
    assert sp.get_piece_size() == SPIECE_VOCAB_SIZE
    print(f"spiece: {len(data)} bytes, vocab {sp.get_piece_size()}, sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    print(f"  special ids: {special_ids(sp)}")
    print(f"  normalizer: {normalizer_spec(sp)}")


# ----------------------------------------------------------------------------------------------
# rinna's tokenize().
# ----------------------------------------------------------------------------------------------


def rinna_tokenize(sp, texts, ids: dict):
    """japanese_clip.tokenize: T5Tokenizer(do_lower_case) with add_special_tokens=False, max_length 76,
    padding to 76 with [PAD], then [CLS] prepended. Here: str.lower(), sp.encode, truncate, pad."""
    cls_id, pad_id = ids["cls_token"], ids["pad_token"]
    out_ids, out_mask = [], []
    for text in texts:
        pieces = sp.encode(text.lower())[: CONTEXT_LENGTH - 1]
        n = len(pieces)
        out_ids.append([cls_id] + pieces + [pad_id] * (CONTEXT_LENGTH - 1 - n))
        out_mask.append([1] * (n + 1) + [0] * (CONTEXT_LENGTH - 1 - n))
    return out_ids, out_mask


# ----------------------------------------------------------------------------------------------
# Tiny models.
# ----------------------------------------------------------------------------------------------


def text_config(spec: dict, vocab_size: int, pad_id: int) -> dict:
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": spec["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": spec["intermediate_size"],
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 80,
        "model_type": "bert",
        "num_attention_heads": spec["num_attention_heads"],
        "num_hidden_layers": spec["num_hidden_layers"],
        "pad_token_id": pad_id,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab_size,
    }


def vision_config(spec: dict) -> dict:
    return {
        "architectures": ["ViTModel"],
        "attention_probs_dropout_prob": 0.0,
        "encoder_stride": spec["patch_size"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": spec["hidden_size"],
        "image_size": spec["image_size"],
        "initializer_range": 0.02,
        "intermediate_size": spec["intermediate_size"],
        "layer_norm_eps": 1e-12,
        "model_type": "vit",
        "num_attention_heads": spec["num_attention_heads"],
        "num_channels": 3,
        "num_hidden_layers": spec["num_hidden_layers"],
        "patch_size": spec["patch_size"],
        "qkv_bias": True,
    }


def full_config(spec: dict, vocab_size: int, pad_id: int) -> dict:
    cfg = {
        "architectures": ["CLIPModel" if spec["model_type"] == "clip" else "CLOOBModel"],
        "initializer_factor": 1.0,
        "model_type": spec["model_type"],
        "projection_dim": spec["projection_dim"],
        "text_config": text_config(spec["text"], vocab_size, pad_id),
        "torch_dtype": "float32",
        "vision_config": vision_config(spec["vision"]),
    }
    if spec["model_type"] == "clip":
        # The config's init value is NOT what the checkpoint holds: logit_scale (tensor) is 2.5.
        cfg["logit_scale_init_value"] = 2.6592
    else:
        cfg["init_inv_tau"] = spec["init_inv_tau"]
        cfg["scale_hopfield"] = spec["scale_hopfield"]
    return dict(sorted(cfg.items()))


class RinnaDualEncoder:
    """What japanese_clip's CLIPModel / CLOOBModel compute, on transformers' BertModel and ViTModel."""

    def __init__(self, cfg: dict, torch):
        from transformers import BertConfig, BertModel, ViTConfig, ViTModel

        tc = BertConfig.from_dict(cfg["text_config"])
        vc = ViTConfig.from_dict(cfg["vision_config"])
        tc._attn_implementation = "eager"
        vc._attn_implementation = "eager"
        self.torch = torch
        self.cfg = cfg
        self.text_model = BertModel(tc, add_pooling_layer=False).eval()
        self.vision_model = ViTModel(vc, add_pooling_layer=False).eval()
        p = cfg["projection_dim"]
        self.text_projection = torch.nn.Linear(tc.hidden_size, p, bias=False)
        self.visual_projection = torch.nn.Linear(vc.hidden_size, p, bias=False)
        self.logit_scale = torch.nn.Parameter(torch.tensor(0.0)) if cfg["model_type"] == "clip" else None
        self.modules = {
            "text_model": self.text_model,
            "vision_model": self.vision_model,
            "text_projection": self.text_projection,
            "visual_projection": self.visual_projection,
        }

    def named_parameters(self):
        for prefix, m in self.modules.items():
            for n, p in m.named_parameters():
                yield f"{prefix}.{n}", p, m
        if self.logit_scale is not None:
            yield "logit_scale", self.logit_scale, None

    def state_dict(self) -> dict:
        return {name: p.detach().clone().contiguous() for name, p, _ in self.named_parameters()}

    def load_state_dict(self, sd: dict) -> None:
        ours = {name: p for name, p, _ in self.named_parameters()}
        assert set(ours) == set(sd), set(ours) ^ set(sd)
        with self.torch.no_grad():
            for k, p in ours.items():
                assert p.shape == sd[k].shape and sd[k].dtype == self.torch.float32, k
                p.copy_(sd[k])

    def text_outputs(self, input_ids, attention_mask):
        n, length = input_ids.shape
        position_ids = self.torch.arange(length).unsqueeze(0).expand(n, -1)
        last = self.text_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        return last, self.text_projection(last[:, 0])

    def image_outputs(self, pixel_values):
        last = self.vision_model(pixel_values=pixel_values).last_hidden_state
        return last, self.visual_projection(last[:, 0])

    def scale(self):
        if self.cfg["model_type"] == "clip":
            return self.logit_scale.exp()
        return self.torch.tensor(float(self.cfg["init_inv_tau"]))


# transformers 5 renamed ViT's weights; rinna's checkpoint was saved by transformers 4.x with the old names,
# which transformers 5 renames on load (conversion_mapping.py, "ViTModel"). Per layer: new suffix -> old suffix.
VIT_V4_NAMES = {
    "attention.q_proj": "attention.attention.query",
    "attention.k_proj": "attention.attention.key",
    "attention.v_proj": "attention.attention.value",
    "attention.o_proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
    "layernorm_before": "layernorm_before",
    "layernorm_after": "layernorm_after",
}


def to_v4_name(name: str) -> str:
    """transformers-5 parameter name (our modules) -> the transformers-4 name stored in pytorch_model.bin."""
    import re

    m = re.fullmatch(r"vision_model\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
    if not m:
        return name
    return f"vision_model.encoder.layer.{m.group(1)}.{VIT_V4_NAMES[m.group(2)]}.{m.group(3)}"


def perturb(model: RinnaDualEncoder, gen, torch) -> dict:
    """Move every parameter away from its init so that a missing or misapplied tensor shows."""
    kinds = {}
    with torch.no_grad():
        for name, p, _ in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_ln = "LayerNorm" in name or "layernorm" in name
            if name == "logit_scale":
                p.fill_(LOGIT_SCALE_LOG)
                kind = "logit_scale = 2.5"
            elif is_ln and leaf == "weight":
                p.copy_(1.0 + 0.1 * noise)
                kind = "LayerNorm weight = 1 + 0.1 N"
            elif leaf == "bias":
                p.copy_(0.05 * noise)
                kind = "bias (LayerNorm too) = 0.05 N"
            elif name.endswith(("position_embeddings.weight", "token_type_embeddings.weight")) \
                    or leaf in ("cls_token", "position_embeddings"):
                p.add_(0.05 * noise)
                kind = "position / token-type / [CLS] embedding: init + 0.05 N"
            elif name.endswith("word_embeddings.weight"):
                p.copy_(0.1 * noise)
                kind = "word embedding = 0.1 N"
            else:  # linear / conv / projection weights: variance preserving
                p.copy_(noise / p[0].numel() ** 0.5)
                kind = "weight = N(0, 1/fan_in)"
            kinds[name] = kind
    return kinds


def preprocess_transform(size: int):
    from torchvision import transforms as T
    from torchvision.transforms import InterpolationMode

    return T.Compose([
        T.Resize(size, interpolation=InterpolationMode.BILINEAR),
        T.CenterCrop(size),
        lambda im: im.convert("RGB"),
        T.ToTensor(),
        T.Normalize(OPENAI_MEAN, OPENAI_STD),
    ])


def manual_preprocess(img, size: int):
    """The transform spelled out as in the README; checked against torchvision."""
    import numpy as np
    from PIL import Image

    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = img.resize((nw, nh), Image.BILINEAR)  # RGBA is resized premultiplied inside PIL
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    img = img.crop((left, top, left + size, top + size)).convert("RGB")  # drops alpha, no compositing
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(OPENAI_MEAN, dtype=np.float32)) / np.array(OPENAI_STD, dtype=np.float32)
    return x.transpose(2, 0, 1)


def load_images(size: int, torch):
    import numpy as np
    from PIL import Image

    tf = preprocess_transform(size)
    out = []
    for name in PNG_NAMES:
        x = tf(Image.open(PNG_DIR / name))
        manual = manual_preprocess(Image.open(PNG_DIR / name), size)
        err = float(np.abs(manual - x.numpy()).max())
        assert err < 1e-5, f"README's description of the preprocessing is wrong for {name}: {err}"
        out.append(x)
    # The transparent magenta corner of rgba_64x64 comes out black (premultiplied resize, then alpha dropped).
    black = (torch.zeros(3) - torch.tensor(OPENAI_MEAN)) / torch.tensor(OPENAI_STD)
    corner = out[PNG_NAMES.index("rgba_64x64.png")][:, :2, :2]
    assert torch.allclose(corner, black[:, None, None].expand_as(corner), atol=1e-6), corner[:, 0, 0]
    return torch.stack(out)


def check_towers_with_transformers(out_dir: Path, cfg: dict, model: RinnaDualEncoder, torch) -> None:
    """Independent check of the stored names: transformers' own from_pretrained loads each tower's part of
    pytorch_model.bin (ViT through its transformers-4 -> 5 renaming) with nothing missing or unexpected."""
    import tempfile

    from transformers import BertModel, ViTModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    sd = torch.load(str(out_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    for prefix, cls, sub_cfg, ours in (("text_model.", BertModel, "text_config", model.text_model),
                                       ("vision_model.", ViTModel, "vision_config", model.vision_model)):
        with tempfile.TemporaryDirectory() as tmp:
            part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            torch.save(part, str(Path(tmp) / "pytorch_model.bin"))
            write_json(Path(tmp) / "config.json", cfg[sub_cfg])
            hf, info = cls.from_pretrained(tmp, add_pooling_layer=False, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        theirs = hf.state_dict()
        for k, v in ours.state_dict().items():
            assert torch.equal(theirs[k], v), f"{prefix}{k}: transformers loads something else"


def write_model(name: str, spec: dict) -> None:
    from safetensors.torch import save_file

    torch = setup_torch()
    out_dir = OUT / name
    sp = load_sp()
    ids = special_ids(sp)
    cfg = full_config(spec, sp.get_piece_size(), ids["pad_token"])

    # 1. Build, perturb, store as rinna did: config.json + torch.save(state_dict) in pytorch_model.bin.
    torch.manual_seed(spec["seed"])
    model = RinnaDualEncoder(cfg, torch)
    kinds = perturb(model, torch.Generator().manual_seed(spec["seed"] + 1), torch)
    sd = model.state_dict()
    stored = {to_v4_name(k): v for k, v in sd.items()}
    assert len(stored) == len(sd)
    if spec["legacy_position_ids"]:
        stored["text_model.embeddings.position_ids"] = torch.arange(cfg["text_config"]["max_position_embeddings"]).unsqueeze(0)
    write_json(out_dir / "config.json", cfg)
    torch.save(dict(sorted(stored.items())), str(out_dir / "pytorch_model.bin"))
    del model

    # 2. Load back from the files; everything below comes from this model.
    cfg = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    loaded = torch.load(str(out_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    pos = loaded.pop("text_model.embeddings.position_ids", None)
    assert (pos is not None) == spec["legacy_position_ids"]
    if pos is not None:
        assert pos.dtype == torch.int64 and torch.equal(pos[0], torch.arange(pos.shape[1]))
    model = RinnaDualEncoder(cfg, torch)
    v5_names = {to_v4_name(k): k for k, _, _ in model.named_parameters()}
    assert set(v5_names) == set(loaded), set(v5_names) ^ set(loaded)
    loaded = {v5_names[k]: v for k, v in loaded.items()}
    model.load_state_dict(loaded)
    for k, v in sd.items():
        assert torch.equal(loaded[k], v), f"{k} did not round-trip"
    check_towers_with_transformers(out_dir, cfg, model, torch)
    for p in (p for _, p, _ in model.named_parameters()):
        p.requires_grad_(False)

    s = cfg["vision_config"]["image_size"]
    ids_list, mask_list = rinna_tokenize(sp, PROMPTS, ids)
    input_ids = torch.tensor(ids_list, dtype=torch.int64)
    attention_mask = torch.tensor(mask_list, dtype=torch.int64)
    assert len(sp.encode(PROMPTS[-1].lower())) > CONTEXT_LENGTH - 1, "the last prompt must be truncated"
    assert attention_mask[-1].all() and attention_mask[3].sum() == 1
    with torch.no_grad():
        text_last, text_embeds = model.text_outputs(input_ids, attention_mask)
        pixel_values = load_images(s, torch)
        vision_last, image_embeds = model.image_outputs(pixel_values)
        scale = model.scale()
        ie = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
        te = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
        logits_per_image = scale * ie @ te.T
        # Padding must matter only through the mask: the same prompt without padding gives the same embedding.
        n2 = int(attention_mask[2].sum())
        _, short = model.text_outputs(input_ids[2:3, :n2], attention_mask[2:3, :n2])
        assert torch.allclose(short, text_embeds[2:3], atol=1e-5)
        cos_img = ie @ ie.T
        cos_txt = te @ te.T
        off = ~torch.eye(len(PNG_NAMES), dtype=torch.bool)
        assert cos_img[off].max() < 0.99, cos_img
        assert cos_txt[~torch.eye(len(PROMPTS), dtype=torch.bool)].max() < 0.99, cos_txt

    gpv = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(spec["seed"] + 3))
    px = gpv.clone().requires_grad_(True)
    _, feats = model.image_outputs(px)
    loss = torch.nn.functional.cosine_similarity(feats, text_embeds[0:1].detach(), dim=-1).sum()
    loss.backward()
    assert px.grad.abs().max() > 0

    tensors = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "text_last_hidden_state": text_last,
        "text_embeds": text_embeds,
        "pixel_values": pixel_values,
        "vision_last_hidden_state": vision_last,
        "image_embeds": image_embeds,
        "logit_scale": scale.reshape(()),
        "logits_per_image": logits_per_image,
        "grad_pixel_values": gpv,
        "grad_loss": loss.reshape(()),
        "grad_pixels": px.grad,
    }
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert v.dtype == (torch.int64 if k in ("input_ids", "attention_mask") else torch.float32), k
        assert torch.isfinite(v.float()).all(), k
    save_file(tensors, str(out_dir / "reference.safetensors"), metadata={"generator": "tools/make_rinna_fixtures.py"})
    write_json(out_dir / "prompts.json", PROMPTS, indent=1)
    write_json(out_dir / "images.json", PNG_NAMES, indent=1)

    print(f"{name}: model_type {cfg['model_type']}, {len(stored)} stored tensors, vocab {cfg['text_config']['vocab_size']}")
    counts = {}
    for k in kinds.values():
        counts[k] = counts.get(k, 0) + 1
    print(f"  perturbation: {counts}")
    for k, v in tensors.items():
        print(f"  {k:26s} {str(v.dtype):14s} {list(v.shape)}")
    print(f"  logit scale {scale.item():.6f}")
    print(f"  logits_per_image={[[round(x, 3) for x in r] for r in logits_per_image.tolist()]}")
    print(f"  image cos off-diagonal: min {cos_img[off].min().item():.3f} max {cos_img[off].max().item():.3f}")
    print(f"  grad_loss={loss.item():.6f} |grad|max={px.grad.abs().max().item():.3e}")


def make_models() -> None:
    for name, spec in MODELS.items():
        write_model(name, spec)


# ----------------------------------------------------------------------------------------------
# Tokenizer cases.
# ----------------------------------------------------------------------------------------------

CASE_SENTENCES = [
    "犬の写真", "猫がソファで寝ている", "ひまわりの油絵", "京都の古いお寺", "富士山と桜の風景",
    "東京タワーの夜景", "赤い傘をさした女の子", "雪が降っている静かな村", "宇宙船が銀河を飛んでいる",
    "寿司とラーメンと天ぷら", "これは美しい風景です。", "子供たちが公園で遊んでいる", "侍と忍者とロボット",
    "北海道の冬、沖縄の夏。", "着物を着た人々が歩いている", "夕焼けに輝く海と島", "図書館で本を読む学生",
    "ドラゴンが城の上を飛んでいる", "懐かしい昭和の商店街", "りんごといちごとみかん", "おはようございます",
    "ありがとうございました", "カタカナだけのテキスト", "ひらがなだけのぶんしょう", "漢字文章題名",
    "魑魅魍魎", "薔薇と檸檬", "吾輩は猫である。名前はまだ無い。", "国境の長いトンネルを抜けると雪国であった。",
    "春はあけぼの。やうやう白くなりゆく山ぎは、すこしあかりて、紫だちたる雲のほそくたなびきたる。",
    "ヴァイオリンとチェロのアンサンブル", "ウィキペディア", "コンピューター・グラフィックス", "ゞゝヽヾ〃々",
    "ゔゕゖ", "ㇰㇱㇲ", "ー〜～", "Kyoto, Japan at the North Pole", "a photo of a cat", "A PHOTO OF A DOG",
    "Sunflower Oil Painting", "Tokyo Tower at night, 4K HDR", "Mount Fuji", "CLIP and CLOOB",
]
CASE_FULLHALF = [
    "ＡＢＣ", "ａｂｃ", "ＡＢＣｱｲｳ123", "１２３", "１２３４５６７８９０", "ｱｲｳｴｵ", "ｶﾞｷﾞｸﾞｹﾞｺﾞ", "ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ",
    "ｷｮｳﾄ ﾄｳｷｮｳ", "ﾃﾞｼﾞﾀﾙｶﾒﾗ", "ｳﾞｧｲｵﾘﾝ", "（全角括弧）", "！？", "＃タグ", "１００％", "５０００円", "＠ｈｏｍｅ",
    "ＴＯＫＹＯ　２０２０", "Ｈｅｌｌｏ，Ｗｏｒｌｄ！", "｢ｶﾀｶﾅ｣､｡", "㌔㍍㌢", "①②③", "㈱㈲", "ⅠⅡⅢⅣ", "ⅰⅱⅲ",
    "㍻㍼㍽", "ｶﾞ", "ﾞ", "ﾟ", "ガ", "ガ", "ﬁﬂ", "²³¹", "½¼", "™©®", "℃℉", "Å", "µ",
]
CASE_CASE = [
    "KYOTO", "Kyoto", "kyoto", "kYoTo", "İstanbul", "ΣΟΦΙΑΣ", "Straße", "STRASSE", "ẞ", "ǅungla", "Ωmega", "ÀÉÎÕÜ",
    "ＫＹＯＴＯ", "Ｋｙｏｔｏ", "I LOVE 日本", "Hello 世界", "iPhone と MacBook", "USB-C ケーブル", "NHKのニュース",
    "JR東日本", "DNA鑑定", "AIが描いた絵", "ABC123xyz", "ALL CAPS TEXT WITH 漢字",
]
CASE_EMOJI = [
    "🐱", "🐶🐱", "🌻ひまわり", "猫🐱", "👍", "👍🏽", "👨‍👩‍👧", "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🇯🇵", "🇯🇵🇺🇸",
    "❤️", "❤", "✨キラキラ✨", "😀😂🤣", "🗾🗻🍣", "🦄", "🧑‍🚀", "☺️", "#️⃣", "1️⃣",
]
CASE_PUNCT = [
    "、", "。", "「」", "『』", "・", "〜", "！", "？", "こんにちは、世界。", "「こんにちは」と言った。",
    "本当？！", "えっ！？", "猫・犬・鳥", "東京〜大阪", "……", "――", "（笑）", "【速報】", "〈山〉《川》",
    "〒100-0001", "※注意", "♪♪", "★☆", "→←↑↓", "!!!???", "...", "a,b.c;d:e", "(x:1.2)", "[x]", "{x}", "<x>",
    "'quoted'", "\"double\"", "\u201ccurly\u201d", "\u2018single\u2019", "～全角チルダ～", "〜波ダッシュ〜",
]
CASE_WS = [
    "", " ", "  ", "\t", "\n", "\r\n", "\u3000", "\u3000\u3000", "\u00a0", "\u200b", "\u2009", "\ufeff",
    " 犬", "犬 ", "  犬  ", "\u3000犬\u3000", "犬\u3000の\u3000写真", "犬\tの\t写真", "犬\nの\n写真",
    "犬  の   写真", "a  b", "a\tb", "a\nb", "a\u3000b", "a \u3000 b", "\t\n 前後に空白 \n\t", "改行\r\n混在\r",
    "a" + "\u3000" * 5 + "b", "tab\t\ttab",
]
CASE_OOV = [
    "한국어", "안녕하세요", "Привет", "مرحبا", "שלום", "नमस्ते", "ไทย", "𠮷野家", "𩸽", "龘", "鬱",
    "Ω", "∀∃∈", "€£¥", "¥100", "\u0301", "e\u0301", "é", "\x00", "\x07", "\x7f", "\ue000", "\U0001F9FF",
]
CASE_SPECIAL = [
    "[CLS]", "[PAD]", "[SEP]", "[MASK]", "[cls]", "[pad]", "[CLS]犬の写真", "犬の[MASK]", "[PAD][PAD]",
    "猫 [SEP] 犬", "<s>", "</s>", "<unk>", "<s>犬</s>", "<pad>", "▁", "▁犬", "犬▁の",
    "［ＣＬＳ］", "[ CLS ]",
]


def case_texts() -> list:
    rnd = random.Random(77)
    texts = []
    texts += CASE_SENTENCES + CASE_FULLHALF + CASE_CASE + CASE_EMOJI + CASE_PUNCT + CASE_WS + CASE_OOV + CASE_SPECIAL
    # whitespace variants of sentences
    for i, s in enumerate(CASE_SENTENCES[:20]):
        ws = [" ", "\u3000", "\t", "\n", "  ", " \u3000 "][i % 6]
        texts.append(ws + s + ws)
        texts.append(s.replace("の", ws + "の" + ws))
    # mixed Japanese / English / emoji / full-width
    pools = [CASE_SENTENCES, CASE_FULLHALF, CASE_CASE, CASE_EMOJI, CASE_PUNCT, EN_WORDS, JA_NOUNS]
    for _ in range(120):
        k = rnd.randint(2, 5)
        parts = [rnd.choice(rnd.choice(pools)) for _ in range(k)]
        texts.append(rnd.choice(["", " ", "\u3000", "、", "・"]).join(parts))
    # long texts: more than 76 pieces (truncated), and lengths around the limit
    long_ja = "".join(CASE_SENTENCES[:12])
    texts.append(long_ja)
    texts.append(long_ja * 3)
    texts.append(" ".join(EN_WORDS))
    texts.append("猫" * 100)
    texts.append("🐱" * 80)
    texts.append("ａ" * 200)
    texts.append("、".join(JA_NOUNS[:60]))
    texts.append("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 "
                 "37 38 39 40 41 42 43 44 45 46 47 48 49 50")
    for n in (70, 74, 75, 76, 77, 78, 90):
        texts.append(" ".join(["犬"] * (n // 2)) + ("" if n % 2 == 0 else " 猫の写真"))
    seen = set()
    unique = []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def make_cases() -> None:
    sp = load_sp()
    ids = special_ids(sp)
    texts = case_texts()
    all_ids, all_mask = rinna_tokenize(sp, texts, ids)
    lines = []
    stats = {"truncated": 0, "with_unk": 0, "empty": 0, "user_defined_in_output": 0}
    for text, row, mask in zip(texts, all_ids, all_mask):
        assert len(row) == len(mask) == CONTEXT_LENGTH
        full = sp.encode(text.lower())
        stats["truncated"] += len(full) > CONTEXT_LENGTH - 1
        stats["with_unk"] += 0 in full
        stats["empty"] += len(full) == 0
        stats["user_defined_in_output"] += any(i in (3, 4, 5, 6) for i in full)
        lines.append(json.dumps({"text": text, "ids": row, "attention_mask": mask}, ensure_ascii=False,
                                separators=(",", ":")))
    assert len(lines) >= 320, len(lines)
    CASES.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    print(f"cases: {len(lines)} -> {rel(CASES)}; {stats}")
    for t in ["[CLS]", "[CLS]犬の写真", "<s>", "犬の写真", "ＡＢＣｱｲｳ123", "한국어", "👨‍👩‍👧", "\u3000犬\u3000", ""]:
        print(f"  {t!r}: lower+encode {sp.encode(t.lower(), out_type=str)}  {sp.encode(t.lower())}")
    print(f"  raw sp.encode('[CLS]犬') (no lower): {sp.encode('[CLS]犬', out_type=str)} {sp.encode('[CLS]犬')}")


# ----------------------------------------------------------------------------------------------

STEPS = {"spiece": make_spiece, "models": make_models, "cases": make_cases}


def main(argv) -> None:
    steps = argv or list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        sys.exit(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    for step in steps:
        STEPS[step]()
    total = 0
    for f in sorted(f for f in OUT.rglob("*") if f.is_file()):
        size = f.stat().st_size
        total += size
        print(f"  {size:9d}  {hashlib.sha256(f.read_bytes()).hexdigest()[:16]}  {rel(f)}")
    print(f"rinna fixtures total: {total} bytes")
    if total > SIZE_LIMIT:
        sys.exit(f"rinna fixtures exceed {SIZE_LIMIT} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
