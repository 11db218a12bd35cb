"""Load an encoder with a classification head for a label set: the one place that picks the head class.

    model = load_head_model(location, ["negative", "positive"], token_level=False)   # one label per text
    model = load_head_model(location, ["O", "B-PER", "I-PER"], token_level=True)      # one label per token

Used to train a head adapter (``finetune.models``), to serve one (``assistant.served_adapters``) and to
export one merged (``finetune.export``).
"""

from __future__ import annotations


def load_head_model(location: str, labels: list[str], token_level: bool, **kwargs):
    """``AutoModelForTokenClassification`` (NER) or ``AutoModelForSequenceClassification`` from ``location``
    with ``id2label``/``label2id`` set from ``labels``, safetensors only; ``kwargs`` go to ``from_pretrained``."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    head_class = AutoModelForTokenClassification if token_level else AutoModelForSequenceClassification
    return head_class.from_pretrained(location, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                      label2id={label: i for i, label in enumerate(labels)}, use_safetensors=True,
                                      **kwargs)
