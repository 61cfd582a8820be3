"""Reads of the reports app's rows, restricted to what the asking user may see."""
