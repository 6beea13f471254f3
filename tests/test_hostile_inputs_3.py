"""Issue #21, the third round of hostile inputs: nothing lost, nothing silently wrong.

One test (or a few) per item of the issue; none needs a model or reads anything outside the checkout."""

from __future__ import annotations

import os

import pytest


# ------------------------------------------------------------------------------ 2. the atomic writer and links


def test_the_atomic_writer_never_follows_a_link_planted_at_its_temporary_name(tmp_path):
    from bestofl_models.store.atomic import atomic_open, atomic_write

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    # the name the old writer always used, and names a guesser would try
    for name in (f".out.jsonl.{os.getpid()}.tmp", ".out.jsonl.tmp"):
        (tmp_path / name).symlink_to(victim)
    atomic_write(out, "new\n")
    with atomic_open(out, "w", encoding="utf-8") as handle:
        handle.write("newer\n")
    assert victim.read_text() == "precious\n"
    assert out.read_text() == "newer\n" and not out.is_symlink()
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["out.jsonl", "victim.txt"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _store(directory, problems: int = 4):
    from bestofl_models.report.synthetic import build_synthetic_store

    build_synthetic_store(str(directory), problems=problems, languages=("en", "de"), samples_per_language=2,
                          text=False).close()
    return directory


def _report(argv, capsys):
    """``bestofl-report`` with ``argv``: (exit code, stderr); never a traceback."""
    from bestofl_models.report.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------ 1. export onto the store


def test_export_never_replaces_the_store_it_reads(tmp_path, capsys):
    store = _store(tmp_path / "S")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    link = tmp_path / "looks-harmless.jsonl"
    os.link(store / "store.sqlite", link)  # the same file under another name
    for out in (store / "store.sqlite", store / "store.sqlite-wal", store / "candidates.jsonl", link,
                tmp_path / "S" / ".." / "S" / "store.sqlite"):
        code, err = _report(["export", "--store", store, "--out", out], capsys)
        assert code == 2 and "the export would replace the store" in err and "Traceback" not in err, (out, err)
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    code, err = _report(["export", "--store", store, "--out", tmp_path / "export.jsonl"], capsys)
    assert code == 0 and (tmp_path / "export.jsonl").read_text().count("\n") == 4 * 2 * 2


# ------------------------------------------------------------------------------ 8. messages, not tracebacks


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "random":
        data = bytearray(os.urandom(len(data)))
    elif how == "truncated":
        data = data[: len(data) // 3]
    elif how == "zeroed":
        data[4096:] = bytes(len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["random", "truncated", "zeroed"])
def test_a_damaged_store_is_a_message_in_report_and_export(tmp_path, capsys, how):
    store = _store(tmp_path / "S", problems=40)
    assert not (store / "store.sqlite-wal").exists()
    _damage(store / "store.sqlite", how)
    for argv in (["--store", store, "--out", tmp_path / "R"], ["export", "--store", store]):
        code, err = _report(argv, capsys)
        assert code == 2 and "is damaged or not a bestofl store" in err and ".recover" in err, (argv, err)
        assert "Traceback" not in err


def test_a_non_numeric_schema_version_is_a_message(tmp_path, capsys):
    import sqlite3

    from bestofl_models.store import CandidateStore, StoreError

    store = _store(tmp_path / "S")
    with sqlite3.connect(store / "store.sqlite") as db:
        db.execute("UPDATE meta SET value='one' WHERE name='schema_version'")
    db.close()
    with pytest.raises(StoreError, match="schema version 'one' is not a number"):
        CandidateStore(store)
    code, err = _report(["export", "--store", store], capsys)
    assert code == 2 and "schema version 'one' is not a number" in err


def test_export_out_at_a_folder_or_under_a_missing_folder_is_a_message(tmp_path, capsys):
    store = _store(tmp_path / "S")
    code, err = _report(["export", "--store", store, "--out", tmp_path], capsys)
    assert code == 2 and "is a folder; give a file name" in err
    code, err = _report(["export", "--store", store, "--out", tmp_path / "no" / "such" / "x.jsonl"], capsys)
    assert code == 2 and "does not exist; create it" in err


# ------------------------------------------------------------------------------ 10. adaptive --tolerance


@pytest.mark.parametrize("value", ["nan", "-0.5", "inf", "lots"])
def test_adaptive_refuses_a_tolerance_that_is_not_a_finite_non_negative_number(tmp_path, capsys, value):
    from bestofl_models.report.adaptive_budget import simulate

    code, err = _report(["adaptive", "--store", tmp_path, "--out", tmp_path / "A", "--tolerance", value], capsys)
    assert code == 2 and "--tolerance" in err and "finite number of accuracy points >= 0" in err
    with pytest.raises(ValueError, match="tolerance must be a finite number"):
        simulate(None, (), (), None, None, float(value) if value != "lots" else -1.0)


# ------------------------------------------------------------------------------ 3-5. translations


def _problem(question: str, doc_id: int = 0):
    from bestofl_models.harness.problems import Problem

    return Problem(f"gsm8k-{doc_id:04d}", "gsm8k", doc_id, "en", {"en": question}, source_lang="en")


class _Scripted:
    name, id, settings = "scripted", "translator-scripted", {"v": 1}

    def __init__(self, rule):
        self.rule = rule

    def translate(self, texts, source, target):
        return [self.rule(text, target) for text in texts]

    def close(self):
        pass


@pytest.mark.parametrize("source, translation, target", [
    ("It costs 1.5 dollars.", "Es kostet 15 Dollar.", "de"),
    ("Half: 0.5 of it.", "Die Hälfte: 5 davon.", "de"),
    ("A pen costs $2.50.", "Un stylo coûte 250 $.", "fr"),
    ("He has 12 apples.", "Er hat 1.2 Äpfel.", "en"),  # read as English: 1.2
    ("He has 12 apples.", "Er hat 1,2 Äpfel.", "de"),
    ("It weighs 1,250 kg.", "Es wiegt 1,250 kg und 2,5 t.", "de"),  # a decimal comma elsewhere: 1,250 is 1.25
])
def test_a_number_whose_value_changes_is_refused(source, translation, target):
    from bestofl_models.generation.translation import missing_numbers

    assert missing_numbers(source, translation, "en", target) != []
    problems = [_problem(source)]
    from bestofl_models.store import CandidateStore
    from bestofl_models.generation.translation import TranslationCounts, translate_problems

    counts = TranslationCounts()
    out = translate_problems(problems, ("en", target if target != "en" else "de"), _Scripted(lambda t, lang: translation),
                             CandidateStore(None), [], 8, counts)
    assert out[0].refused and counts.as_dict()["refused_number_check"] == 1


@pytest.mark.parametrize("source, translation, target", [
    ("It costs $1,250.50 for 3 kg.", "Es kostet 1.250,50 $ für 3 kg.", "de"),
    ("It costs 1,250 dollars.", "Es kostet 1.250 Dollar.", "de"),
    ("It costs 1.5 dollars.", "Es kostet 1,5 Dollar.", "de"),
    ("It costs 1,250 dollars.", "Il coûte 1 250 dollars.", "fr"),
    ("It costs 1,250.5 dollars.", "Il coûte 1\u202f250,5 dollars.", "fr"),
    ("It costs 0.25 dollars.", "Cuesta 0,25 dólares.", "es"),
    ("18 eggs and 1,000 ducks", "ไข่ ๑๘ ฟอง เป็ด 1,000 ตัว", "th"),
    ("pages 10 - 20", "Seiten 10-20", "de"),
])
def test_a_faithful_change_of_separators_passes(source, translation, target):
    from bestofl_models.generation.translation import missing_numbers

    assert missing_numbers(source, translation, "en", target) == []


class _WordTokenizer:
    """Whitespace tokens: a translation's length in tokens is its number of words."""

    chat_template = None

    def encode(self, text, add_special_tokens=True):
        return text.split()


def test_a_translation_cut_at_its_budget_is_refused_and_counted_and_the_budget_follows_the_source():
    from bestofl_models.generation.backends import Generation
    from bestofl_models.store import CandidateStore
    from bestofl_models.generation.translation import SelfTranslator, TranslationCounts, translate_problems

    calls = []

    class Backend:
        def generate(self, prompts, seeds, stops, settings):
            calls.append(settings.max_gen_toks)
            outs = []
            for prompt in prompts:
                question = prompt.split("English: ", 1)[1].rsplit("\nGerman:", 1)[0]
                if "runaway" in question:  # keeps every number, then runs on until the limit
                    words = (question + " und so weiter") .split()
                    words += ["weiter"] * settings.max_gen_toks
                    outs.append(" ".join(words[: settings.max_gen_toks]))
                else:
                    outs.append(question)
            return [Generation(out, len(prompt.split()), len(out.split()), False) for out, prompt in zip(outs, prompts)]

    translator = SelfTranslator(_WordTokenizer(), {"fingerprint": "x"}, lambda: Backend())
    long_question = " ".join(f"Tom has {i} apples." for i in range(150))  # 600 words
    assert translator.budget(long_question, "de") > 512  # no fixed cap: sized from the source
    problems = [_problem("A runaway question with 3 apples and 4 pears.", 0), _problem(long_question, 1),
                _problem("Anna has 5 apples.", 2)]
    store, counts = CandidateStore(None), TranslationCounts()
    out = translate_problems(problems, ("en", "de"), translator, store, [], 8, counts)
    assert out[0].refused == ("de",) and "de" not in out[0].parallel
    assert out[1].parallel["de"] == long_question and out[2].parallel["de"] == "Anna has 5 apples."
    assert counts.as_dict()["refused_cut_at_budget"] == 1 and counts.cut == {"de": 1} and counts.refused == {"de": 1}
    assert max(calls) >= translator.budget(long_question, "de")
    # cached as refused: a rerun does not translate it again, and refuses it again
    counts = TranslationCounts()
    again = translate_problems(problems, ("en", "de"), translator, store, [], 8, counts)
    assert len(calls) == 1 and again[0].refused == ("de",) and counts.cut == {"de": 1}


def test_two_runs_translating_one_question_use_the_text_the_store_holds(tmp_path):
    from bestofl_models.store import CandidateStore, Translation, translation_key
    from bestofl_models.generation.translation import TranslationCounts, translate_problems

    question = "Anna has 5 apples and buys 7 more."
    store = CandidateStore(tmp_path / "S")
    other = CandidateStore(tmp_path / "S")  # the other run, on the same store
    translator = _Scripted(lambda text, lang: "Anna hat 5 Äpfel und kauft 7 dazu (mine).")
    key = translation_key(translator.id, question, "en", "de", translator.settings)

    def racing_translate(texts, source, target):  # the other run writes its translation first
        other.add_translations([Translation(key, translator.id, "en", "de", translator.settings, question,
                                            "Anna hat 5 Äpfel und kauft noch 7 (theirs).")])
        return ["Anna hat 5 Äpfel und kauft 7 dazu (mine)."]

    translator.translate = racing_translate
    out = translate_problems([_problem(question)], ("en", "de"), translator, store, [], 8, TranslationCounts())
    assert out[0].parallel["de"] == "Anna hat 5 Äpfel und kauft noch 7 (theirs)."
    assert store.translations([key])[key].text == out[0].parallel["de"]


# ------------------------------------------------------------------------------ 7. a corrected gold answer


def _candidate(key: str, gold: str, target: str = "de", answer: str = "19"):
    from bestofl_models.store import Candidate

    return Candidate(key=key, problem_id="mgsm-0007", task=f"mgsm_xling_{target}", doc_id=7, target_lang=target,
                     lang="de", sample_idx=0, generator="g", prompt_hash="p", settings={"temperature": 0.7},
                     text=f"Die Antwort ist {answer}.", answer=answer, gold=gold, generator_id="gen-1")


def test_a_rerun_with_a_corrected_gold_answer_replaces_the_old_gold_everywhere(tmp_path, capsys, caplog):
    import json

    from bestofl_models.store import CandidateStore, Use

    store = CandidateStore(tmp_path / "S")
    store.add_candidates([_candidate("k1", "18"), _candidate("k2", "18", answer="18")])
    store.add_uses([Use("k1", "mgsm_xling_fr", 7, "fr", "mgsm-0007", "18")])  # another target, same problem
    # the dataset is corrected (gold 19) and the run repeated: its candidates are reused, their uses re-recorded
    assert store.add_uses([Use("k1", "mgsm_xling_de", 7, "de", "mgsm-0007", "19"),
                           Use("k2", "mgsm_xling_de", 7, "de", "mgsm-0007", "19")]) == 0
    assert {u.gold for u in store.uses()} == {"19"}
    assert "had gold answer '18'" in caplog.text and "the latest gold wins" in caplog.text
    store.add_candidates([_candidate("k3", "20", answer="20")])  # and once more, through new candidates
    assert {c.gold for c in store.rows()} == {"20"}
    store.close()
    code, _ = _report(["export", "--store", tmp_path / "S", "--out", tmp_path / "e.jsonl"], capsys)
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert code == 0 and {r["gold"] for r in rows} == {"20"}
    assert [r["correct"] for r in sorted(rows, key=lambda r: r["key"])] == [False, False, True]


# ------------------------------------------------------------------------------ 6. identity covers every byte


def test_an_in_place_edit_of_a_large_file_changes_the_identity_and_only_changed_files_are_read(tmp_path, monkeypatch):
    from bestofl_models.store import identity

    monkeypatch.setenv("BESTOFL_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    weights, config = model / "model.safetensors", model / "config.json"
    size = 80 * 2**20  # over the old 64 MiB sampling limit
    with open(weights, "wb") as f:
        f.truncate(size)
    config.write_text("{}")
    first = identity.fingerprint(str(model))
    assert (tmp_path / "cache" / identity.HASH_CACHE).is_file()
    monkeypatch.setattr(identity, "HASH_STATS", {"hashed": 0, "cached": 0})
    identity._local_fingerprint.cache_clear()  # a new process: only the JSON cache remains
    assert identity.fingerprint(str(model)) == first and identity.HASH_STATS == {"hashed": 0, "cached": 2}
    stat = os.stat(weights)
    with open(weights, "r+b") as f:  # one byte in a block the old sampling never read, mtime put back
        f.seek(size // 2 + 12345)
        f.write(b"\x01")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    identity._local_fingerprint.cache_clear()
    assert identity.fingerprint(str(model)) != first
    assert identity.HASH_STATS == {"hashed": 1, "cached": 3}  # the edited file alone was read again


@pytest.mark.parametrize("damage", ["garbage", "folder", "unwritable"])
def test_an_unusable_hash_cache_is_not_used(tmp_path, monkeypatch, damage):
    from bestofl_models.store import identity

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    expected = identity._fingerprint_files(str(model), ["config.json"])
    cache = tmp_path / "cache"
    if damage == "garbage":
        cache.mkdir()
        (cache / identity.HASH_CACHE).write_bytes(b"\x00{not json")
    elif damage == "folder":
        (cache / identity.HASH_CACHE).mkdir(parents=True)
    else:
        cache.write_text("a file, not a folder")
    monkeypatch.setenv("BESTOFL_CACHE", str(cache))
    identity._local_fingerprint.cache_clear()
    assert identity.fingerprint(str(model)) == expected


# ------------------------------------------------------------------------------ 8/9. the cache folder, staging


def test_an_unusable_bestofl_cache_names_the_variable(tmp_path, monkeypatch):
    from bestofl_models.generation import embedded
    from bestofl_models.store.cache import CacheError

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("BESTOFL_CACHE", str(not_a_folder))
    monkeypatch.setattr(embedded, "gguf_path", lambda alias="smollm2-135m": tmp_path / "x.gguf")
    with pytest.raises(CacheError, match=r"BESTOFL_CACHE=.*file.*set BESTOFL_CACHE to a writable folder"):
        embedded.resolve_pretrained("smollm2-135m")


def test_a_killed_conversion_leaves_no_staging_folder_behind_after_the_next_run(tmp_path, monkeypatch):
    import subprocess
    import sys

    from bestofl_models.generation import embedded

    folder = tmp_path / f"{embedded.ALIASES['smollm2-135m'][2]}-v{embedded.CONVERSION_VERSION}"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    prefix = embedded._staging_prefix(folder)
    stale = tmp_path / f"{prefix}{dead_pid}.abcd1234"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "model.safetensors").write_bytes(b"half a model")
    alive = tmp_path / f"{prefix}{os.getpid()}.efgh5678"  # a conversion running now
    alive.mkdir()
    other_host = tmp_path / f".{folder.name}.another-host.{dead_pid}.ijkl9012"
    other_host.mkdir()

    def convert(gguf, out):
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "gguf_path", lambda alias="smollm2-135m": tmp_path / "x.gguf")
    monkeypatch.setattr(embedded, "convert_gguf", convert)
    assert embedded.converted_folder("smollm2-135m", cache=tmp_path) == folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, alive.name, other_host.name])


# ------------------------------------------------------------------------------ 11. a store on a network file system

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /home rw,relatime - nfs4 fileserver:/export/home rw,vers=4.2
41 40 254:1 / /home/alice/local\\040disk rw,relatime - xfs /dev/vdb rw
42 27 0:51 / /mnt/cluster rw,relatime shared:5 - lustre 10.0.0.1@tcp:/fs rw
43 27 0:52 / /mnt/laptop rw,nosuid - fuse.sshfs alice@laptop:/ rw
44 27 0:53 / /mnt/share rw - cifs //server/share rw
45 27 0:54 / /srv/data rw - ext4 /dev/vdc rw
46 27 0:55 / /srv/data rw - 9p hostshare rw
"""


@pytest.mark.parametrize("path, fstype", [
    ("/home/alice/store", "nfs4"), ("/home", "nfs4"), ("/home/alice/local disk/store", None), ("/homework", None),
    ("/mnt/cluster/runs/s", "lustre"), ("/mnt/laptop/s", "fuse.sshfs"), ("/mnt/share/s", "cifs"), ("/tmp/s", None),
    ("/srv/data/s", "9p"),  # mounted over: the later line wins
])
def test_network_file_systems_are_recognised_from_the_mount_table(path, fstype):
    from bestofl_models.store import mount_type, network_filesystem

    assert network_filesystem(MOUNTINFO, path) == fstype
    mounts = "\n".join(f"{line.split(' - ')[1].split()[1]} {line.split()[4]} {line.split(' - ')[1].split()[0]} rw 0 0"
                       for line in MOUNTINFO.splitlines())  # the /proc/mounts layout
    assert network_filesystem(mounts, path) == fstype
    assert mount_type(MOUNTINFO, "/tmp/s") == "ext4"


def test_a_store_on_a_network_file_system_is_refused_naming_the_alternative(tmp_path, monkeypatch):
    from bestofl_models.store import files as store_module
    from bestofl_models.store import CandidateStore, StoreError

    _store(tmp_path / "R")
    monkeypatch.setattr(store_module, "_read_mountinfo",
                        lambda: f"27 1 254:0 / / rw - ext4 /dev/vda rw\n50 27 0:60 / {tmp_path} rw - nfs4 srv:/x rw\n")
    with pytest.raises(StoreError, match=r"network file system \(nfs4\).*read_stores=A:B.*--store A --store B"):
        CandidateStore(tmp_path / "S")
    assert not (tmp_path / "S" / "store.sqlite").exists()
    assert len(CandidateStore(tmp_path / "R", read_only=True)) == 16  # reports read such stores: only writers refused
    monkeypatch.undo()
    CandidateStore(tmp_path / "T").close()  # this machine's own disk is fine


# ------------------------------------------------------------------------------ 8. more messages, not tracebacks


@pytest.mark.parametrize("bad_line", ['{"filter": "numeric", "exact_match": 1.0}', "[1, 2]", "{not json"])
def test_compare_names_a_samples_row_without_doc_id(tmp_path, capsys, bad_line):
    from test_compare import BESTOFL, HF, write_run

    base = write_run(tmp_path / "a", HF, {"mgsm_xling_de": {0: 1.0, 1: 0.0}})
    run = write_run(tmp_path / "b", BESTOFL, {"mgsm_xling_de": {0: 1.0, 1: 1.0}})
    samples = next((run / "model").glob("samples_*.jsonl"))
    samples.write_text(samples.read_text() + bad_line + "\n")
    code, err = _report(["compare", base, run, "--out", tmp_path / "cmp"], capsys)
    assert code == 2 and "Traceback" not in err and f"{samples} line 3" in err
    assert ("has no doc_id" in err) or ("is not JSON" in err)


@pytest.mark.parametrize("text, expected", [
    ("generate:\n  k: [8\n", "is not a plain YAML mapping of settings"),
    ("base_model: !!python/object/apply:os.system ['echo pwned']\n", "is not a plain YAML mapping of settings"),
    ("\tbad: tab\n", "is not a plain YAML mapping of settings"),
])
def test_a_training_config_that_is_not_plain_yaml_is_a_config_error(tmp_path, capsys, text, expected):
    from training.cli import main
    from training.config import ConfigError, load_config

    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bestofl-train: error:") and "Traceback" not in err and "pwned" not in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--set 'generate.k=\\[8': the value is not plain YAML"):
        load_config(None, ["generate.k=[8"])


@pytest.mark.parametrize("value", ["/no/such/model", "./models/missing", "~/no-such-model-dir", "a/b/c"])
def test_a_missing_pretrained_path_says_no_such_folder(value):
    from bestofl_models.errors import ModelArgsError
    from bestofl_models.harness.model_args import parse_model_args

    with pytest.raises(ModelArgsError, match=f"pretrained={value}: no such folder"):
        parse_model_args({"pretrained": value}, "self-consistency")


@pytest.mark.parametrize("error", ["StoreError", "StoreNotWritableError", "CacheError", "ModelArgsError"])
def test_the_lm_eval_cli_prints_a_store_or_cache_error_as_one_line(capsys, error):
    import types

    from bestofl_models import errors as config
    from bestofl_models import store
    from bestofl_models.store import cache
    from bestofl_tasks._autoload import patch_cli

    kinds = {"StoreError": store.StoreError, "StoreNotWritableError": store.StoreNotWritableError,
             "CacheError": cache.CacheError, "ModelArgsError": config.ModelArgsError}

    def cli_evaluate():
        raise kinds[error]("candidate store /s/store.sqlite is a symbolic link; point store= at the real directory")

    module = types.SimpleNamespace(cli_evaluate=cli_evaluate)
    patch_cli(module)
    with pytest.raises(SystemExit) as exit_:
        module.cli_evaluate()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("lm_eval: error: ")
    assert "is a symbolic link" in err

    def other():
        raise ValueError("not ours")

    module = types.SimpleNamespace(cli_evaluate=other)
    patch_cli(module)
    with pytest.raises(ValueError, match="not ours"):  # anything else keeps its traceback
        module.cli_evaluate()


def test_the_lm_eval_cli_refuses_a_symlinked_store_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from translation_fixtures import _tokenizer

    tokenizer_only = tmp_path / "generator"
    _tokenizer().save_pretrained(tokenizer_only)  # the store is opened before the generator's weights are needed
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.sqlite").symlink_to(tmp_path / "elsewhere.sqlite")
    env = {k: v for k, v in os.environ.items() if k != "BESTOFL_DATA_DIR"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lm_eval"), "--model", "self-consistency", "--model_args",
         f"pretrained={tokenizer_only},n=2,store={store}", "--tasks", "mgsm_xling_de", "--limit", "1"],
        capture_output=True, text=True, timeout=600, env={**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lm_eval: error: ") and "is a symbolic link" in last
    assert not (tmp_path / "elsewhere.sqlite").exists()


def test_a_use_without_a_gold_never_erases_a_known_gold(tmp_path):
    from bestofl_models.store import CandidateStore, Use

    store = CandidateStore(tmp_path / "S")
    store.add_candidates([_candidate("k1", "18")])
    store.add_uses([Use("k1", "mgsm_xling_fr", 7, "fr", "mgsm-0007", None)])
    assert {u.gold for u in store.uses()} == {"18", None} and store.rows()[0].gold == "18"
