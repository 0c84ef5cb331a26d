"""Break a model directory's weights in place, for tests that a check catches it (runs in .venv/eval).

usage: plant_fault.py MODEL_DIR shuffle|nan|inf
shuffle: every tensor's values permuted (seeded): same statistics, no learnt structure;
nan / inf: one value of the first tensor set to NaN / +inf.
"""

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("fault", choices=("shuffle", "nan", "inf"))
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    for f in sorted(Path(a.model).glob("*.safetensors")):
        w = load_file(f)
        if a.fault == "shuffle":
            w = {k: v.flatten()[torch.randperm(v.numel(), generator=g)].reshape(v.shape) for k, v in w.items()}
        else:
            first = sorted(w)[0]
            w[first] = w[first].clone()
            w[first].view(-1)[0] = float(a.fault)
        save_file(w, f, metadata={"format": "pt"})
        if a.fault != "shuffle":
            return


if __name__ == "__main__":
    main()
