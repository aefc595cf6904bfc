r"""Write a derivation report into a directory, atomically; check committed reports.

``report(model, out=DIR)`` builds every file in a temporary directory beside ``DIR`` and
then swaps it in: a failure part-way leaves an older report in ``DIR`` untouched.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field

from . import data, figures, markdown, tex
from .content import STAGES, ReportContent, gather

#: Files compared by :func:`check` (figures are not: their bytes depend on the platform).
TEXT_FILES = ("README.md", "derivation.tex", "data.json")


@dataclass
class Report:
    """A written report: its directory, files and content (renders in Jupyter)."""

    path: str
    files: list
    content: ReportContent = field(repr=False)

    @property
    def markdown(self) -> str:
        with open(os.path.join(self.path, "README.md")) as fh:
            return fh.read()

    def _repr_markdown_(self) -> str:
        """The README with its figures inlined (data URIs), for notebooks."""
        def inline(m):
            png = os.path.join(self.path, m.group(2))
            if not os.path.exists(png):
                return m.group(0)
            with open(png, "rb") as fh:
                b64 = base64.b64encode(fh.read()).decode("ascii")
            return f"![{m.group(1)}](data:image/png;base64,{b64})"

        return re.sub(r"!\[([^\]]*)\]\((figures/[^)]+\.png)\)", inline, self.markdown)


def command_line(argv, out: str) -> str:
    if argv is None:
        return ("(built from Python: the command line cannot rebuild this model instance, "
                "so this report cannot be regenerated or checked by exactdyn report)")
    return "exactdyn report " + " ".join(shlex.quote(a) for a in argv) + \
        f" --out {shlex.quote(out)}"


def _display_out(out: str) -> str:
    """``out`` as printed in the report: relative to the working directory, never absolute."""
    rel = os.path.relpath(os.path.abspath(out))
    return os.path.basename(os.path.abspath(out)) if rel.startswith("..") else rel


def _prepare_parent(out: str) -> str:
    out = os.fspath(out)
    if not out or not isinstance(out, str):
        raise ValueError(f"out must be a directory path; got {out!r}")
    target = os.path.abspath(out)
    if os.path.exists(target) and not os.path.isdir(target):
        raise ValueError(f"out must be a directory (or a new path); {out!r} is a file")
    parent = os.path.dirname(target)
    ancestor = parent
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"out={out!r}: {ancestor!r} is a file, not a directory")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out={out!r}: cannot create its parent directory "
                         f"({exc.strerror or exc})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"out={out!r}: its parent directory is not writable")
    return target


def write_files(content: ReportContent, directory: str, draw_figures: bool = True,
                stage=None) -> list:
    """Write the report's files into an existing (empty) ``directory`` (``stage``: called
    with ``"writing"`` and ``"figures"`` as they begin, see :data:`.content.STAGES`)."""
    if stage is not None:
        stage("writing")
    files = []
    for name, text in (("README.md", markdown.render(content)),
                       ("derivation.tex", tex.render(content)),
                       ("data.json", data.to_json(content))):
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        files.append(name)
    if draw_figures:
        if stage is not None:
            stage("figures")
        fig_dir = os.path.join(directory, "figures")
        os.makedirs(fig_dir)
        for stem in figures.draw(content, fig_dir):
            files += [f"figures/{stem}.png", f"figures/{stem}.svg"]
    return files


def _swap_in(tmp: str, target: str) -> None:
    """Replace ``target`` by ``tmp`` (the old one is removed only once the new is in place)."""
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(dir=os.path.dirname(target),
                               prefix=f".{os.path.basename(target)}.old-")
        os.rmdir(old)
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: CLI names of the model families whose reports are built (the others raise ValueError).
#: The built-in families whose committed reports ``exactdyn report --check`` expects (any
#: model that follows the model protocol, a user's :class:`~exactdyn.Network` too, reports).
REPORTABLE = ("linear1d", "linear", "single-neuron", "deep-linear", "two-layer", "cnn")


def report(model, out, t=None, precision: int = 50, figures: bool = True,
           command_out: str | None = None, regime: bool = True, progress=None) -> Report:
    r"""Write the derivation report of ``model`` into the directory ``out``.

    Parameters
    ----------
    model
        A model instance, e.g. :class:`~exactdyn.Linear1D`.
    out : str or path
        The report's directory; an existing report there is replaced whole, or left
        untouched when anything fails.
    t : array_like, optional
        Times of the verification and figures (default 41 points on [0, 10]).
    precision : int
        Digits of the high-precision verification (default 50).
    figures : bool
        Draw ``figures/*.png`` and ``*.svg`` (default True).
    regime : bool
        Classify the model for the regime section (default). ``False`` skips it (it can
        cost several training runs, e.g. the two-layer RD slope over widths); the report
        then says so.
    command_out : str, optional
        The ``--out`` printed in the report's command line (default: ``out`` relative to
        the working directory; never an absolute path).
    progress : bool or callable(str), optional
        The stage being built (derivation, integration, closed form, verification,
        regime, writing, figures: :data:`~exactdyn.report.content.STAGES`; a family skips
        those it has not) on stderr. Default ``None``: a bar on a terminal only, drawn once
        the build has lasted a couple of seconds; a log or a pipe gets nothing. ``True``:
        always (one plain line per stage where stderr is not a terminal); ``False``: never
        (CLI: ``--no-progress``). A callable is given those lines instead. The operations
        the report runs (integrations, classify) show no progress of their own, and
        nothing of it reaches the report's files.

    Returns
    -------
    Report
        ``path``, ``files`` and the gathered ``content``.

    Notes
    -----
    The report holds ``README.md`` (GitHub math), ``derivation.tex`` (standalone, for
    pdflatex), ``data.json`` and ``figures/``: the derivation steps of the gradient flow,
    the conserved quantities and their proofs, the closed form with its residuals, the
    verification in float64 and at ``precision`` digits, the regime, the references and
    the command that regenerates it.
    """
    from .._progress import AUTO_DELAY, Progress, check_progress, quiet

    progress = check_progress(progress)
    target = _prepare_parent(out)
    bar = Progress(len(STAGES), progress, desc=f"report {getattr(model, 'name', 'model')}",
                   unit="stages", delay=AUTO_DELAY, template="{desc}: stage {done}/{total}",
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| stage {n}/{total} "
                              "[{elapsed}{postfix}]", announce=True)

    def stage(name: str) -> None:
        bar.to(STAGES.index(name) + 1, name)

    try:
        with quiet():
            return _build(model, out, target, t, precision, figures, command_out, regime,
                          stage)
    finally:
        bar.close()


def _build(model, out, target, t, precision, figures, command_out, regime, stage) -> Report:
    content = gather(model, t, precision, regime=regime, stage=stage)
    if not regime and content.argv is not None:
        # recorded, so that `exactdyn report --check` rebuilds it the same way
        content.argv = [*content.argv, "--no-regime"]
    content.command = command_line(content.argv, command_out or _display_out(os.fspath(out)))
    from .._atomic import dir_mode, remove_stale, tmp_prefix

    stem = f".{os.path.basename(target)}"
    remove_stale(os.path.dirname(target), stem)  # a killed run's temporary report
    try:
        tmp = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=tmp_prefix(stem))
        os.chmod(tmp, dir_mode())  # mkdtemp makes 0700; a report follows the umask
    except OSError as exc:
        raise ValueError(f"out={os.fspath(out)!r} is not writable "
                         f"({exc.strerror or exc})") from None
    try:
        files = write_files(content, tmp, draw_figures=figures, stage=stage)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(target, files, content)
