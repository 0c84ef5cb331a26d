"""`make report`: one self-contained offline HTML page for a recipe run (scripts/drivers/report.py).

collect.py reads the run into one plain dict (verify tables with Wilson intervals, lm-eval samples, Medprompt
questions, curves, manifests, plans); render.py writes it as HTML with inlined styles, script and SVG."""
