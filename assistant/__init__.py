"""Serving side of the assistant studio: model loading, chat, tasks, FAQ retrieval and the UI.

Run the app with ``python app.py`` from the repository root.
"""
