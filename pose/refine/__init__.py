"""Refinement: find the frames a model gets wrong, correct them, merge, retrain.

The loop, as in DeepLabCut (extract_outlier_frames -> refine_labels -> merge_datasets)::

    ethopose pose outliers MODEL_DIR VIDEO --method fit --n-frames 20   # pose.refine.extract
    ethopose label PROJECT                                             # dashboard.labelling
    ethopose pose merge PROJECT --model MODEL_DIR                      # pose.refine.merge
    ethopose pose train PROJECT --from MODEL_DIR --test-frames refine/test-frames-iter1.txt

Modules: :mod:`~pose.refine.outliers` (per-frame outlier scores and diverse selection),
:mod:`~pose.refine.extract` (frames + machine labels into the project),
:mod:`~pose.refine.labels` (the human labels of a project, saved atomically),
:mod:`~pose.refine.merge` (next iteration, comparison of iterations),
:mod:`~pose.refine.state` (``refinement.json`` bookkeeping). torch is imported only
when predictions are computed.
"""
