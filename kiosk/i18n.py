"""The kiosk's words in the patient's language: gettext catalogues shipped in kiosk/locale.

English is the source language (the msgids); Welsh (`cy`) and Polish (`pl`) have catalogues in
`kiosk/locale/<lang>/LC_MESSAGES/porchlight.po`, compiled to `.mo` files that ship with the
package. Polish because it is the most spoken main language after English and Welsh in
England and Wales (2021 census), and it is written in Latin script the kiosk's font draws; an
Arabic-script language such as Urdu would need text shaping Kivy's labels do not do.

The nurse chooses the language per patient on the hub; the kiosk loads it with `words_for`.
Code marks text with `N_` (no translation at import time) and translates where it renders:
`words("Call my nurse")`, `words("Your nurse will call at {time} today", time=...)`,
`words.n("{n} second", "{n} seconds", n)`. Placeholders use str.format names, so a translator
can move them about in the sentence.

Maintainers (Babel is in the dev extra):
    python -m porchlight.kiosk.i18n extract   # kiosk/locale/porchlight.pot from the code
    python -m porchlight.kiosk.i18n update    # merge new words into each .po
    python -m porchlight.kiosk.i18n compile   # .po → .mo (tests fail while they differ)
"""

from __future__ import annotations

import gettext
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from porchlight.errors import BadInput

DOMAIN = "porchlight"
LOCALE_DIR = Path(__file__).with_name("locale")
# Files whose words are translated (`words(...)`, `words.n(...)`, `N_(...)`).
SOURCES = (
    "state.py",
    "appointments.py",
    "patient_care.py",
    "ui_survey.py",
    "ui_checkin.py",
    "i18n.py",
    # The default check-in's questions and the vital signs' names, marked by their calls.
    "questionnaire.py",
    "records.py",
)


@dataclass(frozen=True)
class Language:
    code: str  # what the hub stores: "en", "cy", "pl"
    name: str  # in its own words, for the nurse's menu
    english_name: str
    voice: str  # the espeak-ng voice that speaks it


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "English", "en-gb"),
        Language("cy", "Cymraeg", "Welsh", "cy"),
        Language("pl", "Polski", "Polish", "pl"),
    )
}
DEFAULT_LANGUAGE = "en"


def N_(message: str) -> str:
    """Mark `message` for translation without translating it (it is translated when shown)."""
    return message


class Words:
    """One language's words. Call it to translate; `n()` for words that change with a number."""

    def __init__(self, language: Language, translations: gettext.NullTranslations) -> None:
        self.language = language
        self._t = translations

    @property
    def code(self) -> str:
        return self.language.code

    def __call__(self, message: str, /, **fields: Any) -> str:
        text = self._t.gettext(message) if message else ""
        return text.format(**fields) if fields else text

    def n(self, singular: str, plural: str, count: int, /, **fields: Any) -> str:
        """The form for `count` (Welsh has six, Polish three); `{n}` is the count."""
        return self._t.ngettext(singular, plural, count).format(n=count, **fields)

    def clock(self, moment: datetime) -> str:
        """A time of day as people here say it: "2:30" in English, "14:30" in Polish."""
        hour12 = moment.hour % 12 or 12
        # TRANSLATORS: a time of day. {hour12} is 1-12, {hour24} is 0-23, {minute} is 00-59.
        return self(
            N_("{hour12}:{minute}"),
            hour12=hour12,
            hour24=moment.hour,
            minute=f"{moment.minute:02d}",
        )

    def __repr__(self) -> str:
        return f"Words({self.code!r})"


def words_for(code: str, locale_dir: Path = LOCALE_DIR) -> Words:
    """The words of language `code` (a key of LANGUAGES); BadInput if there is no such one.

    Reads the compiled catalogue once; keep the result (it never changes)."""
    language = LANGUAGES.get(code)
    if language is None:
        known = ", ".join(LANGUAGES)
        raise BadInput(f"language {code!r} is not one the kiosk speaks; choose one of {known}")
    if code == "en":
        return Words(language, gettext.NullTranslations())
    try:
        translations = gettext.translation(DOMAIN, localedir=str(locale_dir), languages=[code])
    except OSError:
        raise BadInput(
            f"the {language.english_name} catalogue is missing from {locale_dir}; "
            "reinstall the kiosk (python -m porchlight.kiosk.i18n compile builds it)"
        ) from None
    return Words(language, translations)


def english() -> Words:
    return words_for(DEFAULT_LANGUAGE)


# ---------------------------------------------------------------- maintainers' commands


def _catalog_paths(code: str) -> tuple[Path, Path]:
    folder = LOCALE_DIR / code / "LC_MESSAGES"
    return folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"


def extract() -> Any:
    """A Babel catalogue of every translatable text in SOURCES (needs Babel: dev extra)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file

    catalog = Catalog(project="Porchlight kiosk", charset="utf-8")
    here = Path(__file__).parent
    keywords = {"N_": None, "words": None, "n": (1, 2), "Item": (2,), "_vital": (2,)}
    for name in SOURCES:
        for lineno, message, comments, _context in extract_from_file(
            "python", here / name, keywords=keywords, comment_tags=("TRANSLATORS:",)
        ):
            catalog.add(message, locations=[(name, lineno)], auto_comments=comments)
    return catalog


def read_po(code: str) -> Any:
    from babel.messages.pofile import read_po as babel_read_po

    po, _ = _catalog_paths(code)
    with po.open("rb") as f:
        return babel_read_po(f, locale=code, domain=DOMAIN)


def compiled(code: str) -> bytes:
    """The .mo bytes the .po of `code` compiles to."""
    import io

    from babel.messages.mofile import write_mo

    out = io.BytesIO()
    write_mo(out, read_po(code), use_fuzzy=False)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    from babel.messages.pofile import write_po

    action = (argv if argv is not None else sys.argv[1:] or ["help"])[0]
    if action == "extract":
        with (LOCALE_DIR / f"{DOMAIN}.pot").open("wb") as f:
            write_po(f, extract(), width=96, no_location=True)
        return 0
    if action == "update":
        template = extract()
        for code in LANGUAGES:
            if code == DEFAULT_LANGUAGE:
                continue
            catalog = read_po(code)
            catalog.update(template, no_fuzzy_matching=True)
            with _catalog_paths(code)[0].open("wb") as f:
                write_po(f, catalog, width=96, ignore_obsolete=True, no_location=True)
        return 0
    if action == "compile":
        for code in LANGUAGES:
            if code != DEFAULT_LANGUAGE:
                _catalog_paths(code)[1].write_bytes(compiled(code))
        return 0
    print("usage: python -m porchlight.kiosk.i18n extract|update|compile", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
