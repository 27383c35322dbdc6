#!/usr/bin/env python3
"""Reference tensors for crates/clipguide-text from diffusers' own `encode_prompt`.

Builds small random-weight text encoders (a CLIP-L-like `CLIPTextModel` and a bigG-like
`CLIPTextModelWithProjection`), runs diffusers' real `StableDiffusionPipeline.encode_prompt` and
`StableDiffusionXLPipeline.encode_prompt` on them (bound to a minimal pipeline object: only the
tokenizers and text encoders are needed), and re-implements A1111's chunking
(modules/sd_hijack_clip.py `tokenize_line`), A1111's prompt parser and "Original" emphasis
(modules/prompt_parser.py, modules/sd_emphasis.py) and ComfyUI's weighting
(comfy/sd1_clip.py `token_weights`, `encode_token_weights`) on top of the same encoders.

Writes tests/fixtures/text/:
  sd1_text_encoder/, sdxl_text_encoder/, sdxl_text_encoder_2/   config.json (transformers') +
      compact.safetensors: every weight in f16, except that the 49408-row token embedding is stored
      as only the rows the cases use (`...token_embedding.rows` + `...token_embedding.ids`); the
      other rows are zero in the reference model too. The Rust test expands it into a full
      `model.safetensors` in a temp folder, so the fixtures stay under 3 MB.
  mytok.safetensors   a 2-vector diffusers textual-inversion embedding for the SD1 encoder.
  cases.json          what each case encodes and with which options.
  references.safetensors   `<case>.<tensor>` in f32, computed from the f16-rounded weights.

Run from the repository root: python3 tools/make_text_fixtures.py   (torch, transformers, diffusers)
"""

import copy
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.loaders import TextualInversionLoaderMixin

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "text"
TOKENIZER_JSON = ROOT / "crates" / "clipguide-clip" / "assets" / "tokenizer.json"


# ---------------------------------------------------------------- models and tokenizers


def tokenizer(pad_token):
    return CLIPTokenizer(
        tokenizer_file=str(TOKENIZER_JSON), model_max_length=77, pad_token=pad_token
    )


def randomize(model, seed):
    """Weights large enough that every layer visibly changes the hidden states, rounded to f16."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else 1
                p.copy_(torch.randn(p.shape, generator=g) / (fan_in**0.5))
            p.copy_(p.half().float())
    return model.eval()


def clip_l_like(seed):
    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=32,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )
    model = randomize(CLIPTextModel(cfg), seed)
    # diffusers 0.42's clip_skip path calls `text_encoder.text_model.final_layer_norm`, which
    # transformers 5's CLIPTextModel no longer has; point it at the model's own layer norm.
    if not hasattr(model, "text_model"):
        object.__setattr__(model, "text_model", SimpleNamespace(final_layer_norm=model.final_layer_norm))
    return model


def big_g_like():
    # eos_token_id 2: the legacy value real SD checkpoints carry (pooling takes the argmax id).
    cfg = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=3,
        max_position_embeddings=77,
        hidden_act="gelu",
        projection_dim=40,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    return randomize(CLIPTextModelWithProjection(cfg), 2)


def inner(model):
    """The text transformer: transformers 5's CLIPTextModel *is* it (no `text_model` child), while
    CLIPTextModelWithProjection still wraps it. On disk both keep the `text_model.` prefix."""
    wrapped = getattr(model, "text_model", None)
    return wrapped if isinstance(wrapped, torch.nn.Module) else model


def keep_rows(model, ids):
    """Zeroes every token-embedding row except `ids` (the only rows the cases read)."""
    w = inner(model).embeddings.token_embedding.weight
    mask = torch.zeros(w.shape[0], dtype=torch.bool)
    mask[ids] = True
    with torch.no_grad():
        w[~mask] = 0.0


def save_compact(model, folder, ids):
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    for k in ["_name_or_path", "transformers_version", "dtype", "torch_dtype", "output_hidden_states"]:
        cfg.pop(k, None)
    cfg["architectures"] = [type(model).__name__]
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tensors = {}
    key = "text_model.embeddings.token_embedding.weight"
    for name, t in model.state_dict().items():
        if not name.startswith(("text_model.", "text_projection")):
            name = "text_model." + name
        if name == key:
            idx = torch.tensor(sorted(ids), dtype=torch.int64)
            tensors[key.replace(".weight", ".rows")] = t[idx].half().contiguous()
            tensors[key.replace(".weight", ".ids")] = idx
        elif "position_ids" not in name:
            tensors[name] = t.half().contiguous()
    save_file(tensors, str(folder / "compact.safetensors"))


# ---------------------------------------------------------------- diffusers, bound to a minimal self


class MiniSD(TextualInversionLoaderMixin):
    encode_prompt = StableDiffusionPipeline.encode_prompt

    def __init__(self, tok, te):
        self.tokenizer, self.text_encoder, self.unet = tok, te, None
        self.hf_device_map = None

    @property
    def components(self):
        # load_textual_inversion walks the pipeline's modules for CPU-offload hooks.
        return {"tokenizer": self.tokenizer, "text_encoder": self.text_encoder}


class MiniSDXL:
    encode_prompt = StableDiffusionXLPipeline.encode_prompt

    def __init__(self, tok, te, tok2, te2):
        self.tokenizer, self.text_encoder = tok, te
        self.tokenizer_2, self.text_encoder_2 = tok2, te2
        self.unet = None
        self.config = SimpleNamespace(force_zeros_for_empty_prompt=True)


def sd1_diffusers(pipe, prompt, negative, clip_skip=None):
    with torch.no_grad():
        pos, neg = pipe.encode_prompt(
            prompt, "cpu", 1, True, negative_prompt=negative, clip_skip=clip_skip
        )
    return {"prompt_embeds": pos, "negative_prompt_embeds": neg}


def sdxl_diffusers(pipe, prompt, negative, clip_skip=None):
    with torch.no_grad():
        pos, neg, pooled, neg_pooled = pipe.encode_prompt(
            prompt,
            device="cpu",
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative,
            clip_skip=clip_skip,
        )
    return {
        "prompt_embeds": pos,
        "negative_prompt_embeds": neg,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": neg_pooled,
    }


# ---------------------------------------------------------------- A1111 (prompt_parser.py, sd_hijack_clip.py, sd_emphasis.py)

re_attention = re.compile(
    r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""",
    re.X,
)
re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text):
    res, round_brackets, square_brackets = [], [], []

    def multiply_range(start, multiplier):
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in re_attention.finditer(text):
        text, weight = m.group(0), m.group(1)
        if text.startswith("\\"):
            res.append([text[1:], 1.0])
        elif text == "(":
            round_brackets.append(len(res))
        elif text == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif text == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif text == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for i, part in enumerate(re.split(re_break, text)):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])
    for pos in round_brackets:
        multiply_range(pos, 1.1)
    for pos in square_brackets:
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


# ComfyUI's comfy/sd1_clip.py parser.
def parse_parentheses(string):
    result, current, nesting = [], "", 0
    for char in string:
        if char == "(":
            if nesting == 0:
                if current:
                    result.append(current)
                current = "("
            else:
                current += char
            nesting += 1
        elif char == ")":
            nesting -= 1
            if nesting == 0:
                result.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        result.append(current)
    return result


def token_weights(string, current_weight):
    out = []
    for x in parse_parentheses(string):
        weight = current_weight
        if len(x) >= 2 and x[-1] == ")" and x[0] == "(":
            x = x[1:-1]
            xx = x.rfind(":")
            weight *= 1.1
            if xx > 0:
                try:
                    weight = float(x[xx + 1 :])
                    x = x[:xx]
                except ValueError:
                    pass
            out += token_weights(x, weight)
        else:
            out += [(x, current_weight)]
    return out


COMMA, BOS, EOS, CHUNK = 267, 49406, 49407, 75


def tokenize_line(tok, parsed, backtrack=20):
    """A1111's tokenize_line on already parsed [text, weight] pairs (no textual inversion)."""
    tokenized = [tok(text, add_special_tokens=False, truncation=False)["input_ids"] for text, _ in parsed]
    chunks = []
    chunk = {"tokens": [], "mult": []}
    last_comma = -1

    def next_chunk():
        nonlocal chunk, last_comma
        to_add = CHUNK - len(chunk["tokens"])
        chunk["tokens"] += [EOS] * to_add
        chunk["mult"] += [1.0] * to_add
        chunks.append(([BOS] + chunk["tokens"] + [EOS], [1.0] + chunk["mult"] + [1.0]))
        chunk = {"tokens": [], "mult": []}
        last_comma = -1

    for tokens, (text, weight) in zip(tokenized, parsed):
        if text == "BREAK" and weight == -1:
            next_chunk()
            continue
        for token in tokens:
            if token == COMMA:
                last_comma = len(chunk["tokens"])
            elif (
                backtrack != 0
                and len(chunk["tokens"]) == CHUNK
                and last_comma != -1
                and len(chunk["tokens"]) - last_comma <= backtrack
            ):
                cut = last_comma + 1
                reloc = chunk["tokens"][cut:], chunk["mult"][cut:]
                chunk["tokens"], chunk["mult"] = chunk["tokens"][:cut], chunk["mult"][:cut]
                next_chunk()
                chunk["tokens"], chunk["mult"] = list(reloc[0]), list(reloc[1])
            if len(chunk["tokens"]) == CHUNK:
                next_chunk()
            chunk["tokens"].append(token)
            chunk["mult"].append(weight)
    if chunk["tokens"] or not chunks:
        next_chunk()
    return chunks


def with_pad(ids, pad):
    """A1111's process_tokens: everything after the first EOS becomes the pad id."""
    first = ids.index(EOS)
    return ids[: first + 1] + [pad] * (len(ids) - first - 1)


def hidden(te, ids, layer):
    """layer: ("last",) | ("skip", k, final_norm): hidden_states[-(k+1)], optionally final-LN'd."""
    out = te(torch.tensor([ids]), output_hidden_states=True)
    if layer[0] == "last":
        z = out.last_hidden_state
    else:
        z = out.hidden_states[-(layer[1] + 1)]
        if layer[2]:
            z = inner(te).final_layer_norm(z)
    pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
    return z[0], pooled[0]


def weighted_encode(encoders, chunked, mode):
    """encoders: [(te, pad, layer)]; chunked: [(ids, mults)] per encoder tokenizer (same chunks).
    Emphasis per encoder and chunk as A1111 / ComfyUI do; returns [1, 77·chunks, ΣD], pooled of chunk 0
    from the last encoder."""
    per_encoder = []
    pooled = None
    for te, pad, layer in encoders:
        empty_z, _ = hidden(te, with_pad([BOS] + [EOS] * 76, pad), layer)
        zs = []
        for i, (ids, mults) in enumerate(chunked):
            z, p = hidden(te, with_pad(ids, pad), layer)
            if i == 0:
                pooled = p
            w = torch.tensor(mults, dtype=torch.float32)
            if mode == "a1111":
                original_mean = z.mean()
                z = z * w[:, None]
                z = z * (original_mean / z.mean())
            elif mode == "a1111-no-norm":
                z = z * w[:, None]
            elif mode == "comfy":
                z = z.clone()
                for j in range(len(mults)):
                    if mults[j] != 1.0:
                        z[j] = (z[j] - empty_z[j]) * mults[j] + empty_z[j]
            zs.append(z)
        per_encoder.append(torch.cat(zs, dim=0))
    return torch.cat(per_encoder, dim=-1)[None], pooled[None]


def a1111_case(tok, encoders, prompt, negative, mode, parse="a1111"):
    def chunks_of(text):
        if parse == "a1111":
            parsed = parse_prompt_attention(text)
        elif parse == "comfy":
            parsed = [[t, w] for t, w in token_weights(text, 1.0)]
        else:
            parsed = [[text, 1.0]]
        return tokenize_line(tok, parsed)

    pos, neg = chunks_of(prompt), chunks_of(negative)
    empty = ([BOS] + [EOS] * 76, [1.0] * 77)
    while len(pos) < len(neg):
        pos.append(empty)
    while len(neg) < len(pos):
        neg.append(empty)
    with torch.no_grad():
        p, pp = weighted_encode(encoders, pos, mode)
        n, npool = weighted_encode(encoders, neg, mode)
    return {
        "prompt_embeds": p,
        "negative_prompt_embeds": n,
        "pooled_prompt_embeds": pp,
        "negative_pooled_prompt_embeds": npool,
    }


# ---------------------------------------------------------------- cases

LONG = (
    "a highly detailed oil painting of a lighthouse on a rocky cliff at sunset, dramatic clouds, "
    "crashing waves, seagulls flying over the water, warm golden light, deep blue shadows, "
    "intricate brush strokes, masterpiece, trending on artstation, by a famous painter of the "
    "nineteenth century, with a small fishing boat in the harbour, lanterns glowing in the windows, "
    "a winding path leading up to the tower, wildflowers along the path, and a starry sky emerging"
)
PLAIN = "a photo of an astronaut riding a horse on mars"
NEG = "blurry, low quality, watermark"
WEIGHTED_A1111 = "a (red:1.3) cat on a [blue] ((sofa)), (blurry:0.8) background"
WEIGHTED_COMFY = "a (red:1.3) cat on a ((sofa)), (blurry:0.8) background"
NEG_WEIGHTED = "(ugly:1.2), lowres"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tok_l, tok_g = tokenizer("<|endoftext|>"), tokenizer("!")
    te_l, te_g = clip_l_like(1), big_g_like()
    te_l2 = clip_l_like(4)  # SDXL's CLIP-L: same shape, other weights

    texts = [PLAIN, NEG, LONG, WEIGHTED_A1111, WEIGHTED_COMFY, NEG_WEIGHTED, "a mytok style photo of a cat", "", "!"]
    used = {BOS, EOS, 0, COMMA}
    for t in texts:
        for text, _ in parse_prompt_attention(t) + [[p, 1] for p, _ in token_weights(t, 1.0)] + [[t, 1]]:
            used.update(tok_l(text, add_special_tokens=False)["input_ids"])
    used = sorted(used)
    for te in (te_l, te_g, te_l2):
        keep_rows(te, used)

    # A 2-vector diffusers textual inversion for the SD1 encoder, rounded to f16 like the weights.
    g = torch.Generator().manual_seed(3)
    mytok = (0.5 * torch.randn(2, 32, generator=g)).half().float()
    save_file({"mytok": mytok.contiguous()}, str(OUT / "mytok.safetensors"))

    sd1 = MiniSD(tok_l, te_l)
    sdxl = MiniSDXL(tok_l, te_l2, tok_g, te_g)
    refs, cases = {}, []

    def add(name, tensors, **spec):
        for k, v in tensors.items():
            refs[f"{name}.{k}"] = v.detach().float().contiguous()
        cases.append({"name": name, **spec, "tensors": sorted(tensors)})

    base = {"weighting": "none", "chunking": "truncate", "clip_skip": None, "negative_clip_skip": "none"}
    add("sd1_plain", sd1_diffusers(sd1, PLAIN, None), preset="sd1", prompt=PLAIN, negative=None, **base)
    add("sd1_negative", sd1_diffusers(sd1, PLAIN, NEG), preset="sd1", prompt=PLAIN, negative=NEG, **base)
    add("sd1_empty_negative", sd1_diffusers(sd1, PLAIN, ""), preset="sd1", prompt=PLAIN, negative="", **base)
    for k in (1, 2):
        add(f"sd1_clip_skip{k}", sd1_diffusers(sd1, PLAIN, NEG, clip_skip=k), preset="sd1",
            prompt=PLAIN, negative=NEG, **{**base, "clip_skip": k})
    add("sd1_long_truncate", sd1_diffusers(sd1, LONG, NEG), preset="sd1", prompt=LONG, negative=NEG, **base)

    sd1_enc = [(te_l, EOS, ("last",))]
    a1111 = {**base, "chunking": "a1111", "negative_clip_skip": "same"}
    add("sd1_long_a1111", a1111_case(tok_l, sd1_enc, LONG, NEG, "none", parse="plain"), preset="sd1",
        prompt=LONG, negative=NEG, **a1111)
    for mode in ("a1111", "a1111-no-norm"):
        add(f"sd1_weighted_{mode}", a1111_case(tok_l, sd1_enc, WEIGHTED_A1111, NEG_WEIGHTED, mode),
            preset="sd1", prompt=WEIGHTED_A1111, negative=NEG_WEIGHTED, **{**a1111, "weighting": mode})
    add("sd1_weighted_comfy", a1111_case(tok_l, sd1_enc, WEIGHTED_COMFY, NEG_WEIGHTED, "comfy", parse="comfy"),
        preset="sd1", prompt=WEIGHTED_COMFY, negative=NEG_WEIGHTED, **{**a1111, "weighting": "comfy"})
    # A1111 "Clip skip 2" = diffusers clip_skip=1, applied to the negative as well.
    add("sd1_a1111_clip_skip1", a1111_case(tok_l, [(te_l, EOS, ("skip", 1, True))], WEIGHTED_A1111, NEG_WEIGHTED, "a1111"),
        preset="sd1", prompt=WEIGHTED_A1111, negative=NEG_WEIGHTED, **{**a1111, "weighting": "a1111", "clip_skip": 1})

    sdxl_enc = [(te_l2, EOS, ("skip", 1, False)), (te_g, 0, ("skip", 1, False))]
    add("sdxl_plain", sdxl_diffusers(sdxl, PLAIN, None), preset="sdxl", prompt=PLAIN, negative=None, **base)
    add("sdxl_empty_negative", sdxl_diffusers(sdxl, PLAIN, ""), preset="sdxl", prompt=PLAIN, negative="", **base)
    add("sdxl_negative", sdxl_diffusers(sdxl, PLAIN, NEG), preset="sdxl", prompt=PLAIN, negative=NEG, **base)
    add("sdxl_clip_skip1", sdxl_diffusers(sdxl, PLAIN, NEG, clip_skip=1), preset="sdxl", prompt=PLAIN,
        negative=NEG, **{**base, "clip_skip": 1})
    add("sdxl_long_truncate", sdxl_diffusers(sdxl, LONG, NEG), preset="sdxl", prompt=LONG, negative=NEG, **base)
    add("sdxl_long_a1111", a1111_case(tok_l, sdxl_enc, LONG, "", "none", parse="plain"), preset="sdxl",
        prompt=LONG, negative="", **a1111)
    for mode in ("a1111", "a1111-no-norm"):
        add(f"sdxl_weighted_{mode}", a1111_case(tok_l, sdxl_enc, WEIGHTED_A1111, NEG_WEIGHTED, mode),
            preset="sdxl", prompt=WEIGHTED_A1111, negative=NEG_WEIGHTED, **{**a1111, "weighting": mode})
    add("sdxl_weighted_comfy", a1111_case(tok_l, sdxl_enc, WEIGHTED_COMFY, NEG_WEIGHTED, "comfy", parse="comfy"),
        preset="sdxl", prompt=WEIGHTED_COMFY, negative=NEG_WEIGHTED, **{**a1111, "weighting": "comfy"})

    # Textual inversion through diffusers' own loader (adds "mytok", "mytok_1" to the tokenizer).
    ti_tok = tokenizer("<|endoftext|>")
    ti = MiniSD(ti_tok, copy.deepcopy(te_l))
    ti.load_textual_inversion(str(OUT / "mytok.safetensors"), token="mytok")
    ti_prompt = "a mytok style photo of a cat"
    add("sd1_textual_inversion", sd1_diffusers(ti, ti_prompt, NEG), preset="sd1", prompt=ti_prompt,
        negative=NEG, embeddings=["mytok.safetensors"], **base)

    save_compact(te_l, OUT / "sd1_text_encoder", used)
    save_compact(te_l2, OUT / "sdxl_text_encoder", used)
    save_compact(te_g, OUT / "sdxl_text_encoder_2", used)
    save_file(refs, str(OUT / "references.safetensors"))
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{len(cases)} cases, {len(used)} token rows, fixtures {total / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
