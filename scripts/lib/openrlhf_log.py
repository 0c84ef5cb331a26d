"""What OpenRLHF's train_dpo prints, as the DPO stage (scripts/dpo.py) and the report read it from a run's log."""

import re

# DPOTrainer's progress bar, once per micro-step (3 significant digits): loss, acc, chosen_reward, reject_reward
STEP = re.compile(r"loss=([-+\d.e]+), acc=([-+\d.e]+), chosen_reward=([-+\d.e]+), reject_reward=([-+\d.e]+)")
MICRO = re.compile(r"Train step of epoch \d+:\s+\d+%\|[^|\n]*\|\s*(\d+)/\d+")  # micro-steps done in this attempt
LOADED = re.compile(r"Loaded the checkpoint: .*, consumed_samples: (\d+)")  # train_dpo, on resuming
ATTEMPT = "[aloe] dpo-run attempt: "  # the line the stage writes into the log before each attempt
