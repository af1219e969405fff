"""Renewal deadlines: rule table, status boundaries, advice text and the .ics export."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kb.deadlines import (
    EXPIRED,
    ON_TIME,
    WINDOW_MISSED,
    Filed,
    compute,
    expiry_from_issue,
    format_date,
    load_rules,
    status_advice,
    to_ics,
)
from kb.errors import ConfigError
from kb.vocabulary import load_vocabulary

D = date
EXPIRES = D(2027, 3, 15)  # telecom apply-by: 2026-12-15
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)

# --------------------------------------------------------------------------------------------
# The rule table says what the fact sheet says
# --------------------------------------------------------------------------------------------


def test_rule_numbers_match_the_fact_sheet() -> None:
    rules = load_rules()
    telecom, assumed = rules.rule_for("call-center")
    assert (telecom.id, telecom.lead_days, telecom.validity_years, assumed) == ("telecom", 90, 5, False)
    assert telecom.grace_period is False
    assert [m.days_before for m in telecom.milestones] == [180, 120, 100]  # fact sheet section 2
    culture, assumed = rules.rule_for("network-culture")
    assert (culture.lead_days, culture.validity_years, assumed) == (30, 3, False)
    assert "文化和旅游" in culture.authority
    assert "原发证机关" in telecom.authority
    assert rules.default == "telecom"


def test_every_vocabulary_licence_has_a_rule() -> None:
    rules = load_rules()
    for licence in load_vocabulary().licences:
        rule, assumed = rules.rule_for(licence)
        assert not assumed, licence
        assert rule.lead_days < min(m.days_before for m in rule.milestones)


def test_fact_sheet_example() -> None:
    # Fact sheet section 2: expiry 2026-06-30 -> file by 2026-04-01 at the latest.
    assert compute(D(2026, 6, 30), D(2026, 1, 1), "icp").apply_by == D(2026, 4, 1)


# --------------------------------------------------------------------------------------------
# Status and boundaries
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "status", "days_left"),
    [
        (D(2026, 6, 1), ON_TIME, 197),
        (D(2026, 12, 14), ON_TIME, 1),
        (D(2026, 12, 15), ON_TIME, 0),  # today == apply_by: still on time
        (D(2026, 12, 16), WINDOW_MISSED, -1),  # apply_by + 1
        (D(2027, 1, 1), WINDOW_MISSED, -17),
        (D(2027, 3, 15), WINDOW_MISSED, -90),  # today == expires_on: still valid
        (D(2027, 3, 16), EXPIRED, -91),  # expires_on + 1
        (D(2028, 1, 1), EXPIRED, -382),
    ],
)
def test_status_boundaries(today: date, status: str, days_left: int) -> None:
    d = compute(EXPIRES, today, "call-center")
    assert d.apply_by == D(2026, 12, 15)
    assert (d.status, d.days_left) == (status, days_left)


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (D(2027, 2, 13), ON_TIME),
        (D(2027, 2, 14), WINDOW_MISSED),
        (D(2027, 3, 15), WINDOW_MISSED),
        (D(2027, 3, 16), EXPIRED),
    ],
)
def test_network_culture_30_days(today: date, status: str) -> None:
    d = compute(EXPIRES, today, "network-culture")
    assert d.apply_by == D(2027, 2, 13)
    assert d.rule.id == "network-culture" and not d.rule_assumed
    assert d.status == status


@pytest.mark.parametrize("licence", [None, "unknown-licence"])
def test_unknown_licence_assumes_telecom(licence: str | None) -> None:
    d = compute(EXPIRES, D(2026, 11, 28), licence)
    assert d.rule.id == "telecom" and d.rule_assumed
    assert d.apply_by == D(2026, 12, 15)
    assert "没有说明" in status_advice(d)


def test_generic_vats_is_not_an_assumption() -> None:
    d = compute(EXPIRES, D(2026, 11, 28), "vats")
    assert d.rule.id == "telecom" and not d.rule_assumed
    assert "没有说明" not in status_advice(d)


@pytest.mark.parametrize(
    ("licence", "expires_on", "apply_by"),
    [
        ("icp", D(2027, 1, 15), D(2026, 10, 17)),  # across the year end
        ("icp", D(2028, 5, 29), D(2028, 2, 29)),  # lands on a leap day
        ("icp", D(2027, 5, 29), D(2027, 2, 28)),  # same dates, no leap day
        ("icp", D(2028, 3, 1), D(2027, 12, 2)),  # 90 days back over 2028-02-29
        ("network-culture", D(2028, 3, 1), D(2028, 1, 31)),
        ("network-culture", D(2027, 1, 10), D(2026, 12, 11)),
    ],
)
def test_calendar_arithmetic(licence: str, expires_on: date, apply_by: date) -> None:
    d = compute(expires_on, D(2026, 1, 1), licence)
    assert d.apply_by == apply_by
    assert (d.expires_on - d.apply_by).days == d.rule.lead_days


# --------------------------------------------------------------------------------------------
# Milestones and serialisation
# --------------------------------------------------------------------------------------------


def test_milestones_include_apply_by_and_expiry_in_order() -> None:
    d = compute(EXPIRES, D(2026, 11, 28), "call-center")
    dates = [day for day, _ in d.milestones]
    assert dates == sorted(dates)
    assert dates == [
        EXPIRES - timedelta(days=180),
        EXPIRES - timedelta(days=120),
        EXPIRES - timedelta(days=100),
        D(2026, 12, 15),
        EXPIRES,
    ]
    labels = dict((day, label) for day, label in d.milestones)
    assert "90" in labels[D(2026, 12, 15)]
    assert "届满" in labels[EXPIRES]


def test_to_dict() -> None:
    d = compute(EXPIRES, D(2026, 11, 28), None)
    data = json.loads(json.dumps(d.to_dict(), ensure_ascii=False))
    assert data["expires_on"] == "2027-03-15"
    assert data["apply_by"] == "2026-12-15"
    assert data["days_left"] == 17
    assert data["status"] == "on_time"
    assert set(data["rule"]) == {"id", "label", "lead_days", "authority", "source", "assumed"}
    assert data["rule"]["id"] == "telecom" and data["rule"]["assumed"] is True
    assert data["rule"]["lead_days"] == 90
    passed = [m["passed"] for m in data["milestones"]]
    assert passed == [True, True, False, False, False]  # 09-16, 11-15 passed; 12-05 ahead
    assert all(set(m) == {"date", "label", "passed"} for m in data["milestones"])


def test_milestone_on_today_is_not_passed() -> None:
    d = compute(EXPIRES, D(2026, 12, 15), "icp")
    by_date = {m["date"]: m["passed"] for m in d.to_dict()["milestones"]}
    assert by_date["2026-12-15"] is False
    assert by_date["2026-12-05"] is True


@pytest.mark.parametrize(
    ("day", "text"),
    [(D(2026, 12, 15), "2026年12月15日"), (D(2027, 1, 5), "2027年1月5日"), (D(2028, 2, 29), "2028年2月29日")],
)
def test_format_date(day: date, text: str) -> None:
    assert format_date(day) == text


# --------------------------------------------------------------------------------------------
# Advice
# --------------------------------------------------------------------------------------------


def test_advice_on_time() -> None:
    text = status_advice(compute(EXPIRES, D(2026, 11, 28), "call-center"))
    assert "还有17天" in text and "2026年12月15日" in text
    assert "2026年12月5日" in text  # the next milestone
    assert "2026年9月16日" not in text  # a passed one is not suggested
    assert "原发证机关" in text


@pytest.mark.parametrize(
    ("today", "must", "must_not"),
    [
        # On time: the application is in, so no "start preparing now" and no milestones.
        (D(2026, 11, 28), ["您说已经提交了续期申请", "属于按时申请", "补正"], ["还有17天", "建议节点"]),
        # Window missed: whether it was on time depends on the submission date; both cases.
        (D(2026, 12, 20), ["2026年12月15日（届满前90日）当天或之前", "第五十条", "视为准予延续", "按新申请"],
         ["马上提交延续申请"]),
        # Expired: deemed approval only for an on-time application the authority left undecided.
        (D(2027, 3, 20), ["已过5天", "第五十条", "暂停", "按新申请重新办理"], ["不能再办理续期"]),
    ],
)
def test_advice_once_the_application_is_in(today: date, must: list[str], must_not: list[str]) -> None:
    text = status_advice(compute(EXPIRES, today, "call-center"), applied=True)
    assert all(m in text for m in must), text
    assert not any(m in text for m in must_not), text


@pytest.mark.parametrize(
    ("today", "filed", "must", "must_not"),
    [
        # Filed by the apply-by date (2026-12-15), said as a month that ends before it: on time.
        (D(2026, 12, 20), Filed(D(2026, 11, 1), D(2026, 11, 30), "11月"),
         ["“11月”", "早于最晚提交日2026年12月15日", "属于按时申请", "视为准予延续"], ["晚于", "按新申请"]),
        # Filed after it: not on time, whatever happens before expiry.
        (D(2026, 12, 20), Filed(D(2026, 12, 18), D(2026, 12, 18), "12月18号"),
         ["晚于最晚提交日2026年12月15日", "不属于按时申请", "按新申请"], ["视为准予延续"]),
        # A month that straddles the apply-by date settles nothing: both cases, as without a date.
        (D(2026, 12, 20), Filed(D(2026, 12, 1), D(2026, 12, 20), "12月"),
         ["当天或之前提交的，属于按时申请", "晚于2026年12月15日提交的"], ["“12月”"]),
        # Expired after an on-time application: deemed renewed unless decided; after a late one: lapsed.
        (D(2027, 3, 20), Filed(D(2026, 11, 5), D(2026, 11, 5), "11月5号"),
         ["属于按时申请", "已过5天", "视为准予延续", "确认许可证状态"], ["已经失效"]),
        (D(2027, 3, 20), Filed(D(2027, 1, 5), D(2027, 1, 5), "1月5号"), ["不属于按时申请", "已经失效", "暂停"],
         ["视为准予延续"]),
    ],
)
def test_advice_when_the_user_says_when_they_filed(today: date, filed: Filed, must: list[str],
                                                  must_not: list[str]) -> None:
    text = status_advice(compute(EXPIRES, today, "call-center"), applied=True, filed=filed)
    assert all(m in text for m in must), text
    assert not any(m in text for m in must_not), text


@pytest.mark.parametrize(
    ("today", "licence", "must", "must_not"),
    [
        # Refused while there is time: correct and hand in again by the apply-by date, or, after a
        # decision not to renew, a new application once the licence ends.
        (D(2026, 11, 28), "call-center",
         ["被驳回", "仍然有效", "2026年12月15日（届满前90日）当天或之前", "还有17天", "不予延续", "按新申请", "行政复议"],
         ["请现在就开始准备", "马上提交延续申请"]),
        # Refused after the apply-by date: ask whether a corrected application is still accepted.
        (D(2026, 12, 20), "call-center", ["被驳回", "已过5天", "是否还能受理", "按新申请", "宽限期"],
         ["仍属按时申请", "马上提交延续申请"]),
        # Network culture licence: 30 days, and no telecom no-renewal-after-expiry rule.
        (D(2027, 2, 1), "network-culture", ["届满前30日", "还有12天", "文化", "暂停"], ["不能再办理续期"]),
        # Expired: the expired advice, refused or not.
        (D(2027, 3, 20), "call-center", ["已过5天", "不能再办理续期", "第六十九条"], ["仍然有效"]),
    ],
)
def test_advice_after_a_refusal(today: date, licence: str, must: list[str], must_not: list[str]) -> None:
    text = status_advice(compute(EXPIRES, today, licence), applied=False)
    assert all(m in text for m in must), text
    assert not any(m in text for m in must_not), text


@pytest.mark.parametrize(
    ("issued", "licence", "expires"),
    [
        (D(2022, 1, 10), "icp", D(2027, 1, 9)),  # 5 years, the day before the anniversary
        (D(2022, 1, 1), None, D(2026, 12, 31)),  # unknown licence: the telecom rule
        (D(2024, 3, 1), "network-culture", D(2027, 2, 28)),  # 3 years
        (D(2024, 2, 29), "call-center", D(2029, 2, 27)),  # no 29 February in 2029
    ],
)
def test_expiry_from_issue(issued: date, licence: str | None, expires: date) -> None:
    assert expiry_from_issue(issued, licence) == expires


def test_advice_last_day() -> None:
    assert "今天就是最后一天" in status_advice(compute(EXPIRES, D(2026, 12, 15), "icp"))


def test_advice_window_missed() -> None:
    text = status_advice(compute(EXPIRES, D(2026, 12, 20), "call-center"))
    assert "已过5天" in text
    assert "立即联系" in text and "原发证机关" in text
    assert "是否还能受理" in text and "新申请" in text and "宽限期" in text


def test_advice_expired_telecom() -> None:
    text = status_advice(compute(EXPIRES, D(2027, 3, 20), "call-center"))
    assert "已过5天" in text
    assert "不能再办理续期" in text and "新申请" in text
    assert "暂停" in text and "第六十九条" in text


def test_advice_expired_network_culture() -> None:
    text = status_advice(compute(EXPIRES, D(2027, 3, 20), "network-culture"))
    assert "暂停" in text and "文化和旅游" in text
    assert "电信条例" not in text


# --------------------------------------------------------------------------------------------
# iCalendar
# --------------------------------------------------------------------------------------------


def _unfold(ics: str) -> list[str]:
    return ics.replace("\r\n ", "").split("\r\n")[:-1]


def _events(lines: list[str]) -> list[dict[str, str]]:
    events, current = [], None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None and ":" in line:
            name, value = line.split(":", 1)
            current.setdefault(name, value)
    return events


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def test_ics_structure() -> None:
    d = compute(EXPIRES, D(2026, 8, 1), "call-center")
    ics = to_ics(d, "呼叫中心业务（B24）", NOW)
    assert ics.endswith("\r\n")
    assert "\n" not in ics.replace("\r\n", "")  # CRLF only
    for physical in ics.split("\r\n")[:-1]:
        assert len(physical.encode("utf-8")) <= 75
    assert any(p.startswith(" ") for p in ics.split("\r\n"))  # long Chinese lines were folded

    lines = _unfold(ics)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert {"VERSION:2.0", "PRODID:-//renewal-kb//CN", "CALSCALE:GREGORIAN"} <= set(lines)
    stack: list[str] = []
    for line in lines:
        if line.startswith("BEGIN:"):
            stack.append(line[6:])
        elif line.startswith("END:"):
            assert stack.pop() == line[4:]
    assert stack == []

    events = _events(lines)
    assert len(events) == 5  # 3 preparation milestones + apply-by + expiry, all ahead of 08-01
    starts = [e["DTSTART;VALUE=DATE"] for e in events]
    assert starts == ["20260916", "20261115", "20261205", "20261215", "20270315"]
    assert all(e["DTSTAMP"] == "20261128T093000Z" for e in events)
    assert all(e["DTEND;VALUE=DATE"] > e["DTSTART;VALUE=DATE"] for e in events)
    assert len({e["UID"] for e in events}) == 5
    assert "呼叫中心业务（B24）" in _unescape(events[0]["SUMMARY"])
    assert "2027年3月15日" in _unescape(events[0]["DESCRIPTION"])
    assert lines.count("BEGIN:VALARM") == 1 and "TRIGGER:-P1D" in lines
    alarm_event = ics.split("BEGIN:VALARM")[0].rsplit("BEGIN:VEVENT", 1)[1]
    assert "DTSTART;VALUE=DATE:20261215" in alarm_event


def test_ics_folding_keeps_utf8_characters_whole() -> None:
    ics = to_ics(compute(EXPIRES, D(2026, 8, 1), "icp"), "很长的许可证名称" * 10, NOW)
    for physical in ics.split("\r\n")[:-1]:
        raw = physical.encode("utf-8")
        assert len(raw) <= 75
        raw.decode("utf-8")  # no character was split between lines
    assert "很长的许可证名称" * 10 in _unescape(_events(_unfold(ics))[0]["SUMMARY"])


def test_ics_escapes_text() -> None:
    label = "A,B;C\\D"
    ics = to_ics(compute(EXPIRES, D(2026, 8, 1), None), label, NOW)
    events = _events(_unfold(ics))
    assert events[0]["SUMMARY"].startswith("A\\,B\\;C\\\\D")
    assert _unescape(events[0]["SUMMARY"]).startswith(label)
    # The assumed-rule note is on its own line of the description: an escaped newline.
    assert "\\n" in events[0]["DESCRIPTION"] and "\n" not in events[0]["DESCRIPTION"]


def test_ics_skips_passed_dates_and_is_stable() -> None:
    d = compute(EXPIRES, D(2026, 12, 20), "call-center")  # window missed
    first = to_ics(d, "ICP", NOW)
    events = _events(_unfold(first))
    assert [e["DTSTART;VALUE=DATE"] for e in events] == ["20270315"]
    assert "BEGIN:VALARM" not in first
    assert to_ics(d, "ICP", NOW) == first
    later = to_ics(d, "ICP", NOW + timedelta(days=3))
    assert _events(_unfold(later))[0]["UID"] == events[0]["UID"]  # UIDs do not depend on time


def test_ics_naive_now_is_utc() -> None:
    ics = to_ics(compute(EXPIRES, D(2026, 8, 1), "icp"), None, datetime(2026, 8, 1, 12, 0))
    assert "DTSTAMP:20260801T120000Z" in ics


# --------------------------------------------------------------------------------------------
# Loading other rule files
# --------------------------------------------------------------------------------------------


def test_load_rules_from_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  r:\n    label: 测试规则\n    licences: [x]\n    validity_years: 2\n    lead_days: 10\n"
        "    authority: 某机关\n    source: 某规定\n    grace_period: false\n"
        "    milestones:\n      - {days_before: 20, label: 准备}\n"
        "default: r\n",
        encoding="utf-8",
    )
    rules = load_rules(path)
    d = compute(D(2027, 1, 11), D(2027, 1, 1), "x", rules)
    assert (d.apply_by, d.status, d.rule.authority) == (D(2027, 1, 1), ON_TIME, "某机关")


@pytest.mark.parametrize(
    "content",
    [
        "rules: {}\ndefault: r\n",
        "rules:\n  r: {label: a, licences: [x], validity_years: 1, lead_days: -5, authority: b, source: c}\ndefault: r\n",
        "rules:\n  r: {label: a, licences: [x], validity_years: 1, lead_days: 5, authority: b, source: c}\ndefault: other\n",
        "rules: [",
    ],
)
def test_bad_rule_files_are_reported(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_rules(path)
