"""``exactdyn report --check DIR``: are the committed reports in ``DIR`` fresh?

Each ``DIR/<model>/data.json`` records the arguments that built it (``argv``); the check
rebuilds the text and JSON from them into a temporary directory and compares them byte
for byte with what is committed (figures are not compared).
"""

from __future__ import annotations

import json
import os
import tempfile

from .writer import TEXT_FILES, command_line, write_files


def check_derivations(root, build_model, known_models=()) -> tuple:
    """Compare every report under ``root`` with a fresh build.

    Parameters
    ----------
    root : str
        The derivations directory (one folder per model).
    build_model : callable
        ``argv -> (model, times, precision)``: the CLI's parsing of a report's ``argv``.
    known_models : iterable of str
        Models the package has; each must have a folder (else it is listed as missing).

    Returns
    -------
    (differing, checked) : (list of str, list of str)
        Paths relative to ``root`` that differ or are missing, and the folders checked.
    """
    from .._progress import quiet
    from .content import gather

    root = os.fspath(root)
    if not os.path.isdir(root):
        raise ValueError(f"--check needs the derivations directory; {root!r} is not one")
    label = os.path.basename(os.path.abspath(root))
    differing, checked = [], []
    folders = sorted(d for d in os.listdir(root)
                     if os.path.isfile(os.path.join(root, d, "data.json")))
    for name in known_models:
        if name not in folders:
            differing.append(f"{name}/ (missing: generate it with exactdyn report {name} "
                             f"--out {label}/{name})")
    for folder in folders:
        with open(os.path.join(root, folder, "data.json"), encoding="utf-8") as fh:
            argv = json.load(fh)["argv"]
        if argv is None:
            differing.append(f"{folder}/data.json (built from Python: no argv to rebuild it)")
            checked.append(folder)
            continue
        model, times, precision = build_model(argv)
        with quiet():  # the check prints its verdict only, even on a terminal
            content = gather(model, times, precision, regime="--no-regime" not in argv)
        if "--no-regime" in argv:
            content.argv = [*content.argv, "--no-regime"]
        content.command = command_line(content.argv, f"{label}/{folder}")
        with tempfile.TemporaryDirectory() as tmp:
            write_files(content, tmp, draw_figures=False)
            for fname in TEXT_FILES:
                committed = os.path.join(root, folder, fname)
                with open(os.path.join(tmp, fname), "rb") as fh:
                    fresh = fh.read()
                if not os.path.exists(committed):
                    differing.append(f"{folder}/{fname} (missing)")
                    continue
                with open(committed, "rb") as fh:
                    if fh.read() != fresh:
                        differing.append(f"{folder}/{fname}")
        checked.append(folder)
    return differing, checked
