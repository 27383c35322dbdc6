#!/usr/bin/env python3
"""Reference values for crates/clipguide-train's CLOOB loss (`clipguide_train::cloob::cloob_loss`).

A direct PyTorch implementation of the CLOOB loss in the column-vector form of rinna's
japanese-clip / crowsonkb's cloob-training `loss.py` (the Rust code works on rows, so the two
are independent formulations of the same formula), in float64 on the CPU:

    x, y   = image, text embeddings [N, d], each row L2-normalised first
    hop(state, stored) = normalize(stored.T @ softmax(beta * stored @ state.T, dim=0), dim=0)
    p_xx = hop(x, x)  p_yy = hop(y, y)  p_xy = hop(state=y, stored=x)  p_yx = hop(state=x, stored=y)
    LOOB(a, b) = mean_i(-k_ii + logsumexp_{j != i} k_ij),  k = inv_tau * a.T @ b   (columns)
    loss = (LOOB(p_xx, p_xy) + LOOB(p_yy, p_yx)) / 2

ml-jku/cloob's original (src/training/methods.py) returns tau * (LOOB_img + LOOB_txt), i.e.
loss * 2 / inv_tau. `<case>.loss_mljku` is computed by a row-vector transcription of that file
(its `hflayers.Hopfield` layer, static patterns without projections, being
softmax(beta * state @ stored.T, dim=1) @ stored), and the script checks both agree.

Writes tests/fixtures/cloob/loss.safetensors (float64):
  image, text                      [6, 8] fixed unnormalised embeddings (seed 0)
  <case>.loss, <case>.loss_mljku   [] scalars
  <case>.grad_image, <case>.grad_text   [6, 8] d loss / d image, d loss / d text (through the
                                   normalisation)
  <case>.params                    [2] = (inv_tau, scale_hopfield)
for the cases `rinna` (inv_tau 30, scale_hopfield 15, rinna's config) and `soft` (4, 2).

Run from the repository root: python3 tools/make_cloob_fixtures.py   (torch, safetensors)
"""

from pathlib import Path

import torch
from safetensors.torch import save_file

CASES = {"rinna": (30.0, 15.0), "soft": (4.0, 2.0)}
N, D = 6, 8


def hopfield(state, stored, beta):
    # Columns are patterns: state [d, M], stored [d, N].
    retrieved = stored @ torch.softmax(beta * stored.T @ state, dim=0)
    return retrieved / retrieved.norm(dim=0, keepdim=True)


def info_loob(a, b, inv_tau):
    k = inv_tau * a.T @ b
    eye = torch.eye(k.shape[0], dtype=torch.bool)
    positives = k[eye]
    negatives = torch.logsumexp(k.masked_fill(eye, float("-inf")), dim=1)
    return (negatives - positives).mean()


def cloob(image, text, inv_tau, beta):
    x = (image / image.norm(dim=1, keepdim=True)).T
    y = (text / text.norm(dim=1, keepdim=True)).T
    p_xx, p_yy = hopfield(x, x, beta), hopfield(y, y, beta)
    p_xy, p_yx = hopfield(y, x, beta), hopfield(x, y, beta)
    return (info_loob(p_xx, p_xy, inv_tau) + info_loob(p_yy, p_yx, inv_tau)) / 2


def cloob_mljku(image, text, inv_tau, beta):
    """ml-jku/cloob methods.py `cloob` on row vectors, with its large_neg = -1000 mask."""
    def hop(state, stored):
        r = torch.softmax(beta * state @ stored.T, dim=1) @ stored
        return r / r.norm(dim=1, keepdim=True)

    def loob(x, y, i):
        tau = 1 / inv_tau
        k = x @ y.T / tau
        positives = -torch.mean(torch.sum(k * i, dim=1))
        arg_lse = k * torch.logical_not(i) + i * -1000.0
        negatives = torch.mean(torch.logsumexp(arg_lse, dim=1))
        return tau * (positives + negatives)

    x = image / image.norm(dim=1, keepdim=True)
    y = text / text.norm(dim=1, keepdim=True)
    i = torch.eye(x.shape[0], dtype=torch.float64)
    p_xx, p_yy, p_xy, p_yx = hop(x, x), hop(y, y), hop(y, x), hop(x, y)
    return loob(p_xx, p_xy, i) + loob(p_yy, p_yx, i)


def main():
    torch.manual_seed(0)
    image = torch.randn(N, D, dtype=torch.float64)
    # Texts close to their images (so the loss is far from its chance value) but not equal.
    text = image + 0.8 * torch.randn(N, D, dtype=torch.float64)
    out = {"image": image.clone(), "text": text.clone()}
    for name, (inv_tau, beta) in CASES.items():
        i = image.clone().requires_grad_(True)
        t = text.clone().requires_grad_(True)
        loss = cloob(i, t, inv_tau, beta)
        gi, gt = torch.autograd.grad(loss, (i, t))
        out[f"{name}.loss"] = loss.detach().reshape(())
        mljku = cloob_mljku(image, text, inv_tau, beta)
        assert abs(mljku.item() - loss.item() * 2.0 / inv_tau) < 1e-12, (mljku, loss)
        out[f"{name}.loss_mljku"] = mljku.reshape(())
        out[f"{name}.grad_image"] = gi
        out[f"{name}.grad_text"] = gt
        out[f"{name}.params"] = torch.tensor([inv_tau, beta], dtype=torch.float64)
        print(f"{name}: loss {loss.item():.6f}, |grad_image| {gi.norm():.4g}, |grad_text| {gt.norm():.4g}")
    path = Path("tests/fixtures/cloob/loss.safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
