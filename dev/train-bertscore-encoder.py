#!/usr/bin/env python3
"""A small RoBERTa trained here by masked-language modelling on WikiText-2, for BERTScore where no hub is reachable.

Experiment 2's BERTScore reads a RoBERTa checkpoint folder (`--bertscore.model <dir>`). Its usual encoder,
roberta-large, comes from the Hugging Face hub, which this machine cannot reach; the parity fixture's encoder
(test/fixtures/bertscore/roberta) is random-initialised, so its scores say nothing about meaning. This script makes
the next best thing that can be made here: a tiny encoder (4 layers, hidden 128, 4 heads, feed-forward 512, 256
tokens per text) that has learnt something from real text. It is NOT roberta-large and its numbers are not
comparable with published BERTScores; a report computed with it names it by its folder in bert-score's hash string
(e.g. bertscore-encoder_L4_no-idf_version=0.3.12(dpsm-native)).

What it does: RobertaForMaskedLM from a RobertaConfig, the WikiText-2 byte-level BPE tokenizer of
test/fixtures/tokenizers/bart in RoBERTa's layout (written by test/fixtures/bertscore/make_fixture.py's
write_tokenizer, the fixture's own tokenizer), trained with transformers' DataCollatorForLanguageModeling (15 % of
tokens masked; of those 80 % <mask>, 10 % random, 10 % kept) on WikiText-2's training split, packed into blocks of
256 tokens (<s> 254 tokens </s>) with </s> between lines, AdamW with linear warm-up and decay, fixed seed, CPU,
one thread, a budget of steps (and optionally of seconds). The MLM loss on a fixed, fixed-masked part of the
validation split is logged before and after. Saved with save_pretrained (model.safetensors + config.json, loadable
as RobertaModel: the MLM head and "roberta." prefix are accepted by transformers and by
native/core/models/roberta.cpp) with the tokenizer files (tokenizer.json, vocab.json, merges.txt, model_max_length
256) and TRAINING.json (what was run and the losses), into a folder written whole and then renamed.

Run from the repository root, in the bert-score fixture's venv (pinned transformers 4.40.2, tokenizers 0.19.1,
Debian's torch 1.13; the recipe is in test/fixtures/bertscore/make_fixture.py's docstring):

    nice -n 10 .cache/bertscore-venv/bin/python dev/train-bertscore-encoder.py /path/to/data \\
        [--out .cache/bertscore-encoder] [--steps 900] [--max-seconds 1260]

The data folder holds wikitext-2/tokens/{train,valid}.txt (the layout of the project's data folder; $DPSM_DATA_DIR
when not given). Then, e.g.:

    npm run exp2 -- --profile quick --out runs/exp2-quick --bertscore.model .cache/bertscore-encoder \\
        --bertscore.layer 3
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from transformers import DataCollatorForLanguageModeling, RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test" / "fixtures" / "bertscore"))
from make_fixture import write_tokenizer  # noqa: E402  (the fixture's tokenizer, one place)

MAX_TOKENS = 256


def detokenize(line):
    # WikiText's tokenized form splits numbers and hyphenated words with @-@, @,@, @.@; summaries do not.
    return line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")


def blocks(path, tokenizer, eos, bos, limit=None):
    """The split's non-empty lines as one id stream (</s> after each line), cut into <s> … </s> blocks."""
    lines = [detokenize(l.rstrip("\n")) for l in open(path, encoding="utf-8")]
    lines = [l if l.startswith(" ") else " " + l for l in lines if l.strip()]
    stream = []
    for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    body = MAX_TOKENS - 2
    n = len(stream) // body
    if limit is not None:
        n = min(n, limit)
    ids = torch.tensor(stream[: n * body], dtype=torch.long).view(n, body)
    return torch.cat([torch.full((n, 1), bos), ids, torch.full((n, 1), eos)], dim=1)


def masked_loss(model, input_ids, labels):
    # model(input_ids, labels=labels).loss, with the vocabulary projection on the masked positions only (15 % of
    # them): the same mean cross-entropy at a fraction of the head's cost, which matters on one CPU thread.
    hidden = model.roberta(input_ids=input_ids).last_hidden_state
    sel = labels != -100
    logits = model.lm_head(hidden[sel])
    return torch.nn.functional.cross_entropy(logits, labels[sel])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=os.environ.get("DPSM_DATA_DIR"), help="data folder ($DPSM_DATA_DIR)")
    ap.add_argument("--out", default=str(ROOT / ".cache" / "bertscore-encoder"))
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop early after this much training time")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=float, default=0.05, help="share of the steps")
    ap.add_argument("--val-blocks", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    args = ap.parse_args()
    if not args.data:
        ap.error("give the data folder (holding wikitext-2/tokens/train.txt) or set DPSM_DATA_DIR")
    wt2 = Path(args.data) / "wikitext-2" / "tokens"
    for split in ("train.txt", "valid.txt"):
        if not (wt2 / split).is_file():
            ap.error(f"data: expected {wt2 / split}")
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    hf_tok, vocab_size = write_tokenizer(tmp, MAX_TOKENS)
    # The fast twin of the slow tokenizer bert-score reads, built from the same vocab.json + merges.txt (this
    # tokenizers release cannot read tokenizer.json's merges layout), to encode 2 M words in seconds.
    fast = RobertaTokenizerFast(str(tmp / "vocab.json"), str(tmp / "merges.txt"))
    bos, eos, pad = hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id
    t0 = time.time()
    train = blocks(wt2 / "train.txt", fast, eos, bos)
    valid = blocks(wt2 / "valid.txt", fast, eos, bos, limit=args.val_blocks)
    print(f"data: {train.shape[0]} training blocks, {valid.shape[0]} validation blocks of {MAX_TOKENS} tokens "
          f"({time.time() - t0:.1f} s)", flush=True)

    collator = DataCollatorForLanguageModeling(hf_tok, mlm=True, mlm_probability=0.15, return_tensors="pt")
    # One masking of the validation blocks, drawn from its own seed, so the before/after losses see the same task.
    torch.manual_seed(args.seed + 1)
    val = collator([{"input_ids": row} for row in valid])
    torch.manual_seed(args.seed)

    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=MAX_TOKENS + 2,
        type_vocab_size=1,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
        # A few thousand steps at most are far from over-fitting WikiText-2: dropout would only slow learning.
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = RobertaForMaskedLM(config)

    def evaluate():
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, val["input_ids"].shape[0], args.batch_size):
                labels = val["labels"][i : i + args.batch_size]
                n = int((labels != -100).sum())
                total += masked_loss(model, val["input_ids"][i : i + args.batch_size], labels).item() * n
                count += n
        model.train()
        return total / count

    before = evaluate()
    print(f"validation MLM loss before: {before:.4f} (perplexity {math.exp(before):.1f}; "
          f"ln(vocab) = {math.log(vocab_size):.4f})", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    warm = max(1, int(args.warmup * args.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (args.steps - s) / max(1, args.steps - warm)))
    )
    order = torch.randperm(train.shape[0])
    pos, step, running, start = 0, 0, [], time.time()
    model.train()
    while step < args.steps:
        if args.max_seconds is not None and time.time() - start > args.max_seconds:
            print(f"stopping at step {step}: --max-seconds {args.max_seconds} reached", flush=True)
            break
        if pos + args.batch_size > len(order):
            order, pos = torch.randperm(train.shape[0]), 0
        batch = collator([{"input_ids": train[j]} for j in order[pos : pos + args.batch_size]])
        pos += args.batch_size
        loss = masked_loss(model, batch["input_ids"], batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        running.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step}/{args.steps}  train MLM loss {sum(running) / len(running):.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}  {time.time() - start:.0f} s", flush=True)
            running = []
    seconds = time.time() - start
    after = evaluate()
    print(f"validation MLM loss after {step} steps: {after:.4f} (perplexity {math.exp(after):.1f}); "
          f"training {seconds:.0f} s", flush=True)

    model.save_pretrained(str(tmp), safe_serialization=True)
    record = {
        "what": "tiny RoBERTa trained by MLM on WikiText-2 train (dev/train-bertscore-encoder.py); not roberta-large",
        "steps": step,
        "plannedSteps": args.steps,
        "maxSeconds": args.max_seconds,
        "batchSize": args.batch_size,
        "tokensPerBlock": MAX_TOKENS,
        "lr": args.lr,
        "seed": args.seed,
        "trainSeconds": round(seconds, 1),
        "validationBlocks": int(valid.shape[0]),
        "validationMlmLossBefore": before,
        "validationMlmLossAfter": after,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    (tmp / "TRAINING.json").write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print("wrote", out, flush=True)


if __name__ == "__main__":
    main()
