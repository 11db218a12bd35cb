"""Labels of the Fine-tune tab in English and Chinese (``TRANSLATIONS``, keys ``finetune.*``) and the help
line under each setting (``FIELD_HELP``: the FinetuneConfig field docstrings, the same text as ``--help``).
"""

from __future__ import annotations

from assistant.field_docs import field_docs
from finetune.config import FinetuneConfig

FIELD_HELP: dict[str, str] = field_docs(FinetuneConfig)

TRANSLATIONS = {
    "en": {
        "finetune.tab": "Fine-tune",
        "finetune.intro": "Upload a dataset (or pick a sample), check the validation report, choose the task and "
                          "settings, then press **Start**. One job trains at a time; others wait in a queue. "
                          "Stop keeps a checkpoint that **Resume** continues from.",
        "finetune.upload": "Dataset file (CSV, TSV, JSONL, JSON, Parquet, CoNLL, BMES, text)",
        "finetune.sample": "Or a sample dataset",
        "finetune.preview": "First rows",
        "finetune.task": "Task",
        "finetune.method": "Method",
        "finetune.base": "Base model (or type a folder / hub id)",
        "finetune.approach": "Approach",
        "finetune.learning_rate": "Learning rate",
        "finetune.epochs": "Epochs",
        "finetune.max_steps": "Max steps (0 = use epochs)",
        "finetune.batch_size": "Batch size",
        "finetune.output": "Adapter name",
        "finetune.labels": "Labels (comma-separated; empty = from the data)",
        "finetune.entity_types": "Entity types (comma-separated; empty = from the data)",
        "finetune.source_lang": "Source language",
        "finetune.target_lang": "Target language",
        "finetune.pseudo_label_threshold": "Pseudo-label confidence threshold",
        "finetune.more": "More settings (LoRA, sequence length, validation)",
        "finetune.lora_r": "LoRA rank r",
        "finetune.lora_alpha": "LoRA alpha",
        "finetune.lora_dropout": "LoRA dropout",
        "finetune.target_modules": "Target modules",
        "finetune.grad_accum": "Gradient accumulation",
        "finetune.max_seq_len": "Max sequence length",
        "finetune.validation_split": "Validation split",
        "finetune.eval_limit": "Max validation rows to evaluate",
        "finetune.seed": "Seed",
        "finetune.quant": "Base precision while training",
        "finetune.command": "Same run from the command line",
        "finetune.start": "Start",
        "finetune.stop": "Stop",
        "finetune.resume": "Resume",
        "finetune.resumable": "Stopped runs",
        "finetune.loss": "Loss",
        "finetune.log": "Log",
    },
    "zh": {
        "finetune.tab": "微调",
        "finetune.intro": "上传数据集（或选择示例），查看校验报告，选择任务和参数，然后点击**开始**。"
                          "同一时间只训练一个任务，其余排队等待。停止时会保存检查点，可用**继续**接着训练。",
        "finetune.upload": "数据文件（CSV、TSV、JSONL、JSON、Parquet、CoNLL、BMES、纯文本）",
        "finetune.sample": "或选择示例数据集",
        "finetune.preview": "前几行",
        "finetune.task": "任务",
        "finetune.method": "方法",
        "finetune.base": "基础模型（或输入文件夹 / Hub ID）",
        "finetune.approach": "训练方式",
        "finetune.learning_rate": "学习率",
        "finetune.epochs": "轮数",
        "finetune.max_steps": "最大步数（0 表示按轮数）",
        "finetune.batch_size": "批大小",
        "finetune.output": "适配器名称",
        "finetune.labels": "标签（逗号分隔；留空则取自数据）",
        "finetune.entity_types": "实体类型（逗号分隔；留空则取自数据）",
        "finetune.source_lang": "源语言",
        "finetune.target_lang": "目标语言",
        "finetune.pseudo_label_threshold": "伪标签置信度阈值",
        "finetune.more": "更多设置（LoRA、序列长度、验证集）",
        "finetune.lora_r": "LoRA 秩 r",
        "finetune.lora_alpha": "LoRA alpha",
        "finetune.lora_dropout": "LoRA dropout",
        "finetune.target_modules": "目标模块",
        "finetune.grad_accum": "梯度累积",
        "finetune.max_seq_len": "最大序列长度",
        "finetune.validation_split": "验证集比例",
        "finetune.eval_limit": "最多评估的验证行数",
        "finetune.seed": "随机种子",
        "finetune.quant": "训练时基础模型精度",
        "finetune.command": "等价的命令行",
        "finetune.start": "开始",
        "finetune.stop": "停止",
        "finetune.resume": "继续",
        "finetune.resumable": "已停止的运行",
        "finetune.loss": "损失",
        "finetune.log": "日志",
    },
}
