"""Publishing an adapter to the Hub (finetune/publish.py, finetune/model_card.py, the panel's Publish section).

    pytest tests/test_publish.py -q

A real adapter is trained on the tiny Llama; uploads go through the real ``huggingface_hub.HfApi`` to a local
fake Hub on 127.0.0.1 (tests/fake_hub.py) that speaks the create-repo / preupload / commit protocol. Nothing
reaches the network. The token is a distinctive string that must never show up in errors or logs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback

import pytest
import yaml

from assistant.core.errors import InputError, UserError
from finetune.adapters import AdapterStore
from finetune.model_card import base_hub_id, metrics_table
from finetune.publish import main, prepare_upload, publish, scrub, validate_repo_id
from tests.fake_hub import FakeHub

TOKEN = "hf_TESTsecretTOKENdoNotLeak1234567890"
ADAPTER_FILES = {"README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
                 "metadata.json", "metrics.jsonl", "tokenizer.json", "tokenizer_config.json"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tiny_llm_dir):
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    folder = tmp_path_factory.mktemp("publish-data")
    run_new(FinetuneConfig(task="classification", data="finetune/samples/sentiment_en.csv", base=str(tiny_llm_dir),
                       max_steps=2, eval_limit=4, data_dir=str(folder), output="a"))
    (folder / "adapters" / "a" / "notes.txt").write_text("private notes, not for the Hub\n")
    return folder


@pytest.fixture
def info(data_dir):
    return AdapterStore(data_dir / "adapters").get("a")


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as HF_HUB_OFFLINE=0; the endpoint is local
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub(TOKEN) as fake:
        yield fake


@pytest.fixture
def api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_prepare_upload_is_exactly_the_adapter_files_and_a_card(info, tiny_llm_dir):
    files = prepare_upload(info, "alice/sentiment-lora")
    assert set(files) == ADAPTER_FILES  # notes.txt and PEFT's own README stay home
    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "peft" and meta["license"] == "other"
    assert meta["tags"][:3] == ["lora", "qlora", "classification"] and "base_model" not in meta  # a local base
    metadata = info.metadata
    assert "tiny-llama" in card and "classification" in card and metadata["data_fingerprint"] in card
    assert "`negative`, `positive`" in card and "PeftModel.from_pretrained(base, \"alice/sentiment-lora\")" in card
    base, adapter = metadata["metrics"]["base"], metadata["metrics"]["adapter"]
    assert (f"| accuracy | {base['accuracy']:.4f} | {adapter['accuracy']:.4f} |" in card
            and f"| macro_f1 | {base['macro_f1']:.4f} | {adapter['macro_f1']:.4f} |" in card)
    assert "confusion" not in card  # nested values are not table rows
    for path, content in files.items():
        data = content if isinstance(content, bytes) else content.read_bytes()
        assert str(tiny_llm_dir).encode() not in data, f"{path} leaks the local base path"
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "tiny-llama"
    uploaded_meta = json.loads(files["metadata.json"])
    assert uploaded_meta["base_model"] == "tiny-llama" and uploaded_meta["data_fingerprint"] == metadata[
        "data_fingerprint"]
    assert files["adapter_model.safetensors"] == info.path / "adapter_model.safetensors"


def test_embedded_bases_are_named_by_their_hub_ids(info):
    metadata = {**info.metadata, "base_model": "smollm2-135m-instruct",
                "hyperparameters": {**info.metadata["hyperparameters"], "base": "smollm2-135m-instruct"}}
    files = prepare_upload(dataclasses.replace(info, base_model="smollm2-135m-instruct", metadata=metadata), "a/b")
    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0"
    assert "base_model:adapter:HuggingFaceTB/SmolLM2-135M-Instruct" in meta["tags"]
    assert 'AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")' in card
    config = json.loads(files["adapter_config.json"])
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert base_hub_id("minilm-l6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_hub_id("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert base_hub_id("/srv/models/qwen") is None and base_hub_id("./models/qwen") is None

    head = {**metadata, "base_model": "minilm-l6-v2", "kind": "encoder-head-lora",
            "hyperparameters": {**metadata["hyperparameters"], "quant": "none"}}
    card = prepare_upload(dataclasses.replace(info, base_model="minilm-l6-v2", metadata=head))["README.md"].decode()
    meta = front_matter(card)
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["pipeline_tag"] == "text-classification" and "qlora" not in meta["tags"]
    assert "AutoModelForSequenceClassification.from_pretrained(" in card


def test_metrics_table_marks_improvements_by_direction():
    table = metrics_table({"base": {"accuracy": 0.5, "perplexity": 20.0},
                           "adapter": {"accuracy": 0.75, "perplexity": 12.5, "confusion": {"a": {"a": 1}}}})
    assert "| accuracy | 0.5000 | 0.7500 | +0.2500 ✓ |" in table
    assert "| perplexity | 20.0000 | 12.5000 | -7.5000 ✓ |" in table
    assert metrics_table({"base": {}, "adapter": {}}) == ""


def test_publish_commits_the_prepared_files_through_the_hub_protocol(info, hub, api, caplog, capsys):
    logging.getLogger("huggingface_hub").setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    url = publish(info, "alice/sentiment-lora", TOKEN, private=True, api=api)
    assert url == f"{hub.url}/alice/sentiment-lora"
    repo = hub.repos["alice/sentiment-lora"]
    assert repo["visibility"] == "private" and len(repo["commits"]) == 1
    expected = {path: content if isinstance(content, bytes) else content.read_bytes()
                for path, content in prepare_upload(info, "alice/sentiment-lora").items()}
    assert repo["files"] == expected
    assert publish(info, "alice/sentiment-lora", TOKEN, api=api) == url  # the repo exists: a second commit
    assert len(repo["commits"]) == 2
    assert [call for call in hub.calls if call[1] == "/api/repos/create"] == [("POST", "/api/repos/create")] * 2
    captured = capsys.readouterr()
    assert TOKEN not in caplog.text + captured.out + captured.err
    assert "Publishing adapter a to alice/sentiment-lora" in caplog.text


def test_hub_errors_reach_the_user_without_the_token(info, hub, api, caplog, capsys):
    logging.getLogger("huggingface_hub").setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    hub.echo_token_in_errors = True  # the server repeats the Authorization header in its message
    with pytest.raises(UserError) as caught:
        publish(info, "alice/echo", TOKEN, api=api)
    message = str(caught.value)
    assert "403" in message and "***" in message and "alice/echo" in message
    full = "".join(traceback.format_exception(caught.value))
    assert TOKEN not in message and TOKEN not in full and TOKEN not in repr(caught.value)
    assert caught.value.__context__ is None and caught.value.__cause__ is None

    hub.echo_token_in_errors = False
    wrong = "hf_WRONGtokenALSOsecret99999999"
    with pytest.raises(UserError, match="401") as caught:
        publish(info, "alice/wrong", wrong, api=api)
    assert wrong not in str(caught.value)
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert TOKEN not in logs and wrong not in logs


def test_the_token_comes_from_the_argument_or_hf_token(info, hub, api, monkeypatch):
    with pytest.raises(InputError, match="HF_TOKEN"):
        publish(info, "alice/env", "", api=api)
    assert hub.calls == []
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert publish(info, "alice/env", "  ", api=api).endswith("/alice/env")


@pytest.mark.parametrize("repo_id", ["", "   ", "sentiment", "alice/", "/sentiment", "a/b/c", "alice/senti ment",
                                     "-alice/x", "alice/x-", "alice/x.", "alice/a--b", "alice/a..b", "alice/x.git",
                                     "alice/" + "x" * 97, "alice/sentiment?private=1", "../../etc/passwd"])
def test_invalid_repo_ids_are_refused_before_any_request(info, hub, api, repo_id):
    with pytest.raises(InputError, match="owner/name"):
        publish(info, repo_id, TOKEN, api=api)
    assert hub.calls == []


def test_valid_repo_ids_pass_and_scrub_hides_token_shapes():
    assert validate_repo_id(" alice/sentiment-lora ") == "alice/sentiment-lora"
    assert validate_repo_id("Org_1/model.v2_final") == "Org_1/model.v2_final"
    assert scrub("token hf_abcdefghijk and mysecret", "mysecret") == "token *** and ***"
    with pytest.raises(InputError) as caught:  # the token pasted into the repo field by mistake
        validate_repo_id(TOKEN)
    assert TOKEN not in str(caught.value) and "***" in str(caught.value)


def test_offline_mode_is_a_clear_error(info, api, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=0"):
        publish(info, "alice/offline", TOKEN, api=api)
    assert hub.calls == []


def test_cli_dry_run_prints_the_files_and_the_card(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["a", "--repo-id", "alice/sentiment-lora", "--dry-run", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "Would upload 8 files to alice/sentiment-lora" in out
    assert all(name in out for name in ADAPTER_FILES) and "notes.txt" not in out
    assert "library_name: peft" in out and "## Evaluation" in out and TOKEN not in out
    assert main(["a", "--data-dir", str(data_dir)]) == 2
    assert "--repo-id is required" in capsys.readouterr().err
    assert main(["a", "--repo-id", "no-owner", "--data-dir", str(data_dir)]) == 2
    assert main(["missing", "--dry-run", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "owner/name" in err and "no adapter named 'missing'" in err and TOKEN not in err


def test_panel_publish_uses_hf_token_when_the_field_is_empty(data_dir, hub, api, monkeypatch):
    from assistant.ui.adapters_panel import publish_adapter

    store = AdapterStore(data_dir / "adapters")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    shown = publish_adapter(store, "a", "alice/from-ui", False, "", api=api)
    assert shown == f"Published **a** to [{hub.url}/alice/from-ui]({hub.url}/alice/from-ui)" and TOKEN not in shown
    with pytest.raises(InputError, match="Pick the adapter"):
        publish_adapter(store, None, "alice/from-ui", False, TOKEN, api=api)


def _elem_ids(demo) -> dict:
    return {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}


def test_operator_lock_leaves_out_rename_delete_and_publish(data_dir, tmp_path):
    import gradio as gr

    from assistant.ui.adapters_panel import build_adapters_panel

    store = AdapterStore(data_dir / "adapters")
    with gr.Blocks() as managed:
        build_adapters_panel(store, tmp_path)
    with gr.Blocks() as locked:
        build_adapters_panel(store, tmp_path, allow_manage=False)
    managed_ids, locked_ids = _elem_ids(managed), _elem_ids(locked)
    manage = {"adapters-rename", "adapters-delete", "adapters-new-name", "adapters-confirm", "adapters-publish",
              "adapters-repo-id", "adapters-token", "adapters-private"}
    assert manage <= set(managed_ids) and not manage & set(locked_ids)
    assert {"adapters-table", "adapters-export", "adapters-merge"} <= set(locked_ids)
    assert managed_ids["adapters-token"].type == "password"
    assert len(locked.fns) == len(managed.fns) - 3  # no rename, delete or publish event to call either


@pytest.mark.browser
def test_browser_publish_shows_the_url_and_never_echoes_the_token(data_dir, hub, monkeypatch, tmp_path):
    import gradio as gr
    from huggingface_hub import constants

    from assistant.ui.adapters_panel import TRANSLATIONS, build_adapters_panel
    from assistant.ui.i18n import build_i18n
    from tests.app_server import free_port

    playwright = pytest.importorskip("playwright.sync_api")
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # as HF_ENDPOINT=<fake hub>: HfApi() talks to it
    with gr.Blocks() as demo:
        build_adapters_panel(AdapterStore(data_dir / "adapters"), tmp_path)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        i18n=build_i18n(TRANSLATIONS))
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#adapters-pick input").click()
            page.get_by_role("option", name="a", exact=True).click()
            page.get_by_text("Publish to the Hub").click()
            page.locator("#adapters-repo-id textarea, #adapters-repo-id input").first.fill("bad id")
            page.locator("#adapters-token input").fill(TOKEN)
            page.locator("#adapters-publish").click()
            page.get_by_text("is not valid").first.wait_for(timeout=30_000)
            page.locator("#adapters-repo-id textarea, #adapters-repo-id input").first.fill("alice/from-browser")
            page.locator("#adapters-publish").click()
            page.locator("#adapters-publish-result").get_by_text("alice/from-browser").first.wait_for(timeout=30_000)
            html = page.content()
            browser.close()
    finally:
        demo.close()
    assert f"{hub.url}/alice/from-browser" in html and "Traceback" not in html
    assert TOKEN not in html
    assert "README.md" in hub.repos["alice/from-browser"]["files"]
