"""Reports from candidate stores: budget curves, pool ablations, pass@k, plots, and the raw export.

Everything is computed from stored candidates; nothing is generated. Entry point: the
``bestofl-report`` console script (:mod:`.cli`). Layout: :mod:`.data` reads stores into arrays,
:mod:`.estimators` holds the exact and Monte Carlo estimators, :mod:`.build` computes the tables,
:mod:`.render` writes CSV, markdown and PNG, :mod:`.export` the JSON Lines view,
:mod:`.adaptive_budget` replays early-stopping rules, :mod:`.recommend` chooses a language pool, and
:mod:`.synthetic` builds stores for tests and benchmarks.
"""
