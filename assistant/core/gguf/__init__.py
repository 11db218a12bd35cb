"""GGUF files written by the project, on the ``gguf`` package: whole models (``model_file``) and LoRA
adapters (``lora_file``), in the tensor names and layouts llama.cpp reads (``architectures``)."""
