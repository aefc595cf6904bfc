"""The examples' one command-line convention: ``--out DIR`` for what they write (figures,
data), by default a new temporary directory (never a folder relative to where you run them).

Every example: ``python examples/NAME.py [--out DIR] [its own options]``; ``--help`` lists
them.
"""

import argparse
import tempfile
from pathlib import Path


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """An argument parser with ``--out DIR`` (the example's docstring as its help)."""
    p = argparse.ArgumentParser(prog=f"python examples/{name}.py", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="directory for the figures and data (default: a new temporary "
                   "directory, printed at the end)")
    return p


def out_dir(out, name: str) -> Path:
    """``out`` created if needed, or a new temporary directory named after the example."""
    path = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"{name}_"))
    path.mkdir(parents=True, exist_ok=True)
    return path
