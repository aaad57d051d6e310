"""Full-size parity, measured by hand (the checkpoints are 1.6-2.3 GB, too large to commit): transformers makes a
random-initialised model of bart-large's or pegasus-large's shape, saves it with save_pretrained, and records
its float64 logits on two real CNN/DailyMail pairs (UTF-8 bytes + 3 as ids); compare.ts loads the folder with
dpsm-native and prints the relative error.

    /tmp/hf-venv/bin/python bench/seq2seq-parity/make.py bart-large /tmp/parity   (or pegasus-large)
    npx tsx bench/seq2seq-parity/compare.ts /tmp/parity/bart-large
(the environment of test/fixtures/seq2seq/make_fixture.py: transformers 4.40.2 on torch 1.13)
"""
import json
import os
import sys
import time

import torch
from transformers import BartConfig, BartForConditionalGeneration, PegasusConfig, PegasusForConditionalGeneration
name, root = sys.argv[1], sys.argv[2]
out = os.path.join(root, name)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "cnn_dailymail", "validation_sample.jsonl")
rows = [json.loads(l) for l in open(DATA)][:2]
if name == "bart-large":
    cfg = BartConfig(vocab_size=50265, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                     decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
                     activation_function="gelu", scale_embedding=False, dropout=0.1, attention_dropout=0.1, activation_dropout=0.1,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    cls = BartForConditionalGeneration; bos = [0]
else:
    cfg = PegasusConfig(vocab_size=96103, d_model=1024, encoder_layers=16, decoder_layers=16, encoder_attention_heads=16,
                        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
                        activation_function="relu", scale_embedding=True, dropout=0.1, attention_dropout=0.1, activation_dropout=0.1,
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    cls = PegasusForConditionalGeneration; bos = []
torch.manual_seed(0)
t0 = time.time(); model = cls(cfg).eval(); print("init", time.time() - t0, sum(p.numel() for p in model.parameters()))
model.save_pretrained(out, safe_serialization=True)
src = [bos + [b + 3 for b in r["article"].encode()[:200]] + [cfg.eos_token_id] for r in rows]
S = max(map(len, src))
ids = [s + [cfg.pad_token_id] * (S - len(s)) for s in src]
mask = [[1] * len(s) + [0] * (S - len(s)) for s in src]
dec = [[cfg.decoder_start_token_id] + [b + 3 for b in r["highlights"].encode()[:40]] for r in rows]
torch.set_default_dtype(torch.float64)
m64 = model.double()
with torch.no_grad():
    lg = m64(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), decoder_input_ids=torch.tensor(dec)).logits
json.dump({"input_ids": ids, "attention_mask": mask, "decoder_input_ids": dec, "logits": lg.reshape(-1).tolist()},
          open(out + "/expected-full.json", "w"))
print("saved", out, tuple(lg.shape))
