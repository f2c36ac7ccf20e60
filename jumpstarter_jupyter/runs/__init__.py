"""Notebook runs across the farm: ``jumpstarter-jupyter run-notebooks`` and its reports.

``runner.py`` takes a lease per run and executes the notebook with papermill, handing the
lease's token to the notebook; ``report.py`` writes ``junit.xml`` and ``index.html``.
Needs the ``farm`` extra (papermill, nbconvert, tqdm, junitparser).
"""
