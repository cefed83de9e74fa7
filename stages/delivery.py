"""Delivery: a segment's emotion tag turned into engine controls, so an emotional line is spoken differently.

Attribution tags each segment with an emotion from a fixed set and an intensity (0..1). This module
maps each emotion to a fixed, small set of relative controls that any engine can honour in its own way:

- `length_ratio` multiplies the voice's speaking length (Piper: its effective `length_scale`); > 1 is slower.
- `pitch_ratio` multiplies the voice's pitch median; `pitch_range_ratio` widens (> 1) or narrows its range.
- `gain_db` is a level change applied to the finished take (whisper softer, shout louder).
- `instruct` is a style instruction for engines that take one (CosyVoice-style); others ignore it.

The magnitudes are those of a narrator colouring a line, not an actor playing it: at intensity 1
speed moves at most 12%, pitch at most 8%, level between -6 and +3 dB. The effect scales with
intensity times `strength` (ratios geometrically, decibels linearly), so intensity 0 is neutral.
A neutral line gets the voice back unchanged, so its cache key, and every take already cached, stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stages.errors import UserError
from stages.model import Segment, Voice

MAX_STRENGTH = 2.0  # [delivery] strength above this would act lines out rather than colour them
RATIO_DECIMALS = 4  # controls are rounded so cache keys do not depend on float noise
GAIN_DECIMALS = 2
CONFIG_TABLE = "delivery"  # the table in audiobook.toml: [delivery] strength = 1.0, narration = false


@dataclass(frozen=True)
class Delivery:
    """The controls for one emotion at intensity 1."""

    length_ratio: float = 1.0  # multiplies the speaking length: > 1 slower
    pitch_ratio: float = 1.0  # multiplies the pitch median
    pitch_range_ratio: float = 1.0  # multiplies the pitch range: > 1 livelier, < 1 flatter
    gain_db: float = 0.0  # level change of the take
    instruct: str = ""  # a style instruction, for engines that take one


# One row per stages.attribute.emotion.EMOTIONS entry; the README shows the same table. Pitch rises are
# kept under 8% because a quicker take also comes out about 1% higher, and a wider range another 1-2%.
DELIVERIES: dict[str, Delivery] = {
    "neutral": Delivery(),
    "happy": Delivery(0.96, 1.05, 1.10, 1.0, "Speak warmly and cheerfully."),
    "sad": Delivery(1.12, 0.95, 0.75, -2.0, "Speak sadly, slowly and softly."),
    "angry": Delivery(0.93, 1.03, 1.15, 2.5, "Speak angrily, in a clipped, firm voice."),
    "fearful": Delivery(0.94, 1.05, 1.10, -1.5, "Speak fearfully, tense and hushed."),
    "surprised": Delivery(0.97, 1.06, 1.25, 1.0, "Speak with surprise."),
    "disgusted": Delivery(1.06, 0.96, 0.90, 0.0, "Speak with disgust."),
    "tender": Delivery(1.10, 0.98, 0.85, -2.5, "Speak tenderly and gently."),
    "excited": Delivery(0.90, 1.07, 1.25, 2.0, "Speak excitedly."),
    "whisper": Delivery(1.05, 0.97, 0.70, -6.0, "Speak in a whisper."),
    "shout": Delivery(0.95, 1.07, 1.20, 3.0, "Speak loudly, as if calling out."),
}
RATIO_KEYS = ("length_ratio", "pitch_ratio", "pitch_range_ratio")  # voice.params keys the controls land in


@dataclass(frozen=True)
class DeliveryConfig:
    """How much delivery a production uses: the [delivery] table of audiobook.toml."""

    strength: float = 1.0  # 0 turns delivery off; 1 uses the table as it is
    # Narration stays neutral by default: the tagger reads narration's words too ("tears", "dread"), and a
    # narrator whose pitch and pace shift sentence by sentence sounds unsteady; listeners expect the
    # narrator even and the characters coloured. It also keeps the bulk of a book's cached takes valid.
    narration: bool = False

    @classmethod
    def from_project(cls, config: dict) -> DeliveryConfig:
        """Return the settings in a project config's [delivery] table (defaults when it has none)."""
        table = config.get(CONFIG_TABLE) or {}
        where = f"audiobook.toml [{CONFIG_TABLE}]"
        if not isinstance(table, dict) or set(table) - {"strength", "narration"}:
            raise UserError(f"{where} may only set strength (0..{MAX_STRENGTH}) and narration (true/false)")
        strength = table.get("strength", cls.strength)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= MAX_STRENGTH:
            raise UserError(f"{where} strength = {strength!r} must be a number from 0 (off) to {MAX_STRENGTH}")
        narration = table.get("narration", cls.narration)
        if not isinstance(narration, bool):
            raise UserError(f"{where} narration = {narration!r} must be true or false")
        return cls(float(strength), narration)

    def applies_to(self, kind: str) -> bool:
        """Return True if a segment of `kind` gets delivery under these settings."""
        return self.strength > 0 and (kind == "dialogue" or (self.narration and kind == "narration"))


def delivery_for(emotion: str, *, segment: str = "") -> Delivery:
    """Return the table row for `emotion`; an unknown emotion is a UserError listing the choices."""
    if emotion not in DELIVERIES:
        where = f"segment {segment}" if segment else "a segment"
        raise UserError(
            f"{where} has unknown emotion {emotion!r}; choose one of: {', '.join(DELIVERIES)} "
            f"(fix it in manuscript.json or re-run attribute)"
        )
    return DELIVERIES[emotion]


def deliver(voice: Voice, emotion: str, intensity: float, *, strength: float = 1.0, segment: str = "") -> Voice:
    """Return `voice` with `emotion`'s controls, scaled by intensity x strength, in its params.

    Ratios compose with any the voice already has; a neutral line, intensity 0 or strength 0
    returns `voice` itself, so its cache key does not change. `segment` names the line in errors.
    """
    row = delivery_for(emotion, segment=segment)
    if not isinstance(intensity, (int, float)) or not 0.0 <= intensity <= 1.0:  # NaN fails both bounds
        raise UserError(
            f"segment {segment or '?'} has intensity {intensity!r} outside 0..1; fix it in manuscript.json"
        )
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise UserError(f"delivery strength {strength!r} must be from 0 (off) to {MAX_STRENGTH}")
    amount = intensity * strength
    scaled = {k: round(getattr(row, k) ** amount, RATIO_DECIMALS) for k in RATIO_KEYS}
    gain = round(row.gain_db * amount, GAIN_DECIMALS)
    if all(v == 1.0 for v in scaled.values()) and gain == 0.0:
        return voice
    params = dict(voice.params)
    for k, v in scaled.items():
        params[k] = round(float(params.get(k, 1.0)) * v, RATIO_DECIMALS)
    params["gain_db"] = round(float(params.get("gain_db", 0.0)) + gain, GAIN_DECIMALS)
    if row.instruct:
        params["instruct"] = row.instruct
    return replace(voice, params=params)


def segment_voice(voice: Voice, seg: Segment, config: DeliveryConfig | None) -> Voice:
    """Return the voice `seg` is spoken in: its cast `voice`, coloured by its emotion when `config` applies."""
    if config is None or not config.applies_to(seg.kind):
        return voice
    return deliver(voice, seg.emotion, seg.intensity, strength=config.strength, segment=seg.id)
