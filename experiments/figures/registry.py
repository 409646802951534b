"""Which figures a run gets: the common ones, and per analysis kind (summary.json
"analyses".NAME.kind) its figures in order, as runtime/analysis/Registry.cpp lists the analyses."""

from .learning_curve import draw_learning_curve
from .column_shift import (draw_sequence_heatmap, draw_traces, draw_traces_trained,
                           draw_shift_vs_column, draw_shift_vs_value, draw_shift_map)
from .trace import draw_trace, draw_plastic
from .weight_histogram import draw_weight_histogram
from .ei_rates import draw_ei_rates
from .readout_activity import draw_readout_activity


# Figures drawn for every run, whatever its analyses.
COMMON = [("learning_curve", draw_learning_curve)]

# One entry per analysis kind (summary.json "analyses".NAME.kind): its figures, in order. A figure
# function takes (run, AnalysisView) and returns the file written, or a list of them.
ANALYSES = {
    "column_shift": [
        ("sequence_heatmap", draw_sequence_heatmap),
        ("traces", draw_traces),
        ("traces_trained", draw_traces_trained),
        ("shift_vs_column", draw_shift_vs_column),
        ("shift_vs_value", draw_shift_vs_value),
        ("shift_map", draw_shift_map),
    ],
    "trace": [
        ("trace", draw_trace),
        ("plastic", draw_plastic),
    ],
    "weight_histogram": [("weight_histogram", draw_weight_histogram)],
    "ei_rates": [("ei_rates", draw_ei_rates)],
    "readout_activity": [("readout_activity", draw_readout_activity)],
}


def all_names():
    names = {n for n, _ in COMMON}
    for kind, figs in ANALYSES.items():
        names.add(kind)
        names.update(n for n, _ in figs)
    return names
