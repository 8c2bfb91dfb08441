"""The report's plain-words sentences: a certificate's verdict said in one or two sentences, and the number
formatting they use (shared by the HTML page)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .plots import finite

__all__ = ["verdict_sentence", "fmt_num", "fmt_pct", "fmt_vec", "cert_eps"]


def fmt_num(v: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits ("-" for a missing one, "inf"/"-inf" spelled out)."""
    x = finite(v)
    if math.isnan(x):
        return "-" if v is None else str(v)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def fmt_pct(v: Any) -> str:
    """A fraction as a percentage with 3 significant digits."""
    x = finite(v)
    return "-" if math.isnan(x) else f"{100 * x:.3g}%"


def fmt_vec(v: Any, n: int = 6) -> str:
    """The first `n` entries of a vector, in parentheses."""
    vals = list(v or [])
    s = ", ".join(fmt_num(a, 4) for a in vals[:n])
    return f"({s}{', ...' if len(vals) > n else ''})"


def cert_eps(cert: dict[str, Any]) -> float | None:
    """The certificate's eps (None for properties without one)."""
    prop = cert.get("property") or {}
    return finite(prop["eps"]) if isinstance(prop, dict) and prop.get("eps") is not None else None


def _max_abs_bound(cert: dict[str, Any]) -> float:
    vals = [abs(finite(b.get(k))) for b in cert.get("bounds") or [] for k in ("lower", "upper")]
    return max(vals) if vals else math.nan


def _ce_text(ce: dict[str, Any] | None, eps: float | None) -> str:
    if not ce:
        return ""
    f, g = np.asarray(ce.get("f", []), float), np.asarray(ce.get("g", []), float)
    where = f"at x = {fmt_vec(ce.get('input'))}"
    if f.size and f.shape == g.shape:
        k = int(np.argmax(np.abs(g - f)))
        return f"{where} output {k} of g differs from f by {abs(g[k] - f[k]):.4g}" + (
            f" > eps = {eps:g}" if eps is not None else "")
    return where


def verdict_sentence(cert: dict[str, Any]) -> str:
    """The verdict of a certificate in one or two plain sentences (no jargon beyond |g - f| and eps)."""
    verdict, command = cert.get("verdict"), cert.get("command")
    prop = cert.get("property") or {}
    kind = prop.get("type") if isinstance(prop, dict) else None
    eps = cert_eps(cert)
    ce = cert.get("counterexample")
    if command == "certify":
        conf = fmt_pct(cert.get("confidence"))
        rate, up, lo = cert.get("rate"), cert.get("violation_rate_upper"), cert.get("violation_rate_lower")
        dist = ((cert.get("distribution") or {}).get("spec") or "uniformly").replace("uniform", "uniformly")
        base = (f"With {conf} confidence, the twin g differs from the reference f by more than {fmt_num(eps)} on at "
                f"most {fmt_pct(up)} of inputs drawn {dist} from the region")
        if verdict == "holds":
            tail = f" (target {fmt_pct(rate)})." if rate is not None else "."
            return ("Certified (probabilistic). " + base + tail + f" {fmt_pct(cert.get('proven_fraction'))} of the "
                    "region is proven outright. This is a statement about random inputs, not a proof for every input.")
        if verdict == "violated":
            return (f"Rejected. With {conf} confidence more than the target {fmt_pct(rate)} of inputs violate "
                    f"|g - f| <= {fmt_num(eps)} (at least {fmt_pct(lo)}); for example " + _ce_text(ce, eps) + ".")
        return "Not decided. " + base + f", which does not settle the target rate {fmt_pct(rate)}."
    if kind in ("rsm", "rsm-dataset") or command == "rsm":
        return _rsm_sentence(cert)
    if kind in ("top1", "delta-top1"):
        what = "the same class as the reference f" + (
            f" wherever f is at least {fmt_num(prop.get('delta'))} confident" if kind == "delta-top1" else "")
        if verdict == "holds":
            return f"Proven: on every input in the region, the twin g picks {what}."
        if verdict == "violated" and ce:
            return (f"Violated: at x = {fmt_vec(ce.get('input'))} the reference picks class "
                    f"{int(np.argmax(ce.get('f')))} and the twin picks {int(np.argmax(ce.get('g')))}.")
        return "Not decided: no proof and no counterexample within the time limit."
    if kind == "eps-equivalence":
        outs = prop.get("outputs")
        which = "every output" if outs is None else "outputs " + ", ".join(str(o) for o in outs)
        if verdict == "holds":
            return (f"Proven: for every input in the region, {which} of the twin g stays within {fmt_num(eps)} of "
                    f"the reference f (largest certified |g - f|: {fmt_num(_max_abs_bound(cert))}).")
        if verdict == "violated":
            return "Violated: " + _ce_text(ce, eps) + " (confirmed by running both networks)."
        pf = (cert.get("stats") or {}).get("proven_fraction")
        return (f"Not decided: no proof and no counterexample within the time limit; the certified bound on "
                f"|g - f| is {fmt_num(_max_abs_bound(cert))} against eps = {fmt_num(eps)}"
                + (f", and {fmt_pct(pf)} of the region is proven." if pf is not None else "."))
    return {"holds": "The property holds.", "violated": "The property is violated.",
            "unknown": "The property was not decided."}.get(str(verdict), str(verdict))


def _rsm_sentence(cert: dict[str, Any]) -> str:
    summ = cert.get("summary")
    if isinstance(summ, dict) and "implications" in summ:
        n = summ.get("samples")
        imp = summ.get("implications") or {}
        gf, fg = imp.get("g=>f", {}), imp.get("f=>g", {})
        return (f"On {n} balls of radius {fmt_num(summ.get('radius'))} around test inputs: g => f (the reference "
                f"keeps at least the twin's safety margin for the label, so it is right wherever the twin is) is "
                f"proven on {fmt_pct(gf.get('proven'))} of them and refuted by a confirmed input on "
                f"{fmt_pct(gf.get('refuted'))}; the converse f => g is proven on {fmt_pct(fg.get('proven'))} and refuted "
                f"on {fmt_pct(fg.get('refuted'))}.")
    imp = cert.get("implications") or {}
    return (f"Relative safety margins for label {(cert.get('property') or {}).get('label')}: g => f is "
            f"{imp.get('g=>f', '?')}, f => g is {imp.get('f=>g', '?')} (verdict: {cert.get('verdict')}).")
