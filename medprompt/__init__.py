"""Medprompt for medical MCQA (P-BETA §6): kNN few-shot from a chain-of-thought database, choice-shuffled
self-consistency ensembles and a majority vote, on vLLM (GPU), HF transformers (CPU) or an
OpenAI-compatible server. Modules: database, retrieval, shuffle, prompts, parse, vote, generate, run; the
benchmarks it runs on are loaded by data_prep/benchmarks.py."""
