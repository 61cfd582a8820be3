"""Selectors: read functions, restricted to what the asking user may see."""
