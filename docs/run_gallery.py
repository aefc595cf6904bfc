"""Run the examples and record what the gallery pages show.

    python docs/run_gallery.py                  # every example (a few minutes)
    python docs/run_gallery.py saxe_sigmoid     # one or more by name

Each example runs in a fresh interpreter from the repository root, with its output
directory (or file) under ``docs/gallery/figures/<name>/``; the PNGs it writes, its
printed output and its run time go there (``run.json``), to be committed. The docs build
(``sphinx-build``) only reads them; it never runs an example.
"""

import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "gallery" / "figures"

# Every example takes ``--out DIR`` (examples/_out.py); an example with other needs can
# be given its own arguments here ("{dir}" is its figures folder).
ARGS: dict = {}
DEFAULT_ARGS = ["--out", "{dir}"]
MAX_STDOUT_LINES = 60


def run(name):
    script = ROOT / "examples" / f"{name}.py"
    if not script.exists():
        raise SystemExit(f"run_gallery: no example {script}")
    out = FIGURES / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.suffix in {".png", ".svg", ".json", ".npz"}:
            old.unlink()
    spec = ARGS.get(name, DEFAULT_ARGS)
    args = [a.format(dir=out.relative_to(ROOT)) for a in spec]
    shown = ["OUTDIR" if a == "{dir}" else a.replace("{dir}/", "") for a in spec]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script.relative_to(ROOT)), *args], cwd=ROOT,
                          capture_output=True, text=True, env=None)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"run_gallery: {name} failed (exit {proc.returncode})")
    for png in list(out.glob("*/**/*.png")):   # figures in subfolders (a report's) move up
        png.rename(out / "_".join(png.relative_to(out).parts))
    for extra in out.iterdir():   # the pages show the PNGs; keep the folder small
        if extra.is_dir():
            shutil.rmtree(extra)   # e.g. a sweep's cell cache
        elif extra.suffix != ".png":
            extra.unlink()
    lines = proc.stdout.rstrip().splitlines()
    if len(lines) > MAX_STDOUT_LINES:
        lines = lines[:MAX_STDOUT_LINES] + [f"... ({len(lines) - MAX_STDOUT_LINES} more lines)"]
    stdout = "\n".join(lines).replace(str(ROOT) + "/", "")
    import exactdyn

    record = {"command": " ".join(["python", f"examples/{name}.py", *shown]),
              "seconds": round(seconds, 1), "date": date.today().isoformat(),
              "machine": f"{platform.machine()}, {_cores()} cores, Python "
                         f"{platform.python_version()}",
              "version": exactdyn.__version__, "stdout": stdout,
              "figures": sorted(p.name for p in out.glob("*.png"))}
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{name}: {seconds:.1f} s, figures {record['figures']}")


def _cores():
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main(names):
    names = names or sorted(p.stem for p in (ROOT / "examples").glob("*.py")
                            if not p.name.startswith("_"))
    failed = []
    for name in names:
        try:
            run(name)
        except SystemExit as exc:  # record the others, then fail
            print(exc, file=sys.stderr)
            failed.append(name)
    if failed:
        raise SystemExit(f"run_gallery: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1:])
