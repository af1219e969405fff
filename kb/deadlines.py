"""Renewal deadlines: the rule table (kb/data/deadline_rules.yaml) and the date arithmetic.

Lead times are calendar days (42号令 says 「日」, not 工作日; see the fact sheet, section 2), so
`apply_by = expires_on - lead_days` with no holiday logic. A licence is still valid on its
expiry day; the day after, it has expired.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kb.config import DATA_DIR
from kb.errors import ConfigError

RULES_PATH = DATA_DIR / "deadline_rules.yaml"
TELECOM_RULE = "telecom"  # the rule whose penalties come from the 电信条例 (第69条)

ON_TIME = "on_time"
WINDOW_MISSED = "window_missed"
EXPIRED = "expired"


@dataclass(frozen=True)
class Milestone:
    days_before: int
    label: str


@dataclass(frozen=True)
class DeadlineRule:
    id: str
    label: str
    licences: tuple[str, ...]
    validity_years: int
    lead_days: int
    authority: str
    source: str
    grace_period: bool
    milestones: tuple[Milestone, ...]


@dataclass(frozen=True)
class RuleTable:
    rules: tuple[DeadlineRule, ...]
    default: str

    def rule(self, rule_id: str) -> DeadlineRule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def rule_for(self, licence: str | None) -> tuple[DeadlineRule, bool]:
        """The rule for a licence id, and whether it was assumed (licence unknown or not said:
        the default telecom rule, which the answer must state as an assumption)."""
        if licence is not None:
            for rule in self.rules:
                if licence in rule.licences:
                    return rule, False
        return self.rule(self.default), True


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _positive_int(value: Any, where: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"期限规则 {path} 中 {where} 应为正整数，实际为 {value!r}。")
    return value


def _rule(rule_id: str, entry: Any, path: Path) -> DeadlineRule:
    if not isinstance(entry, dict):
        raise ConfigError(f"期限规则 {path} 中 {rule_id} 应为映射（mapping）。")
    for key in ("label", "licences", "authority", "source"):
        if not entry.get(key):
            raise ConfigError(f"期限规则 {path} 中 {rule_id} 缺少 `{key}`。")
    milestones = []
    for i, item in enumerate(entry.get("milestones") or []):
        if not isinstance(item, dict) or not item.get("label"):
            raise ConfigError(f"期限规则 {path} 中 {rule_id}.milestones[{i}] 缺少 `label`。")
        days = _positive_int(item.get("days_before"), f"{rule_id}.milestones[{i}].days_before", path)
        milestones.append(Milestone(days_before=days, label=str(item["label"])))
    return DeadlineRule(
        id=rule_id,
        label=str(entry["label"]),
        licences=tuple(str(x) for x in entry["licences"]),
        validity_years=_positive_int(entry.get("validity_years"), f"{rule_id}.validity_years", path),
        lead_days=_positive_int(entry.get("lead_days"), f"{rule_id}.lead_days", path),
        authority=str(entry["authority"]),
        source=str(entry["source"]),
        grace_period=bool(entry.get("grace_period", False)),
        # Furthest first: the order a reader works through them.
        milestones=tuple(sorted(milestones, key=lambda m: -m.days_before)),
    )


@lru_cache(maxsize=8)
def load_rules(path: Path | None = None) -> RuleTable:
    """The rule table at `path` (default kb/data/deadline_rules.yaml), parsed once per path."""
    path = path or RULES_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"找不到期限规则文件 {path}。") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"期限规则文件 {path} 不是合法的 YAML：{exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict) or not data["rules"]:
        raise ConfigError(f"期限规则文件 {path} 缺少 `rules`。")
    rules = tuple(_rule(str(rid), entry, path) for rid, entry in data["rules"].items())
    default = str(data.get("default") or "")
    if default not in {r.id for r in rules}:
        raise ConfigError(f"期限规则文件 {path} 的 `default`（{default!r}）不是已定义的规则。")
    return RuleTable(rules=rules, default=default)


# --------------------------------------------------------------------------------------------
# Computing a deadline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    expires_on: date
    apply_by: date
    today: date
    days_left: int  # days from today to apply_by; negative once it has passed
    status: str  # ON_TIME | WINDOW_MISSED | EXPIRED
    rule: DeadlineRule
    rule_assumed: bool
    milestones: tuple[tuple[date, str], ...]  # in date order, including apply_by and expires_on

    def to_dict(self) -> dict[str, Any]:
        return {
            "expires_on": self.expires_on.isoformat(),
            "apply_by": self.apply_by.isoformat(),
            "days_left": self.days_left,
            "status": self.status,
            "rule": {
                "id": self.rule.id,
                "label": self.rule.label,
                "lead_days": self.rule.lead_days,
                "authority": self.rule.authority,
                "source": self.rule.source,
                "assumed": self.rule_assumed,
            },
            "milestones": [
                {"date": d.isoformat(), "label": label, "passed": d < self.today} for d, label in self.milestones
            ],
        }


@dataclass(frozen=True)
class Filed:
    """When the user says they handed the application in: the earliest and latest day their words
    allow ("9月就交了": 9月1日 to 9月30日; "12月10号交的": that day) and the words themselves."""

    earliest: date
    latest: date
    text: str


def expiry_from_issue(issued_on: date, licence: str | None, rules: RuleTable | None = None) -> date:
    """The expiry date a licence issued on `issued_on` would have: the day before the anniversary
    `validity_years` later (the earlier of the two dates certificates use, so the advice errs early)."""
    rule, _ = (rules or load_rules()).rule_for(licence)
    year = issued_on.year + rule.validity_years
    day = min(issued_on.day, 28) if issued_on.month == 2 and issued_on.day == 29 else issued_on.day
    return date(year, issued_on.month, day) - timedelta(days=1)


def apply_by_label(rule: DeadlineRule) -> str:
    return f"续期申请最晚提交日（有效期届满前{rule.lead_days}日，硬截止）"


EXPIRY_LABEL = "许可证有效期届满日"


def compute(expires_on: date, today: date, licence: str | None, rules: RuleTable | None = None) -> Deadline:
    """The renewal deadline for a licence expiring on `expires_on`, seen from `today`."""
    rule, assumed = (rules or load_rules()).rule_for(licence)
    apply_by = expires_on - timedelta(days=rule.lead_days)
    if today <= apply_by:
        status = ON_TIME
    elif today <= expires_on:
        status = WINDOW_MISSED
    else:
        status = EXPIRED
    points = [(expires_on - timedelta(days=m.days_before), m.label) for m in rule.milestones]
    points += [(apply_by, apply_by_label(rule)), (expires_on, EXPIRY_LABEL)]
    return Deadline(
        expires_on=expires_on,
        apply_by=apply_by,
        today=today,
        days_left=(apply_by - today).days,
        status=status,
        rule=rule,
        rule_assumed=assumed,
        milestones=tuple(sorted(points, key=lambda p: p[0])),
    )


def format_date(d: date) -> str:
    """2026年12月15日 (no zero padding, as written in Chinese documents)."""
    return f"{d.year}年{d.month}月{d.day}日"


# --------------------------------------------------------------------------------------------
# What the status means
# --------------------------------------------------------------------------------------------


def status_advice(deadline: Deadline, applied: bool | None = None, filed: Filed | None = None) -> str:
    """Short, concrete Simplified-Chinese advice for the deadline's status. `applied`: True when
    the user says the renewal application is already in (and names no refusal), False when they
    say it was refused, None when they said neither; `filed`: when they say they handed it in."""
    rule = deadline.rule
    parts: list[str] = []
    if deadline.rule_assumed:
        parts.append(
            f"您没有说明是哪种许可证，以下暂按{rule.label}计算（有效期届满前{rule.lead_days}日提出申请）；"
            "如不是这类许可证，请告诉我具体证件名称。"
        )
    apply_by, expires = format_date(deadline.apply_by), format_date(deadline.expires_on)

    if applied:
        parts.append(_applied_advice(deadline, apply_by, expires, filed))
    elif applied is False and deadline.status != EXPIRED:
        parts.append(_refused_advice(deadline, apply_by, expires))
    elif deadline.status == ON_TIME:
        when = "今天就是最后一天" if deadline.days_left == 0 else f"还有{deadline.days_left}天"
        parts.append(
            f"许可证{expires}到期，续期申请最晚须在{apply_by}前（含当日）向{rule.authority}提出，{when}。"
            "请现在就开始准备，不要拖到最后几天：材料需要补正时会占用时间。"
        )
        upcoming = [(d, label) for d, label in deadline.milestones if d >= deadline.today]
        if upcoming:
            parts.append("建议节点：" + "；".join(f"{format_date(d)} {label}" for d, label in upcoming) + "。")
    elif deadline.status == WINDOW_MISSED:
        parts.append(
            f"续期申请的最后期限（{apply_by}）已过{-deadline.days_left}天，许可证将于{expires}到期。"
            f"请立即联系{rule.authority}，说明情况：马上提交延续申请，并询问是否还能受理；"
            "同时准备按新申请重新办理的材料，以防不予延续。"
        )
        if not rule.grace_period:
            parts.append("规章没有规定宽限期，不要指望到期后补办续期。")
    elif rule.id == TELECOM_RULE:
        days = (deadline.today - deadline.expires_on).days
        parts.append(
            f"许可证已于{expires}到期（已过{days}天），不能再办理续期，只能按新申请重新办理。"
            "在取得新证之前，请暂停相应的电信业务：无证经营会依照《电信条例》第六十九条处罚"
            "（责令改正、没收违法所得并处罚款，情节严重的责令停业整顿）。"
            f"请尽快联系{rule.authority}，确认重新申请的要求。"
        )
    else:
        # The fact sheet states the no-renewal-after-expiry rule for telecom licences only; for
        # other licences say what is safe and send the user to the authority.
        days = (deadline.today - deadline.expires_on).days
        parts.append(
            f"许可证已于{expires}到期（已过{days}天）。请暂停相关经营活动，"
            f"并尽快咨询{rule.authority}，确认能否补办或需要重新申请。"
        )
    return "".join(parts)


def _applied_advice(deadline: Deadline, apply_by: str, expires: str, filed: Filed | None = None) -> str:
    """The advice once an application is in: whether it was on time decides everything. When the
    user says when they filed, and the words settle it, that case is stated; otherwise both
    (行政许可法第五十条: an on-time application not decided before expiry is deemed approved)."""
    rule = deadline.rule
    on_time = f"在{apply_by}（届满前{rule.lead_days}日）当天或之前提交的，属于按时申请"
    deemed = "发证机关应在到期前作出决定，到期仍未决定的，依《行政许可法》第五十条视为准予延续"
    if deadline.status != ON_TIME and filed is not None:
        said = f"您说续期申请是在“{filed.text}”提交的"
        if filed.latest <= deadline.apply_by:
            if deadline.status == EXPIRED:
                days = (deadline.today - deadline.expires_on).days
                return (
                    f"{said}，早于最晚提交日{apply_by}（届满前{rule.lead_days}日），属于按时申请。许可证已于{expires}到期"
                    f"（已过{days}天）：到期前没有作出决定的，依《行政许可法》第五十条视为准予延续。"
                    f"请尽快向{rule.authority}确认许可证状态，并保留提交和受理记录。"
                )
            return (
                f"{said}，早于最晚提交日{apply_by}（届满前{rule.lead_days}日），属于按时申请。许可证{expires}到期，"
                f"{deemed}。请在系统中确认已受理，收到补正通知的按要求一次补齐，并保留提交和受理记录。"
            )
        if filed.earliest > deadline.apply_by:
            if deadline.status == EXPIRED:
                return (
                    f"{said}，晚于最晚提交日{apply_by}，不属于按时申请；许可证已于{expires}到期，已经失效。"
                    f"取得新证之前请暂停相应业务，并向{rule.authority}确认按新申请重新办理的要求。"
                )
            return (
                f"{said}，晚于最晚提交日{apply_by}（届满前{rule.lead_days}日），不属于按时申请：到期前未获批准的，"
                f"许可证到期即失效。请立即联系{rule.authority}问清这份申请能否受理、能否在{expires}前作出决定，"
                "同时准备按新申请办理的材料。"
            )
    if deadline.status == ON_TIME:
        return (
            f"您说已经提交了续期申请。许可证{expires}到期，现在提交仍早于最晚提交日{apply_by}，属于按时申请。"
            "请在系统中确认已受理，收到补正通知的按要求一次补齐，保持联系电话畅通，并保留提交和受理记录。"
        )
    if deadline.status == WINDOW_MISSED:
        return (
            f"您说已经提交了续期申请。许可证{expires}到期，是否按时要看提交日期：{on_time}，{deemed}，"
            "请在系统中确认受理状态并保留提交记录；"
            f"晚于{apply_by}提交的不属于按时申请，请立即联系{rule.authority}问清能否受理，同时准备按新申请办理的材料。"
        )
    days = (deadline.today - deadline.expires_on).days
    return (
        f"您说已经提交了续期申请，许可证已于{expires}到期（已过{days}天）。{on_time}，且{deemed}，"
        f"请向{rule.authority}确认许可证状态并保留提交记录；"
        "不是按时提交的，许可证已经失效，取得新证之前请暂停相应业务，按新申请重新办理。"
    )


def _refused_advice(deadline: Deadline, apply_by: str, expires: str) -> str:
    """The advice after a refusal, while the licence is still valid: it stays valid until expiry,
    and what comes next depends on the notice. A request to correct (补正, materials sent back) can
    be answered and the application handed in again, on time until the apply-by date; a decision
    not to renew (不予延续) ends the licence at expiry, and only a new application remains (the
    general re-application document; the fact sheet's no-renewal-after-expiry rule is for
    telecom licences, so other licences are sent to their authority)."""
    rule = deadline.rule
    opening = f"您说续期申请被驳回了。许可证{expires}到期，在此之前仍然有效，可以照常经营，但要保持合规。"
    if rule.id == TELECOM_RULE:
        after = "许可证到期后失效，不能再办理续期，只能按新申请重新办理"
    else:
        after = "到期后请暂停相关经营活动，按发证机关的要求重新办理"
    if deadline.status == ON_TIME:
        when = "今天就是最后一天" if deadline.days_left == 0 else f"还有{deadline.days_left}天"
        return (
            f"{opening}先看清通知的性质：要求补正或退回材料的，按通知一次改正补齐后尽快重新提交，"
            f"在{apply_by}（届满前{rule.lead_days}日）当天或之前提交的仍属按时申请，{when}；"
            f"已经作出不予延续决定的，{after}，对决定不服的可以按决定书的告知申请行政复议或提起行政诉讼。"
            f"拿不准属于哪一种的，请向{rule.authority}问清。"
        )
    grace = "规章没有规定宽限期。" if not rule.grace_period else ""
    return (
        f"{opening}届满前{rule.lead_days}日的申请期限（{apply_by}）已过{-deadline.days_left}天："
        f"请立即联系{rule.authority}，问清改正后重新提交是否还能受理；同时按新申请准备全套材料。"
        f"到期前没有取得延续的，{after}。{grace}"
    )


# --------------------------------------------------------------------------------------------
# iCalendar export (RFC 5545)
# --------------------------------------------------------------------------------------------

_CRLF = "\r\n"
_MAX_OCTETS = 75


def _escape(text: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11)."""
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> list[str]:
    """Split a content line into lines of at most 75 octets (RFC 5545 3.1), never inside a
    UTF-8 character; continuation lines start with one space, which counts toward the 75."""
    out: list[str] = []
    current, size, limit = [], 0, _MAX_OCTETS
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append("".join(current))
            current, size, limit = [], 0, _MAX_OCTETS - 1
        current.append(ch)
        size += n
    out.append("".join(current))
    return [out[0], *(" " + part for part in out[1:])]


def _uid(expires_on: date, licence_label: str, label: str) -> str:
    digest = hashlib.sha256(f"{expires_on.isoformat()}|{licence_label}|{label}".encode()).hexdigest()[:24]
    return f"{digest}@renewal-kb"


def to_ics(deadline: Deadline, licence_label: str | None = None, now: datetime | None = None) -> str:
    """An iCalendar file with one all-day event per milestone still ahead (today included):
    the preparation milestones, the apply-by deadline (with a reminder the day before) and the
    expiry date. Past dates are left out: a calendar reminder for yesterday helps nobody."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = licence_label or "许可证"
    rule = deadline.rule
    context = (
        f"{name}有效期届满日：{format_date(deadline.expires_on)}；"
        f"续期申请须在{format_date(deadline.apply_by)}前向{rule.authority}提出。"
        f"依据：{rule.source}。"
    )
    if deadline.rule_assumed:
        context += f"\n未说明许可证种类，按{rule.label}计算。"

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//renewal-kb//CN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for day, label in deadline.milestones:
        if day < deadline.today:
            continue
        lines += [
            "BEGIN:VEVENT",
            f"UID:{_uid(deadline.expires_on, name, label)}",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
            f"SUMMARY:{_escape(f'{name}：{label}')}",
            f"DESCRIPTION:{_escape(context)}",
            "TRANSP:TRANSPARENT",
        ]
        if label == apply_by_label(rule):
            lines += [
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                f"DESCRIPTION:{_escape(f'明天是{name}续期申请的最后期限')}",
                "TRIGGER:-P1D",
                "END:VALARM",
            ]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(part + _CRLF for line in lines for part in _fold(line))
