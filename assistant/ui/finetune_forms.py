"""The Fine-tune tab's logic without Gradio: inspect a dataset, build a config from the form, start a job.

    view = inspect_dataset("finetune/samples/sentiment_en.csv")       # task guessed, columns detected
    view = inspect_dataset(view.path, "classification", {"text": "review", "label": "stars"}, view.auto_roles)
    job_id = start_training(jobs, view, {"max_steps": 30, ...}, owner="browser-token")

Every function here raises ``InputError`` with a message that says what to fix; the tab turns it into
``gr.Error``. Tests: ``pytest tests/test_finetune_tab.py -q``.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

from assistant.core.errors import InputError
from assistant.core.loading import pick_device
from finetune.config import FinetuneConfig
from finetune.data import TASK_ROLES, ColumnMapping, load_dataset_file, read_table
from finetune.data.columns import find_column
from finetune.data.loader import preview_records
from finetune.auto_choice import AUTO, choose_base, data_language
from finetune.estimate import estimate_for_config
from finetune.jobs import JobManager
from finetune.tasks import data_task

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "finetune" / "samples"
ROLE_SLOTS = max(len({r for req, opt in layouts for r in req + opt}) for layouts in TASK_ROLES.values())
# Form fields the tab shows, besides the dataset; names are FinetuneConfig fields.
FORM_FIELDS = ("task", "method", "base", "approach", "learning_rate", "epochs", "max_steps", "batch_size", "output",
               "labels", "entity_types", "source_lang", "target_lang", "pseudo_label_threshold", "lora_r",
               "lora_alpha", "lora_dropout", "target_modules", "grad_accum", "max_seq_len", "validation_split",
               "eval_limit", "seed", "quant", "preference_loss", "beta", "early_stopping_patience")
PREVIEW_ROWS = 20
FIRST_ERRORS = 3
"""Row errors quoted in a refusal (the tab shows the whole report; the API has only the message)."""
DEFAULTS = {f.name: f.default for f in fields(FinetuneConfig) if f.name in FORM_FIELDS}


def sample_files() -> list[str]:
    """The shipped sample datasets, by file name."""
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.is_file() and p.suffix != ".md")


def role_slots(loader_task: str) -> list[str]:
    """Every role of the task (all its layouts), in a stable order, for the mapping dropdowns."""
    roles: list[str] = []
    for required, optional in TASK_ROLES[loader_task]:
        roles += [r for r in required + optional if r not in roles]
    return roles


@dataclass(frozen=True, eq=False)  # eq=False: hashable by identity, as gr.State's change detection needs
class DatasetView:
    """What the tab shows about one dataset file, and whether it can be trained on."""

    path: str
    task: str  # the data loader's task (semi_supervised included)
    columns: tuple[str, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    auto_roles: dict[str, str] = field(default_factory=dict)
    markdown: str = ""
    preview: dict = field(default_factory=lambda: {"headers": [], "data": []})
    summary: str = ""
    ok: bool = False
    rows: int = 0
    mean_chars: float = 0.0
    fingerprint: str = ""
    error: str = ""  # why the columns do not fit the task (the user fixes it with the task or the mapping)
    first_errors: tuple[str, ...] = ()  # the report's first row errors, for callers that never see the report
    language: str = "en"  # of the rows ("zh" or "en"), which base auto looks at

    @property
    def custom_mapping(self) -> bool:
        return bool(self.roles) and self.roles != self.auto_roles


def inspect_dataset(path: str | Path, task: str | None = None, roles: dict[str, str] | None = None,
                    auto_roles: dict[str, str] | None = None, fallback_task: str = "classification") -> DatasetView:
    """Load and validate ``path`` for ``task`` (guessed when None) with ``roles`` (detected when None).

    A file that cannot be read at all raises InputError; a file whose columns do not fit the task (or
    whose task cannot be guessed: then ``fallback_task`` is assumed) comes back with ``ok=False``, the
    reason in ``error`` and the columns that fit preselected, so the user can choose the task or the columns.
    """
    path = Path(path)
    try:
        mapping = ColumnMapping(task, dict(roles)) if roles and task else None
        loaded = load_dataset_file(path, task=task, mapping=mapping)
    except InputError as exc:
        task = task or fallback_task
        table = read_table(path)  # raises InputError itself if the file is unreadable
        columns = tuple(table.columns)
        if not roles:  # preselect the columns whose names fit, so the user only picks the missing ones
            roles = {}
            for role in role_slots(task):
                column = find_column(columns, role, exclude=list(roles.values()))
                if column:
                    roles[role] = column
        preview = preview_records(table.records[:PREVIEW_ROWS])
        headers = list(dict.fromkeys(k for record in preview for k in record))
        return DatasetView(str(path), task, columns, dict(roles), dict(auto_roles or {}),
                           preview={"headers": headers, "data": [[r.get(h, "") for h in headers] for r in preview]},
                           summary=f"**{path.name}** · task **{task}** · the columns do not fit: choose the task "
                                   "or the columns below", error=str(exc))
    report = loaded.report
    detected = dict(loaded.mapping.roles)
    auto = dict(auto_roles) if roles and auto_roles is not None else detected
    status = "OK" if report.ok else f"{len(report.errors)} errors - fix them before training"
    summary = (f"**{path.name}** · {report.format} · task **{loaded.task}** · {report.valid_rows} usable rows"
               + (f" + {report.unlabelled_rows} unlabelled" if report.unlabelled_rows else "")
               + f" · {len(report.warnings)} warnings · {status}")
    mean = report.char_lengths.mean if report.char_lengths else 0.0
    return DatasetView(str(path), loaded.task, tuple(loaded.columns), detected, auto, report.to_markdown(),
                       loaded.preview_table(), summary, report.ok, report.valid_rows, mean, loaded.fingerprint,
                       language=data_language(loaded.rows),
                       first_errors=tuple(str(problem) for problem in report.errors[:FIRST_ERRORS]))


def training_file(view: DatasetView, data_dir: str | Path) -> Path:
    """A copy of the dataset inside ``data_dir/datasets`` (uploads are temporary; a resume needs the file),
    named by the fingerprint the inspection computed, so the file is not read again to name it. With a corrected
    column mapping the copy is canonical JSON Lines, which the recipe reads unambiguously."""
    folder = Path(data_dir) / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(view.path)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", source.stem).strip("-.")[:40] or "data"
    if not view.custom_mapping:
        target = folder / f"{stem}-{view.fingerprint[:12]}{source.suffix.lower()}"
        if not target.exists():
            shutil.copyfile(source, target)
        return target
    loaded = load_dataset_file(source, task=view.task, mapping=ColumnMapping(view.task, view.roles))
    loaded.raise_if_invalid()
    target = folder / f"{stem}-{loaded.fingerprint[:12]}.jsonl"
    records = loaded.rows + [{**row, "label": ""} for row in loaded.unlabelled]
    target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return target


def build_config(form: dict, data: str, data_dir: str | Path) -> FinetuneConfig:
    """A validated FinetuneConfig from the form values (numbers may arrive as floats or text)."""
    values = {k: v for k, v in form.items() if k in FORM_FIELDS}
    for name in ("labels", "entity_types", "output", "target_modules", "source_lang", "target_lang"):
        values[name] = (values.get(name) or DEFAULTS[name] or "").strip()
    for name, value in list(values.items()):
        if isinstance(DEFAULTS.get(name), int) and isinstance(value, float) and value.is_integer():
            values[name] = int(value)
        if value is None or value == "":
            values[name] = DEFAULTS[name]
    return FinetuneConfig(**values, data=str(data), data_dir=str(data_dir))


def check_ready(view: DatasetView | None) -> None:
    """InputError unless ``view`` is a dataset that can be trained on."""
    if view is None:
        raise InputError.keyed("finetune.nothing_to_train")
    if not view.ok:
        reason = view.error or "; ".join(view.first_errors) or "the validation report lists the problems"
        raise InputError.keyed("finetune.cannot_train_on", name=Path(view.path).name, reason=reason)


def start_training(jobs: JobManager, view: DatasetView | None, form: dict, owner: str) -> str:
    """Queue a job for this dataset and form; refuses with the reason when the data has errors."""
    check_ready(view)
    if data_task(form.get("task", "classification"), form.get("method", "supervised")) != view.task:
        raise InputError.keyed("finetune.checked_for_other_task", task=view.task)
    config = build_config(form, view.path, jobs.data_dir)  # validate the form before copying any data
    from finetune.recipe import check_approach  # the recipe's rule, checked here once for the run

    check_approach(config)
    if config.method == "preference" and "completion" in view.roles and config.preference_loss != "kto":
        raise InputError(f"{Path(view.path).name} has one rated answer per row (prompt, completion, label): pick the "
                         f"preference loss kto ({config.preference_loss} learns from prompt, chosen, rejected pairs).")
    config.data = str(training_file(view, jobs.data_dir))
    return jobs.submit(config, owner)


def preview_command(view: DatasetView | None, form: dict, data_dir: str | Path) -> str:
    """The ``python -m finetune`` line for the form as it is now (a note when the form is invalid)."""
    try:
        return build_config(form, view.path if view else "<your data file>", data_dir).cli_command()
    except InputError as exc:
        return f"# {exc}"


def estimate_markdown(view: DatasetView | None, form: dict, data_dir: str | Path) -> str:
    """The base ``auto`` picks (and why) and the memory/time estimate for the current form."""
    device = pick_device()
    task = form.get("task", "classification")
    rows, language = (view.rows, view.language) if view else (0, "en")
    base = form.get("base") or DEFAULTS["base"]
    choice = choose_base(task, language, device, rows, form.get("approach") or AUTO)
    lines = [f"**Base:** {choice.describe()}" if base == AUTO else
             f"Base {base}. (With base auto: {choice.base}, {choice.approach}: {choice.reason})"]
    if view is None or not view.rows:
        wanted = "Load a dataset" if view is None else "Fix the dataset (see the report)"
        return "\n\n".join(lines + [f"{wanted} to see the memory and time estimate."])
    try:
        estimate = estimate_for_config(build_config(form, view.path, data_dir), view.rows, view.mean_chars, device,
                                       view.language)
    except InputError as exc:
        return "\n\n".join(lines + [f"**Cannot estimate:** {exc}"])
    if estimate is None:
        return "\n\n".join(lines + ["No estimate: the base model's size is unknown (not an embedded model or a "
                                    "local folder)."])
    lines.append(f"**Estimate:** {estimate.summary()}")
    if estimate.warning:
        lines.append(f"<span style='color:#dc2626'>⚠️ {estimate.warning}</span>")
    return "\n\n".join(lines)
