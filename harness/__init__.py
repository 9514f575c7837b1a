"""sppo-bench: train SPPO iterations, evaluate every checkpoint, render model cards, check regressions."""

__version__ = "0.1.0"
