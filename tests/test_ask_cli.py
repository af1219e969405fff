"""`kb ask` and `kb eval --calibrate` through click's test runner (real model and index)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kb.cli import main

EXAMPLE = "我们呼叫中心证续期被驳回了，说材料不齐，证是明年3月15号到期的，还来得及吗"


def test_ask_json(real_kb, real_settings):
    result = CliRunner().invoke(
        main, ["ask", EXAMPLE, "--today", "2026-06-01", "--index", str(real_settings.index), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["grounded"] is True
    assert data["situation"]["licence"] == "call-center" and data["situation"]["expires_on"] == "2027-03-15"
    assert data["deadline"]["status"] == "on_time" and data["deadline"]["apply_by"] == "2026-12-15"
    assert data["sources"] and data["follow_up"] == [] and data["notice"] is None
    assert "### 应对措施" in data["answer"]


def test_ask_markdown_output(real_kb, real_settings):
    result = CliRunner().invoke(main, ["ask", "帮我写一首诗", "--index", str(real_settings.index)])
    assert result.exit_code == 0
    assert "知识库" in result.output and "### 应对措施" not in result.output


def test_ask_stdin_one_conversation_per_line(real_kb, real_settings):
    lines = "呼叫中心证明年3月15日到期\n是因为材料问题\n\n今天天气怎么样\n"
    result = CliRunner().invoke(
        main, ["ask", "-", "--today", "2026-06-01", "--index", str(real_settings.index)], input=lines
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 4
    assert rows[0]["situation"]["licence"] == "call-center" and rows[0]["deadline"]["expires_on"] == "2027-03-15"
    assert rows[1]["situation"]["licence"] is None  # its own conversation: nothing carried over
    assert rows[2]["grounded"] is False and rows[2]["sources"] == []
    assert rows[3]["grounded"] is False


def test_bad_today_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["ask", "续期", "--today", "2026-13-45", "--index", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "YYYY-MM-DD" in result.output


def test_eval_calibrate_prints_rates_per_threshold(real_kb, real_settings, tmp_path):
    (tmp_path / "questions-x.jsonl").write_text(
        json.dumps({"id": "q1", "question": "呼叫中心证续期材料不齐怎么办", "relevant": ["x.md"]}, ensure_ascii=False)
        + "\n" + json.dumps({"id": "q2", "question": "提前90天算不算周末", "relevant": ["x.md"]}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "offtopic.jsonl").write_text(
        json.dumps({"id": "o1", "question": "怎么做红烧肉"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    result = CliRunner().invoke(
        main, ["eval", "--calibrate", "--questions", str(tmp_path), "--index", str(real_settings.index), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [row["threshold"] for row in data["table"]][:2] == [0.4, 0.45]
    assert data["table"][0]["all"]["n_on"] == 2 and data["table"][0]["all"]["n_off"] == 1
    assert 0.4 <= data["recommended"] <= 0.95
