"""The eval set's loader and answer rule (the quality numbers in the README rest on them)."""

from __future__ import annotations

import json

import pytest

from kb.errors import InputError
from kb.evaluate import format_chat_table, is_answer, load_questions


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_split_is_a_stable_hash_unless_the_row_fixes_it(tmp_path):
    rows = [{"id": f"q-{i:03d}", "question": "续期要提前多久", "relevant": ["a.md"]} for i in range(60)]
    rows.append({"id": "fresh-001", "question": "证过期了还能续吗", "relevant": ["b.md"], "split": "heldout"})
    questions = load_questions(_write(tmp_path / "q.jsonl", rows))
    hashed = [q.split for q in questions[:60]]
    assert set(hashed) == {"tune", "heldout"} and 10 < hashed.count("heldout") < 30
    assert hashed == [q.split for q in load_questions(tmp_path / "q.jsonl")[:60]]
    assert questions[-1].split == "heldout"


def test_unknown_split_is_refused_with_the_line(tmp_path):
    path = _write(tmp_path / "q.jsonl", [{"id": "x", "question": "q", "relevant": ["a.md"], "split": "test"}])
    with pytest.raises(InputError, match=r"q\.jsonl:1:.*split must be tune or heldout"):
        load_questions(path)


def test_answer_needs_a_relevant_document_and_every_must_contain_string(tmp_path):
    path = _write(tmp_path / "q.jsonl", [{"id": "x", "question": "q", "relevant": ["a.md"],
                                          "must_contain": ["90日", "原发证机关"]}])
    q = load_questions(path)[0]
    assert is_answer(q, "a.md", "二、时限", "应在届满前90日向原发证机关申请")
    assert is_answer(q, "a.md", "", "應在屆滿前９０日向原發證機關申請")  # normalised: traditional, full-width
    assert not is_answer(q, "b.md", "", "应在届满前90日向原发证机关申请")
    assert not is_answer(q, "a.md", "", "应在届满前90日申请")


def test_chat_table_shows_each_split_and_kind():
    m = {"n": 2, "cites_answer": 0.5, "grounded": 1.0, "citations": 3.5}
    table = format_chat_table({"splits": {"tune": m, "heldout": m, "all": m}, "kinds": {"typo": m}})
    assert "| heldout | 2 | 0.500 | 1.000 | 3.5 |" in table and "By kind: typo 0.500" in table
