"""Does a tiny BART (or PEGASUS-layout) checkpoint read its source? For each checkpoint folder: the encoder output's part common to all
real tokens (norm of their mean) and token-specific part (per-dimension std over tokens x sqrt(d_model)), each
decoder layer's cross-attention entropy against log(source length), and, when each dialogue is replaced by another
(the batch rolled by 4), the largest logit change and the mean total-variation distance of the next-token
distributions. One JSON line per checkpoint:

    python -m venv /tmp/hf-venv && /tmp/hf-venv/bin/pip install transformers==4.40.2 torch  # CPU torch
    /tmp/hf-venv/bin/python dev/source-dependence-probe.py OUT/probe-ids.json OUT/ckpt-*

OUT: a folder of dev/denoise-checkpoints.ts (probe-ids.json: 16 DialogSum validation dialogues as exp2 encodes
them; the first 8 are probed). docs/results/2026-12-07-source-dependence.md holds what it measured."""

import json
import math
import sys

import torch
from transformers import AutoModelForSeq2SeqLM

torch.set_num_threads(1)


def padded(rows, pad):
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    return ids, (ids != pad).long()


def probe(folder, src, tgt):
    m = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    pad, start = m.config.pad_token_id, m.config.decoder_start_token_id
    width = max(map(len, tgt))
    dec = torch.tensor([[start] + t[:-1] + [pad] * (width - len(t)) for t in tgt])
    ids, mask = padded(src, pad)
    ids2, mask2 = padded(src[4:] + src[:4], pad)
    with torch.no_grad():
        o = m(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, output_attentions=True)
        o2 = m(input_ids=ids2, attention_mask=mask2, decoder_input_ids=dec)
    real = o.encoder_last_hidden_state[mask.bool()]
    tv = 0.5 * (o.logits.softmax(-1) - o2.logits.softmax(-1)).abs().sum(-1)
    entropy = [-(a.clamp_min(1e-12).log() * a).sum(-1).mean().item() for a in o.cross_attentions]
    return {
        "checkpoint": folder,
        "common": real.mean(0).norm().item(),
        "specific": real.std(0).mean().item() * math.sqrt(real.shape[-1]),
        "crossEntropy": entropy,
        "uniform": mask.sum(1).float().mean().log().item(),
        "logitChange": (o.logits - o2.logits).abs().max().item(),
        # the next-token distributions' total-variation distance, averaged over the real summary positions
        "tvChange": tv[dec != pad].mean().item(),
    }


def main():
    with open(sys.argv[1]) as f:
        d = json.load(f)
    src, tgt = d["src"][:8], d["tgt"][:8]
    for folder in sys.argv[2:]:
        print(json.dumps(probe(folder, src, tgt)), flush=True)


if __name__ == "__main__":
    main()
