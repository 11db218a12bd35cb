"""Fine-tuning: dataset ingestion and validation (``finetune.data``) and QLoRA training recipes.

Nothing heavy is imported here, so ``import finetune`` stays cheap for the app and the CLI.
Load a dataset with ``from finetune.data import load_dataset_file``.
"""
