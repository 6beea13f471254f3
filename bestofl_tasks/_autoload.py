"""Start-up hook that makes stock lm-eval 0.4.x see bestofl's tasks and models.

lm-eval 0.4.13 has no plugin mechanism, so ``bestofl_autoload.pth`` (installed next to the
packages) calls :func:`arm` at interpreter start. ``arm`` only appends a finder to
``sys.meta_path``; nothing is imported until lm-eval itself imports

* ``lm_eval.models``: then our three models are registered as lazy ``"module:Class"`` entries,
  *after* lm-eval's built-ins, so ``hf``/``vllm``/``dummy`` keep resolving;
* ``lm_eval.tasks.manager``: then ``TaskManager`` also indexes ``task_yamls/`` (unless
  ``include_defaults=False``);
* ``lm_eval.evaluator``: ``simple_evaluate`` of one of our models drops lm-eval's "appears to be an instruct
  or chat variant but chat template is not applied" warning (our models apply the generator's chat template
  themselves, whatever ``--apply_chat_template`` says), warns once about each lm-eval option that does not
  reach our sampling and lists them in the results' ``bestofl`` block, and keeps the results folder visible
  (lm-eval names it after ``pretrained``: ``.cache/x`` would make a hidden ``.cache__x``), refuses ``--use_cache``
  and makes the results' top-level fields true where it can (``bestofl_models.harness.lm_eval_options``); ``evaluate``
  starts the call on our model (``begin_call``: the evaluated tasks, whose questions are translated and answer
  lines checked, and the call's ``--samples``, ``--system_instruction`` and ``--gen_kwargs``; counts restart) and
  adds our per-request records (selected language and score, ``candidates``) to the ``--log_samples`` rows;
* ``lm_eval.models.huggingface`` / ``lm_eval.models.vllm_causallms``: lm-eval's own ``hf`` and ``vllm`` models take
  the embedded alias too: ``--model hf --model_args pretrained=smollm2-135m`` loads the converted folder of
  ``bestofl_models.generation.embedded`` (converted on first use), as our models do (a local folder of that name wins);
* ``lm_eval.__main__``: a bad ``--model_args`` value of our models (``ModelArgsError``), an lm-eval option
  they refuse (``LmEvalOptionError``: ``--use_cache``), a store that cannot be used (``StoreError``,
  ``StoreNotWritableError``), an unusable ``BESTOFL_CACHE`` (``CacheError``) or task data that cannot be reached
  (our ``DataUnavailableError``; lm-eval's own tasks when the Hub client gives up) ends the CLI with a one-line
  message and exit code 2 instead of a traceback.

Set ``BESTOFL_AUTOLOAD=0`` to switch it off. Every failure is swallowed: a broken hook must
never break interpreter start-up or lm-eval.
"""

from __future__ import annotations

import contextvars
import importlib.machinery
import os
import sys

from bestofl_tasks import task_yamls_dir


def models() -> dict[str, str]:
    """Our model names and their lazy ``module:Class`` targets, from ``bestofl_models.harness.presets`` (read when lm-eval
    imports its registry, not at interpreter start)."""
    from bestofl_models.harness.presets import PRESETS

    return {name: preset.target for name, preset in PRESETS.items()}


def register_models(registry_module=None) -> None:
    """Register our models lazily unless a name is taken (e.g. by lm-eval's own plugin loader)."""
    if registry_module is None:
        import lm_eval.api.registry as registry_module
    registry = registry_module.model_registry
    for name, target in models().items():
        if name not in registry:
            registry.register(name, target=target)


def patch_task_manager(manager_module) -> None:
    """Make every ``TaskManager`` that includes lm-eval's default tasks also index ``task_yamls/`` (once,
    idempotent). ``include_defaults=False`` means "only my ``include_path``": nothing is added then."""
    import inspect

    cls = manager_module.TaskManager
    if getattr(cls.__init__, "_bestofl", False):
        return
    original = cls.__init__
    signature = inspect.signature(original)
    ours = task_yamls_dir()

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        if bound.arguments.get("include_defaults", True):
            include_path = bound.arguments.get("include_path")
            paths = [] if include_path is None else (
                list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
            )
            if not any(os.path.abspath(str(p)) == ours for p in paths):
                paths.insert(0, ours)  # user paths come later and may override ours
            bound.arguments["include_path"] = paths
        original(*bound.args, **bound.kwargs)

    __init__._bestofl = True
    __init__.__doc__ = original.__doc__
    __init__.__signature__ = signature
    cls.__init__ = __init__


def _is_ours(model) -> bool:
    if isinstance(model, str):
        return model in models()
    return type(model).__module__.startswith("bestofl_models.")


#: The ``simple_evaluate`` call in progress (its ``--gen_kwargs``, and the model ``evaluate`` ran), for ``evaluate``.
_CALL = contextvars.ContextVar("bestofl_lm_eval_call", default=None)


class _DropChatTemplateAdvice:
    """Logging filter: lm-eval's advice to apply a chat template (our models always apply it)."""

    @staticmethod
    def filter(record) -> bool:
        return "chat template is not applied" not in " ".join(record.getMessage().split())  # lm-eval wraps it


def patch_evaluator(module) -> None:
    """``simple_evaluate`` and ``evaluate`` of our models as the module docstring says (once, idempotent)."""
    import functools
    import inspect
    import logging

    original = module.simple_evaluate
    if getattr(original, "_bestofl", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def simple_evaluate(*args, **kwargs):
        model = args[0] if args else kwargs.get("model")
        if not _is_ours(model):
            return original(*args, **kwargs)
        from bestofl_models.harness.lm_eval_options import describe_top_level, refuse_use_cache
        from bestofl_models.harness.results_info import ignored_options

        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        refuse_use_cache(bound.arguments.get("use_cache"), model)  # before the model is built
        ignored = ignored_options(bound.arguments)
        source = logging.getLogger(module.__name__)
        source.addFilter(_DropChatTemplateAdvice)
        call = {"gen_kwargs": bound.arguments.get("gen_kwargs"), "lm": None}
        token = _CALL.set(call)
        try:
            results = original(*args, **kwargs)
        finally:
            _CALL.reset(token)
            source.removeFilter(_DropChatTemplateAdvice)
        _unhide_results_folder(bound.arguments.get("evaluation_tracker"))
        if results and isinstance(results.get("config", {}).get("bestofl"), dict):
            results["config"]["bestofl"]["ignored_lm_eval_options"] = ignored
            if call["lm"] is not None:
                describe_top_level(results, call["lm"], bound.arguments)
        return results

    original_evaluate = module.evaluate
    evaluate_signature = inspect.signature(original_evaluate)

    @functools.wraps(original_evaluate)
    def evaluate(lm, *args, **kwargs):
        if not _is_ours(lm):
            return original_evaluate(lm, *args, **kwargs)
        bound = evaluate_signature.bind(lm, *args, **kwargs)
        samples = bound.arguments.get("samples")
        if samples:  # lm-eval labels the k-th chosen doc (in the task's order) with the k-th index as given
            bound.arguments["samples"] = {task: sorted(set(indices)) for task, indices in samples.items()}
        call = _CALL.get()
        if hasattr(lm, "begin_call"):  # this call's options; translation reads the tasks' doc_to_text and filters
            lm.begin_call(bound.arguments.get("task_dict"), samples=bound.arguments.get("samples"),
                          system_instruction=bound.arguments.get("system_instruction"),
                          gen_kwargs=call["gen_kwargs"] if call else None)
        elif hasattr(lm, "bind_tasks"):
            lm.bind_tasks(bound.arguments.get("task_dict"))
        if call is not None:
            call["lm"] = lm
        results = original_evaluate(**bound.arguments)  # keywords, as simple_evaluate passes them
        from bestofl_models.harness.results_info import add_sample_records

        add_sample_records(results, lm)
        return results

    simple_evaluate._bestofl = evaluate._bestofl = True
    module.simple_evaluate = simple_evaluate
    module.evaluate = evaluate


def _unhide_results_folder(tracker) -> None:
    """lm-eval's results folder is named after ``pretrained``; a leading ``.`` would hide it."""
    general = getattr(tracker, "general_config_tracker", None)
    name = getattr(general, "model_name_sanitized", None)
    if isinstance(name, str) and name.startswith("."):
        general.model_name_sanitized = "_" + name.lstrip(".")


#: bestofl's errors that say what to change in one line: the ``lm_eval`` CLI prints them without a traceback.
ONE_LINE_ERRORS = ("ModelArgsError", "LmEvalOptionError", "StoreError", "StoreNotWritableError", "CacheError")


#: Where lm-eval's own tasks say their Hub data cannot be reached (``datasets``, ``huggingface_hub``).
HUB_CLIENTS = (f"{os.sep}datasets{os.sep}", f"{os.sep}huggingface_hub{os.sep}")
HUB_DATA_HINT = (
    "The task reads its data from the Hugging Face Hub, which cannot be reached, and no cached copy was found. "
    "bestofl's mgsm_xling tasks ship their data; its other tasks read local files with BESTOFL_DATA_DIR "
    "(docs/TASKS.md, 'Offline data'); lm-eval's own tasks need the Hub or its cache (HF_HUB_OFFLINE=1 reads the "
    "cache without retrying)."
)


def _one_line_message(exc: BaseException) -> str | None:
    """The CLI's one-line message for ``exc``, or None to let lm-eval print the traceback."""
    kind, module = type(exc).__name__, type(exc).__module__
    if kind in ONE_LINE_ERRORS and module.startswith("bestofl_models"):
        return f"{'--model_args: ' if kind == 'ModelArgsError' else ''}{exc}"
    if kind == "DataUnavailableError" and module.startswith("bestofl_tasks"):
        return str(exc)
    if isinstance(exc, ConnectionError) and exc.__traceback__ is not None:
        import traceback

        raised_in = traceback.extract_tb(exc.__traceback__)[-1].filename
        if any(client in raised_in for client in HUB_CLIENTS):
            return f"{exc}. {HUB_DATA_HINT}"
    return None


def patch_cli(module) -> None:
    """The ``lm_eval`` CLI prints our ``--model_args``, lm-eval option, store and cache errors as one line (exit 2),
    not as a traceback."""
    original = module.cli_evaluate
    if getattr(original, "_bestofl", False):
        return

    def cli_evaluate():
        try:
            return original()
        except (ValueError, OSError) as exc:
            message = _one_line_message(exc)
            if message is None:
                raise
            print(f"lm_eval: error: {message}", file=sys.stderr)
            raise SystemExit(2) from None

    cli_evaluate._bestofl = True
    cli_evaluate.__doc__ = original.__doc__
    module.cli_evaluate = cli_evaluate


def _embedded_folder(value):
    """The converted folder of an embedded alias (``smollm2-135m``) that is not a local path, else None."""
    if not isinstance(value, str) or os.path.exists(os.path.expanduser(value)):
        return None
    from bestofl_models.generation.embedded import ALIASES, resolve_pretrained

    return resolve_pretrained(value) if value in ALIASES else None


def patch_embedded_alias(module, class_name: str) -> None:
    """``module.class_name(pretrained=ALIAS, ...)`` loads the alias's converted folder (once, idempotent); the
    ``pretrained`` lm-eval records (results folder, ``model_args``) stays the alias."""
    import functools
    import logging

    cls = getattr(module, class_name, None)
    if cls is None or getattr(cls.__init__, "_bestofl", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        positional = bool(args) and "pretrained" not in kwargs
        value = args[0] if positional else kwargs.get("pretrained")
        folder = _embedded_folder(value)
        if folder is not None:
            logging.getLogger(module.__name__).info("pretrained=%s is bestofl's embedded model: %s", value, folder)
            if positional:
                args = (folder, *args[1:])
            else:
                kwargs["pretrained"] = folder
        original(self, *args, **kwargs)

    __init__._bestofl = True
    cls.__init__ = __init__


_AFTER_IMPORT = {
    "lm_eval.models": lambda module: register_models(),
    "lm_eval.models.huggingface": lambda module: patch_embedded_alias(module, "HFLM"),
    "lm_eval.models.vllm_causallms": lambda module: patch_embedded_alias(module, "VLLM"),
    "lm_eval.tasks.manager": patch_task_manager,
    "lm_eval.evaluator": patch_evaluator,
    "lm_eval.__main__": patch_cli,
}


class _PostImportLoader:
    """Wraps a module's loader to run a hook right after the module executes."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            self._hook(module)
        except Exception as exc:  # never break lm-eval because of us
            print(f"bestofl: start-up hook failed ({exc!r}); set BESTOFL_AUTOLOAD=0 to silence", file=sys.stderr)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Finder:
    """Meta-path finder that only reacts to the few lm-eval modules we patch."""

    # Plain classes, not importlib.abc subclasses: importing importlib.abc costs ~15 ms.
    def find_spec(self, fullname, path, target=None):
        hook = _AFTER_IMPORT.get(fullname)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PostImportLoader(spec.loader, hook)
        return spec


def arm() -> None:
    """Install the finder (cheap: no imports); patch at once if lm-eval is already imported."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
    for name, hook in _AFTER_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:
            hook(module)
