"""Chinese versions of the mistakes a user can make in the page, for a browser whose language is Chinese.

    to_chinese("The text is empty: type or paste the text to classify.")   # -> "文本为空：请输入或粘贴要分类的文本。"
    page_is_chinese()        # inside a Gradio event: the request's Accept-Language starts with zh

Each entry is a regular expression over the English message (as raised by the task and training code) and
its Chinese text, which may use the expression's groups. A message without an entry still gets a Chinese
line that says to follow the English one. Used by ``assistant.ui.user_errors.shown``; tests:
``pytest tests/test_user_errors.py -q``.
"""

from __future__ import annotations

import re

MESSAGES: list[tuple[str, str]] = [
    (r"The text is empty: type or paste the text to classify\.", "文本为空：请输入或粘贴要分类的文本。"),
    (r"The text is empty: type or paste the text to find entities in\.", "文本为空：请输入或粘贴要识别实体的文本。"),
    (r"The text is empty: type or paste the text to translate\.", "文本为空：请输入或粘贴要翻译的文本。"),
    (r"Type a message first: an empty message cannot be answered\.", "请先输入消息：空消息无法回答。"),
    (r"Type a question first: an empty question cannot be answered\.", "请先输入问题：空问题无法回答。"),
    (r"The question has (\d+) characters; the limit is (\d+)\..*", r"问题有 \1 个字符，上限为 \2：请缩短后再问。"),
    (r"The text (?:is|has) ([\d,]+) (bytes|characters|lines); the limit is ([\d,]+).*",
     r"文本长度为 \1（\2），上限为 \3：请缩短或拆分后再试。"),
    (r"Too many labels: (\d+); at most (\d+) are allowed\..*", r"标签太多：\1 个，最多 \2 个。请合并或删除一些。"),
    (r"Duplicate label '(.*)' \(same as '(.*)'\).*", r"标签“\1”重复（与“\2”相同）：每个标签只写一次。"),
    (r"Label '(.*)' is too long or has a line break.*", r"标签“\1”太长或含换行：每个标签请写在一行内。"),
    (r"Too many entity types: (\d+); at most (\d+) are allowed\.", r"实体类型太多：\1 个，最多 \2 个。"),
    (r"Entity type '(.*)' is listed twice.*", r"实体类型“\1”重复：每种类型只写一次。"),
    (r"Entity type '(.*)' is not usable.*", r"实体类型“\1”不可用：请少于 40 个字符且不含“:”。"),
    (r"Unknown language '(.*)'\. Valid codes: (.*)", r"未知语言“\1”。可用代码：\2"),
    (r"Could not detect the source language.*", "无法识别源语言：请在“源语言”中手动选择。"),
    (r"Upload a CSV, TSV or \.txt file first\.", "请先上传 CSV、TSV 或 .txt 文件。"),
    (r"Upload a \.txt file first\.", "请先上传 .txt 文件。"),
    (r"'(.*)' is not UTF-8 text\..*", r"“\1”不是 UTF-8 文本：请另存为 UTF-8 后重新上传。"),
    (r"'(.*)' is not a \.csv, \.tsv or \.txt file\..*", r"“\1”不是 .csv、.tsv 或 .txt 文件：请把表格另存为 CSV 或 TSV。"),
    (r"'(.*)' has no text column: name one column 'text'\.", r"“\1”没有文本列：请把其中一列命名为 text。"),
    (r"'(.*)' is empty: add at least one question and its answer\.", r"“\1”是空的：请至少添加一个问题及其答案。"),
    (r"No chat model is loaded: untick 'Phrase the answer with the model'\.",
     "没有加载对话模型：请取消勾选“用模型组织答案”。"),
    (r"Upload a dataset or pick a sample first: there is nothing to train on yet\.",
     "请先上传数据集或选择示例：现在还没有可训练的数据。"),
    (r"(.*) cannot be trained on: (.*)\. Fix the file \(or the column mapping\) first\.",
     r"\1 无法用于训练：\2。请先修正文件（或列映射）。"),
    (r"The dataset was checked for task (.*), not for the task and method chosen now.*",
     r"数据集是按任务 \1 校验的，与现在选择的任务和方法不符：请重新选择任务，让它重新校验。"),
    (r"There is no job to stop\.", "没有可停止的训练任务。"),
    (r"Pick a stopped run to resume in the list next to the button\.", "请在按钮旁的列表中选择一个已停止的运行再继续。"),
    (r"Only the browser session that started job (.*) may (stop|resume) it.*",
     r"只有启动任务 \1 的浏览器会话可以停止或继续它；你可以在这里查看进度。"),
    (r"Pick the adapter to (?:rename|delete|publish|download|merge and export|export as GGUF) first\.",
     "请先在列表中选择一个适配器。"),
    (r"Tick the confirmation box to delete '(.*)': deleting cannot be undone\.",
     r"请勾选确认框后再删除“\1”：删除无法撤销。"),
    (r"'(.*)' is a (\w+) head; it cannot run the (\w+) task\..*",
     r"“\1”是 \2 分类头适配器，不能运行 \3 任务：请选择“(base model)”或为该任务训练的适配器。"),
    (r"There is no usable adapter named (.*) here\..*", r"这里没有名为 \1 的可用适配器：请从适配器菜单中选择。"),
    (r"The server is shutting down; start the run again after it restarts\.", "服务器正在关闭：请在重启后重新开始训练。"),
    (r"--max-steps must be 0 or more; got (.*)\.", r"最大步数必须 ≥ 0，当前为 \1。"),
    (r"The better answer is empty: .*", "更好的回答为空：请写下你想要的回答，或只保留“踩”。"),
    (r"The better answer has ([\d,]+) characters; the limit is ([\d,]+)\..*", r"更好的回答有 \1 个字符，上限为 \2：请缩短。"),
    (r"The better answer is the same as the rated reply.*", "更好的回答与被评价的回复相同：请修改，或给这条回复点“赞”。"),
    (r"That reply was not produced in this session.*", "这条回复不是在本会话中生成的：只能评价你收到的回答。"),
    (r"Rate a reply down first, then write its better answer\.", "请先给一条回复点“踩”，再写更好的回答。"),
    (r"Train on feedback \((.*)\) needs at least (\d+) .*; there are (\d+) \(.*\)\. Rate (\d+) more\.",
     r"用反馈训练（\1）至少需要 \2 条样本，目前只有 \3 条：请再评价 \4 条。"),
    (r"Tick the confirmation box to delete the rating: deleting cannot be undone\.", "请勾选确认框后再删除这条评分：删除无法撤销。"),
    (r"--batch-size must be between 1 and 1024; got (.*)\.", r"批大小必须在 1 到 1024 之间，当前为 \1。"),
    (r"--learning-rate must be in \(0, 1\]; got (.*)\.", r"学习率必须在 (0, 1] 之间，当前为 \1。"),
    (r"Set --epochs above 0 or --max-steps above 0\.", "请把轮数或最大步数设为大于 0。"),
]
_COMPILED = [(re.compile(pattern, re.S), chinese) for pattern, chinese in MESSAGES]
FALLBACK = "请按上面的英文提示修改后重试。"


def to_chinese(message: str) -> str | None:
    """The Chinese text of ``message``, or None when it has no entry."""
    for pattern, chinese in _COMPILED:
        match = pattern.fullmatch(message.strip())
        if match:
            return match.expand(chinese)
    return None


def page_is_chinese() -> bool:
    """True inside a Gradio event whose browser asks for Chinese first (Accept-Language)."""
    try:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
        header = request.headers.get("accept-language", "") if request is not None else ""
    except (LookupError, AttributeError):
        return False
    return header.strip().lower().startswith("zh")


def bilingual(message: str) -> str:
    """For a Chinese page: the Chinese text (or the fallback line) above the English original."""
    chinese = to_chinese(message)
    return f"{chinese}<br><small>{message}</small>" if chinese else f"{message}<br>{FALLBACK}"
