"""The reports admin: issued reports, the human sections, the links on a model version."""
