"""Turning prompts into texts: the generator backends, data parallel glue, the embedded model, translation.

Owns ``backends`` (``hf``, ``vllm``, batch ``sizing``: one ``generate(prompts, seeds, stops, settings)``
interface), ``distributed`` (split/merge functions, the accelerate process group), ``embedded`` (the
``smollm2-135m`` alias and its converted folder), ``model_path`` (local folder, Hub id or alias) and
``translation`` (translators and the translated-problem cache). May import ``store``, ``selection`` and
``errors``; never ``verifiers``, ``harness`` or ``report``.
"""
