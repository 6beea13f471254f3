"""``bestofl-report browse`` (issue #26): the page's data equals the store, bad input is one line, and in a real
browser (headless Chromium through Playwright) the page loads offline, filters count what the store says, hostile
candidate text stays text and links open problems.

The browser tests need ``pip install playwright`` and Debian's ``chromium`` (Playwright's own browser download is
not used); without them they skip with one line saying so.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bestofl_models.report.cli import main as report_main
from bestofl_models.selection.methods import METHODS, Scored, select
from bestofl_models.store import STORE_FILE, Candidate, CandidateStore, Use, candidate_key, prompt_hash
from bestofl_tasks import data as tasks_data
from bestofl_tasks.answers import answers_equal

POOL = ["en", "de", "th", "zh", "bn", "te", "ja", "sw"]
TARGETS = ["de", "th", "zh"]
SAMPLES = 2
SETTINGS = {"temperature": 0.7, "top_p": 1.0, "max_gen_toks": 64, "seed": 1, "stop": []}
HOSTILE = ('</script><script>window.__pwned=1;alert(1)</script><img src=x onerror="window.__pwned=2">'
           '<a href="javascript:window.__pwned=3">click</a> & \u2028 line \u2029 <!-- -->')
EVIL_TASK = 'evil<script>alert(1)</script>'
EVIL_DOC = 'a"\'<img src=x onerror=alert(1)>'
EVIL_PROBLEM = "x<b onmouseover=alert(1)>evil</b>"


def _env_without_data_dir(monkeypatch):
    monkeypatch.delenv(tasks_data.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(tasks_data.DATA_SOURCE_ENV, raising=False)


def build_store(directory: Path, verifiers=("judge-a", "judge-b")) -> Path:
    """MGSM and arith problems asked in three target languages under two tasks each, 8 pool languages with
    2 candidates each, two verifiers (some NaN scores), one hostile candidate text and one hostile task/doc/problem."""
    rng = random.Random(0)
    store = CandidateStore(directory)
    mgsm = tasks_data.load_docs("mgsm", "en")[:5]
    arith = tasks_data.load_docs("arith_test", "en")[:3]
    problems = [(d["problem_id"], d["answer"], "mgsm_xling", i, POOL) for i, d in enumerate(mgsm)]
    problems += [(d["problem_id"], d["answer"], "arith_xling", i, ["en", "de", "zh", "th"]) for i, d in enumerate(arith)]
    problems.append((EVIL_PROBLEM, "7", EVIL_TASK, EVIL_DOC, ["en", "de"]))
    for vid in ("gen-1", *verifiers):
        store.register_model(vid, "generator" if vid == "gen-1" else "verifier", vid.upper(),
                             {"fingerprint": f"sha256:{vid}-fingerprint", "dtype": "float32"})
    for problem_id, gold, family, doc, languages in problems:
        first_target = TARGETS[0]
        task = family if family == EVIL_TASK else f"{family}_{first_target}"
        batch = []
        for lang in languages:
            prompt = f"prompt {problem_id} {lang}"
            for i in range(SAMPLES):
                answer = rng.choice([gold, gold, str(int(gold) + 1), None])
                text = f"Reasoning in {lang} #{i}. The answer is {answer}."
                if problem_id == "mgsm-0000" and lang == "en" and i == 0:
                    text = HOSTILE
                batch.append(Candidate(
                    key=candidate_key("gen-1", prompt, SETTINGS, i), problem_id=problem_id, task=task, doc_id=doc,
                    target_lang=first_target, lang=lang, sample_idx=i, generator="gen-1",
                    prompt_hash=prompt_hash(prompt), settings=dict(SETTINGS), text=text, answer=answer, gold=gold,
                    generator_id="gen-1"))
        store.add_candidates(batch)
        if family != EVIL_TASK:
            for target in TARGETS[1:]:
                store.add_uses(Use(c.key, f"{family}_{target}", doc, target, problem_id, gold) for c in batch)
            # the same problem reached from a second task (lm-eval's own MGSM, say) in German
            store.add_uses(Use(c.key, f"other_{family}_de", doc, "de", problem_id, gold) for c in batch)
        for v, verifier in enumerate(verifiers):
            scores = {}
            for c in batch:
                draw = rng.random()
                scores[c.key] = float("nan") if draw < 0.05 else round(draw, 4 + v)
            store.add_scores(verifier, scores)
    store.register_run("gen-1", {"pool": POOL, "n": len(POOL) * SAMPLES, "selection": "cross_orm"})
    store.close()
    return directory


def page_json(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="bestofl-data">(.*?)</script>', html, re.S)
    assert found, "no data script in the page"
    return json.loads(found.group(1))


def browse(store: Path, out: Path, *extra: str) -> dict:
    assert report_main(["browse", "--store", str(store), "--out", str(out), *extra]) == 0
    return page_json((out / "index.html").read_text(encoding="utf-8"))


def expected_from_store(store_dir: Path, verifier: str) -> dict:
    """What the page must show, read straight from the store (independent of browse.py)."""
    store = CandidateStore(store_dir, read_only=True)
    try:
        rows, scores, uses = store.rows(), store.scores(verifier), store.uses()
    finally:
        store.close()
    by_problem: dict[str, list[Candidate]] = {}
    for c in rows:
        by_problem.setdefault(c.problem_id, []).append(c)
    languages = [code for code in POOL]  # the run's pool order
    targets_of: dict[str, dict[str, tuple]] = {}
    for u in uses:
        targets_of.setdefault(u.problem_id, {}).setdefault(u.target_lang, (u.task, u.doc_id))
    result = {}
    for problem_id, cands in by_problem.items():
        cands.sort(key=lambda c: (languages.index(c.lang), c.sample_idx))
        scored = [Scored(str(x), c.lang, c.sample_idx, c.answer, scores.get((c.key, verifier)))
                  for x, c in enumerate(cands)]
        picks = {}
        for target in targets_of[problem_id]:
            for name in METHODS:
                pick = select(name, scored, target, languages)
                picks[(target, name)] = None if pick is None else int(pick.key)
        result[problem_id] = {
            "gold": cands[0].gold,
            "cands": [(c.lang, c.sample_idx, c.text, c.answer, scores.get((c.key, verifier)),
                       answers_equal(c.answer, c.gold) if c.answer is not None else False) for c in cands],
            "targets": targets_of[problem_id],
            "picks": picks,
        }
    return result


def test_page_data_equals_the_store(tmp_path, monkeypatch):
    _env_without_data_dir(monkeypatch)
    store = build_store(tmp_path / "store")
    page = browse(store, tmp_path / "out", "--verifier", "judge-b", "--no-curve")
    expected = expected_from_store(store, "judge-b")
    assert page["verifier"]["id"] == "judge-b" and page["generator"]["id"] == "gen-1"
    assert page["generator"]["identity"]["fingerprint"] == "sha256:gen-1-fingerprint"
    assert page["verifier"]["identity"]["fingerprint"] == "sha256:judge-b-fingerprint"
    assert page["methods"] == list(METHODS)
    assert {p["id"] for p in page["problems"]} == set(expected)
    assert page["counts"]["candidates"] == sum(len(e["cands"]) for e in expected.values())
    for problem in page["problems"]:
        want = expected[problem["id"]]
        assert problem["gold"] == want["gold"]
        got = [(page["languages"][c[0]], c[1], c[2], c[3], c[4], c[6]) for c in problem["cands"]]
        assert got == want["cands"], problem["id"]
        # votes: candidates of the problem with the same answer
        answers = Counter(c[3] for c in want["cands"] if c[3] is not None)
        assert [c[7] for c in problem["cands"]] == [answers.get(c[3], 0) for c in want["cands"]]
    entries = {(page["problems"][e["p"]]["id"], e["t"]): e for e in page["entries"]}
    assert set(entries) == {(pid, t) for pid, e in expected.items() for t in e["targets"]}
    for (pid, target), entry in entries.items():
        assert (entry["task"], entry["doc"]) == expected[pid]["targets"][target]
        for name, pick in zip(page["methods"], entry["picks"]):
            want = expected[pid]["picks"][(target, name)]
            assert pick == (-1 if want is None else want), (pid, target, name)
    # accuracy per method and target = the picks' correctness
    for name in page["methods"]:
        for target in page["targets"]:
            right = total = 0
            for (pid, t), entry in entries.items():
                pick = expected[pid]["picks"][(t, name)]
                if t == target and pick is not None:
                    total += 1
                    right += expected[pid]["cands"][pick][5]
            assert page["accuracy"][name].get(target, [0, 0]) == [right, total], (name, target)
    # every task/doc that asked a problem routes to it, as export names them
    for route, index in page["routes"].items():
        entry = page["entries"][index]
        assert route.rsplit("/", 1)[0].endswith(entry["t"]) or route.startswith(EVIL_TASK)
    assert page["routes"]["mgsm_xling_th/2"] == next(i for i, e in enumerate(page["entries"])
                                                     if page["problems"][e["p"]]["id"] == "mgsm-0002" and e["t"] == "th")
    assert "other_mgsm_xling_de/2" in page["routes"]


def test_questions_every_language_or_why_not(tmp_path, monkeypatch):
    _env_without_data_dir(monkeypatch)
    store = build_store(tmp_path / "store")
    page = browse(store, tmp_path / "out", "--verifier", "judge-a", "--no-curve")
    problems = {p["id"]: p for p in page["problems"]}
    mgsm = tasks_data.load_docs("mgsm", "th")
    assert problems["mgsm-0003"]["questions"]["th"] == mgsm[3]["question"]
    assert all(problems["mgsm-0003"]["questions"][code] for code in POOL) and problems["mgsm-0003"]["missing"] is None
    arith = problems["arith-test-0001"]
    assert arith["questions"]["zh"] == tasks_data.load_docs("arith_test", "zh")[1]["question"]
    assert "bn" in arith["missing"]  # arith has no Bengali: the page says so
    assert problems[EVIL_PROBLEM]["questions"] == {} and "not a problem of bestofl's own datasets" in \
        problems[EVIL_PROBLEM]["missing"]


def test_the_page_is_one_file_with_escaped_data(tmp_path, monkeypatch):
    _env_without_data_dir(monkeypatch)
    store = build_store(tmp_path / "store")
    out = tmp_path / "out"
    assert report_main(["browse", "--store", str(store), "--out", str(out), "--verifier", "judge-a"]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in html  # the budget curve, inline
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "@import" not in html and "url(" not in html
    body = html.split('id="bestofl-data">', 1)[1].split("</script>", 1)[0]
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in body, repr(raw)
    assert html.count("</script>") == 2  # the data's and the script's own
    (first,) = [p for p in page_json(html)["problems"] if p["id"] == "mgsm-0000"]
    assert first["cands"][0][2] == HOSTILE
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_several_verifiers_need_a_choice(tmp_path, monkeypatch, capsys):
    _env_without_data_dir(monkeypatch)
    store = build_store(tmp_path / "store")
    out = tmp_path / "out"
    assert report_main(["browse", "--store", str(store), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--verifier" in err[0] and "judge-a" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("case", ["empty folder", "empty store", "newer store", "a file", "missing", "damaged"])
def test_bad_input_is_one_line_and_no_page(tmp_path, monkeypatch, capsys, case):
    _env_without_data_dir(monkeypatch)
    target = tmp_path / "store"
    if case == "empty folder":
        target.mkdir()
    elif case == "empty store":
        CandidateStore(target).close()
    elif case == "newer store":
        build_store(target, verifiers=("judge-a",))
        with sqlite3.connect(target / STORE_FILE) as db:
            db.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    elif case == "a file":
        target.write_text("not a store")
    elif case == "damaged":
        target.mkdir()
        (target / STORE_FILE).write_bytes(b"this is not sqlite" * 100)
    out = tmp_path / "out"
    code = report_main(["browse", "--store", str(target), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("bestofl-report browse: error:") and "Traceback" not in err[0], err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_a_previous_page_is_replaced_whole(tmp_path, monkeypatch):
    _env_without_data_dir(monkeypatch)
    store = build_store(tmp_path / "store", verifiers=("judge-a",))
    out = tmp_path / "out"
    browse(store, out, "--no-curve")
    before = (out / "index.html").read_bytes()
    browse(store, out, "--no-curve")
    assert (out / "index.html").read_bytes() == before  # same store, same page
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert report_main(["browse", "--store", str(store), "--out", str(tmp_path / "other"), "--no-curve"]) == 2
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------- in a browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests: pip install playwright (the test extra) and apt-get install chromium to run them")
    path = _chromium()
    if path is None:
        pytest.skip("browser tests: apt-get install chromium (Debian's package; .ci/run installs it) to run them")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Opened:
    """A page opened from disk with everything it logs and requests recorded."""

    def __init__(self, browser, path: Path, fragment: str = ""):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", dialog)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url + fragment)
        self.page.wait_for_selector("body[data-ready='1']", timeout=30_000)

    def count(self) -> int:
        return int(self.page.text_content("#count"))

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    old = {k: os.environ.pop(k, None) for k in (tasks_data.DATA_DIR_ENV, tasks_data.DATA_SOURCE_ENV)}
    try:
        root = tmp_path_factory.mktemp("browse")
        store = build_store(root / "store")
        out = root / "out"
        assert report_main(["browse", "--store", str(store), "--out", str(out), "--verifier", "judge-a"]) == 0
        return store, out / "index.html", expected_from_store(store, "judge-a")
    finally:
        for k, v in old.items():
            if v is not None:
                os.environ[k] = v


def test_loads_offline_without_errors(browser, built):
    _, page_path, expected = built
    opened = Opened(browser, page_path)
    try:
        assert opened.errors == []
        assert opened.requests == [opened.url], opened.requests  # only the file itself (the image is a data: URI)
        assert opened.count() == sum(len(e["targets"]) for e in expected.values())
        assert opened.page.eval_on_selector("img", "i => i.complete && i.naturalWidth > 0")
        assert "judge-a" in opened.page.text_content("header") and "sha256:gen-1-fingerprint" in \
            opened.page.text_content("header")
    finally:
        opened.close()


def _expected_count(expected, method, target="", outcome="", lang=""):
    count = 0
    for pid, e in expected.items():
        for t in e["targets"]:
            if target and t != target:
                continue
            pick = e["picks"][(t, method)]
            cand = None if pick is None else e["cands"][pick]
            if outcome == "right" and not (cand and cand[5]):
                continue
            if outcome == "wrong" and not (cand and not cand[5]):
                continue
            if outcome == "missed":
                eligible = [c for c in e["cands"] if not METHODS[method].target_only or c[0] == t]
                if not (cand and not cand[5] and any(c[5] for c in eligible)):
                    continue
            if lang and not (cand and cand[0] == lang):
                continue
            count += 1
    return count


def test_each_filter_counts_what_the_store_gives(browser, built):
    _, page_path, expected = built
    opened = Opened(browser, page_path)
    page = opened.page
    try:
        seen_nonzero = set()
        for method in ("cross_orm", "multi_orm", "self_consistency"):
            page.select_option("#f-method", method)
            for outcome in ("", "right", "wrong", "missed"):
                page.select_option("#f-outcome", outcome)
                for target in ("", *TARGETS):
                    page.select_option("#f-target", target)
                    want = _expected_count(expected, method, target, outcome)
                    assert opened.count() == want, (method, outcome, target)
                    seen_nonzero.add(outcome) if want else None
            page.select_option("#f-outcome", "")
            page.select_option("#f-target", "")
            for lang in ("", "en", "th", "zh"):
                page.select_option("#f-lang", lang)
                assert opened.count() == _expected_count(expected, method, lang=lang), (method, lang)
            page.select_option("#f-lang", "")
        assert {"", "right", "wrong", "missed"} <= seen_nonzero, "the fixture should exercise every outcome"
        # free text: a phrase of one MGSM question in Thai finds that problem under each of its targets
        thai = tasks_data.load_docs("mgsm", "th")[4]["question"][:12]
        page.fill("#f-query", thai)
        assert opened.count() == len(expected["mgsm-0004"]["targets"])
        page.fill("#f-query", "no such words anywhere")
        assert opened.count() == 0
        assert opened.errors == []
    finally:
        opened.close()


def test_hostile_markup_renders_as_text(browser, built):
    _, page_path, _ = built
    opened = Opened(browser, page_path, "#mgsm_xling_de/0")
    page = opened.page
    try:
        text = page.eval_on_selector('#view section[data-lang="en"] .cand[data-cand="0"] pre', "p => p.textContent")
        assert text == HOSTILE
        assert page.evaluate("window.__pwned === undefined") and opened.dialogs == []
        assert page.query_selector("#view img") is None and page.query_selector("#view script") is None
        assert page.query_selector('#view a[href^="javascript:"]') is None
        # hostile task, doc id and problem id: shown as text, reachable by their route
        evil = "#" + page.evaluate("([t, d]) => encodeURIComponent(t) + '/' + encodeURIComponent(d)", [EVIL_TASK, EVIL_DOC])
        page.goto(opened.url + evil)
        page.wait_for_selector("body[data-ready='1']")
        assert EVIL_PROBLEM in page.text_content("#problem-title") and EVIL_TASK in page.text_content("#problem-title")
        assert page.query_selector("#view b") is None and page.query_selector("#view script") is None
        assert opened.dialogs == [] and opened.errors == []
        assert opened.requests and all(r.startswith(opened.url) for r in opened.requests), opened.requests
    finally:
        opened.close()


def test_links_and_keys_open_problems(browser, built):
    from playwright.sync_api import expect

    _, page_path, expected = built
    opened = Opened(browser, page_path, "#mgsm_xling_th/2")
    page = opened.page
    try:
        title = page.text_content("#problem-title")
        assert "mgsm-0002" in title and "mgsm_xling_th" in title and "(th)" in title
        # the Thai question is on the page, and the other targets are one click away
        assert tasks_data.load_docs("mgsm", "th")[2]["question"] in page.text_content("#view")
        page.click(".targets a:text-is('zh')")
        expect(page.locator("#problem-title")).to_contain_text("(zh)")
        assert page.evaluate("location.hash") == "#mgsm_xling_zh/2"
        # a list link opens its problem; the arrow keys walk the filtered list
        page.select_option("#f-target", "de")
        page.click("#list a >> nth=1")
        expect(page.locator("#list a.current")).to_have_count(1)
        first = page.text_content("#problem-title")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#problem-title")).not_to_have_text(first)
        second = page.text_content("#problem-title")
        assert "(de)" in second
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#problem-title")).to_have_text(first)
        # the pick and the gold are marked
        assert page.query_selector("#view .cand.pick") is not None and "gold" in page.text_content("#view")
        assert opened.errors == []
    finally:
        opened.close()


# ---------------------------------------------------------------------------------------------- after real runs

@pytest.mark.slow
def test_browse_after_the_quick_start_run_and_a_second_task_and_verifier(tmp_path, monkeypatch, tiny_verifier_dir):
    """The quick start's run (tiny judge for SmolLM2, 2 problems; no verifier=: the generator judges), then the same
    store reused by a run over two tasks with another verifier: browse shows either verifier's view of it."""
    import fixtures
    from lm_eval import simple_evaluate

    _env_without_data_dir(monkeypatch)
    judge = fixtures.tiny_judge()
    store = tmp_path / "store"
    common = {"pretrained": str(judge), "languages": "en:de:fr:zh", "n": 4, "max_gen_toks": 16, "store": str(store)}
    simple_evaluate(model="bestofl", model_args=common, tasks=["mgsm_xling_de"], limit=2, batch_size="auto")
    simple_evaluate(model="bestofl", model_args={**common, "verifier": str(tiny_verifier_dir)},
                    tasks=["mgsm_xling_de", "mgsm_xling_zh"], limit=2, batch_size="auto")
    verifiers = CandidateStore(store, read_only=True).verifiers()
    assert len(verifiers) == 2
    for verifier in verifiers:
        out = tmp_path / f"out-{verifier[:8]}"
        page = browse(store, out, "--verifier", verifier)
        assert page["languages"] == ["en", "de", "fr", "zh"]
        assert page["verifier"]["id"] == verifier and page["targets"] == ["de", "zh"]
        assert page["counts"] == {"problems": 2, "entries": 4, "candidates": 8}
        assert {"mgsm_xling_de/0", "mgsm_xling_de/1", "mgsm_xling_zh/0", "mgsm_xling_zh/1"} <= set(page["routes"])
        german = tasks_data.load_docs("mgsm", "de")
        for problem in page["problems"]:
            row = int(problem["id"].rsplit("-", 1)[1])
            assert problem["questions"]["de"] == german[row]["question"] and problem["missing"] is None
            assert problem["gold"] == german[row]["answer"]
            assert all(c[5] for c in problem["cands"])  # every candidate scored by this verifier
        assert all(pick >= 0 for e in page["entries"] for pick in e["picks"])
        assert "data:image/png;base64," in (out / "index.html").read_text(encoding="utf-8")
