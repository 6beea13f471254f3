"""``bestofl-report browse``: one self-contained HTML page per run to read every stored candidate.

    bestofl-report browse --store DIR [--store DIR ...] --out DIR [--generator G] [--settings ID] [--verifier V]
                          [--no-curve]

Writes ``DIR/index.html``: styles (``browse.css``), the script (``browse.js``), the data (JSON in a
``<script type="application/json">``) and the budget-curve PNG (a ``data:`` URI) all inline, so the file opens from
disk with nothing fetched; a Content-Security-Policy allows only the page's own script and style (by hash) and
``data:`` images. The selection is the report's (:func:`bestofl_models.report.data.build_data`: one generator, one
sampling-settings id, at most one verifier); a problem is shown once per target language it was asked in (the
store's ``uses``), routed as ``index.html#TASK/DOC_ID``. Each selection method's pick is
:func:`bestofl_models.selection.methods.select` over every stored candidate of the problem (the pool: every stored language),
so the overview's accuracy is the full-budget accuracy of those picks.

Model output, questions and ids are untrusted: the JSON escapes ``<``, ``>``, ``&``, U+2028 and U+2029 (no string
can close the script element), and the page writes data with ``textContent`` only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bestofl_tasks.languages import LANGUAGES

from ..selection.methods import METHODS, Scored, select
from ..store import CandidateStore, StoreError, damaged_store_error
from .data import Loaded, ReportData, build_data, is_correct, load_stores, sampling_settings

logger = logging.getLogger(__name__)

PAGE = "index.html"
HERE = Path(__file__).resolve().parent
#: Bumped when the embedded data's layout changes (the page's script reads it).
DATA_VERSION = 1


def browse_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bestofl-report browse",
        description="One self-contained HTML page (DIR/index.html, opens offline) with every stored candidate: "
        "accuracy per method and target language, a filterable problem list, and each problem's questions and "
        "candidates by language with scores, votes, the picks and the gold answer.")
    parser.add_argument("--store", action="append", required=True, metavar="DIR", help="candidate store (repeatable)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a previous one is replaced)")
    parser.add_argument("--generator", help="generator to show when the store holds several")
    parser.add_argument("--settings", metavar="ID", help="sampling-settings id when the store holds several")
    parser.add_argument("--verifier", help="verifier whose scores to show when the store holds several")
    parser.add_argument("--no-curve", dest="curve", action="store_false",
                        help="leave out the budget-curve image (it runs the report's estimators: ~1 min on a large "
                        "store)")
    return parser


# ---------------------------------------------------------------------------------------------- the data

def _source_of(problem_id: str) -> str | None:
    """The ``bestofl_tasks.data`` source whose ids look like ``problem_id`` (``mgsm-0042`` -> ``mgsm``)."""
    from bestofl_tasks import data as tasks_data

    stem = problem_id.rsplit("-", 1)[0]
    for source, prefix in tasks_data._ID_PREFIX.items():
        if prefix == stem:
            return source
    return None


class _Questions:
    """Questions of every language, by problem id, for the sources that load offline (packaged, local, generated)."""

    def __init__(self, languages: Sequence[str]):
        self.languages = tuple(languages)
        self.tables: dict[str, dict[str, dict] | str] = {}

    def _table(self, source: str) -> dict[str, dict] | str:
        """``{problem_id: parallel}`` or why the source's docs were not loaded."""
        if source in self.tables:
            return self.tables[source]
        from bestofl_tasks import data as tasks_data

        where = tasks_data.data_source(source)
        if where.startswith("hub:"):
            result: dict | str = (f"{source} is read from the Hugging Face Hub ({where[4:]}); browse never goes "
                                  f"online: set {tasks_data.DATA_DIR_ENV} to local files (docs/TASKS.md) to show it")
        else:
            result = f"{source}'s docs could not be loaded from {where}"
            for lang in ("en", *self.languages):
                try:
                    docs = tasks_data.load_docs(source, lang)
                except Exception as exc:  # noqa: BLE001 - any failure is a reason shown on the page
                    result = f"{source}'s docs could not be loaded from {where}: {exc}"
                    continue
                result = {doc["problem_id"]: doc["parallel"] for doc in docs}
                break
        self.tables[source] = result
        return result

    def get(self, problem_id: str) -> tuple[dict[str, str | None], str | None]:
        """``({lang: question or None}, reason)``: reason says why questions are missing (None: none missing)."""
        source = _source_of(problem_id)
        if source is None:
            return {}, ("not a problem of bestofl's own datasets (an lm-eval task's doc); the store keeps candidates, "
                        "not questions")
        table = self._table(source)
        if isinstance(table, str):
            return {}, table
        parallel = table.get(problem_id)
        if parallel is None:
            return {}, f"{problem_id} is not in {source}'s docs as loaded here"
        questions = {lang: parallel.get(lang) for lang in self.languages}
        absent = [lang for lang, q in questions.items() if q is None]
        reason = (f"{source} has no question in {', '.join(absent)} for this problem" if absent else None)
        return questions, reason


def _models(stores: Sequence[str]) -> dict[str, dict]:
    models: dict[str, dict] = {}
    for directory in stores:
        store = CandidateStore(directory, read_only=True)
        try:
            for model_id, model in store.models().items():
                models.setdefault(model_id, model)
        finally:
            store.close()
    return models


def _uses(stores: Sequence[str], keys: set[str]) -> list:
    uses = []
    for directory in stores:
        store = CandidateStore(directory, read_only=True)
        try:
            uses += [u for u in store.uses() if u.key in keys]
        except sqlite3.DatabaseError as exc:
            raise damaged_store_error(getattr(store, "path", directory), exc) from None
        finally:
            store.close()
    return uses


def page_data(loaded: Loaded, data: ReportData) -> dict:
    """What the page shows, as plain JSON-able data (the test compares it with the store)."""
    chosen = [c for c in loaded.candidates
              if c.lang is not None and c.generator_id == data.generator_id
              and sampling_settings(c.settings) == data.settings]
    problem_index = {pid: i for i, pid in enumerate(data.problem_ids)}
    chosen = [c for c in chosen if c.problem_id in problem_index]
    languages = list(data.languages)
    lang_index = {code: i for i, code in enumerate(languages)}
    scores = {k: s for (k, v), s in loaded.scores.items() if v == data.verifier_id} if data.verifier_id else {}

    by_problem: list[list] = [[] for _ in data.problem_ids]
    for c in chosen:
        by_problem[problem_index[c.problem_id]].append(c)
    for group in by_problem:
        group.sort(key=lambda c: (lang_index[c.lang], c.sample_idx))

    # every (task, doc_id, target) that used one of the problem's candidates: one entry per (problem, target)
    keys_problem = {(c.key, c.problem_id) for c in chosen}
    entries: dict[tuple[int, str], dict] = {}
    routes: dict[str, tuple[int, str]] = {}
    for use in _uses(loaded.stores, {c.key for c in chosen}):
        if (use.key, use.problem_id) not in keys_problem or use.target_lang is None:
            continue
        entry_key = (problem_index[use.problem_id], use.target_lang)
        entries.setdefault(entry_key, {"task": use.task, "doc": use.doc_id})
        routes.setdefault(f"{use.task}/{use.doc_id}", entry_key)
    # a problem never recorded with a target (should not happen): show it under its candidates' first target
    for p, group in enumerate(by_problem):
        if not any(key[0] == p for key in entries):
            first = group[0]
            entries[(p, first.target_lang or first.lang)] = {"task": first.task, "doc": first.doc_id}

    methods = [name for name, m in METHODS.items() if data.has_scores or not m.needs_verifier]
    targets = sorted({t for _, t in entries}, key=lambda t: (lang_index.get(t, len(languages)), t))
    questions = _Questions(list(dict.fromkeys([*languages, *targets])))

    problems = []
    for p, group in enumerate(by_problem):
        gold = group[0].gold
        texts, reason = questions.get(data.problem_ids[p])
        answers: dict[str, int] = {}
        for c in group:
            if c.answer is not None:
                answers[c.answer] = answers.get(c.answer, 0) + 1
        problems.append({
            "id": data.problem_ids[p],
            "gold": gold,
            "questions": texts,
            "missing": reason,
            # [language index, sample_idx, text, answer, score (null: none or no number), scored, correct, votes]
            "cands": [[lang_index[c.lang], c.sample_idx, c.text, c.answer, scores.get(c.key), c.key in scores,
                       bool(is_correct(c.answer, gold)), answers.get(c.answer, 0) if c.answer is not None else 0]
                      for c in group],
        })

    ordered = sorted(entries.items(), key=lambda item: (item[0][0], targets.index(item[0][1])))
    entry_at = {key: i for i, (key, _) in enumerate(ordered)}
    out_entries = []
    unpicked = 0
    for (p, target), where in ordered:
        group = by_problem[p]
        scored = [Scored(str(x), c.lang, c.sample_idx, c.answer, scores.get(c.key)) for x, c in enumerate(group)]
        picks = []
        for name in methods:
            try:
                pick = select(name, scored, target, languages)
            except ValueError:  # a verifier method on a problem the verifier has not scored
                pick = None
            picks.append(-1 if pick is None else int(pick.key))
            unpicked += pick is None
        out_entries.append({"p": p, "t": target, "task": where["task"], "doc": where["doc"], "picks": picks})

    accuracy: dict[str, dict[str, list[int]]] = {}
    for m, name in enumerate(methods):
        table = accuracy.setdefault(name, {})
        for entry in out_entries:
            pick = entry["picks"][m]
            if pick < 0:
                continue
            cell = table.setdefault(entry["t"], [0, 0])
            cell[0] += problems[entry["p"]]["cands"][pick][6]
            cell[1] += 1
    models = _models(loaded.stores)
    return {
        "version": DATA_VERSION,
        "generator": {"label": data.generator, "id": data.generator_id,
                      "identity": models.get(data.generator_id, {}).get("identity")},
        "verifier": None if data.verifier_id is None else {
            "label": data.verifier, "id": data.verifier_id, "identity": models.get(data.verifier_id, {}).get("identity")},
        "settings": data.settings,
        "stores": [os.path.abspath(s) for s in loaded.stores],
        "languages": languages,
        "names": {code: LANGUAGES[code].name if code in LANGUAGES else code for code in [*languages, *targets]},
        "targets": targets,
        "methods": methods,
        "summaries": {name: METHODS[name].summary for name in methods},
        "target_only": [name for name in methods if METHODS[name].target_only],
        "method": methods[0],
        "accuracy": accuracy,
        "counts": {"problems": len(problems), "entries": len(out_entries),
                   "candidates": sum(len(p["cands"]) for p in problems)},
        "notes": list(data.notes) + ([f"{unpicked} pick(s) could not be made (no eligible or no scored candidate)."]
                                     if unpicked else []),
        "problems": problems,
        "entries": out_entries,
        # "TASK/DOC_ID" (as bestofl-report export writes them) -> entry index, for index.html#TASK/DOC_ID
        "routes": {route: entry_at[key] for route, key in routes.items()},
    }


def curve_png(data: ReportData) -> tuple[bytes | None, str | None]:
    """The report's accuracy-vs-budget plot as PNG bytes, or why there is none."""
    from .build import Options, build_report
    from .render import PLOTS, _figure_bytes, figures

    try:
        report = build_report(data, Options(), show_progress=False)
    except ValueError as exc:
        return None, f"no budget curve: {exc}"
    import matplotlib.pyplot as plt

    made = figures(report)
    png = _figure_bytes(made.pop(PLOTS[0]))
    for fig in made.values():
        plt.close(fig)
    return png, None


# ---------------------------------------------------------------------------------------------- the page

def json_for_script(value) -> str:
    """JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&``, U+2028/9 unescaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_page(data: dict, png: bytes | None) -> str:
    """The whole page as one string."""
    style = (HERE / "browse.css").read_text(encoding="utf-8")
    script = (HERE / "browse.js").read_text(encoding="utf-8")
    data = {**data, "curve": None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")}
    policy = (f"default-src 'none'; img-src data:; style-src {_sha256(style)}; script-src {_sha256(script)}; "
              "base-uri 'none'; form-action 'none'")
    title = f"bestofl browse: {data['generator']['label']}"
    title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        "<noscript>This page needs JavaScript to show the run.</noscript>\n"
        f"<script type=\"application/json\" id=\"bestofl-data\">{json_for_script(data)}</script>\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------- the command

def _fail(message: str) -> int:
    print(f"bestofl-report browse: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str]) -> int:
    from .render import check_out_dir, write_folder

    args = browse_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        check_out_dir(args.out)
        loaded = load_stores(args.store)
        data = build_data(loaded, args.generator, args.settings, args.verifier)
        content = page_data(loaded, data)
        png, why = curve_png(data) if args.curve else (None, "no budget curve (--no-curve)")
    except (ValueError, FileNotFoundError, StoreError, sqlite3.DatabaseError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except OSError as exc:
        return _fail(f"cannot read the store: {exc}")
    if why:
        content["notes"].append(why)
    html = render_page(content, png)
    try:
        paths = write_folder({PAGE: html.encode("utf-8")}, args.out)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc}")
    counts = content["counts"]
    print(f"bestofl-report browse: {counts['problems']} problems ({counts['entries']} with their target languages), "
          f"{counts['candidates']} candidates -> {paths[0]} ({len(html.encode('utf-8')) / 1e6:.1f} MB, "
          f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0
