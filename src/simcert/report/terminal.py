"""Terminal rendering: rich tables for results and model summaries, plain text for pipes, a live progress view.

Everything here takes plain dicts (a certificate, a result's `to_dict()`, `Network.summary()`), so a saved
certificate renders exactly like a fresh result. Only the CLI calls these functions; they write to the
`rich.console.Console` they are given.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = [
    "VERDICT_STYLES",
    "fmt_num",
    "fmt_shape",
    "plain_result",
    "render_result",
    "render_model_info",
    "render_demo_summary",
    "compress_summary_line",
    "SearchProgress",
    "CertifyProgressView",
]

VERDICT_STYLES = {"holds": "bold green", "violated": "bold red", "unknown": "bold yellow"}
_VECTOR_PREVIEW = 8


def fmt_num(v: Any, digits: int = 6) -> str:
    """A number in `digits` significant digits; the strings "inf"/"-inf"/"nan" and None pass through."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    try:
        return f"{float(v):.{digits}g}"
    except (TypeError, ValueError):
        return str(v)


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _vector(values: Sequence[Any] | None) -> str:
    if values is None:
        return "-"
    vals = list(values)
    shown = ", ".join(fmt_num(v, 5) for v in vals[:_VECTOR_PREVIEW])
    more = f", ... ({len(vals)} values)" if len(vals) > _VECTOR_PREVIEW else ""
    return f"[{shown}{more}]"


def _method_name(method: Any) -> str:
    if isinstance(method, dict):
        return str(method.get("name", "?"))
    return str(method)


def _property_text(prop: Any) -> str:
    if not isinstance(prop, dict):
        return str(prop)
    kind = prop.get("type", "?")
    if kind == "eps-equivalence":
        outs = prop.get("outputs")
        which = "all outputs" if outs is None else "outputs " + ", ".join(str(o) for o in outs)
        return f"|g - f| <= {fmt_num(prop.get('eps'))} on {which}"
    if kind == "top1":
        return "top-1: argmax g = argmax f"
    if kind == "delta-top1":
        return f"delta-top-1 (delta = {fmt_num(prop.get('delta'))})"
    if kind == "rsm":
        return f"relative safety margin, label {prop.get('label')}"
    return str(kind)


def _stat_items(d: dict[str, Any]) -> list[tuple[str, str]]:
    stats = d.get("stats") or {}
    items = []
    if "time_s" in stats:
        items.append(("time", f"{float(stats['time_s']):.2f} s"))
    for key, label in (("boxes_bounded", "boxes bounded"), ("steps", "search steps"), ("frontier", "open boxes")):
        if key in stats:
            items.append((label, fmt_num(stats[key])))
    for key in ("confidence", "samples", "violation_rate_upper", "proven_fraction", "deviation_quantile_upper",
                "expected_deviation_upper"):
        value = d.get(key)
        if isinstance(value, dict) and "total" in value:  # certify's samples: {"total", "violations", ...}
            extra = f" ({value['violations']} violations)" if "violations" in value else ""
            items.append((key.replace("_", " "), f"{fmt_num(value['total'])}{extra}"))
        elif value is not None:
            items.append((key.replace("_", " "), fmt_num(value)))
    if "proven_fraction" not in d and "proven_fraction" in stats:
        items.append(("proven fraction", fmt_num(stats["proven_fraction"])))
    return items


def plain_result(d: dict[str, Any]) -> str:
    """The result as plain `key: value` lines for pipes: verdict first, then one line per bound row.

    >>> print(plain_result({"verdict": "holds", "method": {"name": "diff"},
    ...                     "bounds": [{"row": "g_0 - f_0", "lower": -0.5, "upper": 0.25}]}))
    verdict: holds
    method: diff
    bound g_0 - f_0: [-0.5, 0.25]
    """
    lines = [f"verdict: {d.get('verdict', 'unknown')}"]
    if d.get("method") is not None:
        lines.append(f"method: {_method_name(d['method'])}")
    for b in d.get("bounds") or []:
        lines.append(f"bound {b.get('row')}: [{fmt_num(b.get('lower'), 17)}, {fmt_num(b.get('upper'), 17)}]")
    ce = d.get("counterexample")
    if ce:
        lines.append(f"counterexample input: {ce.get('input')}")
        lines.append(f"counterexample f: {ce.get('f')}")
        lines.append(f"counterexample g: {ce.get('g')}")
    for label, value in _stat_items(d):
        lines.append(f"{label}: {value}")
    return "\n".join(lines)


def render_result(console: Console, d: dict[str, Any], title: str = "simcert") -> None:
    """A verify/certify result (or certificate) as a rich summary: verdict, property, bounds, counterexample."""
    verdict = str(d.get("verdict", "unknown"))
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("verdict", f"[{VERDICT_STYLES.get(verdict, 'bold')}]{verdict}[/]")
    if d.get("property") is not None:
        head.add_row("property", _property_text(d["property"]))
    if d.get("method") is not None:
        head.add_row("method", _method_name(d["method"]))
    for label, value in _stat_items(d):
        head.add_row(label, value)
    console.print(f"[bold]{title}[/]")
    console.print(head)
    bounds = d.get("bounds") or []
    if bounds:
        table = Table(title="certified bounds over the region", title_justify="left")
        table.add_column("spec")
        table.add_column("lower", justify="right")
        table.add_column("upper", justify="right")
        for b in bounds:
            table.add_row(str(b.get("row")), fmt_num(b.get("lower")), fmt_num(b.get("upper")))
        console.print(table)
    ce = d.get("counterexample")
    if ce:
        table = Table(title="counterexample (confirmed on both networks)", title_justify="left")
        table.add_column("")
        table.add_column("values")
        table.add_row("input", _vector(ce.get("input")))
        table.add_row("f(x)", _vector(ce.get("f")))
        table.add_row("g(x)", _vector(ce.get("g")))
        console.print(table)


def _domain_text(domain: Any) -> str:
    if domain is None:
        return "not stated"
    lower, upper = domain
    return f"{_vector(lower)} .. {_vector(upper)}"


def render_model_info(
    console: Console,
    path: str,
    summary: dict[str, Any],
    shapes: Sequence[Sequence[int]],
    input_domain: Any = None,
    raw_domain: Any = None,
) -> None:
    """`simcert info`: one table of layers with output shapes, one of facts from `Network.summary()`."""
    console.print(f"[bold]{path}[/]", soft_wrap=True)
    layers = Table()
    layers.add_column("#", justify="right")
    layers.add_column("layer")
    layers.add_column("output shape")
    layers.add_row("", "input", fmt_shape(shapes[0]))
    for i, (desc, shape) in enumerate(zip(summary["layers"], shapes[1:])):
        layers.add_row(str(i), str(desc), fmt_shape(shape))
    console.print(layers)
    facts = Table(show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("name", str(summary.get("name")))
    facts.add_row("input shape", fmt_shape(summary["input_shape"]))
    facts.add_row("outputs", str(summary["output_size"]))
    facts.add_row("parameters", f"{summary['parameters']:,}")
    facts.add_row("ReLU neurons", f"{summary['relus']:,}")
    facts.add_row("input domain", _domain_text(input_domain))
    if raw_domain is not None:
        facts.add_row("raw input domain (.nnet)", _domain_text(raw_domain))
    facts.add_row("weight sparsity", f"{100 * float(summary['weight_sparsity']):.2f}% zeros")
    facts.add_row("distinct weight values", f"{summary['distinct_weight_values']:,}")
    facts.add_row("float16-exact weights", "yes" if summary["float16_exact"] else "no")
    facts.add_row("activation quantization", "yes" if summary["activation_quantized"] else "no")
    facts.add_row("trailing softmax (stripped)", "yes" if summary["softmax_output"] else "no")
    console.print(facts)


def render_demo_summary(console: Console, rows: Iterable[dict[str, Any]], title: str) -> None:
    """The demo's table: one row per twin with its verdict, what is known of max |g - f|, and the time."""
    table = Table(title=title, title_justify="left")
    for col in ("twin", "verdict", "max |g - f| on the region", "time"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for r in rows:
        v = r["verdict"]
        table.add_row(r["twin"], f"[{VERDICT_STYLES.get(v, 'bold')}]{v}[/]", r["deviation"], f"{r['time_s']:.2f} s")
    console.print(table)


def compress_summary_line(src: str, out: str, options: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """One line describing what `simcert compress` wrote.

    >>> compress_summary_line("a.onnx", "b.onnx", "int8", {"parameters": 10, "distinct_weight_values": 9},
    ...                       {"parameters": 10, "distinct_weight_values": 5, "weight_sparsity": 0.2})
    'wrote b.onnx: int8 twin of a.onnx, 10 parameters (was 10), 5 distinct weight values (was 9), 20.0% zero weights'
    """
    return (
        f"wrote {out}: {options} twin of {src}, {after['parameters']:,} parameters (was {before['parameters']:,}), "
        f"{after['distinct_weight_values']:,} distinct weight values (was {before['distinct_weight_values']:,}), "
        f"{100 * float(after.get('weight_sparsity', 0.0)):.1f}% zero weights"
    )


class SearchProgress:
    """A live progress view of a branch-and-bound search on stderr: proven fraction, open boxes, best bounds,
    elapsed time. Use as a context manager and pass the instance as the `progress=` callback."""

    def __init__(self, console: Console, rows: Sequence[str] | None = None, refresh_s: float = 0.1) -> None:
        self.console = console
        self.rows = list(rows or [])
        self.refresh_s = refresh_s
        self._last = 0.0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("proven"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("open boxes {task.fields[frontier]}"),
            TextColumn("{task.fields[bounds]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("search", total=1.0, frontier="1", bounds="")

    def __enter__(self) -> "SearchProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def __call__(self, state: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.refresh_s and not getattr(state, "done", False):
            return
        self._last = now
        try:
            lo = [float(v) for v in state.lower.reshape(-1).tolist()]
            hi = [float(v) for v in state.upper.reshape(-1).tolist()]
        except AttributeError:
            lo, hi = [], []
        bounds = ""
        if lo:
            worst = max(range(len(lo)), key=lambda i: max(abs(lo[i]), abs(hi[i])))
            name = self.rows[worst] if worst < len(self.rows) else f"row {worst}"
            bounds = f"{name} in [{fmt_num(lo[worst], 4)}, {fmt_num(hi[worst], 4)}]"
        self._progress.update(
            self._task,
            completed=float(getattr(state, "proven_fraction", 0.0)),
            frontier=str(getattr(state, "frontier", "?")),
            bounds=bounds,
        )


class CertifyProgressView:
    """A live progress view of `simcert certify` on stderr, in the style of `SearchProgress`: while proving,
    the bar is the proven fraction; while sampling, the samples drawn towards the next look (or the time
    budget). Also shown: strata, samples and violations, and the current rate bound (the last look's, else
    the proofs' own `refuted + open mass`). Use as a context manager; pass the instance as `progress=`."""

    def __init__(self, console: Console, refresh_s: float = 0.1) -> None:
        self.console = console
        self.refresh_s = refresh_s
        self._last = 0.0
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("proving", total=1.0, status="")

    def __enter__(self) -> "CertifyProgressView":
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    @staticmethod
    def status(state: Any) -> str:
        """The status text of one `CertifyProgress` report.

        >>> from types import SimpleNamespace as S
        >>> CertifyProgressView.status(S(phase="sampling", proven_fraction=0.9, strata=12, samples=4096,
        ...     violations=2, violation_rate_upper=None, proof_rate_upper=0.1, target_samples=8192))
        'proven 0.9 | strata 12 | samples 4,096/8,192 | violations 2 | rate <= 0.1 (proofs)'
        """
        parts = [f"proven {fmt_num(state.proven_fraction, 4)}", f"strata {state.strata:,}"]
        if state.phase != "partition":
            target = getattr(state, "target_samples", None)
            parts.append(f"samples {state.samples:,}" + (f"/{target:,}" if target else ""))
            parts.append(f"violations {state.violations:,}")
        if state.violation_rate_upper is not None:
            parts.append(f"rate <= {fmt_num(state.violation_rate_upper, 3)}")
        else:
            parts.append(f"rate <= {fmt_num(getattr(state, 'proof_rate_upper', 1.0), 3)} (proofs)")
        return " | ".join(parts)

    def __call__(self, state: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.refresh_s and state.phase != "done":
            return
        self._last = now
        budget = getattr(state, "budget", None)
        target = getattr(state, "target_samples", None)
        if state.phase == "partition":
            desc, total, done = "proving", 1.0, float(state.proven_fraction)
        elif budget:
            desc, total, done = "sampling", float(budget), min(float(state.elapsed), float(budget))
        elif target:
            desc, total, done = "sampling", float(target), float(min(state.samples, target))
        else:
            desc, total, done = "sampling", 1.0, 1.0 if state.phase == "done" else 0.0
        if state.phase == "done":
            desc = "done"
        self._progress.update(self._task, description=desc, total=total, completed=done, status=self.status(state))
