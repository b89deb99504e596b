"""Rendering of compare and gate results: terminal tables, plots and a self-contained HTML page."""
