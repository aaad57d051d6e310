"""The composite DPSM loss of the seed (log_softmax, exp, nll, one_hot, squared error, sum, mean, autograd)
in Python torch: the third column of `npm run bench:fused-loss`. Prints one JSON object.

usage: python3 fused_loss_torch.py ROWS VOCAB DTYPE DEVICE ITERS WARMUP BACKWARD(0|1) ALPHA SEED
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


def composite(logits, targets, alpha):
    log_p = F.log_softmax(logits, -1)
    p = log_p.exp()
    ce = F.nll_loss(log_p, targets, reduction="none")
    one_hot = F.one_hot(targets, logits.size(-1)).type_as(p)
    brier = ((p - one_hot) ** 2).sum(-1)
    return ((1 - alpha) * ce + alpha * brier).mean()


def rss_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    rows, vocab, dtype, device, iters, warmup, backward, alpha, seed = sys.argv[1:10]
    rows, vocab, iters, warmup, backward = int(rows), int(vocab), int(iters), int(warmup), backward == "1"
    alpha = float(alpha)
    torch.set_num_threads(os.cpu_count() or 1)
    gen = torch.Generator().manual_seed(int(seed))
    logits = (torch.randn(rows, vocab, generator=gen) * 3.0).to(getattr(torch, dtype)).to(device)
    targets = torch.randint(0, vocab, (rows,), generator=gen).to(device)
    logits.requires_grad_(backward)
    cuda = device.startswith("cuda")

    def once():
        logits.grad = None
        loss = composite(logits, targets, alpha)
        if backward:
            loss.backward()
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        once()
    grad_bytes = logits.numel() * logits.element_size() if backward else 0
    logits.grad = None
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        once()
        extra = torch.cuda.max_memory_allocated() - before - grad_bytes
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = rss_kb("VmRSS")
        once()
        extra = (rss_kb("VmHWM") - before) * 1024 - grad_bytes
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        once()
        ms.append((time.perf_counter() - t0) * 1000.0)
    print(json.dumps({"ms": ms, "extraPeakBytes": extra, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
