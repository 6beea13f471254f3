"""Reports from candidate stores: budget curves, pool ablations, pass@k, plots, and the raw export.

Everything is computed from stored candidates; nothing is generated. Entry point: the
``bestofl-report`` console script (:mod:`.cli`). Layout: :mod:`.data` reads stores into arrays,
:mod:`.estimators` holds the exact and Monte Carlo estimators, :mod:`.build` computes the tables,
:mod:`.render` writes CSV, markdown and PNG, :mod:`.export` the JSON Lines view,
:mod:`.adaptive_budget` replays early-stopping rules, :mod:`.recommend` chooses a language pool, and
:mod:`.synthetic` builds stores for tests and benchmarks, :mod:`.browse` writes the candidate browser;
:mod:`.compare` (with :mod:`.lm_eval_runs`, :mod:`.paired`, :mod:`.compare_render`) pairs lm-eval runs per doc.

The top stage: may import every other package (``store``, ``selection``, ``generation``, ``harness``'s
``model_args`` and ``presets``); nothing in ``bestofl_models`` imports it.
"""
