"""The lm-eval models (``--model bestofl``, ``multi-orm``, ``self-consistency``) and the stages they run.

``model`` holds the ``LM`` classes; ``generate_until`` runs the stages, one module each: ``problems`` (requests ->
problems), ``plan`` (problem -> slots), ``lookup`` (what the stores hold), ``generate`` (what they lack),
``score`` (the verifier), ``choose`` (selection) and ``answer`` (the text lm-eval gets). Around them:
``model_args`` (``--model_args``), ``presets``, ``lm_eval_tasks``, ``lm_eval_options``, ``results_info``,
``run_log``, ``adaptive_run``. May import every lower package (``store``, ``selection``, ``generation``,
``verifiers``, ``errors``); never ``report``.

The classes load on first use (the start-up hook reads ``presets`` while lm-eval is still importing), so
``bestofl_models.harness:BestOfL`` (the entry points) and ``from bestofl_models.harness import BestOfLLM`` work.
"""

MODEL_CLASSES = ("BestOfLLM", "BestOfL", "MultiORM", "SelfConsistency")


def __getattr__(name: str):
    if name in MODEL_CLASSES:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
