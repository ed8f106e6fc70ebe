"""The kiosk's languages: every word the code marks has a translation in Welsh and Polish,
placeholders survive translation, plural forms follow each language, the shipped .mo files are
exactly what the .po files compile to, and the built wheel carries them."""

from __future__ import annotations

import re
import zipfile

import pytest
from images.staging import build_wheel

from porchlight.errors import BadInput
from porchlight.kiosk import i18n

TRANSLATED = [code for code in i18n.LANGUAGES if code != i18n.DEFAULT_LANGUAGE]
FIELD = re.compile(r"{(\w+)}")


def test_a_community_language_besides_english_and_welsh():
    assert {"en", "cy"} < set(i18n.LANGUAGES) and len(i18n.LANGUAGES) >= 3
    for language in i18n.LANGUAGES.values():
        assert language.voice  # espeak-ng speaks it


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_marked_word_is_translated_with_its_placeholders(code):
    template = i18n.extract()
    catalog = i18n.read_po(code)
    wanted = [m.id for m in template if m.id]
    assert len(wanted) > 60
    for msgid in wanted:
        message = catalog.get(msgid)
        assert message is not None, f"{code}: no entry for {msgid!r}"
        assert not message.fuzzy, f"{code}: {msgid!r} is fuzzy"
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{code}: {msgid!r} is not translated"
        source = msgid if isinstance(msgid, str) else msgid[1]
        allowed = set(FIELD.findall(source)) | (
            {"hour24", "hour12"} if "hour12" in source else set()
        )
        for text in strings:
            used = set(FIELD.findall(text))
            assert used <= allowed, f"{code}: {msgid!r} uses unknown {used - allowed}"
            if "hour12" not in source:
                assert used == set(FIELD.findall(source)), f"{code}: {msgid!r} drops a field"
    assert catalog.num_plurals == {"cy": 6, "pl": 3}[code]


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_shipped_mo_is_what_the_po_compiles_to(code):
    shipped = (i18n.LOCALE_DIR / code / "LC_MESSAGES" / "porchlight.mo").read_bytes()
    assert shipped == i18n.compiled(code), (
        f"{code}: run `python -m porchlight.kiosk.i18n compile` after editing the .po"
    )


def test_plurals_pick_each_languages_form():
    pl = i18n.words_for("pl")
    real = [
        pl.n(
            "The call will start by itself in {n} second",
            "The call will start by itself in {n} seconds",
            n,
        ).split()[-1]
        for n in (1, 2, 5, 22, 25)
    ]
    assert real == ["sekundę", "sekundy", "sekund", "sekundy", "sekund"]
    en = i18n.words_for("en")
    assert en.n("{n} second", "{n} seconds", 1) == "1 second"
    assert en.n("{n} second", "{n} seconds", 3) == "3 seconds"


def test_an_unknown_language_is_a_clear_error():
    with pytest.raises(BadInput, match="choose one of en, cy, pl"):
        i18n.words_for("fr")


def test_a_missing_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(BadInput, match="catalogue is missing"):
        i18n.words_for("cy", locale_dir=tmp_path)


def test_the_wheel_carries_the_catalogues(tmp_path):
    # Built the way the Pi image gets it (tests/images/staging.py), offline.
    dest = build_wheel(tmp_path / "dist", tmp_path)
    (wheel,) = dest.glob("porchlight-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for code in TRANSLATED:
        assert f"porchlight/kiosk/locale/{code}/LC_MESSAGES/porchlight.mo" in names
    assert "porchlight/kiosk/survey.kv" in names
    assert "porchlight/hub/static/evidence.js" in names
