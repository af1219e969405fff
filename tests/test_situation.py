"""Message understanding: licence, causes and expiry date, with `today` injected."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from kb.deadlines import Filed
from kb.normalize import normalize
from kb.situation import Situation, add_months, extract, merge
from kb.vocabulary import load_vocabulary

TODAY = date(2026, 11, 28)
D = date

# --------------------------------------------------------------------------------------------
# Dates: (message, expected expiry, expected precision)
# --------------------------------------------------------------------------------------------

DATE_CASES = [
    # absolute dates in every written form
    ("许可证2027年3月15日到期", D(2027, 3, 15), "day"),
    ("证2027-03-15到期", D(2027, 3, 15), "day"),
    ("有效期至2027/3/15", D(2027, 3, 15), "day"),
    ("2027.3.15到期", D(2027, 3, 15), "day"),
    ("二〇二七年三月十五日到期", D(2027, 3, 15), "day"),
    ("二零二七年三月十五日届满", D(2027, 3, 15), "day"),
    ("２０２７年３月１５日到期", D(2027, 3, 15), "day"),
    ("到期日：2027年3月15日", D(2027, 3, 15), "day"),
    ("证是2027年3月15号的", D(2027, 3, 15), "day"),
    ("27年3月15日到期", D(2027, 3, 15), "day"),
    ("2027年3月到期", D(2027, 3, 1), "month"),
    ("2027年底到期", D(2027, 12, 31), "month"),
    # month and day without a year: the next occurrence on or after today
    ("3月15号到期", D(2027, 3, 15), "day"),
    ("３月１５号到期", D(2027, 3, 15), "day"),
    ("3月15日到期", D(2027, 3, 15), "day"),
    ("11月28号到期", TODAY, "day"),
    ("11月27号到期", D(2027, 11, 27), "day"),
    ("12月1号到期", D(2026, 12, 1), "day"),
    ("十二月三十一日到期", D(2026, 12, 31), "day"),
    ("二月二十八号到期", D(2027, 2, 28), "day"),
    ("一月三十一日到期", D(2027, 1, 31), "day"),
    ("3月到期", D(2027, 3, 1), "month"),
    ("3月中旬到期", D(2027, 3, 11), "month"),
    # relative years and months
    ("明年3月到期", D(2027, 3, 1), "month"),
    ("明年3月份到期", D(2027, 3, 1), "month"),
    ("明年三月十五号到期", D(2027, 3, 15), "day"),
    ("今年12月底到期", D(2026, 12, 31), "month"),
    ("明年年底到期", D(2027, 12, 31), "month"),
    ("年底到期", D(2026, 12, 31), "month"),
    ("月底到期", D(2026, 11, 30), "month"),
    ("下个月底到期", D(2026, 12, 31), "month"),
    ("下个月10号到期", D(2026, 12, 10), "day"),
    ("下月到期", D(2026, 12, 1), "month"),
    ("下个月就到期了", D(2026, 12, 1), "month"),
    ("今天到期", TODAY, "day"),
    ("明天就到期", D(2026, 11, 29), "day"),
    # the current month without a day is not taken to be in the past
    ("11月到期", TODAY, "month"),
    ("这个月到期", TODAY, "month"),
    # relative spans: approximate, proper month arithmetic
    ("还有两个月到期", D(2027, 1, 28), "approximate"),
    ("还有半年到期", D(2027, 5, 28), "approximate"),
    ("还有90天到期", D(2027, 2, 26), "approximate"),
    ("还有九十天到期", D(2027, 2, 26), "approximate"),
    ("还有三周到期", D(2026, 12, 19), "approximate"),
    ("还有1年到期", D(2027, 11, 28), "approximate"),
    ("还有一年半到期", D(2028, 5, 28), "approximate"),
    ("还剩一百八十天到期", D(2027, 5, 27), "approximate"),
    ("距离到期还有两个多月", D(2027, 1, 28), "approximate"),
    ("离到期不到三个月了", D(2027, 2, 28), "approximate"),
    ("90天后到期", D(2027, 2, 26), "approximate"),
    ("文网文证3个月后到期", D(2027, 2, 28), "approximate"),
    ("到期还有45天", D(2027, 1, 12), "approximate"),
    # in the past
    ("上个月已经过期", D(2026, 10, 1), "month"),
    ("去年底到期了", D(2025, 12, 31), "month"),
    ("过期两个月了", D(2026, 9, 28), "approximate"),
    ("两个月前就过期了", D(2026, 9, 28), "approximate"),
    ("3月15号已经过期了", D(2026, 3, 15), "day"),
    ("3月15号到期的，已经过期了", D(2026, 3, 15), "day"),
    ("今年10月到期", D(2026, 10, 1), "month"),
    # leap years
    ("2028年2月29日到期", D(2028, 2, 29), "day"),
    ("二〇二八年二月二十九日到期", D(2028, 2, 29), "day"),
    ("2月29号到期", D(2028, 2, 29), "day"),
    # the date that is about expiry, not about other events
    ("去年12月提交的申请，今年1月被驳回，证是明年3月15号到期", D(2027, 3, 15), "day"),
    ("12月15日前要提交续期申请，证明年3月15号到期", D(2027, 3, 15), "day"),
    ("有效期2022年3月15日至2027年3月15日", D(2027, 3, 15), "day"),
    ("许可证有效期至2027年3月15日，2026年12月1日我们开会讨论", D(2027, 3, 15), "day"),
    ("我们的呼叫中心证续期，3月15号", D(2027, 3, 15), "day"),
    # everyday words: 俩/仨, 过两天, weekdays (2026-11-28 is a Saturday), 大后天, a two-digit year's end
    ("还有俩月到期", D(2027, 1, 28), "approximate"),
    ("再过两天就到期了", D(2026, 11, 30), "approximate"),
    ("下周五到期", D(2026, 12, 4), "day"),
    ("下个星期一证就到期了", D(2026, 11, 30), "day"),
    ("大后天到期", D(2026, 12, 1), "day"),
    ("27年底到期", D(2027, 12, 31), "month"),
    # The start of a year counts from its first day, as a month part does
    ("ICP证明年年初到期", D(2027, 1, 1), "month"),
    ("咱们B25牌照2027年头到期", D(2027, 1, 1), "month"),
    # Of several expiries the earliest still to come; a past one is history
    ("我们的证去年3月到期后重新申请了，新证2029年3月到期", D(2029, 3, 1), "month"),
    # A validity range copied from the certificate ends at the expiry, with or without 有效期
    ("有效期：2022.03.15-2027.03.14", D(2027, 3, 14), "day"),
    ("许可证 2022/3/15 - 2027/3/14", D(2027, 3, 14), "day"),
    ("证是2022年3月15日到2027年3月14日", D(2027, 3, 14), "day"),
    # 超过 is not 过 (in a while): expired more than three months ago
    ("证已经过期超过三个月了", D(2026, 8, 28), "approximate"),
]


@pytest.mark.parametrize(("message", "expires_on", "precision"), DATE_CASES)
def test_expiry_date(message: str, expires_on: date, precision: str) -> None:
    s = extract(message, TODAY)
    assert (s.expires_on, s.date_precision) == (expires_on, precision)
    assert s.date_text and s.date_text in normalize(message)


NO_DATE_CASES = [
    "快到期了",
    "证快过期了",
    "呼叫中心证马上就要到期了怎么办",
    "2027年2月30日到期",
    "2027年2月29日到期",
    "2027-02-29到期",
    "2027年13月到期",
    "13月15日到期",
    "2月30号到期",
    "我们3月15号提交了续期申请",
    "去年12月提交的申请，今年1月被驳回",
    "上个月续期被退回，说营业执照经营范围跟许可的业务对不上",  # the refusal's date, not the expiry's
    "上周续期申请被驳回了",
    "证已经过期了，下个月10号去办新的",
    "3月1日到3月5日安排员工培训",  # a range that is not the licence's
    "区号电话0755-2027-1234",
    "B24证明年到期",
    "有效期5年",
    "还有二十八天",  # a span with nothing about a licence or its expiry
    "我今天才发现证快到期了",
]


@pytest.mark.parametrize(
    ("message", "licence", "issued", "expires"),
    [
        # The day before the anniversary: the earlier of the two dates certificates use.
        ("2022年3月15日发的证，快到期了", None, D(2022, 3, 15), D(2027, 3, 14)),
        ("证是2022年1月10日发的，还能用多久", None, D(2022, 1, 10), D(2027, 1, 9)),
        ("我们的证2021年12月拿的", None, D(2021, 12, 1), D(2026, 11, 30)),
        ("我们的ICP证是2022年6月下的，什么时候要续", "icp", D(2022, 6, 1), D(2027, 5, 31)),
        ("发证日期是2022年3月15日，ICP", "icp", D(2022, 3, 15), D(2027, 3, 14)),
        # The network culture licence is valid for 3 years.
        ("2024年3月取得许可证，是文网文", "network-culture", D(2024, 3, 1), D(2027, 2, 28)),
        ("Our ICP licence was issued on 10 January 2022. When must we renew?", "icp", D(2022, 1, 10), D(2027, 1, 9)),
        ("We got our call centre licence in March 2022", "call-center", D(2022, 3, 1), D(2027, 2, 28)),
    ],
)
def test_expiry_is_worked_out_from_the_issue_date(message: str, licence: str | None, issued: date, expires: date) -> None:
    s = extract(message, TODAY)
    assert (s.licence, s.issued_on, s.expires_on, s.date_precision) == (licence, issued, expires, "issued")


@pytest.mark.parametrize(
    ("message", "expires", "precision"),
    [
        ("去年12月批下来的续期", None, None),  # said of a renewal, not of the licence
        ("2019年3月拿的证，后来续过一次", None, None),  # renewed since: the term's start is unknown
        ("2022年1月10日发的通知说材料不齐", None, None),  # a notice, not the licence
        ("We were issued a warning on 10 January 2022", None, None),
        ("证2022年6月拿的，2027年6月到期", D(2027, 6, 1), "month"),  # the expiry date, when given, wins
    ],
)
def test_an_issue_date_only_when_it_is_the_licence_s(message: str, expires: date | None, precision: str | None) -> None:
    s = extract(message, TODAY)
    assert (s.expires_on, s.date_precision, s.issued_on) == (expires, precision, None)


def test_the_licence_named_later_sets_the_validity_of_an_issue_date() -> None:
    s = merge(extract("证是2024年1月10日发的", TODAY), extract("是文网文", TODAY))
    assert (s.licence, s.expires_on, s.date_precision) == ("network-culture", D(2027, 1, 9), "issued")


@pytest.mark.parametrize(
    ("message", "preparing"),
    [
        ("只是提前准备，没被驳回", True),
        ("ICP证明年5月到期，还没出什么问题", True),
        ("We're just preparing ahead, nothing has gone wrong", True),
        ("续期被驳回了", False),
        ("提前准备的时候被驳回了", False),  # a refusal is a problem
        ("材料没出问题，是人员资质不够", False),  # a cause: the materials are denied, the staff named
    ],
)
def test_preparing_without_a_problem(message: str, preparing: bool) -> None:
    s = extract(message, TODAY)
    assert s.preparing is preparing
    assert s.applied is not False or not preparing


def test_preparing_ends_with_a_cause_or_a_refusal() -> None:
    s = merge(extract("ICP证明年5月到期，只是提前准备", TODAY), extract("管局刚把材料退回来了，说不齐", TODAY))
    assert not s.preparing and s.causes == ("materials",) and s.applied is False


@pytest.mark.parametrize(
    ("message", "causes", "asked"),
    [
        # Asking about a cause's subject is not having that problem ...
        ("需要准备哪些材料", ("materials",), ("materials",)),
        ("社保要交几个人", ("staff",), ("staff",)),
        ("年报怎么报", ("annual-report",), ("annual-report",)),
        ("How many staff need social insurance?", ("staff",), ("staff",)),
        ("我想了解一下续期要准备哪些材料", ("materials",), ("materials",)),
        # ... but any problem word or completed event makes it the user's problem.
        ("材料不齐被退回，怎么办", ("materials",), ()),
        ("年报漏报了会影响续期吗", ("annual-report",), ()),
        ("我们换了股东，续期要注意什么", ("company-changes",), ()),
        ("公司去年减资了，会影响续证吗", ("company-changes",), ()),
        ("Our staff lack certificates. What now?", ("staff",), ()),
        ("呼叫中心证续期被驳回了，说材料不齐", ("materials",), ()),  # a statement, not a question
    ],
)
def test_a_cause_only_asked_about_is_not_the_users_problem(message: str, causes: tuple[str, ...],
                                                          asked: tuple[str, ...]) -> None:
    s = extract(message, TODAY)
    assert (s.causes, s.asked) == (causes, asked)


def test_a_cause_asked_about_becomes_the_problem_once_a_turn_says_so() -> None:
    asked = extract("只是提前准备，需要准备哪些材料", TODAY)
    assert asked.preparing and asked.asked == ("materials",)  # asking does not end preparing
    s = merge(asked, extract("管局刚把材料退回来了，说不齐", TODAY))
    assert s.causes == ("materials",) and s.asked == () and not s.preparing
    s = merge(s, extract("材料要准备哪些", TODAY))
    assert s.asked == ()  # once stated, asking again does not take it back


@pytest.mark.parametrize("message", NO_DATE_CASES)
def test_no_date_is_invented(message: str) -> None:
    s = extract(message, TODAY)
    assert s.expires_on is None and s.date_precision is None and s.date_text is None


@pytest.mark.parametrize(
    ("today", "message", "expires_on"),
    [
        # month ends: clamp to the last day of the target month
        (D(2027, 1, 31), "还有1个月到期", D(2027, 2, 28)),
        (D(2028, 1, 31), "还有一个月到期", D(2028, 2, 29)),
        (D(2026, 8, 31), "还有半年到期", D(2027, 2, 28)),
        (D(2027, 3, 31), "过期一个月了", D(2027, 2, 28)),
        # next occurrence of a date without a year, before / on / after it
        (D(2027, 3, 10), "3月15号到期", D(2027, 3, 15)),
        (D(2027, 3, 15), "3月15号到期", D(2027, 3, 15)),
        (D(2027, 3, 20), "3月15号到期", D(2028, 3, 15)),
        # across the year end
        (D(2026, 12, 31), "下个月10号到期", D(2027, 1, 10)),
        (D(2027, 1, 15), "上个月已经过期", D(2026, 12, 1)),
        (D(2026, 12, 20), "还有三周到期", D(2027, 1, 10)),
    ],
)
def test_dates_relative_to_today(today: date, message: str, expires_on: date) -> None:
    assert extract(message, today).expires_on == expires_on


def test_date_text_quotes_the_users_words() -> None:
    assert extract("呼叫中心證續期被駁回，說材料不齊，明年3月到期", TODAY).date_text == "明年3月"
    assert extract("还有两个月到期", TODAY).date_text == "还有两个月"
    assert extract("２０２７年３月１５日到期", TODAY).date_text == "2027年3月15日"


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(D(2027, 1, 31), 1) == D(2027, 2, 28)
    assert add_months(D(2028, 1, 31), 1) == D(2028, 2, 29)
    assert add_months(D(2026, 12, 15), 1) == D(2027, 1, 15)
    assert add_months(D(2027, 3, 31), -1) == D(2027, 2, 28)
    assert add_months(D(2027, 1, 15), -2) == D(2026, 11, 15)


# --------------------------------------------------------------------------------------------
# Licences
# --------------------------------------------------------------------------------------------

LICENCE_CASES = [
    ("呼叫中心证续期被驳回", "call-center"),
    ("呼叫中心證續期被駁回", "call-center"),
    ("我们是做坐席外包的", "call-center"),
    ("B24续期", "call-center"),
    ("b24-1国内呼叫中心", "call-center"),
    ("call center许可证", "call-center"),
    ("ICP证怎么续期", "icp"),
    ("B25到期", "icp"),
    ("icp备案需要续期吗", "icp"),
    ("经营性ICP", "icp"),
    ("EDI许可证", "edi"),
    ("b21续期材料", "edi"),
    ("IDC证", "idc"),
    ("B11", "idc"),
    ("ISP证", "isp"),
    ("B14业务", "isp"),
    ("CDN许可证", "cdn"),
    ("b12", "cdn"),
    ("SP证到期", "sp"),
    ("短信业务", "sp"),
    ("增值电信许可证续期", "vats"),
    ("增值电信业务经营许可证", "vats"),
    ("增值电信业务经营许可证（呼叫中心业务）续期被驳回", "call-center"),
    ("跨地区增值电信业务经营许可证B24", "call-center"),
    ("网络文化经营许可证到期", "network-culture"),
    ("文网文怎么续办", "network-culture"),
    ("ＩＣＰ證", "icp"),
    ("我们的证被驳回了", None),
    ("请edit一下b245号文件，sps系统", None),
    ("isp和sp", "sp"),
    ("短信牌照要续了", "sp"),  # SMS is what users call the SP licence
    ("Our SMS licence expires in May", "sp"),
    ("我们的呼叫中心证和ICP证都是明年3月到期", "icp"),
    ("不是ICP证，是呼叫中心证", "call-center"),
    ("是呼叫中心证，不是ICP证", "call-center"),
    # The licence the user only compares theirs with is not theirs.
    ("EDI证快到期了，续期跟ICP规则一样吗", "edi"),
    ("呼叫中心证和ICP证的续期材料有什么区别", "call-center"),
    ("SP证续期与其他增值电信证相比有什么不同", "sp"),
    ("跟ICP证一样吗", "icp"),  # nothing else named: the compared licence is all there is
    ("We hold an SP licence for SMS. Is renewing it any different from renewing an ICP licence?", "sp"),
    ("Our EDI licence expires soon; is the process the same as for ICP?", "edi"),
    ("Is the ICP renewal different from the call centre one?", "icp"),  # the name after "from" is the one compared
    # The date is the culture licence's, so its 30-day rule applies, not ICP's 90 days.
    ("Our Internet Culture Operation Licence runs out in August. Do we renew it like our ICP licence?",
     "network-culture"),
    ("我们的呼叫中心证和ICP证都快到期了", "icp"),  # 和 joins, no comparison: the last one
]


@pytest.mark.parametrize(("message", "licence"), LICENCE_CASES)
def test_licence(message: str, licence: str | None) -> None:
    assert extract(message, TODAY).licence == licence


@pytest.mark.parametrize(
    ("message", "licence", "others"),
    [
        ("我们有EDI和ICP两张证，明年5月都到期", "icp", ("edi",)),
        ("We hold IDC and CDN licences", "cdn", ("idc",)),
        ("EDI证快到期了，续期跟ICP规则一样吗", "edi", ()),  # compared, not held
        ("不是ICP证，是呼叫中心证", "call-center", ()),  # denied
    ],
)
def test_other_licences_named_together(message: str, licence: str, others: tuple[str, ...]) -> None:
    s = extract(message, TODAY)
    assert (s.licence, s.other_licences) == (licence, others)
    assert merge(s, extract("那ICP证呢", TODAY)).other_licences == ()  # a switch drops them


@pytest.mark.parametrize(
    "message",
    [
        "我们公司有ICP和呼叫中心两张证，分别是明年5月和8月到期",  # paired in order
        "ICP证明年5月到期，呼叫中心证8月到期",  # each named with its date
        "呼叫中心证8月到期，ICP证明年5月到期",
    ],
)
def test_several_licences_with_their_own_expiry_dates(message: str) -> None:
    # The deadline that comes first is the one advised on, with the licence it belongs to (before,
    # the last-named licence and the last date: the call centre's August).
    s = extract(message, TODAY)
    assert (s.licence, s.other_licences, s.expires_on) == ("icp", ("call-center",), D(2027, 5, 1))
    assert s.other_expiries == (("call-center", D(2027, 8, 1), "8月"),)  # its own date, kept for its own deadline
    assert merge(s, extract("那ICP证呢", TODAY)).other_expiries == ()  # gone with the other licence


def test_other_licences_without_their_own_dates_have_none() -> None:
    assert extract("我们有IDC和CDN两张证，明年6月到期", TODAY).other_expiries == ()
    s = extract("ICP证2027年5月10日到期，文网文2027年3月1日到期", TODAY)
    assert (s.licence, s.expires_on, s.other_expiries) == ("network-culture", D(2027, 3, 1),
                                                          (("icp", D(2027, 5, 10), ""),))


# --------------------------------------------------------------------------------------------
# Causes
# --------------------------------------------------------------------------------------------

CAUSE_CASES = [
    ("续期被驳回，说材料不齐", ("materials",)),
    ("资料不全被退回", ("materials",)),
    ("不是材料问题，是人员资质不够", ("staff",)),
    ("材料没问题，是社保人数不够", ("staff",)),
    ("社保人数不够，营销外呼被投诉，还有客户信息泄露", ("staff", "marketing-consent", "data-protection")),
    ("年报没报，被列入不良名单，股权也变了", ("annual-report", "company-changes")),
    ("注册资本不够", ("conditions",)),
    ("不是材料和人员的问题，而是数据泄露", ("data-protection",)),
    ("并非材料原因", ()),
    ("证已经过期了", ("expired",)),
    # A penalty the company has had (past tense) is a cause; one the user fears is not.
    ("以前被罚过款，续期会不会有影响", ("penalties",)),
    ("去年收到过处罚决定，罚款还没交", ("penalties",)),
    ("证过期了还继续经营会被罚款吗", ("expired",)),
    ("许可证已经失效", ("expired",)),
    ("证过期了怎么办", ("expired",)),
    ("材料不齐，而且已经过期了", ("materials", "expired")),
    ("还没过期", ()),
    ("如果过期了怎么办", ()),
    ("证快过期了", ()),
    ("证明年3月15号过期", ()),
    ("证书2027年3月15日到期", ()),
    ("今天到期", ()),
    ("呼叫中心證續期被駁回，說材料不齊，明年3月到期", ("materials",)),
    # Something else expired, not the licence
    ("ICP续期被退回，说接入合同过期了", ()),
    ("网站备案早就失效了", ()),
    ("The access contract has expired", ()),
    ("证书过期了", ("expired",)),  # 证书 is what users call the licence
    ("IDC证续期被驳回，说技术评测没做", ("technical",)),
    ("Our ISP renewal stalled because the technical assessment of the three systems is not done", ("technical",)),
]


@pytest.mark.parametrize(("message", "causes"), CAUSE_CASES)
def test_causes(message: str, causes: tuple[str, ...]) -> None:
    assert extract(message, TODAY).causes == causes


def test_expired_follows_a_past_date_even_without_the_word() -> None:
    s = extract("我们的ICP证是2026年10月1日到期的", TODAY)
    assert s.expires_on == D(2026, 10, 1)
    assert s.causes == ("expired",)


def test_full_traditional_message() -> None:
    s = extract("呼叫中心證續期被駁回，說材料不齊，明年3月到期", TODAY)
    assert s == Situation(
        licence="call-center",
        causes=("materials",),
        expires_on=D(2027, 3, 1),
        date_precision="month",
        date_text="明年3月",
        applied=False,  # 驳回: the application was refused
    )


# --------------------------------------------------------------------------------------------
# English messages (kb/english.py rewrites their dates and expiry words into Chinese cues)
# --------------------------------------------------------------------------------------------

ENGLISH_CASES = [
    # (message, licence, causes, expiry date, precision)
    ("Our cross-regional call-centre licence expires on 15 March 2027.", "call-center", (), D(2027, 3, 15), "day"),
    ("Our value-added telecom licence expires on March 1, 2027", "vats", (), D(2027, 3, 1), "day"),
    ("ICP licence expires on 2027-03-01", "icp", (), D(2027, 3, 1), "day"),
    ("We run a call center under a B24 licence that expires next March.", "call-center", (), D(2027, 3, 1), "month"),
    ("Our IDC licence expires in August 2027", "idc", (), D(2027, 8, 1), "month"),
    ("Our ICP licence expires in about four months.", "icp", (), D(2027, 3, 28), "approximate"),
    ("The EDI licence expires next week and there is still no decision", "edi", (), D(2026, 12, 5), "approximate"),
    ("Our call centre licence (B24) expired last week.", "call-center", ("expired",), D(2026, 11, 21), "approximate"),
    ("Our network culture licence expired two months ago", "network-culture", ("expired",), D(2026, 9, 28), "approximate"),
    ("Our call center licence renewal was rejected for missing documents, what now?", "call-center", ("materials",), None, None),
    ("Renewal refused: our shareholding changed and we never filed it", None, ("company-changes",), None, None),
    ("We got complaints for telemarketing calls without consent.", None, ("marketing-consent",), None, None),
    ("We were fined last year. Will it affect the SP renewal?", "sp", ("penalties",), None, None),
    ("The documents were complete, but the regulator said our staff lack certificates.", None, ("staff",), None, None),
    # A cause named as *not* the reason is not one; a missing action still is.
    ("ICP renewal rejected, not because of missing documents but because of our shareholding change", "icp",
     ("company-changes",), None, None),
    ("The refusal had nothing to do with missing documents; it was about marketing calls.", None,
     ("marketing-consent",), None, None),
    ("The problem wasn't the missing documents, it was the data leak", None, ("data-protection",), None, None),
    ("We were not getting consent before marketing calls, so the renewal failed.", None, ("marketing-consent",),
     None, None),
    ("Our licence was not renewed because documents were missing.", None, ("materials",), None, None),
    # Hypothetical, negated or merely named expiry is not a statement that it has expired.
    ("If our call centre licence has already expired, what penalties could we face?", "call-center", (), None, None),
    ("Our licence has not expired yet", None, (), None, None),
    ("What happens when a licence expires?", None, (), None, None),
    # English words that contain a licence code, and "may" the verb, are not read.
    ("We may display ads on our website", None, (), None, None),
    ("This may matter: our EDI licence expires soon", "edi", (), None, None),
    ("Our SP licence expires in May", "sp", (), D(2027, 5, 1), "month"),
    # The part of a month said with its year ("end of February 2027" is the 28th, as 2027年2月底).
    ("Our ICP licence expires at the end of February 2027", "icp", (), D(2027, 2, 28), "month"),
]


@pytest.mark.parametrize(("message", "licence", "causes", "expires_on", "precision"), ENGLISH_CASES)
def test_english_message(message: str, licence: str | None, causes: tuple[str, ...], expires_on: date | None,
                         precision: str | None) -> None:
    s = extract(message, TODAY)
    assert (s.licence, s.causes, s.expires_on, s.date_precision) == (licence, causes, expires_on, precision)
    # The answer quotes the user's own words for the date, not the Chinese it was rewritten into.
    assert s.date_text is None or s.date_text in normalize(message)


@pytest.mark.parametrize(
    ("message", "applied"),
    [
        ("我们ICP证还有一周到期，三个多月前就交了续期申请，系统显示已受理", True),
        ("我们是提前三个多月交的续期申请，但眼看到期了管局还没批下来", True),
        ("呼叫中心的续期申请上周已经在系统里提交了，多久能出结果", True),
        ("We filed the renewal 100 days before expiry and it was accepted", True),
        ("ICP证下个月到期，续期还在审批中", True),
        ("证快到期了，管局还没批下来", True),
        ("Our renewal is still pending and the licence expires next week", True),
        ("我们EDI证2027年2月到期，去年12月份已经交了续期，到现在还没消息", True),  # 续期 alone, for the application
        ("我们的证1月份到期，12月10号交的续期，会不会来不及", True),
        ("续期申请交上去快一个月了，一点消息都没有", True),
        ("续期交上去一般多久出结果？", None),  # the process, not the user's application
        ("我们的ICP证明年6月30号到期，最晚哪天之前要把续期申请交上去？", None),
        ("代办说没事，先把续期报上去再说，这样行吗？", None),
        ("如果交了续期费会怎样", None),
        ("现在审批很慢吗", None),
        ("申请人提交的延续申请材料不齐全时，审批机关是否须一次性告知", None),  # a general question
        ("续证没批下来，打算重新申请", None),  # 没批下来 without 还: as often a refusal
        ("续期被驳回了，之前交了申请", False),  # refused: not pending
        ("Our renewal application was rejected", False),
        ("还没交申请，证下个月到期", None),
        ("交了申请以后多久出结果", None),  # a question about the process
        ("如果已经提交了申请，还能撤回吗", None),
        ("We have not filed the renewal yet", None),
        ("If we filed on time but no decision came, can we keep operating?", None),
        ("申请交了吗", None),
        # A refusal the user reports, against one they fear, ask about or only heard of.
        ("我们呼叫中心证续期被驳回了，说材料不齐", False),
        ("管局把材料退回来了", False),
        ("Could that be the reason the renewal was refused?", False),
        ("Our renewal was rejected because we filed 60 days before expiry", False),  # the filing came first
        ("上次被驳回了，这次重新交了，还在审批中", True),  # waiting again since
        ("呼叫中心证明年3月到期，怎么避免被驳回", None),
        ("如果被驳回了怎么办", None),
        ("续期会不会被拒", None),
        ("听说很多公司被驳回，我们证明年3月到期", None),
        ("续期被驳回的常见原因有哪些", None),
        ("刚收到补正通知，这算是被拒了吗？", None),
        ("How can we avoid being refused?", None),
        ("Will the whole licence be refused at renewal?", None),
    ],
)
def test_application_already_submitted(message: str, applied: bool | None) -> None:
    assert extract(message, TODAY).applied is applied


@pytest.mark.parametrize(
    ("message", "earliest", "latest", "text"),
    [
        ("证明年1月20号到期，我们9月就交了续期申请，还没批下来", D(2026, 9, 1), D(2026, 9, 30), "9月"),
        ("证明年1月20号到期，11月5号提交的申请，还在审批中", D(2026, 11, 5), D(2026, 11, 5), "11月5号"),
        ("去年12月续期申请交上去了，证明年2月到期", D(2025, 12, 1), D(2025, 12, 31), "去年12月"),
        ("EDI证下个月5号到期，9月20日已提交续期申请，系统显示受理", D(2026, 9, 20), D(2026, 9, 20), "9月20日"),
        ("We filed the renewal in September and it is still pending", D(2026, 9, 1), D(2026, 9, 30), "in september"),
    ],
)
def test_when_the_application_was_filed(message: str, earliest: date, latest: date, text: str) -> None:
    s = extract(message, TODAY)
    assert s.applied and s.filed == Filed(earliest, latest, text)


def test_no_filing_date_without_an_application_in() -> None:
    assert extract("证明年1月20号到期，11月5号被驳回了", TODAY).filed is None  # refused, not pending
    assert extract("证明年1月20号到期，还在审批中", TODAY).filed is None  # pending, no date said
    s = merge(extract("我们9月就交了续期申请，还没批下来", TODAY), extract("后来被驳回了", TODAY))
    assert s.applied is False and s.filed is None


def test_submitted_application_is_remembered_across_turns() -> None:
    s = merge(extract("我们的ICP证下个月到期", TODAY), extract("续期申请三个月前就已经提交了", TODAY))
    assert s.applied and s.licence == "icp"
    assert merge(s, extract("大概什么时候出结果", TODAY)).applied
    assert merge(s, extract("刚收到通知，被驳回了", TODAY)).applied is False


def test_english_rewrite_leaves_chinese_alone() -> None:
    from kb.english import to_chinese_cues

    chinese = "呼叫中心证续期被驳回，说材料不齐，明年3月到期"
    assert to_chinese_cues(chinese) == chinese
    assert to_chinese_cues("our licence expires tomorrow") == "our licence 明天到期"


def test_empty_and_blank_messages() -> None:
    assert extract("", TODAY) == Situation()
    assert extract("   \n", TODAY) == Situation()


# --------------------------------------------------------------------------------------------
# Multi-turn
# --------------------------------------------------------------------------------------------


def test_conversation_accumulates() -> None:
    s = extract("我们的呼叫中心证还有两个月到期", TODAY)
    assert (s.licence, s.expires_on, s.date_precision) == ("call-center", D(2027, 1, 28), "approximate")

    s = merge(s, extract("是因为材料问题", TODAY))
    assert s.licence == "call-center"
    assert s.causes == ("materials",)
    assert s.expires_on == D(2027, 1, 28)

    s = merge(s, extract("那ICP证呢", TODAY))
    assert s.licence == "icp"  # the user switched licence
    assert s.causes == ("materials",)
    assert (s.expires_on, s.date_text) == (D(2027, 1, 28), "还有两个月")


def test_merge_causes_without_duplicates_in_order() -> None:
    s = merge(Situation(causes=("materials", "staff")), Situation(causes=("staff", "annual-report")))
    assert s.causes == ("materials", "staff", "annual-report")


def test_merge_new_date_replaces_old_and_corrects_expired() -> None:
    first = extract("上个月已经过期", TODAY)
    assert "expired" in first.causes
    corrected = merge(first, extract("不对，是下个月10号到期", TODAY))
    assert (corrected.expires_on, corrected.date_precision, corrected.date_text) == (
        D(2026, 12, 10),
        "day",
        "下个月10号",
    )
    assert "expired" not in corrected.causes


def test_merge_keeps_what_the_update_does_not_say() -> None:
    before = Situation(
        licence="edi", causes=("staff",), expires_on=D(2027, 5, 1), date_precision="month", date_text="明年5月"
    )
    assert merge(before, Situation()) == before
    assert merge(Situation(), before) == before


def test_merge_generic_licence_does_not_replace_specific() -> None:
    s = merge(Situation(licence="call-center"), extract("增值电信许可证续期要多久", TODAY))
    assert s.licence == "call-center"
    assert merge(Situation(), Situation(licence="vats")).licence == "vats"


# --------------------------------------------------------------------------------------------
# Vocabulary and speed
# --------------------------------------------------------------------------------------------


def test_vocabulary_loads_all_sections() -> None:
    vocab = load_vocabulary()
    assert {"vats", "call-center", "icp", "network-culture"} <= set(vocab.licences)
    assert "B24" in vocab.licences["call-center"].codes
    assert vocab.topics["expired"] == "过期与无证经营"
    for cause in vocab.causes.values():
        assert cause.keywords and cause.query and set(cause.topics) <= set(vocab.topics)
    assert load_vocabulary() is load_vocabulary()


def test_custom_vocabulary_is_used(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.yaml"
    path.write_text(
        "licences:\n  x:\n    label: X证\n    codes: [X99]\n    aliases: [某某证]\n"
        "topics:\n  t: 主题\n"
        "causes:\n  c:\n    label: 原因\n    topics: [t]\n    query: q\n    keywords: [某原因]\n",
        encoding="utf-8",
    )
    s = extract("某某证因为某原因被驳回，x99", TODAY, load_vocabulary(path))
    assert (s.licence, s.causes) == ("x", ("c",))


def test_extract_is_fast() -> None:
    messages = [m for m, *_ in DATE_CASES] + [m for m, _ in LICENCE_CASES] + [m for m, _ in CAUSE_CASES]
    for m in messages:  # warm up normalisation and compiled matchers
        extract(m, TODAY)
    start = time.perf_counter()
    for _ in range(5):
        for m in messages:
            extract(m, TODAY)
    per_message_ms = (time.perf_counter() - start) * 1000 / (5 * len(messages))
    # The target is < 1 ms; the bound is loose so a slow CI machine does not fail the build.
    assert per_message_ms < 3
