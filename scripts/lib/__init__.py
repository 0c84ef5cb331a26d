"""Helpers shared by every orchestration script: recipes, manifests, stage environments, tables."""
