"""Analyses of IR: op support, op statistics (and, later, costs)."""
