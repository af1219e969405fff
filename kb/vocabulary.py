"""The fixed vocabularies (kb/data/vocabulary.yaml) as plain, immutable data.

One loader for every consumer: the corpus checker (topic and licence ids), the tokenizer (aliases
as domain words) and the situation extractor (aliases, codes, cause keywords). Aliases, codes and
keywords are kept exactly as written; consumers normalise them the same way they normalise text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from kb.config import DATA_DIR
from kb.errors import ConfigError

VOCABULARY_PATH = DATA_DIR / "vocabulary.yaml"


@dataclass(frozen=True)
class Licence:
    id: str
    label: str
    aliases: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cause:
    id: str
    label: str
    topics: tuple[str, ...] = ()
    query: str = ""
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """Read-only id -> entry mappings, in file order."""

    licences: Mapping[str, Licence]
    topics: Mapping[str, str]  # topic id -> label
    causes: Mapping[str, Cause]

    # Mapping proxies are not hashable; hash by content (computed once) so a Vocabulary can key a
    # cache of compiled matchers. The generated __eq__ already compares by content.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        content = (tuple(self.licences.items()), tuple(self.topics.items()), tuple(self.causes.items()))
        object.__setattr__(self, "_hash", hash(content))

    def __hash__(self) -> int:
        return self._hash

    def licence_label(self, licence_id: str) -> str:
        return self.licences[licence_id].label

    def cause_label(self, cause_id: str) -> str:
        return self.causes[cause_id].label

    def topic_label(self, topic_id: str) -> str:
        return self.topics[topic_id]

    def cause_subject(self, cause_id: str) -> str:
        """What a cause is about, not what went wrong ("申请材料" for 申请材料不齐或不合规): for a
        user who only asks about it."""
        return self.topics[self.causes[cause_id].topics[0]]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where} 应为列表（list），请检查词表文件。")
    return tuple(str(v) for v in value)


def _section(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"词表 {path} 缺少 `{key}` 部分或其为空，请对照 kb/data/vocabulary.yaml 的结构修正。")
    return value


def _load(path: Path) -> Vocabulary:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"找不到词表文件 {path}。") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"词表文件 {path} 不是合法的 YAML：{exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"词表文件 {path} 的顶层应为映射（mapping）。")

    licences: dict[str, Licence] = {}
    for lid, entry in _section(data, "licences", path).items():
        entry = entry or {}
        licences[str(lid)] = Licence(
            id=str(lid),
            label=str(entry.get("label") or lid),
            aliases=_strings(entry.get("aliases"), f"licences.{lid}.aliases"),
            codes=_strings(entry.get("codes"), f"licences.{lid}.codes"),
        )
    topics = {str(k): str(v) for k, v in _section(data, "topics", path).items()}
    causes: dict[str, Cause] = {}
    for cid, entry in _section(data, "causes", path).items():
        entry = entry or {}
        cause_topics = _strings(entry.get("topics"), f"causes.{cid}.topics")
        unknown = [t for t in cause_topics if t not in topics]
        if unknown:
            raise ConfigError(f"词表 {path} 中原因 {cid} 引用了未定义的主题：{', '.join(unknown)}。")
        causes[str(cid)] = Cause(
            id=str(cid),
            label=str(entry.get("label") or cid),
            topics=cause_topics,
            query=str(entry.get("query") or ""),
            keywords=_strings(entry.get("keywords"), f"causes.{cid}.keywords"),
        )
    return Vocabulary(
        licences=MappingProxyType(licences),
        topics=MappingProxyType(topics),
        causes=MappingProxyType(causes),
    )


@lru_cache(maxsize=8)
def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """The vocabulary at `path` (default kb/data/vocabulary.yaml), parsed once per path argument.

    Call `load_vocabulary.cache_clear()` after editing the file in the same process.
    """
    return _load(path or VOCABULARY_PATH)
