"""``report.html``: one self-contained page per run directory (figures embedded as data URIs).

Each study's :class:`~nngeom.studies.Section` becomes a section with its summary, its key numbers
beside the paper's, its figures (beside the paper's redrawn figure where given) and its tables.
The run's config, versions and any failed tasks close the page. The page has no external
resource: it opens the same from disk, from a mail attachment or from a CI artifact.

Building holds the run directory's lock (a running ``reproduce`` elsewhere is an error naming its
pid), skips and lists malformed rows of ``results.sqlite``, and writes without following links:
figures are staged and moved in (:meth:`RunDir.summarize_into`), the page is replaced atomically.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import studies as registry
from ._errors import RunError, StudyError
from ._rundir import RunDir, atomic_write, load_results
from .studies import Figure, Section, Study
from .studies._verdicts import Outcome, Verdict

__all__ = ["build_report"]

CSS = """
:root { --fg:#1d2433; --muted:#5b6478; --line:#d9dee8; --accent:#2f5fb3; --bg:#fbfcfe; }
* { box-sizing: border-box; }
body { font: 15px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; }
header { background: #14213d; color: #fff; padding: 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; letter-spacing: .2px; }
header p { margin: 0; color: #c9d3ea; }
nav { padding: 10px 48px; background: #eef2f9; border-bottom: 1px solid var(--line); }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; font-weight: 600; }
main { max-width: 1180px; margin: 0 auto; padding: 12px 48px 60px; }
section { margin-top: 36px; padding-top: 8px; border-top: 3px solid var(--accent); }
h2 { font-size: 22px; margin: 10px 0 2px; }
.cite { color: var(--muted); font-style: italic; margin: 0 0 12px; }
.summary { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
table { border-collapse: collapse; margin: 14px 0; background: #fff; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; color: var(--fg); }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f1f4fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.key td:first-child { font-weight: 600; }
.outcome-ok { color: #1a7f37; font-weight: 600; }
.outcome-partly { color: #8a6d00; font-weight: 600; }
.outcome-no { color: #b35900; font-weight: 600; }
.outcome-refuted { color: #b42318; font-weight: 600; }
.outcome-beyond { color: #1f5fa8; font-weight: 600; }
.outcome-notrun { color: #666; font-weight: 600; }
.departures { margin: 0.5em 0 1em; }
figure { margin: 18px 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
figure .pair { display: flex; gap: 12px; flex-wrap: wrap; align-items: flex-start; }
figure .pair > div { flex: 1 1 420px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 14px; margin-top: 6px; }
.paperlabel { font-size: 12px; text-transform: uppercase; color: var(--muted); letter-spacing: .5px; }
.warn { background: #fff4e5; border: 1px solid #f0c36d; border-radius: 8px; padding: 10px 14px; }
.fail { background: #fdecec; border: 1px solid #e5a3a3; border-radius: 8px; padding: 10px 14px; }
pre { white-space: pre-wrap; font-size: 12px; }
footer { color: var(--muted); font-size: 13px; }
"""


# floats with a magnitude in [PLAIN_MIN, PLAIN_MAX) print in plain decimals, others in e-notation
PLAIN_MIN, PLAIN_MAX = 1e-3, 1e6


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == 0 or PLAIN_MIN <= abs(value) < PLAIN_MAX:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f'<img src="data:{mime};base64,{data}" alt="{_esc(path.name)}">'


def _figure(fig: Figure) -> str:
    if not Path(fig.path).is_file():
        return f'<div class="warn">figure missing: {_esc(fig.path)}</div>'
    ours = _image(Path(fig.path))
    svg = Path(fig.path).with_suffix(".svg")
    svg_note = (
        f' (<a href="figures/{_esc(svg.parent.name)}/{_esc(svg.name)}">SVG</a>)'
        if svg.is_file()
        else ""
    )
    if fig.paper_path is not None and Path(fig.paper_path).is_file():
        body = (
            '<div class="pair"><div><div class="paperlabel">nngeom</div>' + ours + "</div>"
            '<div><div class="paperlabel">paper (redrawn from its reported numbers)</div>'
            + _image(Path(fig.paper_path))
            + "</div></div>"
        )
    else:
        body = ours
    paper = f"<br><b>Paper:</b> {_esc(fig.paper)}" if fig.paper else ""
    return f"<figure>{body}<figcaption>{_esc(fig.caption)}{svg_note}{paper}</figcaption></figure>"


def _table(caption: str, header, rows, cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(
                f'<td class="num">{_esc(_fmt(v))}</td>' if num else f"<td>{_esc(_fmt(v))}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return (
        f"<table{cls_attr}><caption>{_esc(caption)}</caption><tr>{head}</tr>{''.join(body)}</table>"
    )


def _verdict(v: str) -> str:
    """A key number's free-text verdict (studies without typed verdicts), not coloured: its
    colour would be read from words, and only a :class:`Verdict`'s outcome is data."""
    return _esc(v)


# outcome -> CSS class: each outcome of studies._verdicts.Outcome has its colour
_OUTCOME_CLASS = {
    Outcome.REPRODUCED: "outcome-ok",
    Outcome.PARTLY: "outcome-partly",
    Outcome.NOT_REPRODUCED: "outcome-no",
    Outcome.REFUTED: "outcome-refuted",
    Outcome.BEYOND: "outcome-beyond",
    Outcome.NOT_RUN: "outcome-notrun",
}


def _verdicts(verdicts: Sequence[Verdict]) -> str:
    rows = "".join(
        f"<tr><td>{_esc(v.claim.text)}</td><td>{_esc(v.claim.where)}</td>"
        f"<td class='num'>{_esc(v.measured.text())}</td><td>{_esc(v.criterion)}</td>"
        f'<td><span class="{_OUTCOME_CLASS[v.outcome]}">{_esc(v.outcome.value)}</span>'
        f"<br><small>{_esc(v.why)}</small></td></tr>"
        for v in verdicts
    )
    return (
        '<table class="key"><caption>Verdicts: each outcome follows from its criterion</caption>'
        "<tr><th>the paper's claim</th><th>where</th><th>measured [interval] (n)</th>"
        "<th>criterion</th><th>outcome</th></tr>" + rows + "</table>"
    )


def _section(name: str, section: Section) -> str:
    parts = [f'<section id="{_esc(name)}"><h2>{_esc(section.title)}</h2>']
    parts.append(f'<p class="cite">{_esc(section.paper)}</p>')
    parts.append(f'<div class="summary">{_esc(section.summary)}</div>')
    if section.verdicts:
        parts.append(_verdicts(section.verdicts))
    if section.departures:
        items = "".join(f"<li>{_esc(d)}</li>" for d in section.departures)
        parts.append(
            f'<div class="departures"><b>Departures from the paper</b><ul>{items}</ul></div>'
        )
    if section.key_numbers:
        rows = "".join(
            f"<tr><td>{_esc(k.label)}</td><td class='num'>{_esc(k.ours)}</td>"
            f"<td class='num'>{_esc(k.paper)}</td><td>{_verdict(k.verdict)}</td></tr>"
            for k in section.key_numbers
        )
        parts.append(
            '<table class="key"><caption>Key numbers</caption>'
            "<tr><th>quantity</th><th>nngeom</th><th>paper</th><th>verdict</th></tr>"
            + rows
            + "</table>"
        )
    for fig in section.figures:
        parts.append(_figure(fig))
    for t in section.tables:
        parts.append(_table(t.caption, t.header, t.rows))
    for note in section.notes:
        parts.append(f'<p class="warn">{_esc(note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def build_report(path: str | Path, studies: Sequence[Study] = ()) -> Path:
    """(Re)build ``path/report.html`` from the run directory's config and results; returns its path.

    ``studies`` adds studies that are not registered in ``nngeom.studies`` (your own).
    """
    run = RunDir(path)
    if not run.exists():
        raise RunError(
            f"{run.path} is not a run directory (no config.json); run `nngeom reproduce` first"
        )
    try:
        with run.lock("building its report"):
            return _build(run, studies)
    finally:
        run.close()


def _build(run: RunDir, studies: Sequence[Study]) -> Path:
    config = run.read_config()
    if isinstance(config.get("analysis"), dict):
        raise RunError(
            f"{run.path} holds an `nngeom analyze` run: rebuild its report with the same "
            "`nngeom analyze MODEL --data FILE --out DIR --resume` (nothing is recomputed)"
        )
    scale, seed = config.get("scale", "quick"), int(config.get("seed", 0))
    known = {**registry.available(), **{s.name: s for s in studies}}
    nav, body, errors = [], [], []
    n_rows = len(run.results())
    malformed = dict(run.malformed)
    if malformed:
        rows = [(k, why) for k, why in sorted(malformed.items())]
        body.append(
            '<section id="malformed"><h2>Unreadable results</h2><div class="warn">'
            + _table(
                f"{len(rows)} rows of {run.db_path.name} cannot be read and were skipped; "
                f"`nngeom reproduce ... --out {run.path} --resume` runs their tasks again",
                ["key", "problem"],
                rows,
            )
            + "</div></section>"
        )
    for name in config.get("studies", []):
        study = known.get(name)
        if study is None:
            body.append(
                f'<section id="{_esc(name)}"><h2>{_esc(name)}</h2><p class="warn">this nngeom '
                "has no study of that name; its results are kept but not shown</p></section>"
            )
            continue
        nav.append(f'<a href="#{_esc(name)}">{_esc(study.title)}</a>')
        pairs, total = load_results(run, study, scale, seed)
        if len(pairs) < total:
            body.append(
                f'<section id="{_esc(name)}"><h2>{_esc(study.title)}</h2><p class="cite">{_esc(study.paper)}</p>'
                f'<p class="warn">{len(pairs)} of {total} tasks finished; complete the run with '
                f"<code>nngeom reproduce {_esc(name)} --scale {_esc(scale)} --out {_esc(run.path)} --resume</code>"
                "</p></section>"
            )
            continue
        try:
            section = run.summarize_into(
                name, lambda figdir, study=study, pairs=pairs: study.summarize(pairs, figdir)
            )
        except RunError:
            raise
        except Exception as exc:  # the page is still written; the error is raised after it
            errors.append(
                f"study {name!r} could not summarise its results: {type(exc).__name__}: {exc}"
            )
            body.append(
                f'<section id="{_esc(name)}"><h2>{_esc(study.title)}</h2>'
                f'<p class="fail">{_esc(errors[-1])}</p></section>'
            )
            continue
        body.append(_section(name, section))
    failures = run.failures()
    if failures:
        rows = [(s, json.dumps(t, sort_keys=True), e) for s, t, e in failures]
        body.append(
            '<section id="failures"><h2>Failed tasks</h2><div class="fail">'
            + _table(
                "failed tasks (after fixing the cause, run them again with --resume "
                "--retry-failed; a plain --resume skips them)",
                ["study", "config", "error"],
                rows,
            )
            + "</div></section>"
        )
    env = config.get("environment", {})
    cfg_rows = [
        (k, json.dumps(v) if isinstance(v, (list, dict)) else v)
        for k, v in sorted(config.items())
        if k != "environment"
    ]
    body.append(
        '<section id="run"><h2>Run</h2>'
        + _table("configuration", ["key", "value"], cfg_rows)
        + _table("versions and machine", ["key", "value"], sorted(env.items()))
        + f"<footer>{n_rows} task results in {_esc(run.db_path.name)}. "
        "Rebuild this page with <code>nngeom report DIR</code>.</footer></section>"
    )
    title = f"nngeom report — {', '.join(config.get('studies', []))} ({scale} scale)"
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>nngeom — geometry of neural networks</h1><p>{_esc(title)} · "
        f"nngeom {_esc(env.get('nngeom', '?'))} · torch {_esc(env.get('torch', '?'))} · "
        f"Python {_esc(env.get('python', '?'))}</p></header>"
        f"<nav>{''.join(nav)}<a href='#run'>Run</a></nav><main>{''.join(body)}</main></body></html>"
    )
    out = run.path / "report.html"
    atomic_write(out, page)
    if errors:
        raise StudyError("; ".join(errors) + f" (the rest of {out} was written)")
    return out
