"""The voice library: cards read and checked, the bundled voices' clips and licences, the audit log, the CLI."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from flows.cli import main
from stages import wav
from stages.cast import load_library
from stages.errors import UserError
from stages.voices.audit import audit, audit_path, read_audit
from stages.voices.card import (
    BUNDLED_VOICES_DIR, Licence, Reference, VoiceCard, file_problems, load_cards, read_card, sha256_file, write_card,
)

BUNDLED = ("joe", "joe-alto", "joe-bright", "joe-deep", "joe-girl", "joe-mezzo", "joe-soprano", "joe-tenor")
JOE_REFERENCE = BUNDLED_VOICES_DIR / "joe" / "reference.wav"


def make_voice(voices_dir: Path, voice_id: str, **licence: object) -> VoiceCard:
    """Write a real voice folder (the bundled model, a real Piper clip, a consent document) and read its card back."""
    folder = Path(voices_dir) / voice_id
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(JOE_REFERENCE, folder / "reference.wav")
    (folder / "consent.md").write_text(f"Consent for {voice_id}: signed by the estate on 2026-01-05.\n")
    base = read_card(BUNDLED_VOICES_DIR / "joe" / "voice.toml")
    terms = {"id": "estate-2026-001", "licensor": "The Estate", "licensee": "Example Audio Ltd",
             "consent": "consent.md", "consent_sha256": sha256_file(folder / "consent.md"),
             "disclosure": "Narrated by a licensed synthetic voice."}
    card = VoiceCard(
        voice=replace(base.voice, id=voice_id, name=voice_id.title(), role="narrator"),
        folder=folder, languages=("en-US",), age_group="elderly", styles=("grave",),
        references=(Reference("reference.wav", base.references[0].transcript, sha256_file(folder / "reference.wav"),
                              base.references[0].seconds),),
        licence=Licence(**(terms | licence)), protected=True,
    )
    write_card(card)
    return read_card(folder / "voice.toml")


def test_bundled_voices_carry_cc0_licences_consent_and_their_own_reference_clip():
    cards = load_cards()
    assert sorted(cards) == list(BUNDLED)
    for card in cards.values():
        lic = card.licence
        assert (lic.id, lic.licensee, lic.titles, lic.territories) == ("joe-cc0", "*", (), ("worldwide",))
        assert set(lic.uses) == {"audiobook", "retail-sample", "promotion"} and "synthetic voice" in lic.disclosure
        assert "CC0 1.0" in lic.terms and card.languages == ("en-US",) and card.styles
        consent = (card.folder / lic.consent).read_text()
        assert "en_US-joe-medium" in consent and "no consent from a real person" in consent
        assert file_problems(card) == []
        (ref,) = card.references
        info = wav.wav_info(card.folder / ref.path)
        assert (info.sample_rate, info.channels, info.bits) == (22050, 1, 16)
        assert abs(info.frames / 22050 - ref.seconds) < 0.001 and 5.0 <= ref.seconds <= 8.0
        assert (card.folder / ref.path).stat().st_size < 400_000
    assert {c.age_group for c in cards.values()} == {"adult", "young", "elderly", "child"}
    # the cast stage reads the same cards and sees the same voices
    assert load_library() == {k: c.voice for k, c in cards.items()}


def test_the_narrator_reference_clip_is_the_narrator_saying_its_transcript():
    from stages.engines import get_engine

    card = load_cards()["joe"]
    stored, rate = wav.read_wav(card.folder / card.references[0].path)
    fresh = get_engine("piper").synthesize(card.references[0].transcript, card.voice)
    assert rate == 22050 and abs(fresh.size - stored.size) <= 1
    n = min(fresh.size, stored.size)
    assert np.corrcoef(fresh[:n], stored[:n])[0, 1] > 0.99


def test_a_card_survives_writing_and_reading(tmp_path):
    card = make_voice(tmp_path, "estate-voice", titles=("emma",), series=("Highbury",), valid_from="2026-01-01",
                      valid_to="2027-12-31", territories=("GB", "IE"), uses=("audiobook", "promotion"))
    text = card.path.read_text()
    assert 'valid_to = "2027-12-31"' in text and "[[reference]]" in text and "protected = true" in text
    assert card.licence.titles == ("emma",) and card.licence.territories == ("GB", "IE") and card.protected
    assert card.age_group == "elderly" and card.references[0].seconds == load_cards()["joe"].references[0].seconds
    assert load_cards(tmp_path)["estate-voice"] == card  # a workspace card joins the bundled ones
    assert read_card(write_card(card)) == card


def broken(tmp_path: Path, find: str, put: str) -> Path:
    card = make_voice(tmp_path, "estate-voice")
    text = card.path.read_text()
    assert find in text
    card.path.write_text(text.replace(find, put, 1))
    return card.path


@pytest.mark.parametrize("find, put, message", [
    ('valid_to = ""', 'valid_to = "2026-13-01"', "valid_to = '2026-13-01' is not a date; write it as YYYY-MM-DD"),
    ('valid_from = ""\nvalid_to = ""', 'valid_from = "2027-01-01"\nvalid_to = "2026-01-01"',
     "valid_from 2027-01-01 is after valid_to 2026-01-01"),
    ('uses = ["audiobook"]', 'uses = ["audiobook", "podcast"]', "unknown use 'podcast'; choose from audiobook"),
    ('valid_to = ""', 'valid_until = "2027-01-01"', "[licence] has unknown key(s) valid_until"),
    ('licensee = "Example Audio Ltd"\n', "", "[licence] lacks licensee"),
    ('consent_sha256 = ', '# consent_sha256 = ',
     "[licence] needs both consent (the document's file name) and consent_sha256"),
    ('path = "reference.wav"', 'path = "../joe/reference.wav"', "must name a file inside the voice folder"),
    ('age_group = "elderly"', 'age_group = "teen"', "age_group 'teen' is not one of child, young, adult, elderly"),
    ('id = "estate-voice"', 'id = "someone-else"', "has id 'someone-else'; it must match its folder name"),
    ('protected = true', 'protectd = true', "unknown key(s) protectd"),
    ('sha256 = "', 'sha256 = "abc', "sha256 must be a 64-character lowercase sha256 hex digest"),
    ('name = "Estate-Voice"', 'name = "Estate', "is not valid TOML"),
], ids=["bad-date", "dates-reversed", "unknown-use", "unknown-licence-key", "no-licensee", "consent-without-hash",
        "reference-outside", "age-group", "id-mismatch", "typo-key", "bad-sha", "bad-toml"])
def test_a_malformed_card_is_one_line_naming_the_file_and_the_fix(tmp_path, find, put, message):
    path = broken(tmp_path, find, put)
    with pytest.raises(UserError) as err:
        load_cards(tmp_path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_file_problems_name_a_changed_reference_and_a_missing_consent_document(tmp_path):
    card = make_voice(tmp_path, "estate-voice")
    clip = card.folder / "reference.wav"
    audio, rate = wav.read_wav(clip)
    wav.write_wav(clip, audio * 0.5, rate)  # same length, same voice, quieter: still not the clip on record
    (card.folder / "consent.md").unlink()
    problems = file_problems(card)
    assert len(problems) == 2
    assert problems[0].startswith(f"{clip}: reference clip of voice 'estate-voice' has changed (sha256 ")
    assert problems[1].startswith(f"{card.folder / 'consent.md'}: consent document of voice 'estate-voice' is missing")


def test_the_audit_log_is_only_ever_appended_to(tmp_path):
    first = audit(tmp_path, "voice-added", voice="estate-voice", licence="estate-2026-001")
    before = first.read_bytes()
    audit(tmp_path, "render-refused", voice="estate-voice", reason="the licence expired on 2025-01-01")
    assert first == audit_path(tmp_path) == tmp_path / "voices" / "audit.jsonl"
    assert first.read_bytes().startswith(before) and first.read_bytes().count(b"\n") == 2
    events = read_audit(tmp_path)
    assert [e["event"] for e in events] == ["voice-added", "render-refused"]
    assert events[0]["time"].endswith("Z") and events[1]["reason"] == "the licence expired on 2025-01-01"
    with pytest.raises(UserError, match="reserved"):
        audit(tmp_path, "voice-added", time="yesterday")
    assert read_audit(tmp_path / "elsewhere") == []


def voices(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["voices", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_voices_list_and_show(tmp_path, capsys):
    make_voice(tmp_path / "voices", "estate-voice", valid_to="2030-06-30")
    code, out, _ = voices(capsys, "list", "--root", str(tmp_path), "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and sorted(rows) == sorted([*BUNDLED, "estate-voice"])
    assert rows["joe-alto"] == {"id": "joe-alto", "name": "Alto", "gender": "female", "languages": ["en-US"],
                                "engine": "piper", "licence": "joe-cc0", "valid_to": "", "protected": False}
    assert rows["estate-voice"]["licence"] == "estate-2026-001" and rows["estate-voice"]["valid_to"] == "2030-06-30"
    assert rows["estate-voice"]["protected"] is True
    code, out, _ = voices(capsys, "list", "--root", str(tmp_path))
    line = next(line for line in out.splitlines() if "estate-voice" in line)
    assert code == 0 and "estate-2026-001" in line and "2030-06-30" in line and "yes" in line

    code, out, _ = voices(capsys, "show", "joe", "--root", str(tmp_path), "--json")
    data = json.loads(out)
    assert code == 0 and data["licence"]["id"] == "joe-cc0" and data["problems"] == []
    assert data["reference"][0]["transcript"].startswith("It is a truth universally acknowledged")
    code, out, _ = voices(capsys, "show", "estate-voice", "--root", str(tmp_path))
    assert code == 0 and "  licensee: Example Audio Ltd" in out and "  valid_to: 2030-06-30" in out
    code, _, err = voices(capsys, "show", "nobody", "--root", str(tmp_path))
    assert code == 2 and err.startswith("error: no voice 'nobody' in the library") and err.count("\n") == 1


def test_voices_verify_catches_a_tampered_reference_clip(tmp_path, capsys):
    card = make_voice(tmp_path / "voices", "estate-voice")
    code, out, _ = voices(capsys, "verify", "--root", str(tmp_path))
    assert code == 0 and out.startswith(f"{len(BUNDLED) + 1} voice(s) verified")
    assert read_audit(tmp_path) == []
    clip = card.folder / "reference.wav"
    data = bytearray(clip.read_bytes())
    data[-2000:] = bytes(2000)  # the last 45 ms silenced: a doctored clip
    clip.write_bytes(bytes(data))
    code, out, err = voices(capsys, "verify", "--root", str(tmp_path))
    assert code == 1
    assert out.splitlines() == [f"{clip}: reference clip of voice 'estate-voice' has changed (sha256 "
                                f"{sha256_file(clip)[:12]}, the card records {card.references[0].sha256[:12]}); "
                                f"restore the original clip, or add the voice again with `audiobook voices add`"]
    assert err == f"error: 1 problem(s) in 1 of {len(BUNDLED) + 1} voice(s)\n"
    (event,) = read_audit(tmp_path)
    assert event["event"] == "voice-verified-failed" and event["voice"] == "estate-voice"
    assert event["problems"] == out.splitlines()
    code, out, _ = voices(capsys, "verify", "joe", "--root", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "voices": {"joe": []}}


def test_voices_verify_reports_an_expired_licence_and_a_missing_one(tmp_path, capsys):
    make_voice(tmp_path / "voices", "old-voice", valid_to="2020-12-31")
    unlicensed = make_voice(tmp_path / "voices", "bare-voice")
    data = tomllib.loads(unlicensed.path.read_text())
    del data["licence"]
    write_card(VoiceCard.from_dict(data, unlicensed.folder))
    code, out, _ = voices(capsys, "verify", "--root", str(tmp_path), "--json")
    found = json.loads(out)["voices"]
    assert code == 1 and found["joe"] == []
    assert found["old-voice"] == [f"{tmp_path / 'voices' / 'old-voice' / 'voice.toml'}: voice 'old-voice': the licence "
                                  f"expired on 2020-12-31 (today is {date.today()}); renew it and "
                                  f"update [licence] valid_from/valid_to"]
    assert found["bare-voice"][-1].endswith("voice 'bare-voice' has no licence; add a [licence] table")


def test_voices_add_puts_a_licensed_voice_in_the_workspace_library(tmp_path, capsys):
    terms = tmp_path / "terms"
    terms.mkdir()
    (terms / "consent.pdf").write_bytes(b"%PDF-1.4 signed consent of the reader\n")
    (terms / "licence.toml").write_text(
        f'[licence]\nid = "reader-2026-7"\nlicensor = "A. Reader"\nlicensee = "Example Audio Ltd"\n'
        f'titles = ["pride-and-prejudice"]\nvalid_to = "2030-01-01"\nconsent = "consent.pdf"\n'
        f'consent_sha256 = "{sha256_file(terms / "consent.pdf")}"\n'
        f'disclosure = "Narrated by a synthetic copy of A. Reader\'s voice, with permission."\n')
    code, out, err = voices(capsys, "add", "Anne Reader", "--reference", str(JOE_REFERENCE), "--transcript",
                            load_cards()["joe"].references[0].transcript, "--licence", str(terms / "licence.toml"),
                            "--no-match", "--gender", "female", "--root", str(tmp_path), "--json")
    assert code == 0, err
    data = json.loads(out)
    folder = tmp_path / "voices" / "anne-reader"
    assert data["id"] == "anne-reader" and data["folder"] == str(folder) and data["gender"] == "female"
    assert data["licence"]["id"] == "reader-2026-7" and (folder / "consent.pdf").is_file()
    assert read_card(folder / "voice.toml").licence.titles == ("pride-and-prejudice",)
    assert [e["event"] for e in read_audit(tmp_path)] == ["voice-added"]
    code, out, _ = voices(capsys, "verify", "anne-reader", "--root", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "voices": {"anne-reader": []}}
    code, _, err = voices(capsys, "add", "Anne Reader", "--reference", str(JOE_REFERENCE), "--transcript", "Hello.",
                          "--root", str(tmp_path))
    assert code == 2 and "already exists" in err and err.count("\n") == 1
