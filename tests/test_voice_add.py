"""`add_voice` end to end on real audio: a good clip becomes a loadable voice; every bad one changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from stages.engines import get_engine
from stages.errors import UserError
from stages.ffmpeg import run_ffmpeg
from stages.voices.add import FINGERPRINT_FILE, LICENCE_FILE, REFERENCE_FILE, add_voice
from stages.voices.audit import read_audit
from stages.voices.card import load_cards
from stages.voices.embed import cosine, embed, load_embedding
from stages.wav import read_wav, wav_info, write_wav

ALTO_TEXT = ("It was late in the afternoon when the carriage finally reached the gates, and the whole household "
             "came out to meet it.")
DEEP_TEXTS = ("The rain had not stopped since morning, and the lamps along the harbour were lit before four.",
              "He folded the letter into quarters, slipped it inside his coat, and said nothing to his brother.")
ESTATE = "The Estate of A. Narrator"


def speak(voice_id: str, text: str) -> tuple[np.ndarray, int]:
    engine = get_engine("piper")
    return engine.synthesize(text, load_cards()[voice_id].voice), engine.sample_rate


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Reference clips (bundled voices' speech) and bad clips made from them."""
    folder = tmp_path_factory.mktemp("clips")
    alto, rate = speak("joe-alto", ALTO_TEXT)
    joe, _ = speak("joe", DEEP_TEXTS[0])
    soprano, _ = speak("joe-soprano", DEEP_TEXTS[1])
    paths = {"alto": write_wav(folder / "alto.wav", alto, rate),
             "short": write_wav(folder / "short.wav", alto[: 2 * rate], rate),
             "clipped": write_wav(folder / "clipped.wav", np.clip(alto * 8, -1, 1), rate),
             "silent": write_wav(folder / "silent.wav", np.zeros(6 * rate, dtype=np.float32), rate),
             "two": write_wav(folder / "two.wav", np.concatenate([joe, soprano]), rate)}
    for k, text in enumerate(DEEP_TEXTS):
        paths[f"deep{k}"] = write_wav(folder / f"deep{k}.wav", speak("joe-deep", text)[0], rate)
    paths["8k"] = folder / "phone.wav"
    run_ffmpeg(["-i", str(paths["alto"]), "-ar", "8000", str(paths["8k"])], "resample to 8 kHz")
    paths["text"] = folder / "notes.wav"
    paths["text"].write_text("not a recording\n", encoding="utf-8")
    return paths


def licence_file(folder: Path, licensor: str, *, consent: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['[licence]', 'id = "estate-2026-001"', f'licensor = "{licensor}"', 'licensee = "Test Audio Ltd"',
             'uses = ["audiobook"]']
    if consent:
        doc = folder / "consent.txt"
        doc.write_text("The estate consents to this voice being used for audiobooks.\n", encoding="utf-8")
        lines += ['consent = "consent.txt"', f'consent_sha256 = "{hashlib.sha256(doc.read_bytes()).hexdigest()}"']
    path = folder / "licence.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def library_files(library: Path) -> list[str]:
    return sorted(str(p.relative_to(library)) for p in library.rglob("*")) if library.exists() else []


def test_good_clip_becomes_a_voice(tmp_path, clips):
    library = tmp_path / "voices"
    card = add_voice("Anne Reader", clips["alto"], ALTO_TEXT, library_dir=library)
    assert card.id == "anne-reader" and card.folder == library / "anne-reader"
    loaded = load_cards(library)["anne-reader"]
    assert loaded.voice == card.voice and loaded.references == card.references
    assert loaded.voice.name == "Anne Reader" and loaded.fingerprint == FINGERPRINT_FILE
    ref = loaded.references[0]
    assert ref.path == REFERENCE_FILE and ref.transcript == ALTO_TEXT
    assert hashlib.sha256((card.folder / REFERENCE_FILE).read_bytes()).hexdigest() == ref.sha256
    info = wav_info(card.folder / REFERENCE_FILE)
    assert info.bits == 16 and info.sample_rate == 22050 and info.frames / 22050 == pytest.approx(ref.seconds, abs=1e-3)
    stored = load_embedding(card.folder / FINGERPRINT_FILE)
    assert cosine(stored, embed(*read_wav(card.folder / REFERENCE_FILE))) > 0.999
    params = loaded.voice.params  # matched toward joe-alto (185 Hz, formants x1.17)
    assert params["pitch_median_hz"] == pytest.approx(185.0, abs=15.0) and params["formant_shift_ratio"] > 1.1
    events = read_audit(tmp_path)
    assert [e["event"] for e in events] == ["voice-added"] and events[0]["voice"] == "anne-reader"
    assert library_files(library) == ["anne-reader", "anne-reader/fingerprint.npy", "anne-reader/reference.wav",
                                      "anne-reader/voice.toml", "audit.jsonl"]
    with pytest.raises(UserError, match="already exists"):
        add_voice("anne reader", clips["alto"], ALTO_TEXT, library_dir=library, match=False)
    again = add_voice("anne reader", clips["alto"], ALTO_TEXT, library_dir=library, match=False, force=True)
    assert again.voice.params == load_cards()["joe"].voice.params  # the plain bundled voice
    assert load_cards(library)["anne-reader"].voice.params == again.voice.params
    assert [e["event"] for e in read_audit(tmp_path)] == ["voice-added", "voice-added"]


@pytest.mark.parametrize("clip, reason", [
    ("short", "s of speech"), ("8k", "8000 Hz"), ("clipped", "clipped"), ("silent", "silent"),
    ("text", "not an audio file"), ("two", "two speakers?"),
])
def test_bad_clip_is_refused_and_nothing_written(tmp_path, clips, clip, reason):
    library = tmp_path / "voices"
    library.mkdir()
    with pytest.raises(UserError, match=reason.replace("?", r"\?")) as caught:
        add_voice("Bad Clip", clips[clip], "Some words.", library_dir=library, match=False)
    assert str(clips[clip]) in str(caught.value)
    assert library_files(library) == []


def test_malformed_licence_is_refused(tmp_path, clips):
    library = tmp_path / "voices"
    broken = tmp_path / "licence.toml"
    broken.write_text('[licence]\nid = "x"\nlicensor = \n', encoding="utf-8")
    with pytest.raises(UserError, match="not valid TOML"):
        add_voice("Anne", clips["alto"], ALTO_TEXT, library_dir=library, licence=broken)
    missing_key = licence_file(tmp_path / "lic", ESTATE, consent=False)
    missing_key.write_text(missing_key.read_text().replace('licensee = "Test Audio Ltd"\n', ""), encoding="utf-8")
    with pytest.raises(UserError, match="lacks licensee"):
        add_voice("Anne", clips["alto"], ALTO_TEXT, library_dir=library, licence=missing_key)
    assert library_files(library) == []


def test_protected_voice_needs_its_licence(tmp_path, clips):
    library = tmp_path / "voices"
    estate = add_voice("Estate Voice", clips["deep0"], DEEP_TEXTS[0], library_dir=library, match=False,
                       protected=True, licence=licence_file(tmp_path / "estate", ESTATE))
    assert estate.protected and estate.licence.licensor == ESTATE
    assert {"licence.toml", "consent.txt"} <= {p.name for p in estate.folder.iterdir()}
    before = library_files(library)
    # the same voice saying other words is refused without a licence, and with someone else's
    with pytest.raises(UserError, match="protected voice 'estate-voice'"):
        add_voice("Sound Alike", clips["deep1"], DEEP_TEXTS[1], library_dir=library, match=False)
    with pytest.raises(UserError, match=ESTATE):
        add_voice("Sound Alike", clips["deep1"], DEEP_TEXTS[1], library_dir=library, match=False,
                  licence=licence_file(tmp_path / "other", "Somebody Else"))
    assert [p for p in library_files(library) if p != "audit.jsonl"] == [p for p in before if p != "audit.jsonl"]
    refused = [e for e in read_audit(tmp_path) if e["event"] == "voice-add-refused"]
    assert len(refused) == 2 and refused[0]["protected_voice"] == "estate-voice" and refused[0]["cosine"] >= 0.82
    # with the estate's licence it is added, and the audit line says which protected voice it matched
    card = add_voice("Sound Alike", clips["deep1"], DEEP_TEXTS[1], library_dir=library, match=False,
                     licence=licence_file(tmp_path / "estate2", ESTATE))
    assert (card.folder / LICENCE_FILE).is_file() and card.licence.id == "estate-2026-001"
    added = read_audit(tmp_path)[-1]
    assert added["event"] == "voice-added" and added["licensed_protected"][0]["voice"] == "estate-voice"
    # a clearly different voice passes the guard with no licence
    assert add_voice("Alto Two", clips["alto"], ALTO_TEXT, library_dir=library, match=False).licence is None


def test_failure_while_writing_leaves_no_folder(tmp_path, clips, monkeypatch):
    import stages.voices.add as add

    def broken(card):
        raise UserError(f"{card.path}: disk full")

    library = tmp_path / "voices"
    monkeypatch.setattr(add, "write_card", broken)
    with pytest.raises(UserError, match="disk full"):
        add_voice("Anne", clips["alto"], ALTO_TEXT, library_dir=library, match=False)
    assert library_files(library) == [] and read_audit(tmp_path) == []
