"""The thin SPPO module (Self-Play Preference Optimization, arXiv 2405.00675).

One iteration t, each step a function with files between steps (see `pipeline.py`):
    sample (K responses per prompt from pi_t)  ->  rank (a preference model scores them)
    ->  probs (the official chosen/rejected + P_w, P_l)  ->  dataset (parquet in TRL's format)
    ->  train (the soft SPPO loss through TRL's DPOTrainer)  ->  checkpoint (iteration t, loadable)
"""
