"""Alert annotation templates, rendered as Prometheus renders them.

Two notations fill the same values:

* botmon's ``{value}``, ``{value:.2f}``, ``{rule}``, ``{labels[x]}`` / ``{labels.x}``;
* the Go-template subset Prometheus rules use: ``{{ $value }}``, ``{{ .Value }}``,
  ``{{ $labels.x }}``, ``{{ .Labels.x }}``, ``{{ printf "%.2f" $value }}``, and the
  functions ``humanize``, ``humanize1024``, ``humanizeDuration``, ``humanizePercentage``
  called as ``{{ humanize $value }}`` or ``{{ $value | humanize }}``; and
  ``{{ $externalLabels.x }}``, ``{{ $externalURL }}`` (:class:`Externals`).

Numbers print as Go prints a ``float64``: ``{{ $value }}`` and ``{value}`` are Go's
``%v`` (``1.234567e+06``, ``0.1``, ``NaN``, ``+Inf``), the ``humanize`` family is
Prometheus' own. A label the series lacks renders empty (Prometheus' ``missingkey=zero``);
anything else in braces is left as written. Templates are re-rendered at every
evaluation with the current value, as Prometheus does. Rendering never raises and its
output is bounded (precisions and widths above 99 are not formatted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

__all__ = [
    "NO_EXTERNALS",
    "Externals",
    "go_printf",
    "go_value",
    "humanize",
    "humanize_1024",
    "humanize_duration",
    "humanize_percentage",
    "render_template",
]


def go_value(v: float) -> str:
    """``fmt.Sprint(v)`` of a Go ``float64`` (``%v``): the shortest digits that read
    back as ``v``, in exponent form when the decimal exponent is below -4 or at least 6
    (``1e+06``, ``1.234567e+06``, ``123456.7``, ``1e-05``)."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(v)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    nd = len(digits)
    dp = nd + exponent  # position of the decimal point
    exp = dp - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{prefix}{digits}{'0' * (dp - nd)}"
    return f"{prefix}{digits[:dp]}.{digits[dp:]}"


_VERB = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d{1,2})?(?:\.(?P<prec>\d{1,2}))?"
                   r"(?P<verb>[vfFeEgG%])")


def go_printf(fmt: str, v: float) -> str | None:
    """Go's ``fmt.Sprintf(fmt, v)`` for a format of one float verb (``%f %e %g %v``,
    with flags, width and precision below 100) and literal text; None for any other
    format."""
    out: list[str] = []
    pos = 0
    used = False
    for m in _VERB.finditer(fmt):
        if "%" in fmt[pos:m.start()] or "#" in m.group("flags"):  # (Go's alternate forms)
            return None
        out.append(fmt[pos:m.start()])
        pos = m.end()
        verb = m.group("verb")
        if verb == "%":
            out.append("%")
            continue
        if used:
            return None
        used = True
        out.append(_one(v, m.group("flags"), m.group("width"), m.group("prec"), verb))
    if "%" in fmt[pos:]:
        return None
    out.append(fmt[pos:])
    return "".join(out)


def _one(v: float, flags: str, width: str | None, prec: str | None, verb: str) -> str:
    if verb == "v":  # Go's %+v means "with field names": a float takes no plus sign
        flags = flags.replace("+", "")
    if v != v or math.isinf(v):
        # Go's fmtFloat: +Inf keeps its sign unless the space flag asks for a space; NaN
        # shows a sign only when a flag asks for one
        sign = "+" if "+" in flags else " " if " " in flags else ""
        text = "-Inf" if v < 0 else (sign or "+") + "Inf" if v > 0 else sign + "NaN"
    elif verb == "v" or (verb in "gG" and prec is None):
        text = go_value(v)
        if verb == "G":
            text = text.replace("e", "E")
        if flags and "+" in flags and not text.startswith(("-", "+")):
            text = "+" + text
    else:
        spec = "".join(f for f in "+ " if f in flags)
        spec += "." + (prec if prec is not None else "6") + verb
        text = format(v, spec)
    if width:
        w = int(width)
        if "-" in flags:
            text = text.ljust(w)
        elif "0" in flags and text[:1] in "+-" and (v == v and not math.isinf(v)):
            text = text[0] + text[1:].rjust(w - 1, "0")
        elif "0" in flags and v == v and not math.isinf(v):
            text = text.rjust(w, "0")
        else:
            text = text.rjust(w)
    return text


def _g4(v: float) -> str:
    """Go's ``%.4g``."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:.4g}"


def humanize(v: float) -> str:
    """Prometheus' ``humanize``: SI prefixes, 4 significant digits."""
    if v == 0 or v != v or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize_1024(v: float) -> str:
    """Prometheus' ``humanize1024``: binary prefixes (``ki``, ``Mi``...)."""
    if abs(v) <= 1 or v != v or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_duration(v: float) -> str:
    """Prometheus' ``humanizeDuration`` of seconds (``1d 2h 3m 4s``, ``1.5s``, ``20ms``)."""
    if v != v or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        if v >= 2**63:
            return f"{sign}{_g4(v)}s"
        duration = int(v)
        seconds = duration % 60
        minutes = (duration // 60) % 60
        hours = (duration // 3600) % 24
        days = duration // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v: float) -> str:
    """Prometheus' ``humanizePercentage`` of a ratio (``0.1234`` -> ``12.34%``)."""
    return _g4(v * 100) + "%"


_FUNCTIONS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanize1024": humanize_1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
}

_NAME = r"[A-Za-z_][\w.]*"
_VALUE = r"(?:\$value|\.Value)"
_LABEL = rf"(?:\$labels|\.Labels)\.(?P<label>{_NAME})"
_EXTERNAL = rf"\$externalLabels\.(?P<external>{_NAME})"
_FUNC = "|".join(_FUNCTIONS)
# Go's trim markers: `{{- ` and ` -}}` (the dash beside one of these spaces) drop the
# white space of the text before and after the action
_GO_SPACE = " \t\r\n"
_GO = re.compile(
    r"\{\{(?:-[ \t\r\n])?\s*(?:"
    rf"(?P<value>{_VALUE})(?:\s*\|\s*(?:(?P<pipe>{_FUNC})"
    rf"|printf\s+\"(?P<pfmt>[^\"\\{{}}]{{0,80}})\"))?"
    rf"|(?P<call>{_FUNC})\s+{_VALUE}"
    rf"|printf\s+\"(?P<fmt>[^\"\\{{}}]{{0,80}})\"\s+{_VALUE}"
    rf"|{_LABEL}"
    rf"|{_EXTERNAL}"
    r"|(?P<url>\$externalURL)"
    r")\s*?(?:[ \t\r\n]-)?\}\}"
)
_BOTMON = re.compile(
    r"\{\s*(?P<var>value|rule|\$value|labels\[(?P<q>['\"]?)(?P<blabel>[^\]'\"{}]{1,200})(?P=q)\]"
    r"|\$?labels\.(?P<dlabel>[A-Za-z_][\w.]{0,200}))(?::(?P<spec>[^{}]{0,20}))?\s*\}"
)
_ANY = re.compile(f"(?:{_GO.pattern})|(?:{_BOTMON.pattern})")
_SPEC = re.compile(r"^(?P<flags>[-+ 0]*)(?P<width>\d{1,2})?(?:\.(?P<prec>\d{1,2}))?"
                   r"(?P<verb>[fFeEgG%])?$")


def _label(labels: Mapping[str, str], name: str) -> str:
    found = labels.get(name)
    if found is None:
        from otel_botmon.alerting.promnames import prom_label

        wanted = prom_label(name)
        for key, value in labels.items():
            if prom_label(str(key)) == wanted:
                return str(value)
        return ""
    return str(found)


def _python_spec(value: float, spec: str) -> str:
    m = _SPEC.match(spec)
    if m is None:
        return go_value(value)
    verb = m.group("verb") or "g"
    if verb == "%":
        return _one(value * 100, m.group("flags"), m.group("width"), m.group("prec"), "f") + "%"
    return _one(value, m.group("flags"), m.group("width"),
                m.group("prec") if m.group("prec") is not None or verb not in "gG" else None,
                verb)


_ACTION = re.compile(r"\{\{.{0,200}?\}\}", re.S)


def unsupported_action(template: str) -> str | None:
    """The first ``{{ ... }}`` action of ``template`` that :func:`render_template` does
    not render (``if``, ``with``, ``range``, other functions...), or
    None. A rule file that uses one is refused rather than sending the action's text."""
    for match in _ACTION.finditer(template):
        go = _GO.fullmatch(match.group(0))
        if go is None or go.group("label") == "__name__":
            # Prometheus' `$labels.__name__` is the metric name, which botmon's alert
            # series do not carry: refused rather than rendered empty
            return match.group(0)
        fmt = go.group("fmt") or go.group("pfmt")
        if fmt is not None and go_printf(fmt, 1.0) is None:
            # a verb other than one float's (%d, %s, %x ...), two of them, or Go's
            # alternate form: Go prints what botmon cannot reproduce
            return match.group(0)
    return None


@dataclass(frozen=True)
class Externals:
    """What Prometheus' templates call ``$externalLabels`` and ``$externalURL``: the
    labels and URL of the server that evaluates the rules (a promtool test group's
    ``external_labels`` and ``external_url``). Empty in-process unless given."""

    labels: Mapping[str, str] = field(default_factory=dict)
    url: str = ""


NO_EXTERNALS: Final = Externals()


def render_template(
    template: str, *, value: float | None, labels: Mapping[str, str], rule: str = "",
    externals: Externals = NO_EXTERNALS,
) -> str:
    """Fill ``template`` (either notation) with ``value``, the series' ``labels`` and
    ``externals`` (``$externalLabels.x``, ``$externalURL``).

    Never raises; ``value`` None renders as an empty string.
    """
    if "{" not in template:
        return template

    def number(render: Callable[[float], str]) -> str:
        return "" if value is None else render(value)

    def go(match: re.Match[str]) -> str:
        if match.group("label") is not None:
            return _label(labels, match.group("label"))
        if match.group("external") is not None:
            return str(externals.labels.get(match.group("external"), ""))
        if match.group("url") is not None:
            return externals.url
        func = match.group("pipe") or match.group("call")
        if func is not None:
            return number(_FUNCTIONS[func])
        fmt = match.group("fmt") or match.group("pfmt")
        if fmt is not None:
            if value is None:
                return ""
            text = go_printf(fmt, value)
            return match.group(0) if text is None else text
        return number(go_value)

    def botmon(match: re.Match[str]) -> str:
        label = match.group("blabel") or match.group("dlabel")
        if label is not None:
            return _label(labels, label)
        if match.group("var") == "rule":
            return rule
        spec = match.group("spec")
        if spec:
            return number(lambda v: _python_spec(v, spec))
        return number(go_value)

    def substitute(match: re.Match[str]) -> str:
        return botmon(match) if match.group("var") is not None else go(match)

    out: list[str] = []
    pos = 0
    trim_next = False
    for match in _ANY.finditer(template):
        text = template[pos:match.start()]
        if trim_next:
            text = text.lstrip(_GO_SPACE)
        whole = match.group(0)
        go_action = match.group("var") is None
        if go_action and whole.startswith("{{-"):
            text = text.rstrip(_GO_SPACE)
        out.append(text)
        out.append(substitute(match))
        trim_next = go_action and whole.endswith("-}}")
        pos = match.end()
    text = template[pos:]
    out.append(text.lstrip(_GO_SPACE) if trim_next else text)
    return "".join(out)
