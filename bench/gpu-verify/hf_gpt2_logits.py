"""GPT-2 logits from Hugging Face transformers (GPT2LMHeadModel.from_pretrained on a local folder: no hub), the
independent implementation gpu:verify compares dpsm-native's GPT-2 with on the same device.

usage: python3 hf_gpt2_logits.py MODEL_DIR IDS.i32 BATCH LENGTH DEVICE OUT.f32   (prints transformers' version)
"""
import sys

import torch
import transformers
from transformers import GPT2LMHeadModel


def main():
    model_dir, ids_file, batch, length, device, out = sys.argv[1:7]
    with open(ids_file, "rb") as f:
        ids = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).to(torch.long).view(int(batch), int(length))
    # float32 and the eager attention: the arithmetic closest to ours (no TF32, no fused SDPA kernel choice).
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    except TypeError:  # transformers before `dtype` replaced `torch_dtype`
        model = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model = model.to(device).eval()
    with torch.no_grad():
        logits = model(ids.to(device)).logits.float().cpu().contiguous()
    with open(out, "wb") as f:
        f.write(logits.numpy().tobytes())
    print(transformers.__version__)


if __name__ == "__main__":
    main()
