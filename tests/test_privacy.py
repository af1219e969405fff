"""Redaction of contact details and ID numbers, and the opt-in conversation log."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from datetime import date

import pytest

from kb.conversation import Conversation
from kb.engine import KnowledgeBase
from kb.privacy import ConversationLog, redact, redact_value

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("text", "secret", "label"),
    [
        ("我的手机13812345678，回电", "13812345678", "[手机号]"),
        ("电话 138-1234-5678 找张经理", "138-1234-5678", "[手机号]"),
        ("手机：138 1234 5678", "138 1234 5678", "[手机号]"),
        ("+86 139 1234 5678", "139 1234 5678", "[手机号]"),
        ("+8613912345678", "13912345678", "[手机号]"),
        ("0086-15012345678", "15012345678", "[手机号]"),
        ("联系１３８１２３４５６７８", "12345678", "[手机号]"),  # full-width digits
        ("座机010-12345678转123", "12345678", "[电话]"),
        ("(0755)1234567", "1234567", "[电话]"),
        ("（021）6123 4567", "6123 4567", "[电话]"),
        ("+86 21 1234 5678", "1234 5678", "[电话]"),
        ("客服 400-123-4567", "123-4567", "[电话]"),
        ("电话：8888 6666", "8888 6666", "[电话]"),
        ("tel 66668888", "66668888", "[电话]"),
        ("法人身份证110101199003071234", "110101199003071234", "[身份证号]"),
        ("身份证号 11010119900307123X", "11010119900307123X", "[身份证号]"),
        ("身份证 110101 19900307 123x", "19900307", "[身份证号]"),
        ("老身份证110101900307123", "110101900307123", "[身份证号]"),
        ("邮箱 zhang.san+renew@example.com.cn", "zhang.san", "[邮箱]"),
        ("发到 li_si＠corp.cn", "li_si", "[邮箱]"),
        ("微信号：zhangsan_88", "zhangsan_88", "[微信号]"),
        ("微信 abc-12345 加我", "abc-12345", "[微信号]"),
        ("加我vx: abc12345", "abc12345", "[微信号]"),
        ("wx：wang_wu_2026", "wang_wu_2026", "[微信号]"),
        ("WeChat ID: john_doe88", "john_doe88", "[微信号]"),
        ("我的wxid_abcdefg123你加一下", "wxid_abcdefg123", "[微信号]"),
        ("微信号是13912345678", "13912345678", "[微信号]"),
        ("我手机一三八一二三四五六七八", "一三八一二三四五六七八", "[手机号]"),  # Chinese digits
        ("打幺三九 幺二三四 五六七八找我", "幺二三四", "[手机号]"),
        ("座机零二一六一二三四五六七", "六一二三四五六七", "[电话]"),
        ("电话是八八八八六六六六", "八八八八六六六六", "[电话]"),
        ("微信 一二三四五六七八九", "一二三四五六七八九", "[微信号]"),
    ],
)
def test_redacts_contact_details(text, secret, label):
    out = redact(text)
    assert secret not in out
    assert label in out


@pytest.mark.parametrize(
    "text",
    [
        "证是2027-03-15到期的，注册资本1000万元",
        "2026年12月15日前提交，还有90天",
        "呼叫中心B24-1证，95号码和96号码，1069短信端口",
        "42号令第三十条，2017年施行",
        "续期申请最晚提交日 2026/12/15",
        "我们有3个坐席，12个员工",
        "二〇二六年十一月底到期，提前九十天，一一对照材料",
        "第一、二、三类问题，一二三四项都要整改",
    ],
)
def test_keeps_ordinary_numbers(text):
    assert redact(text) == text


def test_redacts_everything_in_one_message_and_nested_values():
    text = "张三 13812345678 zhang@example.com 微信号：zs_2026 身份证110101199003071234 座机 010-87654321"
    out = redact(text)
    for secret in ("13812345678", "zhang@example.com", "zs_2026", "110101199003071234", "87654321"):
        assert secret not in out
    nested = redact_value({"message": text, "list": [text], "n": 3, "none": None})
    assert "13812345678" not in json.dumps(nested, ensure_ascii=False)
    assert nested["n"] == 3 and nested["none"] is None


def test_redact_never_raises_on_odd_text():
    for text in ("", "\x00\x01", "\ud800 broken", "😀" * 50, "1" * 5000, "@" * 100):
        assert isinstance(redact(text), str)


def test_log_appends_redacted_jsonl_only_readable_by_owner(tmp_path):
    path = tmp_path / "logs" / "conversations.jsonl"
    log = ConversationLog(path)
    log.append({"message": "我的手机13812345678", "grounded": True})
    log.append({"message": "第二条"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["message"] == "我的手机[手机号]" and first["grounded"] is True and "time" in first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "c.jsonl"
    log = ConversationLog(path)

    def worker(n: int) -> None:
        for i in range(50):
            log.append({"message": f"线程{n}-{i} " + "长" * 2000})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 200


# --------------------------------------------------------------------------------------------
# Through the chat (real model and index)
# --------------------------------------------------------------------------------------------

SECRET_MESSAGE = "我们呼叫中心证明年3月15日到期，材料被退回了，我手机13812345678，邮箱boss@example.com"


def _kb(kb: KnowledgeBase, **changes) -> KnowledgeBase:
    return KnowledgeBase(kb.index, kb.settings.replace(**changes), kb.tokenizer, kb.embedder)


def test_nothing_is_written_or_logged_by_default(real_kb, tmp_path, caplog):
    path = tmp_path / "never.jsonl"
    kb = _kb(real_kb, conversation_log=path)
    assert kb.settings.log_conversations is False
    with caplog.at_level(logging.DEBUG):
        answer = kb.ask(SECRET_MESSAGE, Conversation(), today=TODAY)
    assert answer.grounded
    assert not path.exists()
    assert "13812345678" not in caplog.text and "boss@example.com" not in caplog.text


def test_enabled_log_holds_redacted_records(real_kb, tmp_path):
    path = tmp_path / "logs" / "chat.jsonl"
    kb = _kb(real_kb, log_conversations=True, conversation_log=path)
    conv = Conversation()
    kb.ask(SECRET_MESSAGE, conv, today=TODAY)
    kb.ask("今天天气怎么样", conv, today=TODAY)
    text = path.read_text(encoding="utf-8")
    assert "13812345678" not in text and "boss@example.com" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["turn"] for r in rows] == [1, 2]
    assert rows[0]["message"].endswith("我手机[手机号]，邮箱[邮箱]")
    assert rows[0]["situation"]["licence"] == "call-center" and rows[0]["sources"]
    assert rows[1]["grounded"] is False and rows[1]["kind"] == "offtopic"


def test_unwritable_log_does_not_cost_the_answer(real_kb, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    kb = _kb(real_kb, log_conversations=True, conversation_log=blocker / "sub" / "log.jsonl")
    assert kb.ask(SECRET_MESSAGE, Conversation(), today=TODAY).grounded
