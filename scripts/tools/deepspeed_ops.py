"""Build DeepSpeed's CPU ops that OpenRLHF's DPO path loads (fused Adam, shared-memory all-reduce) into
TORCH_EXTENSIONS_DIR, so that no DPO run pays their JIT compile (1-5 minutes on 2 cores). Run by
`make install` in .venv/dpo, beside the installs that follow it; torch reuses the cache while the compiler
command is the same (the same environment variables as a stage: scripts/lib/venv.py).

  .venv/dpo/bin/python scripts/tools/deepspeed_ops.py <marker file written on success>
"""

import sys
import time
from pathlib import Path

OPS = ("FusedAdamBuilder", "ShareMemCommBuilder")  # what deepspeed.initialize and deepspeed.comm load on CPU


def main():
    t0 = time.time()
    from deepspeed.accelerator import get_accelerator

    for name in OPS:
        get_accelerator().create_op_builder(name).load(verbose=False)
    Path(sys.argv[1]).write_text(f"{', '.join(OPS)} built in {time.time() - t0:.0f} s\n")


if __name__ == "__main__":
    main()
