"""The figures of a cellc run folder, one module per figure kind as runtime/analysis/ has one per
analysis kind: learning_curve (every run), column_shift, trace, weight_histogram, ei_rates,
readout_activity; registry.py says which figures each kind gets, run_folder.py reads the folder.
experiments/plot.py is the command that draws them; the summaries reuse the helpers."""

# First: it selects matplotlib's Agg backend before any module imports pyplot, and says in one
# line when numpy or matplotlib is missing.
from . import run_folder  # noqa: F401
