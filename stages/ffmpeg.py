"""The one place that finds and runs ffmpeg, so every stage reports its failures the same way.

A system `ffmpeg` on PATH wins; otherwise the binary bundled with imageio-ffmpeg is used, so the
project never depends on a system install (and never on ffprobe, which the bundle lacks).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from stages.errors import StageError

STDERR_TAIL_CHARS = 300
PIPE_CHUNK_SAMPLES = 1 << 20  # samples written to ffmpeg's stdin per write


@functools.cache
def ffmpeg_exe() -> str:
    """Return the path of the ffmpeg binary: the system one if on PATH, else imageio-ffmpeg's."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise StageError("no ffmpeg found: install ffmpeg on PATH or `pip install imageio-ffmpeg`") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def base_args() -> list[str]:
    """Return the leading arguments every call uses: the binary, quiet, no prompts."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def stage_error(what: str, stderr: bytes | str) -> StageError:
    """Return the StageError for a failed ffmpeg call, with the tail of its stderr."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return StageError(f"ffmpeg could not {what}: {text.strip()[-STDERR_TAIL_CHARS:]}")


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run ffmpeg with `args` (after the common leading ones); raise StageError saying `what` failed."""
    try:
        subprocess.run(base_args() + list(args), check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        raise stage_error(what, e.stderr) from e


def decode_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Return the audio of `path` as mono float32 at `sample_rate`, decoded by ffmpeg."""
    args = base_args()[:-1] + ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate)]
    args += ["-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"]
    try:
        done = subprocess.run(args, check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        raise stage_error(f"decode {path}", e.stderr) from e
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)


class PcmEncoder:
    """An ffmpeg process fed mono float32 audio on stdin (input 0), chunk by chunk, as it becomes ready."""

    def __init__(self, sample_rate: int, args: list[str], what: str, *, inputs: Sequence[str] = ()):
        cmd = base_args() + ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", *inputs, *args]
        self.what = what
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        self._broken = False

    def write(self, chunk: np.ndarray) -> None:
        """Send `chunk` to the encoder; blocks while ffmpeg catches up."""
        pcm = np.ascontiguousarray(chunk, dtype="<f4").reshape(-1)
        try:
            for start in range(0, pcm.size, PIPE_CHUNK_SAMPLES):
                self._proc.stdin.write(memoryview(pcm[start : start + PIPE_CHUNK_SAMPLES]).cast("B"))
        except BrokenPipeError:
            self._broken = True  # ffmpeg stopped reading; close() reports why

    def close(self) -> None:
        """Finish the file; raise StageError with ffmpeg's words if it failed."""
        try:
            if not self._broken:
                self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        self._err.seek(0)
        stderr = self._err.read()
        self._err.close()
        if code != 0:
            raise stage_error(self.what, stderr)

    def abort(self) -> None:
        """Stop ffmpeg without finishing the file."""
        self._proc.kill()
        self._proc.wait()
        self._err.close()


def encode_pcm(
    chunks: Iterable[np.ndarray], sample_rate: int, args: list[str], what: str, *, inputs: Sequence[str] = ()
) -> None:
    """Stream mono float32 `chunks` to ffmpeg's stdin (input 0), with `inputs` after it, then `args`.

    Each chunk is written straight from its buffer, so no joined copy of the whole audio is made.
    """
    encoder = PcmEncoder(sample_rate, args, what, inputs=inputs)
    try:
        for chunk in chunks:
            encoder.write(chunk)
    except BaseException:
        encoder.abort()  # the audio could not be produced: stop ffmpeg rather than wait on it
        raise
    encoder.close()
