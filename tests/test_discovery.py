"""Stock lm-eval sees our tasks and models through the start-up hook, and the hook is harmless."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, env_extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, **kwargs)


@pytest.mark.slow  # a fresh interpreter importing lm-eval: > 2 s
def test_models_register_after_builtins():
    result = run_python(
        textwrap.dedent(
            """
            from lm_eval.api.registry import get_model, model_registry
            assert get_model("hf").__name__ == "HFLM"
            assert get_model("dummy").__name__ == "DummyLM"
            for name in ("bestofl", "multi-orm", "self-consistency"):
                assert name in model_registry, name
            print("ok")
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow  # a fresh interpreter importing lm-eval: > 2 s
def test_task_manager_indexes_task_yamls():
    result = run_python(
        textwrap.dedent(
            """
            from lm_eval.tasks import TaskManager
            tm = TaskManager()
            names = set(tm.all_tasks)
            langs = "en es fr de ru zh ja th sw bn te".split()
            missing = [f"mgsm_xling_{l}" for l in langs if f"mgsm_xling_{l}" not in names]
            missing += [g for g in ("mgsm_xling", "gsm8k_xling", "gsm8k_xling_train", "gsm8k_xling_en",
                                    "gsm8k_xling_train_de", "mgsm_native_cot_de") if g not in names]
            assert not missing, missing
            print("ok")
            """
        )
    )
    assert result.returncode == 0, result.stderr


CUSTOM_TASK = """\
task: custom_arc_task
dataset_path: allenai/ai2_arc
dataset_name: ARC-Challenge
output_type: multiple_choice
test_split: test
doc_to_text: "Q: {{question}} A:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""


@pytest.mark.slow  # a fresh interpreter importing lm-eval: > 2 s
def test_include_defaults_false_indexes_only_the_include_path(tmp_path):
    """lm-eval's own test_include_defaults_false_with_custom_path, with bestofl installed: our tasks are
    default tasks too, so ``include_defaults=False`` must not add them (passed by keyword or by position)."""
    (tmp_path / "custom_arc_task.yaml").write_text(CUSTOM_TASK)
    result = run_python(textwrap.dedent(f"""
        from lm_eval.tasks import TaskManager
        only = TaskManager(include_defaults=False, include_path={str(tmp_path)!r})
        assert only.all_tasks == ["custom_arc_task"], only.all_tasks
        positional = TaskManager(None, {str(tmp_path)!r}, False)
        assert positional.all_tasks == ["custom_arc_task"], positional.all_tasks
        both = TaskManager(include_path={str(tmp_path)!r})
        assert {{"custom_arc_task", "mgsm_xling_de", "arc_easy"}} <= set(both.all_tasks)
        print("ok")
    """))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.slow  # a fresh interpreter importing lm-eval: > 2 s
def test_switch_off_with_environment_variable():
    result = run_python(
        "from lm_eval.api.registry import get_model, model_registry\n"
        "get_model('hf')\n"
        "print('bestofl' in model_registry)",
        {"BESTOFL_AUTOLOAD": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_broken_hook_never_breaks_startup(tmp_path):
    shadow = tmp_path / "bestofl_tasks"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise RuntimeError('broken on purpose')\n")
    result = run_python("print('alive')", {"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.strip() == "alive"
    assert "broken on purpose" not in result.stderr


def test_hook_is_armed_without_importing_lm_eval():
    result = run_python(
        "import sys\n"
        "print(any(type(f).__name__ == '_Finder' for f in sys.meta_path), 'lm_eval' in sys.modules, 'torch' in sys.modules)"
    )
    assert result.stdout.split() == ["True", "False", "False"], result.stderr


@pytest.mark.parametrize("module", ["lm_eval.models", "lm_eval.tasks.manager"])
def test_arming_after_lm_eval_import_still_patches(module):
    """If lm-eval was imported before the hook was armed (e.g. BESTOFL_AUTOLOAD=0, then arm())."""
    result = run_python(
        textwrap.dedent(
            f"""
            import importlib
            importlib.import_module("{module}")
            import bestofl_tasks._autoload as hook
            hook.arm()
            from lm_eval.api.registry import model_registry
            from lm_eval.tasks.manager import TaskManager
            print("bestofl" in model_registry if "{module}" == "lm_eval.models" else TaskManager.__init__._bestofl)
            """
        ),
        {"BESTOFL_AUTOLOAD": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.slow
def test_our_models_get_no_chat_template_advice_and_bad_model_args_are_one_line(tmp_path):
    """lm-eval advises --apply_chat_template for 'instruct' models; ours apply the chat template themselves, so
    the advice is dropped for them (and kept for --model hf). A bad --model_args value ends the CLI with its
    message, no traceback."""
    import shutil

    from bestofl_models.testing import tiny_generator
    from fixtures import DATA_DIR

    model = tmp_path / "tiny-instruct"
    shutil.copytree(tiny_generator(), model)
    code = textwrap.dedent(f"""
        import logging, sys
        import lm_eval
        seen = []
        class Keep(logging.Handler):
            def emit(self, record):
                seen.append(" ".join(record.getMessage().split()))
        logging.getLogger("lm_eval.evaluator").addHandler(Keep())
        ours = sys.argv[1] != "hf"
        args = {{"pretrained": {str(model)!r}}}
        if ours:
            args.update(n=1, max_gen_toks=4, store="none")
        lm_eval.simple_evaluate(model=sys.argv[1], model_args=args, tasks=["mgsm_xling_de"], limit=1, device="cpu",
                                gen_kwargs=None if ours else "max_gen_toks=4")
        print("ADVICE" if any("chat template is not applied" in m for m in seen) else "QUIET")
    """)
    env = {**os.environ, "BESTOFL_DATA_DIR": str(DATA_DIR), "HF_HUB_OFFLINE": "1"}
    for name, expected in (("self-consistency", "QUIET"), ("hf", "ADVICE")):
        result = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, env=env,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().endswith(expected), (name, result.stdout[-500:])

    cli = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "lm_eval"), "--model", "bestofl", "--model_args",
         f"pretrained={model},languages=en:xx", "--tasks", "mgsm_xling_de", "--limit", "1"],
        capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    last = cli.stderr.rstrip().splitlines()[-1]
    assert last.startswith("lm_eval: error: --model_args: languages: unknown language code(s) xx. Supported: en")
