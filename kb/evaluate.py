"""Retrieval evaluation on the project's labelled questions (tests/eval/*.jsonl).

A question is answered at rank r when the hit at r comes from one of its `relevant` documents
and (when given) its passage contains every `must_contain` string. One third of the questions
(by a hash of their id, so nobody picks them) is held out: no tuning decision looks at it, and it
is reported separately. A row may fix its split with `"split": "heldout"`: a batch of questions
written after the tuning, by someone who had not seen the misses, is held out as a whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from kb.errors import InputError
from kb.normalize import normalize

METHODS = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    relevant: tuple[str, ...]
    must_contain: tuple[str, ...] = ()
    kind: str = "colloquial"
    fixed_split: str | None = None

    @property
    def split(self) -> str:
        return self.fixed_split or hash_split(self.id)


def hash_split(item_id: str) -> str:
    """One third of the ids, fixed by a hash so nobody picks them, is held out."""
    return "heldout" if int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % 3 == 0 else "tune"


def row_split(row: dict[str, Any]) -> str | None:
    """A row's own "split" ("tune" or "heldout"), or None to use the hash; ValueError otherwise."""
    split = row.get("split")
    if split not in (None, "tune", "heldout"):
        raise ValueError(f"split must be tune or heldout, not {split!r}")
    return split


def load_questions(path: Path) -> list[Question]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise InputError(f"No question files at {path}; pass --questions FILE.jsonl or a folder of them.")
    out: list[Question] = []
    for file in files:
        if file.name.startswith("offtopic"):
            continue  # questions the knowledge base must NOT answer: used by the chat's calibration
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                out.append(Question(
                    id=str(row["id"]),
                    question=str(row["question"]),
                    relevant=tuple(row["relevant"]),
                    must_contain=tuple(row.get("must_contain") or ()),
                    kind=str(row.get("kind", "colloquial")),
                    fixed_split=row_split(row),
                ))
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{file}:{number}: not a valid question ({exc}).") from None
    return out


def is_answer(question: Question, doc_id: str, heading: str, text: str) -> bool:
    if doc_id not in question.relevant:
        return False
    haystack = normalize(f"{heading}\n{text}")
    return all(normalize(s) in haystack for s in question.must_contain)


def first_rank(question: Question, hits: Iterable[Any]) -> int | None:
    for hit in hits:
        if is_answer(question, hit.doc_id, hit.heading, hit.text):
            return hit.rank
    return None


def first_doc_rank(question: Question, hits: Iterable[Any]) -> int | None:
    """Rank of the first hit from a relevant document (passage not checked): a looser, secondary measure."""
    for hit in hits:
        if hit.doc_id in question.relevant:
            return hit.rank
    return None


def metrics(ranks: list[int | None], doc_ranks: list[int | None] | None = None) -> dict[str, float]:
    n = max(len(ranks), 1)
    extra = {}
    if doc_ranks is not None:
        extra["doc@3"] = sum(1 for r in doc_ranks if r is not None and r <= 3) / max(len(doc_ranks), 1)
    return extra | {
        "n": len(ranks),
        "hit@1": sum(1 for r in ranks if r is not None and r <= 1) / n,
        "hit@3": sum(1 for r in ranks if r is not None and r <= 3) / n,
        "hit@5": sum(1 for r in ranks if r is not None and r <= 5) / n,
        "mrr@10": sum(1.0 / r for r in ranks if r is not None and r <= 10) / n,
    }


def question_groups(questions: list[Question], documents: dict[str, dict[str, Any]], field: str) -> dict[str, list[Question]]:
    """Questions by the `topics` or `licences` of the document they are first labelled with (their
    primary answer; later `relevant` entries are documents that also answer them): shows whether
    every point of the corpus has questions, and how well they are answered."""
    groups: dict[str, list[Question]] = {}
    for q in questions:
        meta = documents.get(q.relevant[0]) if q.relevant else None
        for value in (meta or {}).get(field) or ():
            groups.setdefault(str(value), []).append(q)
    return dict(sorted(groups.items()))


def evaluate(kb: Any, questions: list[Question], methods: Iterable[str] = METHODS) -> dict[str, Any]:
    """{method: {split: metrics}} plus the per-question ranks and the misses of hybrid. Each
    method also reports its metrics per kind of question, and per topic and licence of the
    question's primary document (see question_groups)."""
    documents = kb.index.documents
    results: dict[str, Any] = {"methods": {}, "questions": len(questions)}
    per_question: dict[str, dict[str, int | None]] = {q.id: {} for q in questions}
    for method in methods:
        ranks, doc_ranks = {}, {}
        for q in questions:
            hits = kb.search(q.question, 10, mode=method)
            ranks[q.id] = first_rank(q, hits)
            doc_ranks[q.id] = first_doc_rank(q, hits)
            per_question[q.id][method] = ranks[q.id]
        by_split: dict[str, Any] = {"all": metrics(list(ranks.values()), list(doc_ranks.values()))}
        for split in ("tune", "heldout"):
            ids = [q.id for q in questions if q.split == split]
            by_split[split] = metrics([ranks[i] for i in ids], [doc_ranks[i] for i in ids])
        kinds = sorted({q.kind for q in questions})
        by_split["kinds"] = {k: metrics([ranks[q.id] for q in questions if q.kind == k]) for k in kinds}
        for field in ("topics", "licences"):
            by_split[field] = {
                value: metrics([ranks[q.id] for q in group]) for value, group in question_groups(questions, documents, field).items()
            }
        results["methods"][method] = by_split
    results["misses"] = [
        {"id": q.id, "question": q.question, "split": q.split, "ranks": per_question[q.id]}
        for q in questions
        if (per_question[q.id].get("hybrid") or 99) > 3
    ]
    return results


def evaluate_chat(kb: Any, questions: list[Question], today: date) -> dict[str, Any]:
    """What a chat user sees: does the answer to each question (one message, a new conversation)
    cite a passage that answers it (relevant document, `must_contain` strings)? Also the share of
    grounded answers and the mean number of cited passages, per split and per kind."""
    rows = []
    for q in questions:
        answer = kb.ask(q.question, today=today)
        rank = next((i for i, h in enumerate(answer.hits, start=1) if is_answer(q, h.doc_id, h.heading, h.text)), None)
        rows.append((q, rank, answer.grounded, len(answer.hits)))

    def summary(selected: list[tuple[Question, int | None, bool, int]]) -> dict[str, float]:
        n = max(len(selected), 1)
        return {
            "n": len(selected),
            "cites_answer": sum(1 for _, rank, _, _ in selected if rank is not None) / n,
            "grounded": sum(1 for _, _, grounded, _ in selected if grounded) / n,
            "citations": sum(count for _, _, _, count in selected) / n,
        }

    result: dict[str, Any] = {"questions": len(questions), "today": today.isoformat()}
    result["splits"] = {"all": summary(rows)} | {
        split: summary([r for r in rows if r[0].split == split]) for split in ("tune", "heldout")
    }
    result["kinds"] = {k: summary([r for r in rows if r[0].kind == k]) for k in sorted({q.kind for q in questions})}
    result["misses"] = [
        {"id": q.id, "question": q.question, "split": q.split, "grounded": grounded}
        for q, rank, grounded, _ in rows
        if rank is None
    ]
    return result


def format_chat_table(results: dict[str, Any]) -> str:
    lines = [
        "| split | n | answer cites an answering passage | grounded | passages cited (mean) |",
        "|---|---|---|---|---|",
    ]
    for split in ("tune", "heldout", "all"):
        m = results["splits"][split]
        lines.append(f"| {split} | {m['n']} | {m['cites_answer']:.3f} | {m['grounded']:.3f} | {m['citations']:.1f} |")
    kinds = ", ".join(f"{k} {m['cites_answer']:.3f}" for k, m in results["kinds"].items())
    return "\n".join(lines) + f"\n\nBy kind: {kinds}"


def format_table(results: dict[str, Any], split: str = "all") -> str:
    splits = ["tune", "heldout", "all"] if split == "all" else [split]
    lines = [
        "| method | split | n | hit@1 | hit@3 | hit@5 | MRR@10 | doc@3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, by_split in results["methods"].items():
        for s in splits:
            m = by_split[s]
            lines.append(
                f"| {method} | {s} | {m['n']} | {m['hit@1']:.3f} | {m['hit@3']:.3f} | {m['hit@5']:.3f} | {m['mrr@10']:.3f} "
                f"| {m.get('doc@3', float('nan')):.3f} |"
            )
    hybrid = results["methods"].get("hybrid")
    if hybrid and split == "all":
        lines.append("\nHybrid hit@3 (n) of all questions, by kind, and by topic and licence of the document that answers them:")
        for field in ("kinds", "topics", "licences"):
            groups = ", ".join(f"{name} {m['hit@3']:.3f} ({m['n']})" for name, m in hybrid.get(field, {}).items())
            lines.append(f"- {field}: {groups}")
    return "\n".join(lines)
