"""Empty states: every hint and placeholder the tabs use exists in English and Chinese and is on the page.

    pytest tests/test_empty_states.py -q
"""

import re
from pathlib import Path

import gradio as gr

from assistant.ui.empty_states import TRANSLATIONS

UI = Path(__file__).resolve().parents[1] / "assistant" / "ui"


def test_english_and_chinese_have_the_same_keys_and_no_empty_text():
    assert set(TRANSLATIONS["en"]) == set(TRANSLATIONS["zh"])
    assert all(text.strip() for table in TRANSLATIONS.values() for text in table.values())


def test_every_key_the_tabs_use_is_translated():
    used = set()
    for path in UI.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        used |= {f"empty.{name}" for name in re.findall(r'\b(?:hint|placeholder)\("(\w+)"\)', source)}
        used |= set(re.findall(r'tr\("(empty\.\w+)"\)', source))
    assert len(used) >= 10, used
    assert used <= set(TRANSLATIONS["en"]), sorted(used - set(TRANSLATIONS["en"]))


def test_the_fine_tune_tab_and_adapters_panel_say_what_will_appear(tmp_path):
    from assistant.ui.adapters_panel import build_adapters_panel
    from assistant.ui.finetune_tab import build_finetune_tab
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

    jobs = JobManager(tmp_path)
    try:
        with gr.Blocks() as demo:
            build_finetune_tab(jobs, AdapterStore(tmp_path / "adapters"))
            build_adapters_panel(AdapterStore(tmp_path / "adapters"))
    finally:
        jobs.close()
    config = str(demo.get_config_file())
    for key in ("empty.ft_data", "empty.ft_log", "empty.ft_metrics", "empty.adapters"):
        assert key in config, key
