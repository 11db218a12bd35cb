"""The messages of user errors in every language the page speaks, one entry per key.

    raise InputError.keyed("classify.empty_text")                  # str(error) is the English text
    raise InputError.keyed("classify.too_many_labels", count=60, limit=50)
    message_text("classify.too_many_labels", "zh", count=60, limit=50)   # -> "标签太多：60 个，最多 50 个。…"
    translated(error, "zh")     # the Chinese text of a keyed error; None for an error without a key

Each entry holds the same message as ``{"en": ..., "zh": ...}`` with ``str.format`` placeholders filled from
the raise site's parameters. A new user error that the page shows gets an entry here (both languages) and is
raised with its key; an error without a key still works (English only). Tests: ``pytest tests/test_user_errors.py -q``
(every key has both languages, the same placeholders, and is raised somewhere in the code).
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

_TOO_FEW_ZH = "用反馈训练（{method}）至少需要 {least} 条样本，目前只有 {count} 条：请再评价 {more} 条。"

MESSAGES: dict[str, dict[str, str]] = {
    # classification
    "classify.empty_text": {"en": "The text is empty: type or paste the text to classify.",
                            "zh": "文本为空：请输入或粘贴要分类的文本。"},
    "classify.text_too_big": {"en": "The text is {size:,} bytes; the limit is {limit:,} bytes (100 KB). Shorten it.",
                              "zh": "文本长度为 {size:,} 字节，上限为 {limit:,} 字节（100 KB）：请缩短后再试。"},
    "classify.too_many_labels": {"en": "Too many labels: {count}; at most {limit} are allowed. Merge or drop some.",
                                 "zh": "标签太多：{count} 个，最多 {limit} 个。请合并或删除一些。"},
    "classify.duplicate_label": {"en": "Duplicate label '{label}' (same as '{same_as}'): each label must appear once.",
                                 "zh": "标签“{label}”重复（与“{same_as}”相同）：每个标签只写一次。"},
    "classify.label_too_long": {"en": "Label '{label}…' is too long or has a line break: keep labels to one line of at "
                                      "most {limit} characters.",
                                "zh": "标签“{label}…”太长或含换行：每个标签请写在一行内，最多 {limit} 个字符。"},
    "classify.upload_first": {"en": "Upload a CSV, TSV or .txt file first.", "zh": "请先上传 CSV、TSV 或 .txt 文件。"},
    "classify.not_a_table": {"en": "'{name}' is not a .csv, .tsv or .txt file. Save the table as CSV or TSV.",
                             "zh": "“{name}”不是 .csv、.tsv 或 .txt 文件：请把表格另存为 CSV 或 TSV。"},
    "classify.no_text_column": {"en": "'{name}' has no text column: name one column 'text'.",
                                "zh": "“{name}”没有文本列：请把其中一列命名为 text。"},
    "upload.not_utf8": {"en": "'{name}' is not UTF-8 text. Save it as UTF-8 and upload it again.",
                        "zh": "“{name}”不是 UTF-8 文本：请另存为 UTF-8 后重新上传。"},
    # entities
    "ner.empty_text": {"en": "The text is empty: type or paste the text to find entities in.",
                       "zh": "文本为空：请输入或粘贴要识别实体的文本。"},
    "ner.text_too_long": {"en": "The text has {count:,} characters; the limit is {limit:,}. Split it into paragraphs "
                                "and run them one at a time.",
                          "zh": "文本有 {count:,} 个字符，上限为 {limit:,}：请分段后逐段识别。"},
    "ner.too_many_types": {"en": "Too many entity types: {count}; at most {limit} are allowed.",
                           "zh": "实体类型太多：{count} 个，最多 {limit} 个。"},
    "ner.type_listed_twice": {"en": "Entity type '{name}' is listed twice: give each type once.",
                              "zh": "实体类型“{name}”重复：每种类型只写一次。"},
    "ner.type_not_usable": {"en": "Entity type '{name}' is not usable: keep it under 40 characters, without ':'.",
                            "zh": "实体类型“{name}”不可用：请少于 40 个字符且不含“:”。"},
    # translation
    "translate.empty_text": {"en": "The text is empty: type or paste the text to translate.",
                             "zh": "文本为空：请输入或粘贴要翻译的文本。"},
    "translate.text_too_long": {"en": "The text has {count:,} characters; the limit is {limit:,}. Split it up.",
                                "zh": "文本有 {count:,} 个字符，上限为 {limit:,}：请拆分后再试。"},
    "translate.too_many_lines": {"en": "The text has {count:,} lines; the limit is {limit:,}. Split it into smaller "
                                       "files.",
                                 "zh": "文本有 {count:,} 行，上限为 {limit:,}：请拆分成更小的文件。"},
    "translate.unknown_language": {"en": "Unknown language '{value}'. Valid codes: {codes}.",
                                   "zh": "未知语言“{value}”。可用代码：{codes}。"},
    "translate.cannot_detect": {"en": "Could not detect the source language (no Latin, Chinese or Japanese letters). "
                                      "Choose the source language instead of auto.",
                                "zh": "无法识别源语言：请在“源语言”中手动选择。"},
    "translate.upload_first": {"en": "Upload a .txt file first.", "zh": "请先上传 .txt 文件。"},
    # chat, FAQ, documents
    "chat.empty_message": {"en": "Type a message first: an empty message cannot be answered.",
                           "zh": "请先输入消息：空消息无法回答。"},
    "faq.empty_question": {"en": "Type a question first: an empty question cannot be answered.",
                           "zh": "请先输入问题：空问题无法回答。"},
    "faq.question_too_long": {"en": "The question has {count} characters; the limit is {limit}. Shorten it.",
                              "zh": "问题有 {count} 个字符，上限为 {limit}：请缩短后再问。"},
    "faq.empty_upload": {"en": "'{name}' is empty: add at least one question and its answer.",
                         "zh": "“{name}”是空的：请至少添加一个问题及其答案。"},
    "answer.no_model": {"en": "No chat model is loaded: untick 'Phrase the answer with the model'.",
                        "zh": "没有加载对话模型：请取消勾选“用模型组织答案”。"},
    # fine-tuning
    "finetune.nothing_to_train": {"en": "Upload a dataset or pick a sample first: there is nothing to train on yet.",
                                  "zh": "请先上传数据集或选择示例：现在还没有可训练的数据。"},
    "finetune.cannot_train_on": {"en": "{name} cannot be trained on: {reason}. Fix the file (or the column mapping) "
                                       "first.",
                                 "zh": "{name} 无法用于训练：{reason}。请先修正文件（或列映射）。"},
    "finetune.checked_for_other_task": {
        "en": "The dataset was checked for task {task}, not for the task and method chosen now; choose the task "
              "again so it is re-validated.",
        "zh": "数据集是按任务 {task} 校验的，与现在选择的任务和方法不符：请重新选择任务，让它重新校验。"},
    "finetune.no_job_to_stop": {"en": "There is no job to stop.", "zh": "没有可停止的训练任务。"},
    "finetune.pick_run_to_resume": {"en": "Pick a stopped run to resume in the list next to the button.",
                                    "zh": "请在按钮旁的列表中选择一个已停止的运行再继续。"},
    "jobs.not_owner_stop": {"en": "Only the browser session that started job {job} may stop it; you can watch its "
                                  "progress here.",
                            "zh": "只有启动任务 {job} 的浏览器会话可以停止它；你可以在这里查看进度。"},
    "jobs.not_owner_resume": {"en": "Only the browser session that started job {job} may resume it; you can watch "
                                    "its progress here.",
                              "zh": "只有启动任务 {job} 的浏览器会话可以继续它；你可以在这里查看进度。"},
    "jobs.shutting_down": {"en": "The server is shutting down; start the run again after it restarts.",
                           "zh": "服务器正在关闭：请在重启后重新开始训练。"},
    "config.learning_rate": {"en": "--learning-rate must be in (0, 1]; got {value}.",
                             "zh": "学习率必须在 (0, 1] 之间，当前为 {value}。"},
    "config.epochs_or_steps": {"en": "Set --epochs above 0 or --max-steps above 0.", "zh": "请把轮数或最大步数设为大于 0。"},
    "config.max_steps": {"en": "--max-steps must be 0 or more; got {value}.", "zh": "最大步数必须 ≥ 0，当前为 {value}。"},
    "config.batch_size": {"en": "--batch-size must be between 1 and 1024; got {value}.",
                          "zh": "批大小必须在 1 到 1024 之间，当前为 {value}。"},
    # adapters
    "adapters.pick_to_rename": {"en": "Pick the adapter to rename first.", "zh": "请先在列表中选择一个适配器。"},
    "adapters.pick_to_delete": {"en": "Pick the adapter to delete first.", "zh": "请先在列表中选择一个适配器。"},
    "adapters.pick_to_publish": {"en": "Pick the adapter to publish first.",
                                 "zh": "请先在列表中选择一个适配器。"},
    "adapters.pick_to_download": {"en": "Pick the adapter to download first.",
                                  "zh": "请先在列表中选择一个适配器。"},
    "adapters.pick_to_merge": {"en": "Pick the adapter to merge and export first.",
                               "zh": "请先在列表中选择一个适配器。"},
    "adapters.pick_to_export_gguf": {"en": "Pick the adapter to export as GGUF first.",
                                     "zh": "请先在列表中选择一个适配器。"},
    "adapters.confirm_delete": {"en": "Tick the confirmation box to delete '{name}': deleting cannot be undone.",
                                "zh": "请勾选确认框后再删除“{name}”：删除无法撤销。"},
    "adapters.head_for_other_task": {
        "en": "'{adapter}' is a {head_task} head; it cannot run the {task} task. Pick '{base}' or an adapter trained "
              "for this task.",
        "zh": "“{adapter}”是 {head_task} 分类头适配器，不能运行 {task} 任务：请选择“{base}”或为该任务训练的适配器。"},
    "adapters.not_usable": {"en": "There is no usable adapter named {name!r} here. Pick one from the adapter menu, or "
                                  "leave it empty for the base model.",
                            "zh": "这里没有名为 {name!r} 的可用适配器：请从适配器菜单中选择。"},
    # feedback
    "feedback.better_empty": {"en": "The better answer is empty: write the answer you wanted, or keep the thumbs-down "
                                    "without one.",
                              "zh": "更好的回答为空：请写下你想要的回答，或只保留“踩”。"},
    "feedback.better_too_long": {"en": "The better answer has {count:,} characters; the limit is {limit:,}. Shorten it "
                                       "to the answer itself.",
                                 "zh": "更好的回答有 {count:,} 个字符，上限为 {limit:,}：请缩短。"},
    "feedback.better_same": {"en": "The better answer is the same as the rated reply: change it, or rate the reply up.",
                             "zh": "更好的回答与被评价的回复相同：请修改，或给这条回复点“赞”。"},
    "feedback.not_this_session": {"en": "That reply was not produced in this session: you can rate only the answers "
                                        "you got.",
                                  "zh": "这条回复不是在本会话中生成的：只能评价你收到的回答。"},
    "feedback.rate_down_first": {"en": "Rate a reply down first, then write its better answer.",
                                 "zh": "请先给一条回复点“踩”，再写更好的回答。"},
    "feedback.confirm_delete_rating": {"en": "Tick the confirmation box to delete the rating: deleting cannot be "
                                             "undone.",
                                       "zh": "请勾选确认框后再删除这条评分：删除无法撤销。"},
    "feedback.too_few_kto": {"en": "Train on feedback ({method}) needs at least {least} rated answers; there are "
                                   "{count} ({seen}). Rate {more} more.", "zh": _TOO_FEW_ZH},
    "feedback.too_few_dpo": {"en": "Train on feedback ({method}) needs at least {least} thumbs-down with a better "
                                   "answer; there are {count} ({seen}). Rate {more} more.", "zh": _TOO_FEW_ZH},
    "feedback.too_few_sft": {"en": "Train on feedback ({method}) needs at least {least} liked answers or better "
                                   "answers; there are {count} ({seen}). Rate {more} more.", "zh": _TOO_FEW_ZH},
}


def message_text(key: str, language: str = "en", **params) -> str:
    """The message ``key`` in ``language`` with ``params`` filled in (KeyError for an unknown key or language)."""
    return MESSAGES[key][language].format(**params)


def translated(error: BaseException, language: str) -> str | None:
    """A keyed error's message in ``language``; None for an error raised without a key."""
    key = getattr(error, "key", None)
    return message_text(key, language, **error.params) if key else None
