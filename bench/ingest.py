"""Time and size the ingest stage (read, normalize, segment, write manuscript.json) on real books.

    python bench/ingest.py [--no-big] [--copies 150] [--breakdown]

Each book runs in a fresh child process, so every peak RSS is that book's own (VmHWM, read by the
child from /proc/self/status). The books: Pride and Prejudice as EPUB and as .txt, the Lu Xun stories,
and a generated ~100 MB text (Pride and Prejudice 150 times over, every chapter heading distinct).
Printed per book: wall and CPU seconds of read_book (decode, structure, sentences, spoken forms),
of writing manuscript.json, the RSS after imports, while the manuscript is held, and at peak,
chapters, segments and the size of manuscript.json. Target for the novel: <= 5 s and <= 300 MB on
2 cores. --breakdown adds, for each book, what the held manuscript is made of. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
BOOKS = [
    CORPUS / "jane-austen_pride-and-prejudice.epub",
    CORPUS / "jane-austen_pride-and-prejudice.txt",
    CORPUS / "lu-xun_kong-yiji_gu-xiang_zhu-fu.zh.txt",
]
NOVEL_TARGET_S = 5.0
NOVEL_TARGET_MB = 300


def status_mb(field: str) -> float:
    """Return a memory figure of this process from /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(path: Path, breakdown: bool) -> dict:
    """Ingest one book in this process and return its figures."""
    sys.path.insert(0, str(REPO))
    from stages.ingest import read_book, save_manuscript

    base = status_mb("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    manuscript, _ = read_book(path)
    read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
    held = status_mb("VmRSS")
    peak_read = status_mb("VmHWM")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "manuscript.json"
        wall, cpu = time.perf_counter(), time.process_time()
        save_manuscript(manuscript, out)
        write_wall, write_cpu = time.perf_counter() - wall, time.process_time() - cpu
        json_mb = out.stat().st_size / 1e6
    figures = {
        "book": path.name, "mb": path.stat().st_size / 1e6, "read_s": read_wall, "read_cpu_s": read_cpu,
        "write_s": write_wall, "write_cpu_s": write_cpu, "base_mb": base, "held_mb": held,
        "peak_read_mb": peak_read, "peak_mb": status_mb("VmHWM"), "chapters": len(manuscript.chapters),
        "segments": len(manuscript.segments), "json_mb": json_mb,
    }
    if breakdown:
        figures["breakdown"] = manuscript_breakdown(manuscript)
    return figures


def manuscript_breakdown(manuscript) -> dict:
    """Return MB held by each part of the manuscript (Python object sizes, shared strings counted once)."""
    segments = manuscript.segments
    paragraphs = [p for c in manuscript.chapters for p in c.paragraphs]
    size = sys.getsizeof
    return {
        "segment objects": sum(size(s) + size(s.__dict__) for s in segments) / 1e6,
        "segment ids": sum(size(s.id) for s in segments) / 1e6,
        "segment text": sum(size(s.text) for s in segments) / 1e6,
        "spoken forms (when not the text)": sum(size(s.spoken) for s in segments if s.spoken is not s.text) / 1e6,
        "paragraphs": sum(size(p) + size(p.__dict__) + size(p.segments) + size(p.id) for p in paragraphs) / 1e6,
        "characters of text": sum(len(s.text) for s in segments) / 1e6,
    }


def make_big(folder: Path, copies: int) -> Path:
    """Write Pride and Prejudice `copies` times over, chapter headings numbered 1..N, and return its path."""
    text = (CORPUS / "jane-austen_pride-and-prejudice.txt").read_text(encoding="utf-8")
    head, body = text.split("\n\nCHAPTER I.\n", 1)
    body = "CHAPTER I.\n" + body
    counter = iter(range(1, 1_000_000))
    path = folder / f"pride-and-prejudice-x{copies}.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + "\n\n")
        for _ in range(copies):
            f.write(re.sub(r"^CHAPTER [IVXLC]+\.$", lambda _: f"CHAPTER {next(counter)}.", body, flags=re.M))
            f.write("\n\n")
    return path


def child(path: Path, breakdown: bool) -> dict:
    """Run one book in a fresh interpreter and return its figures."""
    args = [sys.executable, __file__, "--one", str(path)] + (["--breakdown"] if breakdown else [])
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"book": path.name, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(row: dict) -> None:
    if "error" in row:
        print(f"{row['book']}: failed: {row['error']}")
        return
    print(f"{row['book'][:44]:44} {row['mb']:7.1f} {row['read_s']:7.2f} {row['read_cpu_s']:7.2f} "
          f"{row['write_s']:6.2f} {row['base_mb']:6.0f} {row['held_mb']:6.0f} {row['peak_read_mb']:6.0f} "
          f"{row['peak_mb']:6.0f} {row['chapters']:6d} {row['segments']:9d} {row['json_mb']:7.1f}")
    for part, mb in row.get("breakdown", {}).items():
        print(f"    {part:36} {mb:8.1f} {'M chars' if part.startswith('characters') else 'MB'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-big", action="store_true", help="skip the generated ~100 MB text")
    parser.add_argument("--copies", type=int, default=150, help="copies of the novel in the big text")
    parser.add_argument("--breakdown", action="store_true", help="say what the held manuscript is made of")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.breakdown)))
        return
    print(f"{'book':44} {'MB':>7} {'read s':>7} {'cpu s':>7} {'json s':>6} {'base':>6} {'held':>6} "
          f"{'peak r':>6} {'peak':>6} {'chaps':>6} {'segments':>9} {'json MB':>7}")
    rows = []
    for path in BOOKS:
        rows.append(child(path, args.breakdown))
        show(rows[-1])
    if not args.no_big:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(child(make_big(Path(tmp), args.copies), args.breakdown))
            show(rows[-1])
    print("memory in MB: base = after imports, held = with the manuscript read, peak r = peak while reading, "
          "peak = peak including writing manuscript.json")
    novel = [r for r in rows[:2] if "error" not in r]
    for r in novel:
        ok = r["read_s"] + r["write_s"] <= NOVEL_TARGET_S and r["peak_mb"] <= NOVEL_TARGET_MB
        print(f"{r['book']}: {r['read_s'] + r['write_s']:.2f} s, {r['peak_mb']:.0f} MB "
              f"(target <= {NOVEL_TARGET_S:.0f} s, <= {NOVEL_TARGET_MB} MB): {'within' if ok else 'OVER'}")


if __name__ == "__main__":
    main()
