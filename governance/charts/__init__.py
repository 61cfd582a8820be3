"""SVG drawings of Custos evidence (gate results, lineage): pure, deterministic, escaped text."""
