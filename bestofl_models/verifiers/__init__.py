"""Scoring candidates: trained verifiers, chat reward models and judges, their config and how ``verifier=`` resolves.

Owns ``config`` (``VerifierConfig``), ``spec`` (``resolve_verifier`` reads configs before sampling;
``load_scorer``), ``checkpoint`` (what a checkpoint is, loading it), ``classifier`` (the transformers and vLLM
scorers of a classifier) and ``judge`` (``self`` / ``judge:ID``). May import ``generation`` (tokenizers, devices,
vLLM engines), ``store``, ``selection`` and ``errors``; never ``harness`` or ``report``.
"""
