"""Step 4: one SPPO iteration's training, delegated to TRL's DPOTrainer with the shifted-reference trick (loss.py).

`SPPOTrainer` is `DPOTrainer(loss_type="sppo_hard", loss_weights=[0.5], precompute_ref_log_probs=True)` plus two small
overrides: after TRL computes the reference log-probs (once per iteration, with the policy the iteration starts from)
they are shifted by the official probabilities, and prompts are cut to `max_prompt_length` (keeping their end, like
the official trainer) since TRL 1.16 only truncates whole sequences. RMSprop, linear schedule, warmup ratio and seed
come from the config; everything else is TRL's loop.

Precision: the policy trains at the dtype its checkpoint declares (harness.backends.precision; `dtype` "auto" =
the checkpoint's own where the machine computes it). bfloat16 means mixed precision: float32 master weights and
optimizer state, forward and backward passes under bfloat16 autocast (TRL/transformers `bf16=True`), since an update
of lr x a weight's size (2e-5 x 0.05 here) is below bfloat16's resolution and pure bfloat16 weights would drop it.
The saved checkpoint keeps the float32 weights and declares the dtype it was trained at (checkpoint.py), so the next
iteration and the evaluation run at the same precision as the base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from harness.errors import UserError
from harness.sppo.config import TrainConfig
from harness.sppo.loss import SOFT_LOSS_WEIGHT, shift_reference

SHIFT_COLUMNS = ("chosen_probs_win", "chosen_probs_lose")
LENGTH = "length"


@dataclass
class TrainOutcome:
    model: Any
    tokenizer: Any
    steps: int
    log: list[dict[str, float]] = field(default_factory=list)
    precision: str = "float32"
    """"float32", or "bfloat16"/"float16" mixed precision (autocast over float32 master weights)."""

    @property
    def final_loss(self) -> float | None:
        losses = [e["loss"] for e in self.log if "loss" in e]
        return losses[-1] if losses else None


class SPPOTrainer(DPOTrainer):
    """DPOTrainer whose `sppo_hard` loss, on shifted precomputed references and weight 1/2, is the soft SPPO loss."""

    def __init__(self, *args: Any, max_prompt_length: int | None = None, length_grouped: bool = False,
                 **kwargs: Any) -> None:
        self._max_prompt_length = max_prompt_length
        self._length_grouped = length_grouped
        config = kwargs.get("args")
        if not isinstance(config, DPOConfig) or config.loss_type != ["sppo_hard"] or not config.precompute_ref_log_probs:
            raise ValueError("SPPOTrainer needs DPOConfig(loss_type=['sppo_hard'], precompute_ref_log_probs=True)")
        if config.loss_weights != [SOFT_LOSS_WEIGHT]:
            raise ValueError(f"SPPOTrainer needs loss_weights=[{SOFT_LOSS_WEIGHT}] (sppo_hard is 2x the soft loss)")
        super().__init__(*args, **kwargs)

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        if self._max_prompt_length:
            keep = self._max_prompt_length
            dataset = dataset.map(lambda ex: {"prompt_ids": ex["prompt_ids"][-keep:]}, desc="Truncating prompts")
        if self._length_grouped:  # what a pair costs: prompt + the longer answer
            dataset = dataset.map(lambda ex: {LENGTH: len(ex["prompt_ids"]) + max(len(ex["chosen_ids"]),
                                                                                 len(ex["rejected_ids"]))})
        return dataset

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: Any = self._signature_columns
        if self._length_grouped and LENGTH not in columns:
            self._signature_columns = [*columns, LENGTH]  # type: ignore[assignment]  # the sampler reads it; the collator ignores it

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """length_grouped: batches of neighbours in length, in a seeded random order (transformers' own
        LengthGroupedSampler groups nothing below 4 batches per mega-batch, i.e. at this profile's 48 pairs)."""
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if not self._length_grouped or dataset is None or LENGTH not in dataset.column_names:
            return super()._get_train_sampler(train_dataset)
        return length_grouped_order(list(dataset[LENGTH]), self.args.per_device_train_batch_size, self.args.seed)

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        dataset = super()._precompute_ref_logps(dataset, name, batch_size)
        missing = [c for c in SHIFT_COLUMNS if c not in dataset.column_names]
        if missing:
            raise ValueError(f"the {name} dataset lacks {missing}: SPPO needs the official probability columns")
        chosen, rejected = shift_reference(
            torch.tensor(list(dataset["ref_chosen_logps"]), dtype=torch.float64),
            torch.tensor(list(dataset["ref_rejected_logps"]), dtype=torch.float64),
            torch.tensor(list(dataset["chosen_probs_win"]), dtype=torch.float64),
            torch.tensor(list(dataset["chosen_probs_lose"]), dtype=torch.float64),
            self.beta,
        )
        dataset = dataset.rename_columns({"ref_chosen_logps": "unshifted_ref_chosen_logps",
                                          "ref_rejected_logps": "unshifted_ref_rejected_logps"})
        dataset = dataset.add_column("ref_chosen_logps", chosen.tolist())
        return dataset.add_column("ref_rejected_logps", rejected.tolist())


def dpo_config(cfg: TrainConfig, output_dir: Path, *, world_size: int = 1, progress: bool = False,
               mixed: str | None = None) -> DPOConfig:
    """TRL's config for one iteration; `mixed` ("bfloat16" or "float16") turns on autocast mixed precision."""
    per_step = cfg.per_device_batch_size * world_size
    if cfg.global_batch_size % per_step:
        raise UserError(f"train.global_batch_size {cfg.global_batch_size} is not a multiple of per-device batch "
                        f"{cfg.per_device_batch_size} x {world_size} devices; change one of them")
    use_cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    return DPOConfig(
        output_dir=str(output_dir),
        loss_type=["sppo_hard"],
        loss_weights=[SOFT_LOSS_WEIGHT],
        beta=cfg.beta,
        precompute_ref_log_probs=True,
        learning_rate=cfg.learning_rate,
        optim=cfg.optimizer,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the total steps
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.global_batch_size // per_step,
        num_train_epochs=cfg.epochs,
        max_length=cfg.max_length,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cfg.bf16 or mixed == "bfloat16",
        fp16=mixed == "float16",
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=use_cpu,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )


def train_iteration(policy: str, frame: Any, cfg: TrainConfig, work_dir: Path, chat_template: str | None = None,
                    dtype: str = "auto", progress: bool = False) -> TrainOutcome:
    """Train the policy at `policy` on one iteration's preference frame (dataset.py's columns); returns the model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy)
    if chat_template:
        tokenizer.chat_template = chat_template
    precision = training_precision(policy, cfg, dtype)
    model = AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32)  # master weights (module docstring)
    mixed = None if precision.dtype == "float32" else precision.dtype
    dataset = Dataset.from_pandas(frame, preserve_index=False)
    args = dpo_config(cfg, work_dir, progress=progress, mixed=mixed)
    if args.world_size > 1:  # launched with accelerate/torchrun: the devices share the global batch
        args = dpo_config(cfg, work_dir, world_size=args.world_size, progress=progress, mixed=mixed)
    trainer = SPPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          max_prompt_length=cfg.max_prompt_length, length_grouped=cfg.length_grouped)
    trainer.train()
    log = [{k: float(v) for k, v in e.items() if isinstance(v, int | float) and math.isfinite(float(v))}
           for e in trainer.state.log_history]
    trained: Any = trainer.model
    trained.declared_dtype = precision.declared or precision.dtype  # what checkpoint.py writes into config.json
    return TrainOutcome(model=trained, tokenizer=tokenizer, steps=trainer.state.global_step, log=log,
                        precision=precision.dtype)


def length_grouped_order(lengths: list[int], batch: int, seed: int) -> list[int]:
    """Indices sorted by length and cut into batches, the batches in a seeded random order (each epoch's
    dataloader takes `batch` consecutive indices at a time)."""
    ordered = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [ordered[i : i + batch] for i in range(0, len(ordered), batch)]
    order = torch.randperm(len(batches), generator=torch.Generator().manual_seed(seed)).tolist()
    return [i for b in order for i in batches[b]]


def training_precision(policy: str, cfg: TrainConfig, dtype: str = "auto") -> Any:
    """harness.backends.precision's choice for training `policy` on the configured device (a `Precision`)."""
    from harness.backends.precision import resolve_precision

    device = "cpu" if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()) else "cuda"
    return resolve_precision(dtype, policy, device)
