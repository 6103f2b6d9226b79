"""Attention maps: one head as a labelled heatmap, or every head of a model as a grid.

``AttentionHeatmap`` shows one (T, T) attention matrix: rows are query tokens (the token that
looks), columns are key tokens (the token looked at), weights 0..1 in a perceptually uniform
colour map (viridis) with a colour bar. Token strings label both axes (rotated on the bottom
axis; thinned out when they do not fit); hovering a cell reads "query 'x' (i) → key 'y' (j):
0.123" below the map. When every weight above the diagonal is exactly 0 (a causal model), that
region is drawn as light grey "masked" rather than as zero weight.

``AttentionGrid`` shows all heads of one layer, or all layers x heads, as small heatmaps in a
single image (fast: one texture, however many heads); clicking one emits
``headSelected(layer, head)``.

Both take plain numpy arrays; nothing here knows about torch or the engine.

Modules: ``heatmap`` (AttentionHeatmap), ``grid`` (AttentionGrid), ``token_axis`` (TokenAxis, an
axis labelled with tokens, also used by the Generate page), ``colors`` (colour maps, levels and
the styling both views share).
"""
