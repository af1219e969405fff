"""The eval set's loader and answer rule (the quality numbers in the README rest on them)."""

from __future__ import annotations

import json

import pytest

from kb.errors import InputError
from kb.evaluate import format_chat_table, format_table, is_answer, load_questions, metrics, question_groups


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


def test_questions_are_grouped_by_their_primary_documents_topics_and_licences(tmp_path):
    rows = [
        {"id": "a", "question": "年报没报会怎样", "relevant": ["annual.md", "faq.md"]},
        {"id": "b", "question": "呼叫中心续期材料", "relevant": ["cc.md"]},
        {"id": "c", "question": "没有标注", "relevant": ["gone.md"]},
    ]
    questions = load_questions(_write(tmp_path / "q.jsonl", rows))
    documents = {
        "annual.md": {"topics": ["annual-report"], "licences": ["vats"]},
        "faq.md": {"topics": ["faq", "fees"], "licences": ["vats", "icp"]},  # a later label: not counted
        "cc.md": {"topics": ["materials", "checklist"], "licences": ["call-center"]},
    }
    topics = question_groups(questions, documents, "topics")
    assert {k: [q.id for q in v] for k, v in topics.items()} == {"annual-report": ["a"], "checklist": ["b"], "materials": ["b"]}
    licences = question_groups(questions, documents, "licences")
    assert {k: [q.id for q in v] for k, v in licences.items()} == {"call-center": ["b"], "vats": ["a"]}
    # the text table lists them after the methods
    m = metrics([1, None])
    hybrid = {"tune": m, "heldout": m, "all": m, "kinds": {"typo": m}, "topics": {"fees": m}, "licences": {"icp": m}}
    table = format_table({"methods": {"hybrid": hybrid}})
    assert "- topics: fees 0.500 (2)" in table and "- licences: icp 0.500 (2)" in table and "- kinds: typo 0.500 (2)" in table
