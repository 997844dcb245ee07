"""Figures of training runs, drawn with Matplotlib's object API (headless, no pyplot state).

``runs`` reads run directories, ``curves`` draws learning curves and diagnostics,
``policy_slice`` draws heatmaps of a policy and its critic, ``advantages`` the histogram
that training saves at its end.
"""
