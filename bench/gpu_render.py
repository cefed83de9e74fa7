"""Render throughput of the bundled voice: onnxruntime on CPU, torch on CPU, torch on CUDA by batch size,
and the end-to-end render of a whole novel through the scheduler into a take cache.

    python bench/gpu_render.py prepare [--out DIR] [--book EPUB]      # here: phonemize the book, save the model
    python bench/gpu_render.py run [--inputs DIR] [--device cuda] [--batches 1,8,32,128] [--sample 256] [--full]

`prepare` needs piper-tts and onnx (this project's environment): it ingests the book (default: Pride
and Prejudice from ../shared/corpus), phonemizes every segment as the piper engine does and writes
DIR/ids.json.gz and DIR/model.pt (default DIR: output/gpu-bench). `run` needs only torch and this
repository, so it runs on a GPU machine without ffmpeg, espeak or piper-tts. It prints audio seconds
per wall second for each batch size on a sample of segments, then with --full renders every segment
of the book through stages/schedule.py (length buckets, batch size from free memory, out-of-memory
back-off) and writes each take as a 16-bit WAV into DIR/cache, sampling GPU utilisation with
nvidia-smi while it runs. With --onnx (needs piper-tts) it times onnxruntime on the same sample.
Target: >= 500x real time end to end on one H100. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_BOOK = REPO.parent / "shared" / "corpus" / "jane-austen_pride-and-prejudice.epub"
DEFAULT_DIR = REPO / "output" / "gpu-bench"
SAMPLE_RATE_HZ = 22050
LENGTH_SCALE = 1.0  # en_US-joe-medium's own


def prepare(out: Path, book: Path) -> None:
    import tempfile

    from stages.engines.piper_torch import PiperTorchEngine
    from stages.engines.piper import BUNDLED_MODEL, model_files
    from stages.engines.vits_torch import load_piper_onnx, save_model
    from stages.ingest import ingest
    from stages.model import Voice

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        manuscript = ingest(book, lambda slug: Path(scratch) / slug, save=False)
    engine, voice = PiperTorchEngine(), Voice("joe", "Joe", engine="piper-torch")
    segments = [engine.phoneme_ids(s.spoken, voice) for s in manuscript.segments if any(c.isalnum() for c in s.spoken)]
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "ids.json.gz", "wt", encoding="utf-8") as f:
        json.dump({"book": book.name, "segments": segments}, f)
    save_model(load_piper_onnx(model_files(BUNDLED_MODEL)[0]), out / "model.pt")
    tokens = sum(len(s) for seg in segments for s in seg)
    print(f"prepared {len(segments)} segments ({tokens} phoneme ids) of {book.name} in "
          f"{time.perf_counter() - started:.1f} s into {out}")


def load_inputs(folder: Path):
    from stages.engines.vits_torch import load_saved

    with gzip.open(folder / "ids.json.gz", "rt", encoding="utf-8") as f:
        segments = json.load(f)["segments"]
    return load_saved(folder / "model.pt"), segments


def sample_of(segments: list, count: int) -> list:
    """Every k-th segment, so the sample has the book's mix of lengths."""
    step = max(1, len(segments) // count)
    return segments[::step][:count]


def time_batches(model, segments: list, batch: int, device: str) -> tuple[float, float]:
    """Return (audio seconds, wall seconds) for rendering `segments` `batch` at a time, lengths sorted."""
    import torch

    from stages.engines.vits_torch import synthesize_batch

    sentences = sorted((s for seg in segments for s in seg), key=len)
    synthesize_batch(model, sentences[:2], length_scale=LENGTH_SCALE, device=device)  # warm-up (kernels, copies)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started, samples = time.perf_counter(), 0
    for i in range(0, len(sentences), batch):
        made = synthesize_batch(model, sentences[i : i + batch], length_scale=LENGTH_SCALE, device=device,
                                decode_in_batch=device.startswith("cuda"))
        samples += sum(a.size for a, _ in made)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return samples / SAMPLE_RATE_HZ, time.perf_counter() - started


def time_onnx(segments: list) -> tuple[float, float]:
    from piper import SynthesisConfig

    from stages.engines.piper import BUNDLED_MODEL, _load_voice

    voice = _load_voice(BUNDLED_MODEL)
    config = SynthesisConfig(length_scale=LENGTH_SCALE, noise_scale=0.0, noise_w_scale=0.0, normalize_audio=False)
    started, samples = time.perf_counter(), 0
    for ids in (s for seg in segments for s in seg):
        samples += voice.phoneme_ids_to_audio(ids, config).size
    return samples / SAMPLE_RATE_HZ, time.perf_counter() - started


class GpuSampler:
    """nvidia-smi's GPU utilisation, sampled every 0.5 s while the block runs (nothing without nvidia-smi)."""

    def __enter__(self):
        self.samples: list[int] = []
        try:
            self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                           "-lms", "500"], stdout=subprocess.PIPE, text=True)
        except FileNotFoundError:
            self._proc = None
            return self
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            if line.strip().split(",")[0].isdigit():
                self.samples.append(int(line.strip().split(",")[0]))

    def __exit__(self, *exc) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait()

    def summary(self) -> str:
        if not self.samples:
            return "GPU utilisation not sampled (no nvidia-smi)"
        return f"GPU utilisation mean {np.mean(self.samples):.0f}%, median {np.median(self.samples):.0f}% " \
               f"over {len(self.samples)} samples"


def render_all(model, segments: list, folder: Path, device: str) -> None:
    import torch

    from stages import schedule, wav
    from stages.engines.vits_torch import synthesize_batch

    cache = folder / "cache"
    items = [schedule.Item(f"{n:06d}", sum(len(s) for s in seg), seg) for n, seg in enumerate(segments)
             if not (cache / f"{n:06d}.wav").is_file()]

    def synthesize(batch, dev):
        sentences = [s for item in batch for s in item.payload]
        made = iter(synthesize_batch(model, sentences, length_scale=LENGTH_SCALE, device=dev,
                                     decode_in_batch=dev.startswith("cuda")))
        return [np.concatenate([next(made)[0] for _ in item.payload]) for item in batch]

    total = [0]

    def store(item, audio) -> None:
        wav.write_wav(cache / f"{item.key}.wav", audio, SAMPLE_RATE_HZ)
        total[0] += audio.size

    if device.startswith("cuda"):
        from stages.prerender import GPU_BYTES_PER_TOKEN

        budgets = {device: schedule.budget_from_memory(torch.cuda.mem_get_info(torch.device(device))[0],
                                                       GPU_BYTES_PER_TOKEN)}
    else:
        budgets = {"cpu": schedule.CPU_TOKEN_BUDGET}
    started = time.perf_counter()
    with GpuSampler() as gpu:
        report = schedule.run(items, synthesize, store, budgets=budgets,
                              on_oom=lambda d: torch.cuda.empty_cache() if d.startswith("cuda") else None)
    wall = time.perf_counter() - started
    audio_s = total[0] / SAMPLE_RATE_HZ
    print(f"end to end: {len(items)} segments, {audio_s / 3600:.2f} h of audio in {wall:.1f} s on {device} = "
          f"{audio_s / max(wall, 1e-9):.0f}x real time ({report.batches} batches, budget {list(budgets.values())[0]} tokens, "
          f"{report.splits} out-of-memory splits); takes written to {cache}")
    print(gpu.summary())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=DEFAULT_DIR)
    p.add_argument("--book", type=Path, default=DEFAULT_BOOK)
    r = sub.add_parser("run")
    r.add_argument("--inputs", type=Path, default=DEFAULT_DIR)
    r.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when there is one)")
    r.add_argument("--batches", default="1,8,32,128")
    r.add_argument("--sample", type=int, default=256, help="segments timed per batch size")
    r.add_argument("--full", action="store_true", help="also render the whole book into INPUTS/cache")
    r.add_argument("--limit", type=int, default=None, help="--full renders only the first N segments (a dry run)")
    r.add_argument("--onnx", action="store_true", help="also time onnxruntime on the sample (needs piper-tts)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.command == "prepare":
        return prepare(args.out, args.book)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, segments = load_inputs(args.inputs)
    sample = sample_of(segments, args.sample)
    name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "CPU"
    print(f"{len(segments)} segments; sample {len(sample)}; device {device} ({name}); torch {torch.__version__}")
    if args.onnx:
        audio, wall = time_onnx(sample)
        print(f"onnxruntime CPU (1 thread, one sentence at a time): {audio / wall:.1f}x real time")
    for batch in (int(b) for b in args.batches.split(",")):
        audio, wall = time_batches(model, sample, batch, device)
        print(f"torch {device} batch {batch:4d}: {audio:.0f} s of audio in {wall:.2f} s = {audio / wall:.1f}x real time")
    if args.full:
        render_all(model, segments[: args.limit], args.inputs, device)


if __name__ == "__main__":
    main()
