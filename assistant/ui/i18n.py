"""UI labels in English and Chinese. Gradio picks the browser's language.

Each tab module declares ``TRANSLATIONS = {"en": {...}, "zh": {...}}`` and labels its
widgets with ``tr("key")``; ``build_i18n`` merges the tables for ``launch(i18n=...)``.
"""

from __future__ import annotations

import gradio as gr
from gradio.i18n import I18nData


def tr(key: str) -> I18nData:
    """A label the browser shows in its own language."""
    return I18nData(key)


def build_i18n(*tables: dict[str, dict[str, str]]) -> gr.I18n:
    merged: dict[str, dict[str, str]] = {}
    for table in tables:
        for lang, entries in table.items():
            clash = set(merged.get(lang, {})) & set(entries)
            if clash:
                raise ValueError(f"Translation keys defined twice: {sorted(clash)}")
            merged.setdefault(lang, {}).update(entries)
    return gr.I18n(**merged)
