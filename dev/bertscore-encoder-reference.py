#!/usr/bin/env python3
"""bert_score.score on real DialogSum validation pairs, for dev/check-bertscore-encoder.ts to compare against.

Run from the repository root in the bert-score fixture's venv (test/fixtures/bertscore/make_fixture.py's docstring):

    .cache/bertscore-venv/bin/python dev/bertscore-encoder-reference.py DATA_DIR OUT.json MODEL_DIR:LAYER[,LAYER] ...

DATA_DIR holds dialogsum/dev.jsonl ($DPSM_DATA_DIR-style). Four sets of 50 pairs from the first 50 dialogues
of the validation split: "self" (a reference summary against itself), "shifted" (against the next dialogue's
summary), "dialogue" (the dialogue as candidate against its own summary: related text, not a paraphrase) and
"dialogue-shifted" (the next dialogue against this summary). The related sets should score above the mismatched
ones with an encoder that learnt something from text. Written: the pairs and P/R/F (float32 as bert-score returns
them) per model, layer and idf setting.
"""

import json
import sys
from pathlib import Path

import bert_score

N = 50


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [json.loads(l) for l in open(data / "dialogsum" / "dev.jsonl", encoding="utf-8") if l.strip()][: N + 1]
    sets = {
        "self": [(r["summary"], r["summary"]) for r in rows[:N]],
        "shifted": [(rows[i + 1]["summary"], rows[i]["summary"]) for i in range(N)],
        "dialogue": [(r["document"], r["summary"]) for r in rows[:N]],
        "dialogue-shifted": [(rows[i + 1]["document"], rows[i]["summary"]) for i in range(N)],
    }
    pairs = [{"set": name, "candidate": c, "reference": r} for name, ps in sets.items() for c, r in ps]
    cands = [p["candidate"] for p in pairs]
    refs = [p["reference"] for p in pairs]
    cases = []
    for spec in sys.argv[3:]:
        model, layers = spec.rsplit(":", 1)
        for layer in map(int, layers.split(",")):
            for idf in (False, True):
                (P, R, F), h = bert_score.score(
                    cands, refs, model_type=model, num_layers=layer, idf=idf, device="cpu", return_hash=True
                )
                cases.append(
                    {"model": model, "layer": layer, "idf": idf, "hash": h,
                     "precision": P.tolist(), "recall": R.tolist(), "f1": F.tolist()}
                )
                print(h, flush=True)
    out.write_text(json.dumps({"bertScoreVersion": bert_score.__version__, "pairs": pairs, "cases": cases}) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
