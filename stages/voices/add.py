"""`voices add`: a checked reference clip becomes a voice folder in the library, or nothing changes.

The clip is checked (stages/voices/clip.py), must hold one speaker, and must not match an estate's
protected voice unless a licence from that voice's licensor comes with it. The folder (reference.wav,
voice.toml, fingerprint.npy, the licence and its consent document) is built in a hidden staging folder
beside the library and renamed into place, so a failure at any step leaves the library as it was.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from stages import files
from stages.errors import UserError
from stages.model import Voice
from stages.voices.audit import audit
from stages.voices.card import (CARD_FILE, Licence, Reference, VoiceCard, load_cards, read_licence_file,
                                sha256_file, write_card)
from stages.voices.clip import ClipReport, check_clip
from stages.voices.embed import cosine, embed, embedding_bytes, halves_agree, voice_embedding
from stages.wav import write_wav

BASE_VOICE = "joe"  # the bundled voice a new voice is matched from
REFERENCE_FILE = "reference.wav"
FINGERPRINT_FILE = "fingerprint.npy"
LICENCE_FILE = "licence.toml"
# A clip whose embedding has at least this cosine to a protected voice's fingerprint is taken to be that
# voice. Calibrated by bench/voice_similarity.py on 15 voices (the bundled five and ten Praat reshapings
# of joe), a fingerprint from one passage against 4 other passages per voice: same voice median 0.92, min
# 0.86 (0.835-0.841 on 3 s probes), different voices median 0.71, max 0.935. At 0.82: false rejects (the
# voice slips past) 0/60, also on 3 s probes; false accepts (another voice refused) 174-182/840 (116-123/840
# on 3 s probes; counts move a little between runs), all between reshapings of the one Piper model (joe and
# joe at 105 Hz score 0.93), and 6 small reshapings of a protected voice are all still caught. Not yet
# checked on recordings of people, whose same-speaker scores run lower than a deterministic engine's.
PROTECTED_MATCH_COSINE = 0.82
# The one-speaker check: the cosine of the clip's halves must reach this bound, which grows with the
# halves' length because short halves agree less. Bench, one voice's halves at their lowest: 0.64 at
# 1.5 s, 0.70 at 2.5 s, 0.79 at 4 s (0.87 at 5 s); joe + joe-soprano back to back 0.48-0.54; two
# reshapings of joe a few semitones apart pass (up to 0.90). (half length in s, bound), interpolated.
ONE_SPEAKER_BOUNDS = ((1.5, 0.55), (2.5, 0.65), (4.0, 0.75), (5.0, 0.80))
_VOICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def one_speaker_bound(half_seconds: float) -> float:
    """Return the least cosine two halves of `half_seconds` each must reach to count as one speaker."""
    lengths, bounds = zip(*ONE_SPEAKER_BOUNDS)
    return float(np.interp(half_seconds, lengths, bounds))


def voice_id_for(name: str) -> str:
    """Return the voice id (folder name) for a voice called `name`: lowercase words joined by hyphens."""
    vid = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not _VOICE_ID.match(vid):
        raise UserError(f"voice name {name!r} gives no usable id; use letters, digits and spaces (e.g. 'Anne Reader')")
    return vid


def _licence(path: Path) -> tuple[Licence, Path | None]:
    """Return the licence in `path` and the consent document beside it (None when it names none)."""
    licence = read_licence_file(path)
    if not licence.consent:
        return licence, None
    if licence.consent in (CARD_FILE, REFERENCE_FILE, FINGERPRINT_FILE, LICENCE_FILE):
        raise UserError(f"licence {path}: the consent document may not be called {licence.consent!r}, a name the "
                        f"voice folder uses itself; rename the document and its consent entry")
    consent = Path(path).parent / licence.consent
    if not consent.is_file():
        raise UserError(f"licence {path} names consent document {licence.consent!r}, which is not beside it at "
                        f"{consent}; put the signed document there")
    if sha256_file(consent) != licence.consent_sha256:
        raise UserError(f"consent document {consent} differs from the consent_sha256 in {path}; record the "
                        f"reviewed document's sha256 (sha256sum) in the licence")
    return licence, consent


def _licensed_for(licence: Licence | None, card: VoiceCard) -> bool:
    """Return True if `licence` comes from the licensor of the protected voice `card`."""
    return (licence is not None and card.licence is not None
            and licence.licensor.casefold().strip() == card.licence.licensor.casefold().strip())


def guard_protected(fingerprint: np.ndarray, cards: dict[str, VoiceCard], licence: Licence | None,
                    *, where: Path, audit_root: Path, voice_id: str) -> list[dict]:
    """Return the protected voices the clip matches under licence; raise UserError when one matches without."""
    found = []
    for card in cards.values():
        if not (card.protected and card.fingerprint):
            continue
        score = cosine(fingerprint, voice_embedding(card))
        if score < PROTECTED_MATCH_COSINE:
            continue
        if not _licensed_for(licence, card):
            audit(audit_root, "voice-add-refused", voice=voice_id, reference=str(where), protected_voice=card.id,
                  cosine=round(score, 4), licence=licence.id if licence else "")
            owner = card.licence.licensor if card.licence else "its rights holder"
            raise UserError(f"{where} sounds like the protected voice {card.id!r} (cosine {score:.3f} >= "
                            f"{PROTECTED_MATCH_COSINE}); it can be added only with a licence from {owner} "
                            f"(--licence FILE)")
        found.append({"voice": card.id, "cosine": round(score, 4)})
    return found


def _params(clip: ClipReport, transcript: str, base: Voice, match: bool) -> dict:
    if not match:
        return dict(base.params)
    from stages.voices.match import match_voice

    return match_voice(clip.audio, clip.sample_rate, transcript, base).params


def _card(voice_id: str, name: str, folder: Path, clip: ClipReport, transcript: str, params: dict, *,
          licence: Licence | None, protected: bool, language: str, gender: str, matched: bool) -> VoiceCard:
    shaping = (f"the bundled voice {BASE_VOICE} shaped toward it (voice matching: pitch "
               f"{params.get('pitch_median_hz', 0):.0f} Hz, formants x{params.get('formant_shift_ratio', 1):.2f})"
               if matched else f"spoken by the bundled voice {BASE_VOICE} unchanged")
    voice = Voice(id=voice_id, name=name.strip(), engine="piper", language=language, gender=gender,
                  role="character", description=f"Added from the reference clip {clip.path.name}; {shaping}.",
                  params=params)
    reference = Reference(REFERENCE_FILE, " ".join(transcript.split()), sha256_file(folder / REFERENCE_FILE),
                          round(clip.seconds, 3))
    return VoiceCard(voice=voice, folder=folder, languages=(language,), references=(reference,),
                     licence=licence, protected=protected, fingerprint=FINGERPRINT_FILE)


def _install(staged: Path, target: Path, force: bool) -> None:
    """Rename the staged folder onto `target`; with `force`, the old folder is moved aside first, then removed."""
    old = staged.parent / ".replaced"
    if target.exists():
        if not force:
            raise UserError(f"voice folder {target} already exists; choose another name or pass --force to replace it")
        target.rename(old)
    try:
        staged.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)
        raise


def add_voice(name: str, reference: Path, transcript: str, *, library_dir: Path, licence: Path | None = None,
              match: bool = True, protected: bool = False, force: bool = False, language: str = "en-US",
              gender: str = "") -> VoiceCard:
    """Return the card of the voice added to `library_dir` (<workspace>/voices) from a reference clip."""
    voice_id, library_dir = voice_id_for(name), Path(library_dir)
    if not transcript.strip():
        raise UserError(f"the transcript of {reference} is empty; give the words spoken in the clip (--transcript)")
    cards = load_cards(library_dir) if library_dir.is_dir() else load_cards()
    target = library_dir / voice_id
    if voice_id in cards and not force:
        raise UserError(f"a voice {voice_id!r} already exists ({cards[voice_id].folder}); choose another name or "
                        f"pass --force to replace it")
    terms, consent = _licence(Path(licence)) if licence is not None else (None, None)
    clip = check_clip(Path(reference))
    halves, bound = halves_agree(clip.audio, clip.sample_rate), one_speaker_bound(clip.seconds / 2)
    if halves < bound:
        raise UserError(f"{reference}: two speakers? its halves sound like different voices (cosine {halves:.2f} < "
                        f"{bound:.2f}); give a clip of one person speaking")
    fingerprint = embed(clip.audio, clip.sample_rate)
    licensed = guard_protected(fingerprint, cards, terms, where=Path(reference), audit_root=library_dir.parent,
                               voice_id=voice_id)
    params = _params(clip, transcript, cards[BASE_VOICE].voice, match)
    library_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".adding-{voice_id}-", dir=library_dir))
    try:
        folder = staging / voice_id
        folder.mkdir()
        write_wav(folder / REFERENCE_FILE, clip.audio, clip.sample_rate)
        files.write_bytes(folder / FINGERPRINT_FILE, embedding_bytes(fingerprint))
        if licence is not None:
            files.write_bytes(folder / LICENCE_FILE, Path(licence).read_bytes())
        if consent is not None:
            files.write_bytes(folder / terms.consent, consent.read_bytes())
        card = _card(voice_id, name, folder, clip, transcript, params, licence=terms, protected=protected,
                     language=language, gender=gender, matched=match)
        write_card(card)
        _install(folder, target, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    audit(library_dir.parent, "voice-added", voice=voice_id, folder=str(target), reference=str(reference),
          reference_sha256=card.references[0].sha256, seconds=card.references[0].seconds,
          snr_db=round(clip.snr_db, 1), halves_cosine=round(halves, 4), matched=match, protected=protected,
          licence=terms.id if terms else "", licensed_protected=licensed, replaced=force and voice_id in cards)
    return replace(card, folder=target)
