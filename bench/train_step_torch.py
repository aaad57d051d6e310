"""The Python columns of `npm run bench:train-step`: a nanoGPT-style GPT-2 training step in PyTorch (eager, or
the model and its loss under torch.compile) on the same shapes, batch and tokens as dpsm-native's Trainer, and
the device's fp32 matmul rate (the CPU's measured peak). Prints one JSON object on its last line.

usage: python train_step_torch.py step JSON    (JSON: see step() for its fields)
       python train_step_torch.py peak N ITERS THREADS
"""
import json
import math
import os
import sys
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE = -100


class Block(nn.Module):
    def __init__(self, e, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(e)
        self.c_attn = nn.Linear(e, 3 * e)
        self.attn_proj = nn.Linear(e, e)
        self.ln_2 = nn.LayerNorm(e)
        self.c_fc = nn.Linear(e, 4 * e)
        self.mlp_proj = nn.Linear(4 * e, e)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, c))
        # GELU's tanh form: GPT-2's, and the one dpsm-native's model computes.
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, positions, e, layers, heads, alpha):
        super().__init__()
        self.alpha = alpha
        self.wte = nn.Embedding(vocab, e)
        self.wpe = nn.Embedding(positions, e)
        self.blocks = nn.ModuleList(Block(e, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(e)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                # GPT-2's initialisation, residual projections scaled by 1/sqrt(2·layers)
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        t = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        # The LM head tied to the token embedding, as in GPT-2.
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return dpsm_loss(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), self.alpha)


def dpsm_loss(logits, targets, alpha):
    """(1 − α)·CE + α·Brier per target, averaged over the targets that are not ignored: the composite of
    log_softmax and its pieces. Brier's Σ_v (p_v − [v = y])² is written as Σ p² − 2·p_y + 1, which is the same
    number without an N × V one-hot, so the baseline is not handicapped by a wasteful formulation."""
    keep = targets != IGNORE
    safe = targets.clamp_min(0).unsqueeze(1)
    log_p = F.log_softmax(logits, dim=-1)
    p = log_p.exp()
    log_py = log_p.gather(1, safe).squeeze(1)
    brier = p.square().sum(-1) - 2.0 * log_py.exp() + 1.0
    per_token = (1.0 - alpha) * (-log_py) + alpha * brier
    return (per_token * keep).sum() / keep.sum()


def step(doc):
    """doc: {vocab, positions, nEmbd, nLayer, nHead, batch, context, tokensFile, device, precision, threads,
    mode: eager|compile, steps, warmup, lr, weightDecay, betas, eps, gradClip, alpha, seed}"""
    torch.set_num_threads(doc["threads"])
    torch.manual_seed(doc["seed"])
    device = torch.device(doc["device"])
    cuda = device.type == "cuda"
    b, context = doc["batch"], doc["context"]
    # The exported rows: b × context token ids, then b real lengths (int32); the same batch the Trainer times.
    raw = torch.from_file(doc["tokensFile"], size=b * context + b, dtype=torch.int32)
    rows = raw[: b * context].view(b, context).long()
    lengths = raw[b * context :].long()
    x = rows[:, :-1].contiguous()
    y = rows[:, 1:].clone()
    y[torch.arange(1, context).unsqueeze(0) >= lengths.unsqueeze(1)] = IGNORE
    x, y = x.to(device), y.to(device)

    model = GPT(doc["vocab"], doc["positions"], doc["nEmbd"], doc["nLayer"], doc["nHead"], doc["alpha"]).to(device)
    params = list(model.parameters())
    # nanoGPT's optimiser: weight decay on matrices and embeddings only; fused AdamW on CUDA.
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": doc["weightDecay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    extra = {"fused": True} if cuda else {}
    opt = torch.optim.AdamW(groups, lr=doc["lr"], betas=tuple(doc["betas"]), eps=doc["eps"], **extra)
    forward = torch.compile(model) if doc["mode"] == "compile" else model
    autocast = doc["precision"] == "bf16"

    def once():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = forward(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, doc["gradClip"])
        opt.step()
        # The loss read back each step, as the Trainer's timed step does (on CUDA: the step's synchronisation).
        return loss.item()

    warm_ms, ms, losses = [], [], []
    for i in range(doc["warmup"] + doc["steps"]):
        t0 = time.perf_counter()
        loss = once()
        elapsed = (time.perf_counter() - t0) * 1000.0
        (warm_ms if i < doc["warmup"] else ms).append(elapsed)
        losses.append(loss)
    return {
        "ms": ms,
        "warmupMs": warm_ms,
        "losses": losses,
        "parameters": sum(p.numel() for p in params),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
    }


def loaded_libtorch():
    """The real path of the libtorch_cpu this process mapped (to tell whose BLAS a measurement used)."""
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "libtorch_cpu.so" in path:
                return os.path.realpath(path)
    return ""


def peak(n, iters, threads):
    """The best fp32 rate of an n × n matmul over `iters` tries, after one untimed."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(iters):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return {
        "flops": 2.0 * n**3 / best,
        "n": n,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "libtorch": loaded_libtorch(),
    }


def main():
    try:
        if sys.argv[1] == "peak":
            out = peak(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        else:
            out = step(json.loads(sys.argv[2]))
    except Exception as e:  # reported as the row's failure, with its reason
        traceback.print_exc()
        out = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
