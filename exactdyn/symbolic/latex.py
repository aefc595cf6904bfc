r"""LaTeX of the derivation's sympy objects, for reports and notebook display.

Some derivation steps name a composite quantity with a symbol whose name is already a
LaTeX fragment (``Symbol("\\dot p")``, ``Symbol("(p^* - p) K")``). sympy's printer splits
such names at ``_`` and ``^`` and mangles them; :func:`latex` prints them verbatim and
everything else exactly as :func:`sympy.latex` does.
"""

from __future__ import annotations

import re
import unicodedata

import sympy as sp
from sympy.printing.latex import LatexPrinter

#: Symbol names sympy understands itself (letters, digits, underscores, primes).
_PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_']*$")


class DerivationLatexPrinter(LatexPrinter):
    """:class:`sympy.printing.latex.LatexPrinter` that keeps LaTeX-fragment names verbatim."""

    def _print_hyper(self, expr, exp=None):
        # sympy 1.12 and later build the same 2F1 from an integral with its upper
        # parameters in different orders; print them sorted, so a report is the same text
        # on every supported version (the function is symmetric in them).
        def key(a):
            return (0, float(a), "") if a.is_number and a.is_real else \
                (1, 0.0, str(sp.default_sort_key(a)))

        ap, bq = sorted(expr.ap, key=key), sorted(expr.bq, key=key)
        if list(ap) == list(expr.ap) and list(bq) == list(expr.bq):
            return super()._print_hyper(expr, exp)
        return super()._print_hyper(sp.hyper(ap, bq, expr.argument), exp)

    def _print_Symbol(self, expr, style="plain"):
        if _PLAIN_NAME.match(expr.name):
            return super()._print_Symbol(expr, style=style)
        # Verbatim, but a non-ASCII letter (an umlaut in a proof's label) is set in text
        # mode: pdflatex refuses text accents in math mode; MathJax renders both.
        return "".join(ch if ord(ch) < 128 else f"\\text{{{ch}}}" for ch in expr.name)


def latex(expr) -> str:
    """LaTeX of a sympy object (symbols named by LaTeX fragments kept verbatim)."""
    return DerivationLatexPrinter().doprint(expr)


def escape_markdown(text: str) -> str:
    """Plain text safe in GitHub Markdown (no emphasis, code or math is triggered)."""
    return re.sub(r"([\\`*_$<>\[\]|])", r"\\\1", text)


_TEX_SPECIAL = {"§": r"\S{}", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
                "→": r"$\to$", "−": "-", "·": r"$\cdot$", "\\": r"\textbackslash{}",
                "_": r"\_", "^": r"\^{}", "{": r"\{", "}": r"\}",
                "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#", "~": r"\~{}", "<": r"$<$",
                ">": r"$>$", "|": r"$|$"}


_TEX_UNICODE = {"∂": r"$\partial$", "Σ": r"$\Sigma$", "∞": r"$\infty$", "√": r"$\surd$",
                "²": r"$^2$", "³": r"$^3$", "ℓ": r"$\ell$", "₊": r"$_+$", "₋": r"$_-$",
                "∑": r"$\sum$", "⁻": r"$^-$", "ᵀ": r"$^T$", "′": "'", "≈": r"$\approx$",
                "≠": r"$\neq$", "±": r"$\pm$", "∈": r"$\in$", "∝": r"$\propto$"}
_TEX_UNICODE.update({chr(0x2080 + k): f"$_{k}$" for k in range(10)})


def _tex_char(ch: str) -> str:
    if ch in _TEX_SPECIAL:
        return _TEX_SPECIAL[ch]
    if ch in _TEX_UNICODE:
        return _TEX_UNICODE[ch]
    if ord(ch) < 128:
        return ch
    name = unicodedata.name(ch, "")
    if name.startswith("GREEK SMALL LETTER ") or name.startswith("GREEK CAPITAL LETTER "):
        letter = name.split()[-1].lower()
        letter = {"lamda": "lambda"}.get(letter, letter)
        if name.startswith("GREEK CAPITAL"):
            letter = letter.capitalize()
        return f"$\\{letter}$"
    # pdflatex with inputenc utf8 handles accented Latin letters; anything else is spelled.
    return ch if name.startswith("LATIN") else f"[{name.lower()}]"


def escape_tex(text: str) -> str:
    """Plain text safe in a LaTeX paragraph (math symbols and Greek letters in math mode)."""
    parts = text.split("->")
    return r"$\to$".join("".join(_tex_char(ch) for ch in part) for part in parts)


def steps_markdown(steps, start: int = 1) -> str:
    """Numbered derivation steps: title, display equation, justification, proof status."""
    out = []
    for n, step in enumerate(steps, start):
        out.append(f"**{n}. {escape_markdown(step.title)}**{_status(step.proven)}\n\n"
                   f"$$\n{latex(step.expr)}\n$$\n")
        if step.justification:
            out.append(f"*{escape_markdown(step.justification)}*\n")
    return "\n".join(out)


def steps_mathjax(steps, start: int = 1) -> str:
    """The steps as one MathJax display (what Jupyter's ``_repr_latex_`` renders)."""
    rows = []
    for n, step in enumerate(steps, start):
        title = step.title.replace("\\", "").replace("{", "").replace("}", "")
        rows.append(f"&\\text{{{n}. {title}{_status(step.proven)}}}\\\\\n"
                    f"&\\quad {latex(step.expr)}")
    return "$$\\begin{aligned}\n" + "\\\\\n".join(rows) + "\n\\end{aligned}$$"


def status(proven) -> str:
    """How a step stands: a definition, proven symbolically, or not proven."""
    return _status(proven)


def _status(proven) -> str:
    if proven is None:
        return " (definition)"
    return " (proven symbolically)" if proven else " (NOT proven)"
