"""Multi-turn chat: the situation accumulates, follow-ups update it, retrieval uses it, reset."""

from __future__ import annotations

from datetime import date

from kb.conversation import Conversation
from kb.situation import Situation

TODAY = date(2026, 6, 1)


def test_conversation_reset_clears_everything():
    conv = Conversation(situation=Situation(licence="icp"), turns=3)
    assert conv.has_context
    conv.reset()
    assert conv.situation == Situation() and conv.turns == 0 and not conv.has_context


def test_follow_ups_build_up_the_situation(real_kb):
    conv = Conversation()
    first = real_kb.ask("我们的呼叫中心证续期出问题了", conv, today=TODAY)
    assert first.grounded and conv.turns == 1
    assert first.situation.licence == "call-center" and first.deadline is None
    assert len(first.follow_up) == 2  # cause and expiry date still missing

    second = real_kb.ask("还有两个月到期", conv, today=TODAY)
    assert second.grounded and second.situation.licence == "call-center"
    assert second.situation.expires_on == date(2026, 8, 1) and second.situation.date_precision == "approximate"
    assert second.deadline is not None and second.deadline.status == "window_missed"
    assert any("具体到期日" in q for q in second.follow_up)

    third = real_kb.ask("是因为材料问题", conv, today=TODAY)
    assert third.grounded and third.situation.causes == ("materials",)
    assert third.situation.expires_on == date(2026, 8, 1)  # kept from the earlier turn
    # Retrieval used the accumulated situation: the call-centre materials remedy, cited first.
    assert third.hits[0].doc_id == "call-center/cause-materials.md"
    assert "**申请材料不齐或不合规**" in third.markdown

    fourth = real_kb.ask("那ICP证呢", conv, today=TODAY)
    assert fourth.situation.licence == "icp" and fourth.situation.causes == ("materials",)
    assert fourth.deadline is not None and fourth.deadline.expires_on == date(2026, 8, 1)
    assert fourth.hits and not any(h.chunk.licences == ("call-center",) for h in fourth.hits)
    assert any("icp" in h.chunk.licences for h in fourth.hits)
    assert conv.turns == 4


def test_offtopic_turn_keeps_the_situation(real_kb):
    conv = Conversation()
    real_kb.ask("ICP证明年3月15日到期，年报漏报了", conv, today=TODAY)
    before = conv.situation
    answer = real_kb.ask("今天天气怎么样", conv, today=TODAY)
    assert not answer.grounded and conv.situation == before and answer.situation == before
    after = real_kb.ask("需要准备什么", conv, today=TODAY)
    assert after.situation == before


def test_a_follow_up_in_a_conversation_about_a_licence_is_answered_at_a_lower_confidence(real_kb):
    question = "社保是不是要交满三个月才能续"  # no anchor word (续 alone); its best passage scores about 0.80
    assert not real_kb.ask(question, Conversation(), today=TODAY).grounded  # alone: below 0.80
    conv = Conversation()
    real_kb.ask("呼叫中心证续期被驳回了，说材料不齐", conv, today=TODAY)
    assert real_kb.ask(question, conv, today=TODAY).grounded  # as a follow-up: 0.75
    # An aside is still turned away, and the situation kept.
    assert not real_kb.ask("推荐一家好吃的川菜馆", conv, today=TODAY).grounded
    assert conv.situation.licence == "call-center"


def test_a_user_who_is_only_preparing_is_not_asked_for_the_problem_again(real_kb):
    conv = Conversation()
    first = real_kb.ask("ICP证明年5月到期", conv, today=TODAY)
    assert any("遇到了什么问题" in q for q in first.follow_up)
    second = real_kb.ask("只是提前准备，没被驳回", conv, today=TODAY)
    assert second.grounded and second.situation.preparing and second.situation.applied is None
    assert not any("遇到了什么问题" in q for q in second.follow_up)
    assert "遇到的问题：暂无，提前准备续期" in second.markdown


def test_restart_resets_the_conversation(real_kb):
    conv = Conversation()
    real_kb.ask("呼叫中心证明年3月15日到期，人员社保不够", conv, today=TODAY)
    assert conv.has_context
    for word in ("重新开始", "重新开始咨询", " 重新开始！"):
        answer = real_kb.ask(word, conv, today=TODAY)
        assert answer.kind == "reset" and not answer.hits and "重新开始" in answer.markdown
        assert conv.situation == Situation() and conv.turns == 0
    fresh = real_kb.ask("续期材料要准备什么", conv, today=TODAY)
    assert fresh.situation.licence is None


def test_ask_without_conversation_is_a_single_turn(real_kb):
    a = real_kb.ask("ICP证明年3月15日到期", today=TODAY)
    b = real_kb.ask("是因为材料问题", today=TODAY)
    assert a.situation.licence == "icp" and b.situation.licence is None


def test_a_question_about_materials_is_not_shown_as_a_materials_problem(real_kb):
    answer = real_kb.ask("文网文续期需要准备哪些材料", Conversation(), today=TODAY)
    assert "遇到的问题：未说明" in answer.markdown and "您问到：申请材料" in answer.markdown
    assert "申请材料不齐或不合规" not in answer.markdown
    assert any("遇到了什么问题" in q for q in answer.follow_up)  # still asked: nothing said went wrong


def test_a_deadline_worry_in_a_conversation_about_a_licence_is_answered(real_kb):
    question = "要是来不及怎么办"  # no anchor word, no date, no cause; its best passage scores about 0.70
    assert not real_kb.ask(question, Conversation(), today=TODAY).grounded
    conv = Conversation()
    real_kb.ask("文网文下个月15号到期，还没开始准备", conv, today=TODAY)
    answer = real_kb.ask(question, conv, today=TODAY)
    assert answer.grounded and answer.deadline is not None and answer.situation.licence == "network-culture"
    assert real_kb.ask("那要是过期了呢", conv, today=TODAY).grounded
    assert not real_kb.ask("推荐一家好吃的川菜馆", conv, today=TODAY).grounded


def test_each_licence_named_with_its_own_date_gets_its_own_deadline(real_kb):
    answer = real_kb.ask("ICP证2027年5月10日到期，文网文2027年3月1日到期", Conversation(), today=TODAY)
    # The culture licence's (30 days ahead) as the main advice, the ICP licence's (90 days) beside it.
    assert answer.deadline is not None and answer.deadline.apply_by.isoformat() == "2027-01-30"
    assert "另：您的互联网信息服务业务（ICP，B25）2027年5月10日到期，续期申请最晚须在2027年2月9日前提出" in answer.markdown
