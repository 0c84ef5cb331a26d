"""The Aloe Beta data pipeline (P-BETA §4): normalize -> clean -> dedup -> decontaminate -> prune ->
template -> mix -> outputs (SFT mix, 5 DPO chunks, red-team set). Every step streams JSONL, keeps what it
drops in a rejects file with the reason, and reports counts in, out and dropped per source and reason."""
