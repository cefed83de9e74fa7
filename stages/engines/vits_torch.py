"""Piper (VITS) inference in torch, with the weights read straight from the voice's ONNX file.

onnxruntime runs one sentence at a time; this runs many sentences of different lengths as one batch
on CPU or CUDA. Every layer keeps padded frames at zero, so a sentence's audio in a batch is the
audio it gets alone. The architecture (relative-position text encoder, stochastic duration predictor
run in reverse, ceil(exp(logw) * length_scale) frames per phoneme, residual coupling flow in reverse,
HiFi-GAN generator) and each convolution's dilation and padding are read from the ONNX graph, whose
initializers already have weight norm folded in. Only this engine imports torch.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stages.errors import UserError

LAYER_NORM_EPS = 1e-5
ATTENTION_MASK_FILL = -1e4  # logit given to padded keys
GENERATOR_LRELU_SLOPE = 0.1
GENERATOR_FINAL_LRELU_SLOPE = 0.01  # the slope before conv_post
SPLINE_TAIL_BOUND = 5.0  # the duration flows' spline acts on [-5, 5]; identity outside
SPLINE_MIN_BIN_WIDTH = 1e-3
SPLINE_MIN_BIN_HEIGHT = 1e-3
SPLINE_MIN_DERIVATIVE = 1e-3
SPLINE_SEARCH_EPS = 1e-6
# what a single-speaker Piper voice with the "2" (two-conv) HiFi-GAN residual blocks must have
REQUIRED_WEIGHTS = (
    "enc_p.emb.weight", "enc_p.encoder.attn_layers.0.emb_rel_k", "dp.flows.0.m", "dp.flows.0.exp_neg_logs",
    "flow.flows.0.enc.in_layers.0.weight", "dec.conv_pre.weight", "dec.ups.0.weight", "dec.resblocks.0.convs.0.weight",
)


@dataclass(frozen=True)
class ConvSpec:
    """How one Conv or ConvTranspose node of the graph is applied."""

    stride: int
    padding: int
    dilation: int
    groups: int
    transposed: bool


class VitsModel:
    """The weights (by VITS parameter name), each conv's spec, and sizes read from their shapes."""

    def __init__(self, weights: dict[str, torch.Tensor], convs: dict[str, ConvSpec], source: Path):
        self.weights = weights
        self.convs = convs
        self.source = source
        self.hidden = weights["enc_p.emb.weight"].shape[1]
        self.n_vocab = weights["enc_p.emb.weight"].shape[0]
        rel_k = weights["enc_p.encoder.attn_layers.0.emb_rel_k"]
        self.n_heads = self.hidden // rel_k.shape[2]
        self.window = (rel_k.shape[1] - 1) // 2
        self.n_enc_layers = _count(weights, "enc_p.encoder.attn_layers.{}.conv_q.weight")
        self.dp_flows = sorted((_indices(weights, "dp.flows.", ".pre.weight")), reverse=True)
        self.flows = sorted(_indices(weights, "flow.flows.", ".pre.weight"), reverse=True)
        self.n_wn_layers = _count(weights, f"flow.flows.{self.flows[0]}.enc.in_layers.{{}}.weight")
        self.n_dds_layers = _count(weights, "dp.convs.convs_sep.{}.weight")
        self.n_ups = _count(weights, "dec.ups.{}.weight")
        self.n_kernels = _count(weights, "dec.resblocks.{}.convs.0.weight") // self.n_ups
        self.n_resblock_convs = _count(weights, "dec.resblocks.0.convs.{}.weight")
        self.hop_samples = math.prod(convs[f"dec.ups.{i}"].stride for i in range(self.n_ups))
        self._on: dict[str, dict[str, torch.Tensor]] = {str(next(iter(weights.values())).device): weights}

    def on(self, device: str | torch.device) -> dict[str, torch.Tensor]:
        """Return the weights on `device`, copied there once."""
        key = str(torch.device(device))
        if key not in self._on:
            self._on[key] = {name: w.to(device) for name, w in self.weights.items()}
        return self._on[key]


def _count(weights: dict, pattern: str) -> int:
    n = 0
    while pattern.format(n) in weights:
        n += 1
    return n


def _indices(weights: dict, prefix: str, suffix: str) -> list[int]:
    """Return the n of every weight named prefix + n + suffix."""
    middles = (k[len(prefix):-len(suffix)] for k in weights if k.startswith(prefix) and k.endswith(suffix))
    return [int(m) for m in middles if m.isdigit()]


def save_model(model: VitsModel, path: str | Path) -> Path:
    """Write the model's weights and conv specs as one torch file (for machines without onnx or piper-tts)."""
    from dataclasses import asdict

    from stages import files

    with files.atomic_path(Path(path)) as tmp:
        torch.save({"weights": model.weights, "convs": {k: asdict(v) for k, v in model.convs.items()},
                    "source": str(model.source)}, tmp)
    return Path(path)


def load_saved(path: str | Path) -> VitsModel:
    """Return a model save_model wrote."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    return VitsModel(data["weights"], {k: ConvSpec(**v) for k, v in data["convs"].items()}, Path(data["source"]))


def load_piper_onnx(onnx_path: str | Path) -> VitsModel:
    """Return the VITS model whose weights are the initializers of a Piper voice's ONNX file."""
    import onnx
    from onnx import numpy_helper

    path = Path(onnx_path)
    try:
        graph = onnx.load(str(path)).graph
    except Exception as e:
        raise UserError(f"cannot read Piper model {path}: {e}; give the path of a voice's .onnx file") from e
    inits = {t.name: t for t in graph.initializer}
    tensor = lambda name: torch.from_numpy(numpy_helper.to_array(inits[name]).astype(np.float32).copy())  # noqa: E731
    weights = {name: tensor(name) for name in inits if "." in name and not name.startswith(("/", "onnx::"))}
    convs: dict[str, ConvSpec] = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1] in inits:
            name = node.name.strip("/").rsplit("/", 1)[0].replace("/", ".")
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            pads = attrs.get("pads", [0, 0])
            if pads[0] != pads[-1]:
                raise UserError(f"{path}: conv {name} pads unevenly {pads}; this loader knows only even padding")
            convs[name] = ConvSpec(attrs.get("strides", [1])[0], pads[0], attrs.get("dilations", [1])[0],
                                   attrs.get("group", 1), node.op_type == "ConvTranspose")
            weights[f"{name}.weight"] = tensor(node.input[1])
            if len(node.input) > 2 and node.input[2]:
                weights[f"{name}.bias"] = tensor(node.input[2])
        elif node.name == "/enc_p/emb/Gather":
            weights["enc_p.emb.weight"] = tensor(node.input[0])
        elif node.name == "/dp/flows.0/Mul" and node.input[1] in inits:
            weights["dp.flows.0.exp_neg_logs"] = tensor(node.input[1])
    if any(i.name == "sid" for i in graph.input):
        raise UserError(f"{path} is a multi-speaker voice; the torch engine runs single-speaker Piper voices "
                        "only: use the piper engine for it")
    missing = set(REQUIRED_WEIGHTS) - weights.keys()
    if missing:
        raise UserError(f"{path} is not a Piper VITS voice this loader knows (no {', '.join(sorted(missing))}); "
                        "use the piper engine for it")
    return VitsModel(weights, convs, path)


def _conv(model: VitsModel, w: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    spec = model.convs[name]
    op = F.conv_transpose1d if spec.transposed else F.conv1d
    return op(x, w[f"{name}.weight"], w.get(f"{name}.bias"), stride=spec.stride, padding=spec.padding,
              dilation=spec.dilation, groups=spec.groups)


def _layer_norm(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    """Normalize over channels of a [batch, channels, time] tensor."""
    y = F.layer_norm(x.transpose(1, 2), (x.shape[1],), w[f"{name}.gamma"], w[f"{name}.beta"], LAYER_NORM_EPS)
    return y.transpose(1, 2)


def _relative_onehot(t: int, window: int, device) -> torch.Tensor:
    """Return [t, t, 2*window+1]: 1 where key j sits at offset j - i (within the window) from query i."""
    pos = torch.arange(t, device=device)
    offset = pos[None, :] - pos[:, None] + window
    inside = (offset >= 0) & (offset <= 2 * window)
    return F.one_hot(offset.clamp(0, 2 * window), 2 * window + 1).float() * inside[..., None]


def _attention(model, w, layer: int, x, attn_mask, rel) -> torch.Tensor:
    name = f"enc_p.encoder.attn_layers.{layer}"
    b, c, t = x.shape
    heads = model.n_heads
    d = c // heads
    q, k, v = (_conv(model, w, f"{name}.conv_{n}", x).view(b, heads, d, t).transpose(2, 3) for n in "qkv")
    q = q / math.sqrt(d)
    scores = q @ k.transpose(2, 3)
    scores = scores + torch.einsum("bhik,ijk->bhij", q @ w[f"{name}.emb_rel_k"][0].T, rel)
    p = torch.softmax(scores.masked_fill(attn_mask == 0, ATTENTION_MASK_FILL), dim=-1)
    out = p @ v + torch.einsum("bhij,ijk->bhik", p, rel) @ w[f"{name}.emb_rel_v"][0]
    return _conv(model, w, f"{name}.conv_o", out.transpose(2, 3).reshape(b, c, t))


def _ffn(model, w, layer: int, x, x_mask) -> torch.Tensor:
    name = f"enc_p.encoder.ffn_layers.{layer}"
    for i, conv in enumerate(("conv_1", "conv_2")):
        k = w[f"{name}.{conv}.weight"].shape[2]
        x = _conv(model, w, f"{name}.{conv}", F.pad(x * x_mask, ((k - 1) // 2, k // 2)))
        x = torch.relu(x) if i == 0 else x
    return x * x_mask


def _encode_text(model, w, ids, x_mask):
    """Return the encoder's hidden states and the prior's mean and log-scale, each [b, c, t]."""
    x = w["enc_p.emb.weight"][ids] * math.sqrt(model.hidden)
    x = x.transpose(1, 2) * x_mask
    attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
    rel = _relative_onehot(ids.shape[1], model.window, ids.device)
    for i in range(model.n_enc_layers):
        x = _layer_norm(x + _attention(model, w, i, x, attn_mask, rel), w, f"enc_p.encoder.norm_layers_1.{i}")
        x = _layer_norm(x + _ffn(model, w, i, x, x_mask), w, f"enc_p.encoder.norm_layers_2.{i}")
    x = x * x_mask
    stats = _conv(model, w, "enc_p.proj", x) * x_mask
    m_p, logs_p = stats.split(model.hidden, dim=1)
    return x, m_p, logs_p


def _dds_conv(model, w, name: str, x, x_mask, g=None):
    """Dilated depth-separable conv stack with exact-erf GELU."""
    if g is not None:
        x = x + g
    for i in range(model.n_dds_layers):
        y = _conv(model, w, f"{name}.convs_sep.{i}", x * x_mask)
        y = F.gelu(_layer_norm(y, w, f"{name}.norms_1.{i}"))
        y = _conv(model, w, f"{name}.convs_1x1.{i}", y)
        x = x + F.gelu(_layer_norm(y, w, f"{name}.norms_2.{i}"))
    return x * x_mask


def _spline_inverse(y, widths_raw, heights_raw, derivs_raw):
    """Invert the rational-quadratic spline on [-B, B] (identity outside); params are [..., bins]."""
    bins = widths_raw.shape[-1]
    bound = SPLINE_TAIL_BOUND
    edge = math.log(math.exp(1 - SPLINE_MIN_DERIVATIVE) - 1)  # softplus gives slope 1 at both ends
    derivs = SPLINE_MIN_DERIVATIVE + F.softplus(F.pad(derivs_raw, (1, 1), value=edge))

    def knots(raw, min_size):
        size = min_size + (1 - min_size * bins) * torch.softmax(raw, dim=-1)
        cum = F.pad(torch.cumsum(size, dim=-1), (1, 0)) * (2 * bound) - bound
        cum[..., 0], cum[..., -1] = -bound, bound
        return cum, cum[..., 1:] - cum[..., :-1]

    cum_w, widths = knots(widths_raw, SPLINE_MIN_BIN_WIDTH)
    cum_h, heights = knots(heights_raw, SPLINE_MIN_BIN_HEIGHT)
    edges = cum_h.clone()
    edges[..., -1] += SPLINE_SEARCH_EPS
    idx = ((y[..., None] >= edges).sum(dim=-1, keepdim=True) - 1).clamp(0, bins - 1)
    pick = lambda t: t.gather(-1, idx)[..., 0]  # noqa: E731
    x0, w_k, y0, h_k = pick(cum_w), pick(widths), pick(cum_h), pick(heights)
    delta = h_k / w_k
    d0, d1 = pick(derivs[..., :-1]), pick(derivs[..., 1:])
    rise = y - y0
    curve = d0 + d1 - 2 * delta
    a = rise * curve + h_k * (delta - d0)
    b = h_k * d0 - rise * curve
    c = -delta * rise
    root = (2 * c) / (-b - torch.sqrt(b * b - 4 * a * c))
    inside = (y >= -bound) & (y <= bound)
    return torch.where(inside, root * w_k + x0, y)


def _conv_flow_reverse(model, w, index: int, z, x_mask, g):
    name = f"dp.flows.{index}"
    z0, z1 = z[:, :1], z[:, 1:]
    h = _dds_conv(model, w, f"{name}.convs", _conv(model, w, f"{name}.pre", z0), x_mask, g)
    h = _conv(model, w, f"{name}.proj", h) * x_mask
    b, _, t = z0.shape
    h = h.reshape(b, 1, -1, t).permute(0, 1, 3, 2)
    bins = (h.shape[-1] + 1) // 3
    scale = math.sqrt(w[f"{name}.pre.weight"].shape[0])
    z1 = _spline_inverse(z1, h[..., :bins] / scale, h[..., bins:2 * bins] / scale, h[..., 2 * bins:])
    return torch.cat([z0, z1], dim=1) * x_mask


def _log_durations(model, w, x, x_mask, noise_w_scale, generator):
    """Run the stochastic duration predictor in reverse; return log frames per phoneme, [b, 1, t]."""
    g = _conv(model, w, "dp.pre", x)
    g = _dds_conv(model, w, "dp.convs", g, x_mask)
    g = _conv(model, w, "dp.proj", g) * x_mask
    b, _, t = x.shape
    z = torch.randn(b, 2, t, device=x.device, generator=generator) * noise_w_scale
    for index in model.dp_flows:
        z = _conv_flow_reverse(model, w, index, z.flip(1), x_mask, g)
    z = z.flip(1)
    z = (z - w["dp.flows.0.m"]) * w["dp.flows.0.exp_neg_logs"] * x_mask
    return z[:, :1]


def _wavenet(model, w, name: str, x, mask):
    hidden = x.shape[1]
    out = torch.zeros_like(x)
    for i in range(model.n_wn_layers):
        xin = _conv(model, w, f"{name}.in_layers.{i}", x)
        acts = torch.tanh(xin[:, :hidden]) * torch.sigmoid(xin[:, hidden:])
        res_skip = _conv(model, w, f"{name}.res_skip_layers.{i}", acts)
        if i < model.n_wn_layers - 1:
            x = (x + res_skip[:, :hidden]) * mask
            out = out + res_skip[:, hidden:]
        else:
            out = out + res_skip
    return out * mask


def _flow_reverse(model, w, z, y_mask):
    """Run the mean-only residual coupling flow backwards (each coupling preceded by a flip)."""
    half = z.shape[1] // 2
    for index in model.flows:
        z = z.flip(1)
        z0, z1 = z[:, :half], z[:, half:]
        h = _conv(model, w, f"flow.flows.{index}.pre", z0) * y_mask
        h = _wavenet(model, w, f"flow.flows.{index}.enc", h, y_mask)
        mean = _conv(model, w, f"flow.flows.{index}.post", h) * y_mask
        z = torch.cat([z0, (z1 - mean) * y_mask], dim=1)
    return z


def _frame_mask(lengths: torch.Tensor, width: int) -> torch.Tensor | float:
    """Return a [b, 1, width] mask of each row's first `lengths` steps (1.0 when no row is padded)."""
    if bool((lengths == width).all()):
        return 1.0
    steps = torch.arange(width, device=lengths.device)
    return (steps[None, :] < lengths[:, None]).unsqueeze(1).float()


def _decode(model, w, z, frames: torch.Tensor):
    """HiFi-GAN: frames -> samples; each sentence's padding is zeroed after every layer."""
    mask = _frame_mask(frames, z.shape[2])
    x = _conv(model, w, "dec.conv_pre", z * mask) * mask
    for i in range(model.n_ups):
        x = _conv(model, w, f"dec.ups.{i}", F.leaky_relu(x, GENERATOR_LRELU_SLOPE))
        frames = frames * model.convs[f"dec.ups.{i}"].stride
        mask = _frame_mask(frames, x.shape[2])
        x = x * mask
        total = 0
        for j in range(i * model.n_kernels, (i + 1) * model.n_kernels):
            r = x
            for c in range(model.n_resblock_convs):
                r = r + _conv(model, w, f"dec.resblocks.{j}.convs.{c}", F.leaky_relu(r, GENERATOR_LRELU_SLOPE))
                r = r * mask
            total = total + r
        x = total / model.n_kernels
    x = _conv(model, w, "dec.conv_post", F.leaky_relu(x, GENERATOR_FINAL_LRELU_SLOPE))
    return (torch.tanh(x) * mask)[:, 0]


def _expand(m_p, logs_p, frames_per_phoneme, frames):
    """Repeat each phoneme's prior mean and log-scale over its frames; return them and the frame mask."""
    steps = torch.arange(int(frames.max()), device=frames.device)
    y_mask = (steps[None, :] < frames[:, None]).unsqueeze(1).float()
    ends = torch.cumsum(frames_per_phoneme, dim=1).contiguous()
    # the phoneme a frame belongs to: how many phonemes end at or before it
    owner = torch.searchsorted(ends, steps.float().expand(len(ends), -1).contiguous(), right=True)
    owner = owner.clamp(max=m_p.shape[2] - 1).unsqueeze(1).expand(-1, m_p.shape[1], -1)
    return m_p.gather(2, owner) * y_mask, logs_p.gather(2, owner) * y_mask, y_mask


@contextmanager
def _full_fp32_convs(device: torch.device):
    """Within the block, cuDNN convolutions on CUDA use full float32 rather than TF32."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def _check_ids(model: VitsModel, seqs: list[list[int]]) -> None:
    for n, seq in enumerate(seqs):
        if not len(seq):
            raise UserError(f"phoneme id sequence {n} is empty; give at least one id (Piper adds ^ and $)")
        bad = [i for i in seq if not 0 <= int(i) < model.n_vocab]
        if bad:
            raise UserError(f"phoneme id sequence {n} has ids {bad[:5]} outside 0..{model.n_vocab - 1} "
                            f"of {model.source.name}; make the ids with this voice's phoneme_id_map")


def synthesize_batch(
    model: VitsModel,
    phoneme_id_seqs: list[list[int]],
    *,
    length_scale: float,
    noise_scale: float = 0.0,
    noise_w_scale: float = 0.0,
    device: str | None = None,
    seed: int | None = None,
    decode_in_batch: bool | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return, per sequence, its float32 audio and each phoneme id's duration in samples.

    The generator runs on the whole padded batch on CUDA, one sentence at a time on CPU (where a
    batch only adds padding and cache misses); `decode_in_batch` overrides that choice. With noise
    on, the draws are seeded per call, so a sentence's noise depends on the batch it is in.
    """
    _check_ids(model, phoneme_id_seqs)
    if not phoneme_id_seqs:
        return []
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    w = model.on(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(0 if seed is None else seed)
    lengths = torch.tensor([len(s) for s in phoneme_id_seqs], device=device)
    ids = torch.zeros(len(phoneme_id_seqs), int(lengths.max()), dtype=torch.long)
    for n, seq in enumerate(phoneme_id_seqs):
        ids[n, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    ids = ids.to(device)
    with torch.inference_mode():
        x_mask = (torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]).unsqueeze(1).float()
        with _full_fp32_convs(device):  # durations are ceil()ed: TF32 rounding could move a phoneme by a frame
            x, m_p, logs_p = _encode_text(model, w, ids, x_mask)
            logw = _log_durations(model, w, x, x_mask, noise_w_scale, generator)
        frames_per_phoneme = torch.ceil(torch.exp(logw) * x_mask * length_scale)[:, 0]
        frames = frames_per_phoneme.sum(dim=1).clamp(min=1).long()
        mean, log_scale, y_mask = _expand(m_p, logs_p, frames_per_phoneme, frames)
        noise = torch.randn(mean.shape, device=device, generator=generator)
        z = _flow_reverse(model, w, mean + noise * torch.exp(log_scale) * noise_scale, y_mask)
        if device.type != "cpu" if decode_in_batch is None else decode_in_batch:
            audio = list(_decode(model, w, z * y_mask, frames).cpu().numpy())
        else:
            audio = [_decode(model, w, z[n:n + 1, :, :f], frames[n:n + 1])[0].cpu().numpy()
                     for n, f in enumerate(frames.tolist())]
    samples = frames.cpu().numpy() * model.hop_samples
    durations = (frames_per_phoneme.cpu().numpy() * model.hop_samples).astype(np.int64)
    return [(audio[n][: samples[n]].astype(np.float32), durations[n, : len(seq)].copy())
            for n, seq in enumerate(phoneme_id_seqs)]
