"""``srcset`` and ``sizes`` per the HTML Standard (4.8.4.3, "parse a srcset attribute",
"parse a sizes attribute", "normalise the source densities"). Pure.

- Candidates are split on ASCII whitespace and commas only: U+00A0 or U+3000 are
  part of a URL, as in browsers.
- Descriptors go through the standard's tokenizer (a comma inside parentheses does
  not end a candidate); a candidate whose descriptors are invalid or repeated
  (``2x 3x``, ``100w 1x``, ``0w``, ``-1x``, ``10h`` without ``w``, ``1.x``) is
  dropped; one without descriptors is ``1x``; ``h`` is parsed and ignored.
- ``w`` candidates get a density of width / the effective ``sizes`` value,
  evaluated for a ``VIEWPORT_WIDTH`` px wide viewport (``100vw`` when absent or
  when no entry applies); a later candidate with the density of an earlier one
  is removed.

>>> [c.url for c in source_set("a.jpg 1x, b.jpg 2x, c.jpg 2x")]
['a.jpg', 'b.jpg']
>>> largest(source_set("s.jpg 480w, l.jpg 1080w", sizes="50vw")).url
'l.jpg'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["VIEWPORT_WIDTH", "Candidate", "largest", "parse_sizes", "parse_srcset", "source_set"]

VIEWPORT_WIDTH = 1920.0  # CSS px: the viewport "largest" is chosen for (a desktop browser)
_EM = 16.0  # px per em/rem: the initial font size
_WS = " \t\n\f\r"  # ASCII whitespace
_INTEGER = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+|[0-9]*\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_LENGTH = re.compile(r"([-+]?(?:[0-9]+|[0-9]*\.[0-9]+)(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)")
_MEDIA = re.compile(r"\(\s*(min|max)-width\s*:\s*([^)]*?)\s*\)")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One image candidate: its URL as written, and its descriptor (``w`` or ``x``)."""

    url: str
    unit: str  # "w" or "x"
    value: float
    density: float = 0.0  # after normalisation: x, or w / the effective size


def parse_srcset(value: str) -> list[Candidate]:
    """The valid candidates of a ``srcset`` value, in order (densities not yet set).

    >>> [(c.url, c.unit, c.value) for c in parse_srcset("a.jpg 100w, b.jpg?x=1,2 200w")]
    [('a.jpg', 'w', 100.0), ('b.jpg?x=1,2', 'w', 200.0)]
    """
    out: list[Candidate] = []
    i, n = 0, len(value)
    while True:
        while i < n and (value[i] in _WS or value[i] == ","):
            i += 1
        if i >= n:
            return out
        j = i
        while j < n and value[j] not in _WS:
            j += 1
        url, i = value[i:j], j
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors, i = _tokenize(value, i)
        if url and (found := _descriptor(descriptors)) is not None:
            out.append(Candidate(url, *found))


def _tokenize(value: str, i: int) -> tuple[list[str], int]:
    """The descriptor tokenizer: descriptors from ``i`` up to the candidate's end."""
    n = len(value)
    while i < n and value[i] in _WS:
        i += 1
    out: list[str] = []
    current, state = "", "in"
    while i < n:
        c = value[i]
        if state == "in":
            if c in _WS:
                if current:
                    out.append(current)
                current, state = "", "after"
            elif c == ",":
                if current:
                    out.append(current)
                return out, i + 1
            else:
                current += c
                if c == "(":
                    state = "paren"
        elif state == "paren":
            current += c
            if c == ")":
                state = "in"
        elif c not in _WS:  # after a descriptor: reconsume in the descriptor state
            state = "in"
            continue
        i += 1
    if current:
        out.append(current)
    return out, i


def _descriptor(descriptors: list[str]) -> tuple[str, float] | None:
    """(unit, value) of one candidate's descriptors, None when they are invalid."""
    width = density = height = None
    for d in descriptors:
        number, unit = d[:-1], d[-1:]
        if unit == "w" and width is None and density is None and _INTEGER.fullmatch(number):
            width = int(number)
            if width == 0:
                return None
        elif unit == "x" and width is density is height is None and _FLOAT.fullmatch(number):
            density = float(number)
            if density < 0:
                return None
        elif unit == "h" and height is None and density is None and _INTEGER.fullmatch(number):
            height = int(number)
            if height == 0:
                return None
        else:
            return None
    if height is not None and width is None:
        return None
    if width is not None:
        return "w", float(width)
    return "x", 1.0 if density is None else density


def parse_sizes(value: str | None, viewport: float = VIEWPORT_WIDTH) -> float:
    """The effective size in CSS px of a ``sizes`` value for a ``viewport`` px wide viewport.

    Entries are tried in order; the first whose media condition holds (only
    ``(min-width: ...)`` and ``(max-width: ...)`` joined by ``and`` are understood;
    anything else does not hold) gives the size. ``auto`` and ``calc()`` are not
    lengths here. None applies: ``100vw``.

    >>> parse_sizes("(max-width: 600px) 480px, 800px")
    800.0
    """
    for entry in _split_top_level(value or ""):
        condition, size_text = _last_component(entry.strip(_WS))
        px = _length(size_text, viewport)
        if px is None or px < 0:
            continue  # not a source size value: a parse error, the entry is ignored
        if not condition.strip(_WS) or _holds(condition, viewport):
            return px
    return viewport


def _last_component(entry: str) -> tuple[str, str]:
    """``entry`` split before its last CSS component value (a token, block or function)."""
    if not entry.endswith(")"):
        cut = max(entry.rfind(c) for c in _WS) + 1
        return entry[:cut], entry[cut:]
    depth, k = 0, len(entry) - 1
    for k in range(len(entry) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(entry[k], 0)
        if depth == 0:
            break
    while k > 0 and (entry[k - 1].isalnum() or entry[k - 1] in "-_"):
        k -= 1  # a function's name: calc(...), min(...)
    return entry[:k], entry[k:]


def _split_top_level(value: str) -> list[str]:
    out, depth, start = [], 0, 0
    for k, c in enumerate(value):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "," and depth <= 0:
            out.append(value[start:k])
            start = k + 1
    out.append(value[start:])
    return out


def _length(text: str, viewport: float) -> float | None:
    found = _LENGTH.fullmatch(text)
    if found is None:
        return None
    number, unit = float(found.group(1)), found.group(2).lower()
    if unit == "" and number == 0:
        return 0.0
    scale = {"px": 1.0, "em": _EM, "rem": _EM, "vw": viewport / 100, "vmax": viewport / 100}
    return number * scale[unit] if unit in scale else None


def _holds(condition: str, viewport: float) -> bool:
    terms = re.split(r"\s+and\s+", condition.strip().lower())
    for term in terms:
        found = _MEDIA.fullmatch(term.strip())
        if found is None:
            return False
        px = _length(found.group(2), viewport)
        if px is None:
            return False
        if viewport < px if found.group(1) == "min" else viewport > px:
            return False
    return True


def source_set(srcset: str, *, sizes: str | None = None, src: str | None = None) -> list[Candidate]:
    """The element's source set: ``srcset``'s valid candidates, ``src`` as ``1x`` when the
    standard adds it (no ``1x`` and no ``w`` candidate), densities normalised, and a
    later candidate of an earlier candidate's density removed."""
    candidates = parse_srcset(srcset)
    if src and not any(c.unit == "w" or c.value == 1.0 for c in candidates):
        candidates.append(Candidate(src, "x", 1.0))
    size = parse_sizes(sizes)
    out: list[Candidate] = []
    seen: set[float] = set()
    for c in candidates:
        density = c.value / size if c.unit == "w" and size > 0 else c.value
        if c.unit == "w" and size <= 0:
            density = float("inf")  # sizes="0px": every width is infinitely dense
        if density not in seen:
            seen.add(density)
            out.append(Candidate(c.url, c.unit, c.value, density))
    return out


def largest(candidates: list[Candidate]) -> Candidate | None:
    """The candidate of the highest density (the first of equals), None for none."""
    return max(candidates, key=lambda c: c.density, default=None)
