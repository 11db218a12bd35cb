"""The NLP tasks, one module each; every module owns its prompt, parser and metric.

A task module exposes ``TASK_NAME``, ``PROMPT_VERSION``, ``build_messages``, ``training_example``,
``parse_output`` and ``evaluate`` (see docs in each module). Import the one you need:

    from assistant.tasks import ner
    from finetune.encode import task_module      # training's lookup by the --task name

    python -m assistant.tasks --help      # the command-line runner (classify / ner / translate)
"""
