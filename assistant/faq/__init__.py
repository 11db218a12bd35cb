"""FAQ question answering: knowledge bases (``knowledge_base``), MiniLM sentence embeddings
(``embeddings``) and hybrid embedding + BM25 retrieval (``retrieval``). The task itself (answers,
the grounded prompt, chat routing, metrics) is ``assistant.tasks.faq``; the tab is
``assistant.ui.faq_tab``; the retrieval benchmark is ``bench/faq_benchmark.py``.
"""
