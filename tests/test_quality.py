"""Retrieval quality on the project's labelled questions, with the real model and the real corpus.

The thresholds sit a little under the measured numbers (README, "Retrieval quality"): a change
that makes retrieval worse fails here. Passage level: the hit must come from a relevant document
and contain the question's `must_contain` strings.
"""

from __future__ import annotations

from datetime import date

import pytest

from kb.evaluate import evaluate, evaluate_chat, load_questions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(real_kb):
    questions = load_questions(real_kb.settings.eval_questions)
    assert len(questions) >= 200
    return evaluate(real_kb, questions)


def test_hybrid_quality_does_not_regress(results):
    hybrid = results["methods"]["hybrid"]
    # Measured 2026-11-30, second session (1461 questions, with batch 20): hit@3 0.950, MRR 0.861,
    # doc@3 0.978, held out 0.939. On 1401 (batches 12-19, the English FAQ keys and the six keys of
    # that day): 0.951 / 0.861 / 0.978 / 0.941. On 1281, before
    # batch 18 and those keys (2026-11-29, late night, on a freshly set-up machine): 0.942 / 0.854 /
    # 0.970 / 0.934; on 1221, before batch 17: 0.943 / 0.855 / 0.973 / 0.937. The
    # int8 query kernels differ by CPU (the same code scored 0.957 on 811 questions on the previous
    # machine and 0.951 on this one), so the floors leave that much room. (On 1161, before the
    # English keys: 0.935 / 0.848 / 0.972 / 0.921; the held-out halves of batches 14 and 15, aimed
    # at the weakest kinds, had scored 0.700 and 0.760. On 1111: 0.941 / 0.855 / 0.974 / 0.927. On 1011, before
    # batch 14: 0.954 / 0.864 / 0.981 / 0.946, with fp32 query
    # vectors 0.955 / 0.866 / 0.983 / 0.951. On 911: 0.957 / 0.873 / 0.985 / 0.948; on
    # 811: 0.951 / 0.863 / 0.982 / 0.947 on this machine. On 711: 0.968 / 0.878 /
    # 0.986 / 0.959; on 661: 0.965 / 0.875 / 0.983 / 0.956; on 561: 0.954 / 0.873 / 0.975 / 0.943;
    # on 481: 0.960 / 0.879 / 0.977 / 0.948; on 436: 0.954 / 0.880 / 0.975 / 0.947. On the 396
    # before batch 5: 0.937 / 0.856 / held out 0.934 with the two dense rankings folded into one,
    # as before retrieve.py fused three.)
    assert hybrid["all"]["hit@3"] >= 0.925, hybrid["all"]
    assert hybrid["all"]["mrr@10"] >= 0.835, hybrid["all"]
    assert hybrid["all"]["doc@3"] >= 0.96, hybrid["all"]
    # The held-out questions are reported separately; they must not collapse either.
    assert hybrid["heldout"]["hit@3"] >= 0.91, hybrid["heldout"]


def test_hybrid_beats_each_method_alone(results):
    methods = results["methods"]
    for metric in ("hit@3", "mrr@10"):
        assert methods["hybrid"]["all"][metric] > methods["bm25"]["all"][metric], metric
        assert methods["hybrid"]["all"][metric] > methods["dense"]["all"][metric], metric


def test_every_kind_of_question_is_answered(results):
    # colloquial, typo, traditional, english, formal: none may be hopeless
    kinds = results["methods"]["hybrid"]["kinds"]
    assert {"colloquial", "traditional", "english"} <= set(kinds)
    for kind, m in kinds.items():
        assert m["hit@5"] >= 0.8, (kind, m)
    # Pinyin-input typos (续其 for 续期) are corrected on the BM25 side (kb/spelling.py; its effect on
    # search is tested in test_spelling.py). Measured on the 131 typo questions: 0.947; on 125, 0.944; on 119, 0.941; on 113, 0.938
    # and 0.929 with the correction off (on the first 81: 0.951 and 0.926); the floor leaves room for CPU differences.
    assert kinds["typo"]["hit@3"] >= 0.92, kinds["typo"]
    # English questions find the Chinese passages through the English FAQ keys (`questions_en`):
    # 0.918 on the 279 (0.910 on 267, 0.901 on 243), against 0.830 on the 171 of before without them.
    assert kinds["english"]["hit@3"] >= 0.87, kinds["english"]


def test_every_topic_and_licence_has_questions_that_find_their_passage(results, real_kb):
    # Grouped by the topics and licences of each question's primary document. Measured 2026-11-30
    # (1461 questions): every topic and licence the corpus uses has 14 or more; the weakest is
    # professional-help (when to ask the authority or a professional, and conduct while an
    # application waits: hit@3 0.821, hit@5 0.857 of 56; 0.870 of 54 earlier that day), then reapply
    # 0.901 and process 0.907; licences hit@3 0.933-1.000. One
    # question is 0.02 of that topic, so its floor leaves two questions' room for CPU differences.
    used = {field: {str(v) for meta in real_kb.index.documents.values() for v in meta.get(field) or ()}
            for field in ("topics", "licences")}
    hybrid = results["methods"]["hybrid"]
    for field, floor in (("topics", 0.78), ("licences", 0.93)):
        assert used[field] <= set(hybrid[field]), (field, used[field] - set(hybrid[field]))
        for value in used[field]:
            m = hybrid[field][value]
            assert m["n"] >= 5 and m["hit@5"] >= floor, (field, value, m)


def test_chat_answers_cite_a_passage_that_answers_the_question(real_kb):
    # What a chat user sees (kb eval --chat): measured 2026-11-30 on 1461 questions 0.966 (tune
    # 0.980, held out 0.959), grounded 0.999; on 1401 0.965 (tune 0.974, held out 0.960), grounded 0.998; on 1281 0.954 (tune and held out alike); on 1161 0.952 (tune 0.968, held out 0.940); on 1111 0.957; on 1011 0.962; on 911 0.962, later
    # 0.965; on 811 0.961; on 711 0.962; on 561 0.948; on 436 before batches 6-8, 0.945; 0.931 when
    # the message's own search added only two passages after cause groups.
    result = evaluate_chat(real_kb, load_questions(real_kb.settings.eval_questions), date(2026, 11, 29))
    assert result["questions"] >= 400
    assert result["splits"]["all"]["cites_answer"] >= 0.94, result["splits"]
    assert result["splits"]["heldout"]["cites_answer"] >= 0.925, result["splits"]
    assert result["splits"]["all"]["grounded"] >= 0.98, result["splits"]
