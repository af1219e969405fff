"""Is a message something the knowledge base can answer? (grounded vs. off-topic)

Retrieval confidence alone cannot tell: "营业执照怎么注销" or "你是谁" reach 0.88 (their words
occur in the corpus), while English on-topic questions stay near 0.2 (BM25 sees no Chinese
term). So the decision combines confidence with words (kb/data/scope.yaml):

  1. smalltalk (the whole message is a greeting) or a foreign certificate named without one of
     our licences or a domain word ("食品经营许可证怎么续期"; but "管局说材料不齐，法人身份证都交了"
     names 身份证 as a renewal material), or call-centre operations or a telecom consumer matter
     with no word about the licence ("呼叫中心坐席怎么排班", "宽带断网了"), or a software licence
     without the permit ("our call center's Five9 seat licences")      -> off-topic;
  2. an anchor word (续期, 许可证, 管局, licence, …) or one of our licence names      -> on-topic;
  3. in a conversation that already has a situation, a cause, an expiry date or a word about the
     deadline in the message ("是因为材料问题", "还有两个月到期", "那要是过期了呢", "要是来不及怎么办")
                                                       -> on-topic (a follow-up);
  4. otherwise on-topic only when the best passage's confidence >= `min_confidence` (in a
     conversation that already has a situation, `context_min_confidence`).

`calibrate` measures step 4's threshold against the labelled on-topic questions and
tests/eval/offtopic*.jsonl (`kb eval --calibrate`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kb.config import DATA_DIR
from kb.errors import ConfigError, InputError
from kb.normalize import normalize
from kb.situation import Situation

SCOPE_PATH = DATA_DIR / "scope.yaml"
_PUNCT = re.compile(r"[\s\W_]+", re.U)


@dataclass(frozen=True)
class Lexicon:
    anchors: re.Pattern[str]
    domain: re.Pattern[str]  # words only our domain uses: they outweigh a foreign certificate's name
    foreign: re.Pattern[str]
    unrelated: re.Pattern[str]  # call-centre operations, telecom consumer matters
    licensing: re.Pattern[str]  # with the domain words, keep a message with an `unrelated` word on-topic
    smalltalk: re.Pattern[str]
    follow_up: re.Pattern[str]  # in a conversation about a licence: its deadline in the user's words
    software: re.Pattern[str]  # licences that are not permits: software seats, a vendor's plans
    permit: re.Pattern[str]  # words for the operating permit itself: a software licence is then a side issue


def _compile(patterns: Any, key: str, path: Path, whole: bool = False) -> re.Pattern[str]:
    if not isinstance(patterns, list) or not patterns:
        raise ConfigError(f"{path}: `{key}` must be a non-empty list of patterns.")
    body = "|".join(f"(?:{p})" for p in map(str, patterns))
    try:
        return re.compile(f"^(?:{body})$" if whole else body)
    except re.error as exc:
        raise ConfigError(f"{path}: a pattern in `{key}` is not a valid regular expression ({exc}).") from None


@lru_cache(maxsize=4)
def load_lexicon(path: Path | None = None) -> Lexicon:
    path = path or SCOPE_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the scope word list {path} ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with anchors, domain, foreign, unrelated, licensing, "
                          "follow_up, software, permit and smalltalk.")
    return Lexicon(
        anchors=_compile(data.get("anchors"), "anchors", path),
        domain=_compile(data.get("domain"), "domain", path),
        foreign=_compile(data.get("foreign"), "foreign", path),
        unrelated=_compile(data.get("unrelated"), "unrelated", path),
        licensing=_compile(data.get("licensing"), "licensing", path),
        smalltalk=_compile(data.get("smalltalk"), "smalltalk", path, whole=True),
        follow_up=_compile(data.get("follow_up"), "follow_up", path),
        software=_compile(data.get("software"), "software", path),
        permit=_compile(data.get("permit"), "permit", path),
    )


@dataclass(frozen=True)
class Signals:
    """What the words of one message say about its scope, before any retrieval."""

    verdict: bool | None  # True/False when the words decide, None when confidence must
    reason: str  # smalltalk | foreign | software | unrelated | licence | anchor | follow-up | confidence


def signals(text: str, update: Situation, has_context: bool = False, lexicon: Lexicon | None = None) -> Signals:
    lexicon = lexicon or load_lexicon()
    norm = normalize(text)
    bare = _PUNCT.sub("", norm)
    if not bare or lexicon.smalltalk.match(bare):
        return Signals(False, "smalltalk")
    if update.licence is None and lexicon.foreign.search(norm) and not lexicon.domain.search(norm):
        return Signals(False, "foreign")
    if lexicon.software.search(norm) and not lexicon.domain.search(norm) and not lexicon.permit.search(norm):
        return Signals(False, "software")  # "our call center's Five9 seat licences expire next month"
    about_licence = lexicon.licensing.search(norm) or lexicon.domain.search(norm)
    if lexicon.unrelated.search(norm) and not about_licence:
        return Signals(False, "unrelated")
    if update.licence is not None:
        return Signals(True, "licence")
    if lexicon.anchors.search(norm) or lexicon.domain.search(norm):  # domain words are anchors too
        return Signals(True, "anchor")
    if has_context and (update.causes or update.expires_on is not None or lexicon.follow_up.search(norm)):
        return Signals(True, "follow-up")
    return Signals(None, "confidence")


def decide(sig: Signals, confidence: float, threshold: float) -> bool:
    return sig.verdict if sig.verdict is not None else confidence >= threshold


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def load_offtopic(folder: Path) -> list[tuple[str, str, str]]:
    """(id, question, split) of every offtopic*.jsonl in `folder`, split as for the labelled set."""
    from kb.evaluate import hash_split, row_split

    out: list[tuple[str, str, str]] = []
    for file in sorted(folder.glob("offtopic*.jsonl")):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append((str(row["id"]), str(row["question"]), row_split(row) or hash_split(str(row["id"]))))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{file}:{number}: not a valid off-topic item ({exc}).") from None
    if not out:
        raise InputError(f"No offtopic*.jsonl in {folder}; calibration needs off-topic questions.")
    return out


DEFAULT_THRESHOLDS = tuple(round(0.40 + 0.05 * i, 2) for i in range(12))  # 0.40 .. 0.95


def calibrate(
    kb: Any,
    on_topic: Sequence[tuple[str, str, str]],
    off_topic: Sequence[tuple[str, str, str]],
    thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
) -> dict[str, Any]:
    """False-grounded (off-topic answered) and false-ungrounded (on-topic refused) rates per
    threshold, for the whole set and per split; `recommended` minimises their sum on `tune`.
    Items are (id, text, split) with split "tune" or "heldout" (see kb.evaluate)."""
    from datetime import date

    from kb.situation import extract

    today = date(2026, 6, 1)  # fixed: the verdict must not depend on the day it is measured
    rows = []
    for label, items in (("on", on_topic), ("off", off_topic)):
        for item_id, text, split in items:
            understood = kb.fix_typos(text)  # what the chat's scope decision reads (answer.py)
            sig = signals(understood, extract(understood, today))
            hits = kb.search(text, 5) if text.strip() else []
            conf = max((h.confidence for h in hits), default=0.0)
            rows.append({"id": item_id, "text": text, "label": label, "split": split,
                         "reason": sig.reason, "sig": sig, "confidence": conf})
    table = []
    for t in thresholds:
        entry: dict[str, Any] = {"threshold": t}
        for split in ("all", "tune", "heldout"):
            sel = [r for r in rows if split == "all" or r["split"] == split]
            on = [r for r in sel if r["label"] == "on"]
            off = [r for r in sel if r["label"] == "off"]
            entry[split] = {
                "false_grounded": sum(decide(r["sig"], r["confidence"], t) for r in off) / max(len(off), 1),
                "false_ungrounded": sum(not decide(r["sig"], r["confidence"], t) for r in on) / max(len(on), 1),
                "n_on": len(on),
                "n_off": len(off),
            }
        table.append(entry)
    best = min(table, key=lambda e: (e["tune"]["false_grounded"] + e["tune"]["false_ungrounded"], -e["threshold"]))
    mistakes = [
        {"id": r["id"], "question": r["text"], "label": r["label"], "reason": r["reason"],
         "confidence": round(r["confidence"], 4)}
        for r in rows
        if decide(r["sig"], r["confidence"], best["threshold"]) != (r["label"] == "on")
    ]
    reasons: dict[str, int] = {}
    for r in rows:
        reasons[f"{r['label']}:{r['reason']}"] = reasons.get(f"{r['label']}:{r['reason']}", 0) + 1
    return {"table": table, "recommended": best["threshold"], "mistakes": mistakes, "reasons": reasons}


def format_calibration(result: dict[str, Any]) -> str:
    lines = [
        "| threshold | false-grounded (all) | false-ungrounded (all) | FG tune | FU tune | FG heldout | FU heldout |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in result["table"]:
        mark = " ←" if e["threshold"] == result["recommended"] else ""
        lines.append(
            f"| {e['threshold']:.2f}{mark} | {e['all']['false_grounded']:.3f} | {e['all']['false_ungrounded']:.3f} | "
            f"{e['tune']['false_grounded']:.3f} | {e['tune']['false_ungrounded']:.3f} | "
            f"{e['heldout']['false_grounded']:.3f} | {e['heldout']['false_ungrounded']:.3f} |"
        )
    first = result["table"][0]["all"]
    lines.append(f"\n{first['n_on']} on-topic, {first['n_off']} off-topic messages; decided by: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(result["reasons"].items())))
    lines.append(f"Recommended min_confidence: {result['recommended']:.2f} (lowest sum of both error rates on tune).")
    for m in result["mistakes"]:
        kind = "answered but off-topic" if m["label"] == "off" else "refused but on-topic"
        lines.append(f"  {kind}: {m['question']} (confidence {m['confidence']:.3f}, {m['reason']})")
    return "\n".join(lines)
