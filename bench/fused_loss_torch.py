"""The Python columns of `npm run bench:fused-loss`, all cases in one process (one torch import, one CUDA context;
run before the Node side allocates, so the two never hold device memory at once). Prints one JSON object.

usage: python3 fused_loss_torch.py CASES.json RESULTS.jsonl

CASES.json: {"iters", "warmup", "alpha", "seed", "budgetS", "loss": [{"key", "rows", "vocab", "dtype", "device",
             "backward"}], "head": [{"key", "rows", "dim", "vocab", "bf16", "device"}]}
RESULTS.jsonl gets one line per result as it is measured (a run cut short keeps what it measured); cases are taken
in the order given, and none starts after budgetS seconds. torch.compile is timed on forward+backward cases only
(each shape is a compilation of tens of seconds; the goal compares forward+backward).

Loss cases (logits in, loss and ∂logits out), each where its package imports:
  eager     the seed's composite DPSM loss (log_softmax, exp, nll, one_hot, squared error, sum, mean; autograd)
  compile   the same function under torch.compile (Inductor)
  liger     Liger-Kernel's cross-entropy (CE only; it writes ∂logits into the logits in the forward pass)
  quack     QuACK's cross-entropy (CE only)
Head cases (hidden states and output embedding in, the N × V logits never held), bf16 inputs:
  liger-flce  Liger-Kernel's fused linear cross-entropy
  cce         Apple's cut-cross-entropy (linear_cross_entropy)
The CE-only anchors move the same bytes as the DPSM loss (one read of the logits, one write of the gradient) and do
less arithmetic per element; the table says so beside their columns.
"""
import importlib
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


def version(module):
    try:
        from importlib.metadata import version as v

        return v(module)
    except Exception:
        return None


def sync(cuda):
    if cuda:
        torch.cuda.synchronize()


def measure(once, prepare, cuda, iters, warmup, held_bytes):
    """Median-able times of `once` (after `prepare`, untimed), and its peak memory beyond what was held before it
    less `held_bytes` (the gradient the pass returns)."""
    for _ in range(warmup):
        prepare()
        once()
        sync(cuda)
    prepare()
    sync(cuda)
    if cuda:
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        once()
        sync(cuda)
        extra = torch.cuda.max_memory_allocated() - before - held_bytes
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = rss_kb("VmRSS")
        once()
        extra = (rss_kb("VmHWM") - before) * 1024 - held_bytes
    ms = []
    for _ in range(iters):
        prepare()
        sync(cuda)
        t0 = time.perf_counter()
        once()
        sync(cuda)
        ms.append((time.perf_counter() - t0) * 1000.0)
    return {"ms": ms, "extraPeakBytes": extra}


def optional(load):
    """What `load()` returns, or the exception that says why this anchor is missing (its column shows "failed")."""
    try:
        return load()
    except Exception as e:  # not installed, or not for this torch
        return e


def loss_impls():
    impls = {"eager": None}
    if hasattr(torch, "compile"):
        impls["compile"] = None
    impls["liger"] = optional(lambda: importlib.import_module("liger_kernel.transformers").LigerCrossEntropyLoss())
    impls["quack"] = optional(lambda: importlib.import_module("quack").cross_entropy)
    return impls


def describe(e):
    """An exception as one short line for the table's "failed" note."""
    return f"{type(e).__name__}: {e}".splitlines()[0][:300]


def run_loss_case(case, impl_name, impl, cfg):
    device, backward = case["device"], case["backward"]
    cuda = device.startswith("cuda")
    gen = torch.Generator().manual_seed(cfg["seed"])
    src = (torch.randn(case["rows"], case["vocab"], generator=gen) * 3.0).to(getattr(torch, case["dtype"])).to(device)
    targets = torch.randint(0, case["vocab"], (case["rows"],), generator=gen).to(device)
    alpha = cfg["alpha"]
    # Liger overwrites its input with the gradient: every implementation gets a fresh copy before each pass.
    logits = src.clone().requires_grad_(backward)

    def prepare():
        logits.grad = None
        with torch.no_grad():
            logits.copy_(src)

    if impl_name == "eager":
        fn = lambda: composite(logits, targets, alpha)  # noqa: E731
    elif impl_name == "compile":
        compiled = torch.compile(composite)
        fn = lambda: compiled(logits, targets, alpha)  # noqa: E731
    elif impl_name == "liger":
        fn = lambda: impl(logits, targets)  # noqa: E731
    else:
        fn = lambda: impl(logits, targets).mean()  # noqa: E731

    def once():
        loss = fn()
        if backward:
            loss.backward()

    held = logits.numel() * logits.element_size() if backward and impl_name != "liger" else 0
    return measure(once, prepare, cuda, cfg["iters"], cfg["warmup"], held)


def head_impls():
    return {
        "liger-flce": optional(
            lambda: importlib.import_module("liger_kernel.transformers").LigerFusedLinearCrossEntropyLoss()
        ),
        "cce": optional(lambda: importlib.import_module("cut_cross_entropy").linear_cross_entropy),
    }


def run_head_case(case, impl_name, impl, cfg):
    device = case["device"]
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if case["bf16"] else torch.float32
    gen = torch.Generator().manual_seed(cfg["seed"])
    hidden = torch.randn(case["rows"], case["dim"], generator=gen).to(dtype).to(device).requires_grad_(True)
    weight = (torch.randn(case["vocab"], case["dim"], generator=gen) * 0.02).to(dtype).to(device).requires_grad_(True)
    targets = torch.randint(0, case["vocab"], (case["rows"],), generator=gen).to(device)

    def prepare():
        hidden.grad = None
        weight.grad = None

    if impl_name == "liger-flce":
        fn = lambda: impl(weight, hidden, targets)  # noqa: E731
    else:
        fn = lambda: impl(hidden, weight, targets)  # noqa: E731

    def once():
        fn().backward()

    r = measure(once, prepare, cuda, cfg["iters"], cfg["warmup"], 0)
    r["peakBytes"] = r.pop("extraPeakBytes")
    return r


def exit_with_parent():
    """The benchmark's process may be killed at its time limit while this one runs: then stop too, rather than go
    on holding the GPU under whatever runs next."""
    import threading

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def main():
    exit_with_parent()
    cfg = json.load(open(sys.argv[1]))
    results = open(sys.argv[2], "a")
    started = time.monotonic()
    torch.set_num_threads(os.cpu_count() or 1)

    def emit(record):
        results.write(json.dumps(record) + "\n")
        results.flush()

    emit({"kind": "info", "torch": torch.__version__, "threads": torch.get_num_threads(),
          "versions": {p: version(p) for p in ("liger-kernel", "cut-cross-entropy", "quack-kernels", "triton")}})
    impls = {"loss": loss_impls() if cfg.get("loss") else {}, "head": head_impls() if cfg.get("head") else {}}
    runs = {"loss": run_loss_case, "head": run_head_case}
    for kind in ("loss", "head"):
        for case in cfg.get(kind, []):
            for name, impl in impls[kind].items():
                if name == "compile" and not case["backward"]:
                    continue
                if (kind == "head" or name in ("liger", "quack")) and not case["device"].startswith("cuda"):
                    continue  # GPU kernels only
                if isinstance(impl, Exception):  # the anchor did not import
                    emit({"kind": kind, "key": case["key"], "impl": name, "error": describe(impl)})
                    continue
                if time.monotonic() - started > cfg.get("budgetS", float("inf")):
                    emit({"kind": kind, "key": case["key"], "impl": name, "error": "skipped: time budget"})
                    continue
                print(f"  python {kind} {case['key']} {name}…", file=sys.stderr, flush=True)
                try:
                    r = runs[kind](case, name, impl, cfg)
                except Exception as e:  # out of memory, an unsupported dtype: a result, not the end of the run
                    r = {"error": describe(e)}
                emit({"kind": kind, "key": case["key"], "impl": name, **r})
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
