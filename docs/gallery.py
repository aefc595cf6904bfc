"""The gallery: one page per script in ``examples/``, written by ``docs/conf.py``.

Each page has the example's docstring, the command that runs it, its figures and run time
when ``python docs/run_gallery.py`` has recorded them (``docs/gallery/figures/<name>/``,
committed), and its source. The build never runs an example.
"""

import ast
import json
import re
from pathlib import Path


def example_scripts(examples):
    return sorted(p for p in Path(examples).glob("*.py") if not p.name.startswith("_"))


def docstring(path):
    return ast.get_docstring(ast.parse(Path(path).read_text(encoding="utf-8"))) or ""


def rst_safe(text):
    """The docstring of an example (plain text with ``literals``, lists, ``::`` blocks and
    the odd reST directive or role) made safe for reStructuredText: ``|``, ``*`` and ``\\``
    outside literals, roles (``:math:`...```) and directives (``.. math::`` and their
    indented bodies) are escaped, so ``|cos(W, u1)|`` or ``p*`` are not read as
    substitutions or emphasis."""
    out, verbatim, block_indent = [], False, 0
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if verbatim and line.strip() and indent <= block_indent:
            verbatim = False
        if verbatim:
            out.append(line)
            continue
        if line.lstrip().startswith(".. "):  # a directive: its line and body as written
            out.append(line)
            verbatim, block_indent = True, indent
            continue
        parts = re.split(r"(``.*?``|:\w+:`[^`]*`)", line)
        out.append("".join(p if p.startswith(("``", ":")) and p.endswith("`") else
                           p.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
                           for p in parts))
        if line.rstrip().endswith("::"):
            verbatim, block_indent = True, indent
    return "\n".join(out)


def title_of(path):
    doc = docstring(path).strip()
    first = doc.split("\n\n")[0].replace("\n", " ").strip() if doc else path.stem
    return first


def record_of(figures_dir):
    path = Path(figures_dir) / "run.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def page_text(script, gallery_dir, transform=None):
    stem = script.stem
    figs = Path(gallery_dir) / "figures" / stem
    record = record_of(figs)
    command = record["command"] if record else f"python examples/{script.name}"
    doc = (transform or str)(rst_safe(docstring(script)))
    lines = [f"# {stem}", "", "```{eval-rst}", doc, "```", "",
             "## Run it", "", "```bash", command, "```", ""]
    if record:
        lines += [f"Recorded by `python docs/run_gallery.py {stem}`: "
                  f"{record['seconds']:.1f} s on {record['machine']} ({record['date']}, "
                  f"exactdyn {record['version']}).", ""]
        if record.get("stdout"):
            lines += ["Its output:", "", "```text", record["stdout"].rstrip(), "```", ""]
        pngs = sorted(figs.glob("*.png"))
        if pngs:
            lines += ["## Figures", ""]
            for png in pngs:
                lines += [f"```{{image}} ../figures/{stem}/{png.name}",
                          f":alt: {png.stem}", ":width: 100%", "```", ""]
    else:
        lines += ["Not recorded yet: `python docs/run_gallery.py " + stem + "` runs it and "
                  "stores its figures and run time for this page.", ""]
    lines += ["## Source", "", f"```{{literalinclude}} ../../../examples/{script.name}",
              ":language: python", "```", ""]
    return "\n".join(lines)


def notebook_markdown(notebook):
    """The cells of a notebook as Markdown (headings one level down, code as Python
    blocks, no outputs): the tutorial's text on its docs page. Uses only ``json``."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    out = []
    for cell in cells:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            out.append(re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", src, flags=re.M))
        elif cell["cell_type"] == "code":
            out.append("```python\n" + src.rstrip() + "\n```")
    return "\n\n".join(out) + "\n"


def write_if_changed(path, text):
    path = Path(path)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def overview_table(scripts, gallery_dir):
    """A Markdown table of the examples: name (linked), what it reproduces, run time, and
    the first recorded figure as a thumbnail."""
    rows = ["| example | what it reproduces | run time | figure |", "|---|---|---:|---|"]
    for script in scripts:
        stem = script.stem
        figs = Path(gallery_dir) / "figures" / stem
        record = record_of(figs)
        secs = f"{record['seconds']:.0f} s" if record else "not recorded"
        pngs = sorted(figs.glob("*.png")) if record else []
        thumb = (f"![{stem}](figures/{stem}/{pngs[0].name})" if pngs else "")
        what = title_of(script).replace("|", "\\|").replace("*", "\\*")
        what = re.sub(r"MATH\.md §(\d)", r"{ref}`Mathematics §\1 <math-s\1>`", what)
        rows.append(f"| {{doc}}`{stem} <examples/{stem}>` | {what} | {secs} | {thumb} |")
    return "\n".join(rows) + "\n"


def write_pages(examples, gallery_dir, transform=None):
    out = Path(gallery_dir) / "examples"
    out.mkdir(parents=True, exist_ok=True)
    scripts = example_scripts(examples)
    wanted = {f"{s.stem}.md" for s in scripts}
    for old in out.glob("*.md"):
        if old.name not in wanted:
            old.unlink()
    write_if_changed(Path(gallery_dir) / "_overview.md", overview_table(scripts, gallery_dir))
    for script in scripts:
        text = page_text(script, gallery_dir, transform)
        path = out / f"{script.stem}.md"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
