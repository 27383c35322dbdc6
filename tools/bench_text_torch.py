#!/usr/bin/env python3
"""PyTorch side of crates/clipguide-text/examples/bench_sd1.rs: sd1 conditioning prompts/s with
transformers CLIPTextModel (random ViT-L/14 text shape), 2 threads. Run from the repo root:
    python3 tools/bench_text_torch.py
"""
import time, torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
torch.set_num_threads(2)
P=["a photo of a cat","an astronaut riding a horse on mars, highly detailed","portrait of an old fisherman, dramatic lighting, oil painting","a red car","a cozy cabin in the snowy mountains at night, warm light in the windows, stars","watercolor of a fox","a futuristic city skyline at sunset, flying cars, neon signs, cinematic, 8k","a bowl of ramen"]
m=CLIPTextModel(CLIPTextConfig(hidden_size=768,intermediate_size=3072,num_hidden_layers=12,num_attention_heads=12)).eval()
tok=CLIPTokenizer(tokenizer_file="crates/clipguide-clip/assets/tokenizer.json", model_max_length=77, pad_token="<|endoftext|>")
def cond(p):
    ids=tok([p,""],padding="max_length",max_length=77,truncation=True,return_tensors="pt").input_ids
    return m(ids[:1])[0], m(ids[1:])[0]
with torch.no_grad():
    cond(P[0]); t=time.time(); R=3
    for _ in range(R):
        for p in P: cond(p)
    dt=time.time()-t; print(f"transformers sd1 conditioning (prompt+negative, 77 each): {R*len(P)/dt:.2f} prompts/s")
    ids=tok(P,padding="max_length",max_length=77,return_tensors="pt").input_ids
    m(ids); t=time.time()
    for _ in range(R): m(ids).pooler_output
    d77=(time.time()-t)/R
    ids2=tok(P,padding="longest",return_tensors="pt").input_ids
    t=time.time()
    for _ in range(R): m(ids2).pooler_output
    ds=(time.time()-t)/R
    print(f"transformers pooled batch of 8: 77 positions {8/d77:.1f} prompts/s, longest ({ids2.shape[1]}) {8/ds:.1f} prompts/s")
