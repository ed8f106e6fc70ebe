"""The check-in questionnaire: a small FHIR-Questionnaire-like model, the default check-in, and
the one-question-per-screen walk through it (including going back).

Pure: no Kivy, HTTP or SQL, no clock. Each item knows its own ranges, so checking one answer
is `item.check(value)`; a whole record is checked in `records.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from porchlight.errors import BadInput

# Extension URLs. FHIR's own ones where FHIR has one; ours are URNs so they name no host.
EXT_MIN = "http://hl7.org/fhir/StructureDefinition/minValue"
EXT_MAX = "http://hl7.org/fhir/StructureDefinition/maxValue"
EXT_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
EXT_USUAL_RANGE = "urn:porchlight:fhir:usual-range"
EXT_FLAG = "urn:porchlight:fhir:flag-answer"
EXT_START = "urn:porchlight:fhir:start-value"
EXT_STEP = "urn:porchlight:fhir:step"
EXT_VITALS = "urn:porchlight:fhir:vitals"
UCUM = "http://unitsofmeasure.org"

MAX_ITEMS = 50
MAX_TEXT = 300


class ItemType(StrEnum):
    CHOICE = "choice"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DECIMAL = "decimal"


class Level(StrEnum):
    """How a value fares against an item's rules, from best to worst."""

    OK = "ok"
    FLAG = "flag"  # fine to record, but the clinician should see it (e.g. "breathing: worse")
    CHECK = "check"  # possible but unusual: ask "please check that again", then record + flag
    REFUSED = "refused"  # impossible or malformed: never recorded


@dataclass(frozen=True)
class Finding:
    """What is wrong (or notable) about one answer.

    `message` is for the patient's screen and may quote their value; `reason` never does, so it
    is the one to put in logs, error bodies and the hub's per-record results."""

    link_id: str
    level: Level
    message: str
    expected: tuple[float, float] | None = None
    reason: str = ""


@dataclass(frozen=True)
class Option:
    code: str
    display: str
    flag: bool = False


@dataclass(frozen=True)
class EnableWhen:
    """Show an item only when another item was answered with `answer` (FHIR operator '=')."""

    question: str
    answer: str | bool | int | float


@dataclass(frozen=True)
class Item:
    link_id: str
    text: str
    type: ItemType
    options: tuple[Option, ...] = ()
    minimum: float | None = None  # outside [minimum, maximum]: impossible, refused
    maximum: float | None = None
    usual: tuple[float, float] | None = None  # outside: unusual, confirm then flag
    unit: str | None = None  # UCUM code
    unit_display: str | None = None
    step: float = 1
    start: float | None = None  # where a stepper starts
    required: bool = True
    enable_when: EnableWhen | None = None
    flag_if: bool | None = None  # booleans: this answer is flagged for the clinician
    label: str | None = None  # short name for messages ("Pulse"); questions go without

    def _named(self, text: str) -> str:
        return f"{self.label}: {text}" if self.label else text[:1].upper() + text[1:]

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)

    @property
    def decimals(self) -> int:
        """Digits after the point that this item keeps (0.1 steps → 1)."""
        if self.type is not ItemType.DECIMAL:
            return 0
        text = f"{self.step:.6f}".rstrip("0")
        return max(1, len(text.split(".")[1]))

    def _with_unit(self, number: float) -> str:
        shown = f"{number:.{self.decimals}f}" if self.type is ItemType.DECIMAL else f"{number:g}"
        return f"{shown} {self.unit_display}" if self.unit_display else shown

    def _range_text(self, low: float, high: float) -> str:
        return f"{self._with_unit(low)} to {self._with_unit(high)}"

    def normalise(self, value: Any) -> Any:
        """The value in this item's type, or BadInput saying what type was expected."""
        if self.type is ItemType.BOOLEAN:
            if not isinstance(value, bool):
                raise BadInput(f"'{self.link_id}' needs yes or no (true/false)")
            return value
        if self.type is ItemType.CHOICE:
            if not isinstance(value, str) or self.option(value) is None:
                codes = ", ".join(o.code for o in self.options)
                raise BadInput(f"'{self.link_id}' needs one of: {codes}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInput(f"'{self.link_id}' needs a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"'{self.link_id}' needs a finite number")
        if self.type is ItemType.INTEGER:
            if isinstance(value, float):
                if not value.is_integer():
                    raise BadInput(f"'{self.link_id}' needs a whole number")
                value = int(value)
            return value
        return round(float(value), self.decimals)

    def check(self, value: Any) -> Finding:
        """Judge one answer. Never raises: a wrong type is a REFUSED finding."""
        try:
            value = self.normalise(value)
        except BadInput as exc:
            return Finding(self.link_id, Level.REFUSED, str(exc), reason=str(exc))
        if self.type is ItemType.CHOICE:
            flagged = self.option(value).flag  # type: ignore[union-attr]
            return Finding(self.link_id, Level.FLAG if flagged else Level.OK, "")
        if self.type is ItemType.BOOLEAN:
            flagged = self.flag_if is not None and value == self.flag_if
            return Finding(self.link_id, Level.FLAG if flagged else Level.OK, "")
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= value <= high:
            return Finding(
                self.link_id,
                Level.REFUSED,
                self._named(
                    f"{self._with_unit(value)} is not possible. "
                    f"Expected {self._range_text(low, high)}."
                ),
                (low, high),
                f"'{self.link_id}' is outside the possible range {self._range_text(low, high)}",
            )
        if self.usual and not self.usual[0] <= value <= self.usual[1]:
            side = "low" if value < self.usual[0] else "high"
            return Finding(
                self.link_id,
                Level.CHECK,
                self._named(
                    f"{self._with_unit(value)} is unusually {side} "
                    f"(usual {self._range_text(*self.usual)}). Please check that again."
                ),
                self.usual,
                f"'{self.link_id}' is outside the usual range {self._range_text(*self.usual)}",
            )
        return Finding(self.link_id, Level.OK, "")

    def parse(self, text: str) -> Any:
        """Turn command-line text into a value of this item's type (then `check` it)."""
        text = text.strip()
        if self.type is ItemType.BOOLEAN:
            lowered = text.lower()
            if lowered in ("yes", "y", "true", "1"):
                return True
            if lowered in ("no", "n", "false", "0"):
                return False
            raise BadInput(f"'{self.link_id}' needs yes or no")
        if self.type is ItemType.CHOICE:
            return text
        try:
            return int(text) if self.type is ItemType.INTEGER else float(text)
        except ValueError:
            kind = "a whole number" if self.type is ItemType.INTEGER else "a number"
            raise BadInput(f"'{self.link_id}' needs {kind}") from None


@dataclass(frozen=True)
class Questionnaire:
    url: str
    version: str
    title: str
    items: tuple[Item, ...]
    vitals: tuple[str, ...] = ()  # which vital signs the check-in asks for (records.VITALS keys)

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"

    def item(self, link_id: str) -> Item:
        for it in self.items:
            if it.link_id == link_id:
                return it
        raise BadInput(f"'{link_id}' is not a question in this questionnaire")

    def to_fhir(self) -> dict[str, Any]:
        return _to_fhir(self)

    @classmethod
    def from_fhir(cls, data: Any) -> Questionnaire:
        """Read a FHIR Questionnaire (the subset Porchlight uses); BadInput says what is wrong."""
        try:
            return _from_fhir(data)
        except (AttributeError, TypeError, KeyError):
            raise BadInput("questionnaire: a field has the wrong shape") from None


def is_enabled(item: Item, answers: Mapping[str, Any]) -> bool:
    cond = item.enable_when
    return cond is None or (cond.question in answers and answers[cond.question] == cond.answer)


class Walk:
    """One step per screen through `steps`, skipping items whose enableWhen is not met.

    `submit` checks the answer: refused → stay; unusual and not yet confirmed → stay and say
    why; otherwise keep it and move on. `back` returns to the previous shown step with its
    answer kept, so the patient sees what they said before.
    """

    def __init__(self, steps: Sequence[Item], answers: Mapping[str, Any] | None = None) -> None:
        ids = [s.link_id for s in steps]
        if len(set(ids)) != len(ids):
            raise BadInput("a check-in has two steps with the same linkId")
        self._steps = tuple(steps)
        self._answers: dict[str, Any] = dict(answers or {})
        self._flags: set[str] = set()
        self._history: list[int] = []
        self._index = self._next_enabled(0)

    def _next_enabled(self, start: int) -> int:
        i = start
        while i < len(self._steps) and not is_enabled(self._steps[i], self._answers):
            i += 1
        return i

    @property
    def current(self) -> Item | None:
        return self._steps[self._index] if self._index < len(self._steps) else None

    @property
    def finished(self) -> bool:
        return self.current is None

    @property
    def can_go_back(self) -> bool:
        return bool(self._history)

    def previous_answer(self) -> Any:
        """The answer already given to the current step (after going back), if any."""
        item = self.current
        return None if item is None else self._answers.get(item.link_id)

    @property
    def progress(self) -> tuple[int, int]:
        """(this step's number, how many steps will be shown) given the answers so far."""
        shown = [i for i, s in enumerate(self._steps) if is_enabled(s, self._answers)]
        number = len(self._history) + 1
        return min(number, len(shown)), len(shown)

    def submit(self, value: Any, *, confirmed: bool = False) -> Finding:
        item = self.current
        if item is None:
            raise BadInput("the check-in is already finished")
        finding = item.check(value)
        if finding.level is Level.REFUSED or (finding.level is Level.CHECK and not confirmed):
            return finding
        self._answers[item.link_id] = item.normalise(value)
        if finding.level in (Level.CHECK, Level.FLAG):
            self._flags.add(item.link_id)
        else:
            self._flags.discard(item.link_id)
        self._advance()
        return finding

    def skip(self) -> None:
        """Leave an optional step unanswered (e.g. no thermometer at home)."""
        item = self.current
        if item is None or item.required:
            raise BadInput("this question needs an answer")
        self._answers.pop(item.link_id, None)
        self._flags.discard(item.link_id)
        self._advance()

    def _advance(self) -> None:
        self._history.append(self._index)
        self._index = self._next_enabled(self._index + 1)

    def back(self) -> bool:
        if not self._history:
            return False
        self._index = self._history.pop()
        return True

    def answers(self, link_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """Answers to the steps that are shown (answers to steps hidden later are dropped)."""
        wanted = None if link_ids is None else set(link_ids)
        return {
            s.link_id: self._answers[s.link_id]
            for s in self._steps
            if s.link_id in self._answers
            and is_enabled(s, self._answers)
            and (wanted is None or s.link_id in wanted)
        }

    @property
    def flags(self) -> frozenset[str]:
        shown = self.answers()
        return frozenset(f for f in self._flags if f in shown)


def default_checkin() -> Questionnaire:
    """The check-in that ships with Porchlight; the care team can assign another."""
    return Questionnaire(
        url="urn:porchlight:questionnaire:daily-check-in",
        version="1",
        title="Daily check-in",
        items=(
            Item(
                "breathing",
                "How is your breathing today?",
                ItemType.CHOICE,
                options=(
                    Option("better", "Better than usual"),
                    Option("same", "The same as usual"),
                    Option("worse", "Worse than usual", flag=True),
                ),
            ),
            Item("pain", "Do you have any new pain?", ItemType.BOOLEAN, flag_if=True),
            Item(
                "pain_score",
                "How bad is the pain? 0 is none, 10 is the worst.",
                ItemType.INTEGER,
                minimum=0,
                maximum=10,
                usual=(0, 6),
                start=3,
                enable_when=EnableWhen("pain", True),
            ),
            Item(
                "medicines",
                "Have you taken your medicines today?",
                ItemType.BOOLEAN,
                flag_if=False,
            ),
            Item(
                "feeling",
                "How are you feeling overall?",
                ItemType.CHOICE,
                options=(
                    Option("well", "Well"),
                    Option("okay", "Okay"),
                    Option("unwell", "Unwell", flag=True),
                ),
            ),
        ),
        vitals=("spo2", "pulse", "temperature"),
    )


# --- FHIR Questionnaire JSON (R4) -------------------------------------------------------


def _num_ext(url: str, item: Item, value: float) -> dict[str, Any]:
    if item.type is ItemType.INTEGER:
        return {"url": url, "valueInteger": int(value)}
    return {"url": url, "valueDecimal": value}


def _answer_value_key(value: Any) -> str:
    if isinstance(value, bool):
        return "answerBoolean"
    if isinstance(value, int):
        return "answerInteger"
    if isinstance(value, float):
        return "answerDecimal"
    return "answerCoding"


def _to_fhir(q: Questionnaire) -> dict[str, Any]:
    items = []
    for it in q.items:
        out: dict[str, Any] = {
            "linkId": it.link_id,
            "text": it.text,
            "type": it.type.value,
            "required": it.required,
        }
        ext: list[dict[str, Any]] = []
        if it.minimum is not None:
            ext.append(_num_ext(EXT_MIN, it, it.minimum))
        if it.maximum is not None:
            ext.append(_num_ext(EXT_MAX, it, it.maximum))
        if it.usual is not None:
            ext.append(
                {
                    "url": EXT_USUAL_RANGE,
                    "valueRange": {"low": {"value": it.usual[0]}, "high": {"value": it.usual[1]}},
                }
            )
        if it.unit is not None:
            coding = {"system": UCUM, "code": it.unit, "display": it.unit_display or it.unit}
            ext.append({"url": EXT_UNIT, "valueCoding": coding})
        if it.type in (ItemType.INTEGER, ItemType.DECIMAL):
            ext.append({"url": EXT_STEP, "valueDecimal": it.step})
            if it.start is not None:
                ext.append({"url": EXT_START, "valueDecimal": it.start})
        if it.flag_if is not None:
            ext.append({"url": EXT_FLAG, "valueBoolean": it.flag_if})
        if ext:
            out["extension"] = ext
        if it.options:
            out["answerOption"] = [
                {
                    "valueCoding": {"code": o.code, "display": o.display},
                    **({"extension": [{"url": EXT_FLAG, "valueBoolean": True}]} if o.flag else {}),
                }
                for o in it.options
            ]
        if it.enable_when is not None:
            key = _answer_value_key(it.enable_when.answer)
            answer = it.enable_when.answer
            out["enableWhen"] = [
                {
                    "question": it.enable_when.question,
                    "operator": "=",
                    key: {"code": answer} if key == "answerCoding" else answer,
                }
            ]
        items.append(out)
    return {
        "resourceType": "Questionnaire",
        "url": q.url,
        "version": q.version,
        "title": q.title,
        "status": "active",
        "extension": [{"url": EXT_VITALS, "valueCode": v} for v in q.vitals],
        "item": items,
    }


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise BadInput(f"questionnaire: {what}")


def _text(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    _need(isinstance(value, str) and 0 < len(value) <= limit, f"{what} must be text (1-{limit})")
    return value


def _number(value: Any, what: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    _need(ok, f"{what} must be a number")
    return value


@dataclass
class _Ext:
    by_url: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> _Ext:
        raw = node.get("extension", [])
        _need(isinstance(raw, list), "extension must be a list")
        ext = cls()
        for e in raw:
            _need(isinstance(e, dict) and isinstance(e.get("url"), str), "bad extension")
            ext.by_url.setdefault(e["url"], []).append(e)
        return ext

    def first(self, url: str) -> dict[str, Any] | None:
        found = self.by_url.get(url)
        return found[0] if found else None

    def number(self, url: str) -> float | None:
        e = self.first(url)
        if e is None:
            return None
        value = e.get("valueInteger", e.get("valueDecimal"))
        return _number(value, url)


def _from_fhir(data: Any) -> Questionnaire:
    _need(isinstance(data, dict), "must be a JSON object")
    _need(data.get("resourceType") == "Questionnaire", "resourceType must be Questionnaire")
    url = _text(data.get("url"), "url")
    version = _text(data.get("version"), "version", 64)
    title = _text(data.get("title", url), "title")
    raw_items = data.get("item")
    _need(isinstance(raw_items, list) and 0 < len(raw_items) <= MAX_ITEMS, "needs 1-50 items")
    items: list[Item] = []
    for raw in raw_items:
        _need(isinstance(raw, dict), "each item must be an object")
        link_id = _text(raw.get("linkId"), "item linkId", 64)
        try:
            kind = ItemType(raw.get("type"))
        except ValueError:
            kinds = ", ".join(t.value for t in ItemType)
            raise BadInput(f"questionnaire: item '{link_id}' type must be one of {kinds}") from None
        ext = _Ext.of(raw)
        options: list[Option] = []
        for opt in raw.get("answerOption", []):
            coding = opt.get("valueCoding") if isinstance(opt, dict) else None
            _need(isinstance(coding, dict), f"item '{link_id}' options need valueCoding")
            code = _text(coding.get("code"), "option code", 64)
            flagged = _Ext.of(opt).first(EXT_FLAG)
            options.append(
                Option(code, _text(coding.get("display", code), "option display"), bool(flagged))
            )
        _need(kind is not ItemType.CHOICE or len(options) >= 2, f"'{link_id}' needs 2+ options")
        usual = None
        if (u := ext.first(EXT_USUAL_RANGE)) is not None:
            rng = u.get("valueRange") or {}
            usual = (
                _number((rng.get("low") or {}).get("value"), "usual low"),
                _number((rng.get("high") or {}).get("value"), "usual high"),
            )
        unit = ext.first(EXT_UNIT)
        coding = (unit or {}).get("valueCoding") or {}
        enable = None
        conds = raw.get("enableWhen", [])
        _need(isinstance(conds, list) and len(conds) <= 1, "at most one enableWhen per item")
        if conds:
            cond = conds[0]
            _need(cond.get("operator") == "=", "enableWhen supports operator '=' only")
            answer: Any = None
            for key in ("answerBoolean", "answerInteger", "answerDecimal", "answerCoding"):
                if key in cond:
                    answer = cond[key]["code"] if key == "answerCoding" else cond[key]
            _need(answer is not None, "enableWhen needs an answer")
            enable = EnableWhen(_text(cond.get("question"), "enableWhen question", 64), answer)
        flag_ext = ext.first(EXT_FLAG)
        items.append(
            Item(
                link_id,
                _text(raw.get("text"), f"item '{link_id}' text"),
                kind,
                options=tuple(options),
                minimum=ext.number(EXT_MIN),
                maximum=ext.number(EXT_MAX),
                usual=usual,
                unit=coding.get("code"),
                unit_display=coding.get("display"),
                step=ext.number(EXT_STEP) or 1,
                start=ext.number(EXT_START),
                required=bool(raw.get("required", True)),
                enable_when=enable,
                flag_if=None if flag_ext is None else bool(flag_ext.get("valueBoolean")),
            )
        )
    ids = [i.link_id for i in items]
    _need(len(set(ids)) == len(ids), "linkIds must be unique")
    for it in items:
        if it.enable_when is not None:
            _need(
                it.enable_when.question in ids[: ids.index(it.link_id)],
                "enableWhen must refer to an earlier item",
            )
    vitals = tuple(
        _text(e.get("valueCode"), "vitals code", 32)
        for e in _Ext.of(data).by_url.get(EXT_VITALS, [])
    )
    return Questionnaire(url, version, title, tuple(items), vitals)
