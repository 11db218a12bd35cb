"""The shared core: errors, files, languages, model sources, loading and running a model (engines,
generation), the machine settings. Serving (``assistant``), training (``finetune``) and the UI build on
it; it imports nothing of theirs (docs/CONTRIBUTING.md, enforced by tests/test_layers.py)."""
