"""`make report`: one self-contained offline HTML page for a recipe run, or a model's evaluations
(scripts/drivers/report.py).

collect.py reads the run into one plain dict (verify tables with Wilson intervals, lm-eval samples, judged suites'
verdicts (verdicts.py), Medprompt questions, diff-eval comparisons (diffs.py), curves, manifests, plans and their
cost (footprint.py)); render.py writes it as HTML with inlined styles, script and SVG."""
