"""`KnowledgeBase`: one opened index build with its tokenizer and embedding model.

An instance never changes; a rebuilt index is a new instance (the app swaps references), so a
request that started on one build finishes on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.config import Settings, load_settings
from kb.embed import Embedder, load_embedder, model_location
from kb.errors import IndexIncompatibleError
from kb.retrieve import RetrievalParams, fix_domain_typos, search
from kb.store import LoadedIndex, load_index
from kb.tokenize import Tokenizer, get_tokenizer
from kb.types import Hit, SearchFilters

if TYPE_CHECKING:
    from kb.answer import Answer
    from kb.conversation import Conversation


class KnowledgeBase:
    def __init__(self, index: LoadedIndex, settings: Settings, tokenizer: Tokenizer, embedder: Embedder | None = None):
        self.index = index
        self.settings = settings
        self.tokenizer = tokenizer
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.params = RetrievalParams(
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            passage_weight=settings.passage_weight,
            bm25_weight=settings.bm25_weight,
            candidates=settings.candidates,
            dense_floor=settings.confidence_dense_floor,
            dense_ceiling=settings.confidence_dense_ceiling,
            max_query_chars=settings.max_message_chars,
            homophones=settings.homophone_correction,
        )
        self.opened_at = time.time()

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        index: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        build_id: str | None = None,
        verify_hashes: bool = True,
    ) -> KnowledgeBase:
        settings = settings or load_settings()
        if index is not None:
            settings = settings.replace(index=Path(index))
        loaded = load_index(settings.index, build_id, verify_hashes=verify_hashes)
        manifest = loaded.manifest
        configured = embedder.name if embedder is not None else model_location(settings).name
        built_with = manifest.model.get("name")
        if built_with != configured:
            raise IndexIncompatibleError(
                f"The index in {settings.index} was built with model {built_with!r}, but the configured model is "
                f"{configured!r}. Run `kb build` to rebuild it with the configured model, or set KB_MODEL={built_with}."
            )
        tokenizer = get_tokenizer(
            oov_bigrams=bool(manifest.tokenizer.get("oov_bigrams", False)),
            query_expansion=settings.query_expansion,
        )
        if tokenizer.fingerprint != manifest.tokenizer:
            raise IndexIncompatibleError(
                f"The index in {settings.index} was built with another tokenizer (jieba version, user dictionary, "
                "stopwords or synonyms changed). Run `kb build` to rebuild it."
            )
        return cls(loaded, settings, tokenizer, embedder)

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use, so keyword-only work never pays for the model."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    embedder = load_embedder(self.settings)
                    expected = self.index.manifest.model.get("dim")
                    if expected is not None and int(expected) != embedder.dim:
                        raise IndexIncompatibleError(
                            f"The index has {expected}-dimensional vectors but the model gives {embedder.dim}. "
                            "Run `kb build` to rebuild the index."
                        )
                    # Prepare the fast query path now, not on the first user's query (~1-3 s).
                    warm_up = getattr(embedder, "warm_up", None)
                    if warm_up is not None:
                        warm_up()
                    self._embedder = embedder
        return self._embedder

    # -- searching --------------------------------------------------------------------------
    def search(
        self,
        query: str,
        top_k: int = 5,
        *,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        embedder = None if mode == "bm25" else self.embedder
        return search(
            self.index, self.tokenizer, embedder, query,
            top_k=top_k, mode=mode, filters=filters, params=self.params, timings=timings,
        )

    def fix_typos(self, text: str) -> str:
        """The message as the chat's parser should read it: homophone typos of domain words fixed
        (retrieve.fix_domain_typos); unchanged when homophone correction is off."""
        return fix_domain_typos(self.index, self.tokenizer, text) if self.params.homophones else text

    # -- chat -------------------------------------------------------------------------------
    def ask(self, message: str, conversation: Conversation | None = None, today: date | None = None) -> Answer:
        """Answer one chat message (kb/answer.py); `conversation` carries the situation across turns."""
        from kb.answer import respond

        return respond(self, message, conversation, today)

    def ask_stream(
        self, message: str, conversation: Conversation | None = None, today: date | None = None
    ) -> Iterator[Answer]:
        """Partial answers (complete=False) while a generator streams, then the complete one."""
        from kb.answer import respond_stream

        return respond_stream(self, message, conversation, today)

    # -- documents and facts ----------------------------------------------------------------
    @property
    def build_id(self) -> str:
        return self.index.build_id

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """The stored document (metadata and text); only ids that are in the index are served."""
        return self.index.documents.get(doc_id)

    def chunks_of(self, doc_id: str) -> list:
        return [c for c in self.index.chunks if c.doc_id == doc_id]

    def info(self) -> dict[str, Any]:
        m = self.index.manifest
        return {
            "build_id": m.build_id,
            "created_at": m.created_at,
            "index_dir": str(self.settings.index),
            "build_dir": str(self.index.build_dir),
            "model": m.model,
            "tokenizer": m.tokenizer,
            "dense": m.dense,
            "counts": m.counts,
            "kb_version": m.kb_version,
        }
