"""Exact kNN over the database questions: FAISS IndexFlatIP on L2-normalised vectors (cosine similarity;
exact and deterministic, unlike an HNSW index). A database example whose question is the test question
itself (same text, ignoring case and spacing) is never returned."""

import faiss
import numpy as np


def normalize_text(s: str) -> str:
    return " ".join(s.lower().split())


class Retriever:
    def __init__(self, vectors: np.ndarray, questions: list):
        if len(vectors) != len(questions):
            raise ValueError(f"{len(vectors)} vectors for {len(questions)} questions")
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.keys = [normalize_text(q) for q in questions]

    def neighbours(self, query_vecs: np.ndarray, query_texts: list, k: int) -> list:
        """For each query, the indices of its k nearest database examples, most similar LAST."""
        out = []
        n = len(self.keys)
        for vec, text in zip(np.ascontiguousarray(query_vecs, dtype=np.float32), query_texts):
            key, want = normalize_text(text), min(k + 8, n)
            while True:
                _, idx = self.index.search(vec[None, :], want)
                kept = [int(i) for i in idx[0] if i >= 0 and self.keys[i] != key][:k]
                if len(kept) == min(k, n - self.keys.count(key)) or want >= n:
                    break
                want = min(2 * want, n)
            out.append(kept[::-1])
        return out
