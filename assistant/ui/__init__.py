"""Gradio UI: one module per tab, each only wiring widgets to functions that work without Gradio."""
