"""The soft SPPO loss, and the exact mapping onto TRL's `sppo_hard` loss that trainer.py uses.

Official (uclaml/SPPO `sppo/trainer.py`, loss_type "sppo"), with beta = 1/eta and log-probs summed over tokens:
    loss = ((logpi(y_w) - logref(y_w) - (P_w - 1/2)/beta)^2 + (logpi(y_l) - logref(y_l) - (P_l - 1/2)/beta)^2) / 2

TRL 1.16's `sppo_hard` is `(r_w - 1/(2 beta))^2 + (r_l + 1/(2 beta))^2` with r = logpi - logref. Shifting the
reference log-probs by `ref_w += (P_w - 1)/beta` and `ref_l += P_l/beta` turns its two terms into the official ones,
so `sppo_hard` on shifted references is exactly twice the soft loss; a loss weight of 1/2 makes it equal.
"""

from __future__ import annotations

import torch

SOFT_LOSS_WEIGHT = 0.5
"""TRL's `sppo_hard` on shifted references is 2x the official soft loss (it has no /2)."""


def sppo_soft_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_probs_win: torch.Tensor,
    chosen_probs_lose: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """Per-example official soft SPPO loss (the reference formula the trainer is tested against)."""
    loss_w = (policy_chosen_logps - ref_chosen_logps - (chosen_probs_win - 0.5) / beta) ** 2
    loss_l = (policy_rejected_logps - ref_rejected_logps - (chosen_probs_lose - 0.5) / beta) ** 2
    return (loss_w + loss_l) / 2


def shift_reference(
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    chosen_probs_win: torch.Tensor,
    chosen_probs_lose: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference log-probs that make TRL's `sppo_hard` compute 2x the soft loss (float64 to keep the shift exact)."""
    chosen = ref_chosen_logps.double() + (chosen_probs_win.double() - 1.0) / beta
    rejected = ref_rejected_logps.double() + chosen_probs_lose.double() / beta
    return chosen, rejected
