"""SPPO module: the loss (hand-computed, and TRL's own sppo_hard code path), the official probabilities, configs,
prompt files, checkpoints. The pipeline runs on a tiny model live in test_sppo_pipeline.py."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest
import torch

from harness.errors import UserError
from harness.sppo.config import SPPOConfig, load_profile, parse_config
from harness.sppo.loss import SOFT_LOSS_WEIGHT, shift_reference, sppo_soft_loss
from harness.sppo.probs import NonFiniteScores, choose_pair, preference_matrix, scores_from_pairwise_logits
from harness.sppo.sample import read_prompt_file

# ---------------------------------------------------------------------------------------------------------- loss


def test_soft_loss_on_a_fixed_batch_matches_the_hand_computed_value():
    # beta = 0.5 (eta = 2). Row 1: r_w = -10 - (-11) = 1, target (0.8 - 0.5)/0.5 = 0.6 -> (0.4)^2 = 0.16;
    # r_l = -12 - (-11.5) = -0.5, target (0.3 - 0.5)/0.5 = -0.4 -> (-0.1)^2 = 0.01; loss = (0.16 + 0.01)/2 = 0.085.
    # Row 2: r_w = 0, target (1 - 0.5)/0.5 = 1 -> 1; r_l = 0, target (0 - 0.5)/0.5 = -1 -> 1; loss = (1 + 1)/2 = 1.
    loss = sppo_soft_loss(
        policy_chosen_logps=torch.tensor([-10.0, -5.0]),
        policy_rejected_logps=torch.tensor([-12.0, -7.0]),
        ref_chosen_logps=torch.tensor([-11.0, -5.0]),
        ref_rejected_logps=torch.tensor([-11.5, -7.0]),
        chosen_probs_win=torch.tensor([0.8, 1.0]),
        chosen_probs_lose=torch.tensor([0.3, 0.0]),
        beta=0.5,
    )
    assert loss.tolist() == pytest.approx([0.085, 1.0], abs=1e-6)


def _trl_sppo_hard(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    # The two lines of trl/trainer/dpo_trainer.py (1.16) for loss_type == "sppo_hard", per sequence.
    return (chosen_logratios - 0.5 / beta) ** 2 + (rejected_logratios + 0.5 / beta) ** 2


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0])
def test_shifted_reference_turns_sppo_hard_into_twice_the_soft_loss(beta):
    g = torch.Generator().manual_seed(0)
    pw, pl, rw, rl = (torch.randn(16, generator=g, dtype=torch.float64) * 20 - 50 for _ in range(4))
    p_win, p_lose = torch.rand(16, generator=g, dtype=torch.float64), torch.rand(16, generator=g, dtype=torch.float64)
    ref_w, ref_l = shift_reference(rw, rl, p_win, p_lose, beta)
    hard = _trl_sppo_hard(pw - ref_w, pl - ref_l, beta)
    soft = sppo_soft_loss(pw, pl, rw, rl, p_win, p_lose, beta)
    assert torch.allclose(SOFT_LOSS_WEIGHT * hard, soft, rtol=1e-9, atol=1e-6 / beta**2 * 1e-6)


# ------------------------------------------------------------------------------------------------- probabilities


def test_probabilities_from_a_fixed_score_matrix():
    # Scores of K = 3 responses. P[i][j] = 1/(1 + exp(s_j - s_i)); chosen = argmax = 0, rejected = argmin = 2.
    s1, s2 = 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-2))  # sigma(1) = 0.7310586, sigma(2) = 0.8807971
    pair = choose_pair([1.0, 0.0, -1.0])
    assert (pair.chosen, pair.rejected) == (0, 2)
    assert pair.chosen_probs == pytest.approx(0.8807971, abs=1e-7)  # P(y_0 > y_2) = sigma(2)
    assert pair.chosen_probs_win == pytest.approx((0.5 + s1 + s2) / 3)  # self term 0.5 included, as the official code
    assert pair.chosen_probs_win == pytest.approx(0.7039519, abs=1e-7)
    assert pair.chosen_probs_lose == pytest.approx((1 - s2 + 1 - s1 + 0.5) / 3)
    assert pair.chosen_probs_lose == pytest.approx(0.2960481, abs=1e-7)
    matrix = preference_matrix([1.0, 0.0, -1.0])
    assert matrix[1][0] == pytest.approx(1 - s1) and matrix[1][1] == 0.5


def test_pairwise_logits_reduce_like_pairrm_and_ties_pick_the_first_index():
    logits = [[0.0, 2.0, 1.0], [-1.0, 0.0, 0.5], [0.0, 0.5, 0.0]]
    # PairRM's s_i = mean_j (L[i][j] - L[j][i]) over K = 3 (the j = i term is 0), halved so that the two orders
    # combine by the mean of their log-odds:
    # s_0 = ((2 - -1) + (1 - 0)) / 3 / 2 = 2/3; s_1 = ((-1 - 2) + (0.5 - 0.5)) / 3 / 2 = -1/2;
    # s_2 = ((0 - 1) + (0.5 - 0.5)) / 3 / 2 = -1/6
    assert scores_from_pairwise_logits(logits) == pytest.approx([2 / 3, -0.5, -1 / 6])
    # K = 2: P(0 > 1) = sigma(s_0 - s_1) = sigma((L01 - L10) / 2), the mean of the two orders' log-odds
    two = scores_from_pairwise_logits([[0.0, 1.2], [-0.4, 0.0]])
    assert two[0] - two[1] == pytest.approx((1.2 - -0.4) / 2)
    tie = choose_pair([0.2, 0.2, 0.2])
    assert (tie.chosen, tie.rejected, tie.chosen_probs_win) == (0, 0, pytest.approx(0.5))


def test_nan_scores_are_refused():
    with pytest.raises(NonFiniteScores, match="responses \\[1\\]"):
        choose_pair([0.1, float("nan"), 0.3])


# ------------------------------------------------------------------------------------------------------ configs


def test_bundled_profiles_load_and_differ_where_the_paper_says():
    default, paper = load_profile("default"), load_profile("paper")
    assert "not comparable with published SPPO numbers" in (default.note or "")
    assert default.model.base is None and default.ranker.kind == "judge" and default.sampling.k == 2
    assert default.eval.limits == {"ifeval": 100, "bbh": 1, "math_lvl5": 2, "gpqa": 5, "alpaca_eval": 50, "mt_bench": 10}
    assert paper.model.base == "mistralai/Mistral-7B-Instruct-v0.2"
    assert (paper.sampling.k, paper.train.eta, paper.train.learning_rate, paper.train.global_batch_size) == (5, 1000, 5e-7, 64)
    assert paper.ranker.kind == "pairrm" and paper.sampling.backend == "vllm"
    assert paper.prompts.source == "hub:snorkelai/Snorkel-Mistral-PairRM-DPO-Dataset"
    assert paper.train.beta == pytest.approx(1e-3)


def test_unknown_config_key_is_named():
    with pytest.raises(UserError, match=r"unknown key 'train\.lr'.*learning_rate"):
        parse_config("[train]\nlr = 1e-6\n", "cfg.toml")
    with pytest.raises(UserError, match=r"unknown key 'sampling_k'"):
        parse_config("sampling_k = 3\n", "cfg.toml")


def test_bad_config_values_are_one_line_errors():
    with pytest.raises(UserError, match=r"sampling\.k"):
        parse_config("[sampling]\nk = 1\n", "cfg.toml")
    with pytest.raises(UserError, match="not valid TOML"):
        parse_config("[train\n", "cfg.toml")
    with pytest.raises(UserError, match="unknown profile 'papr'"):
        load_profile("papr")


def test_digest_changes_only_with_its_sections():
    a = SPPOConfig()
    b = parse_config("[train]\nlearning_rate = 1e-6\n", "x")
    assert a.digest("sampling") == b.digest("sampling") and a.digest("train") != b.digest("train")


# ------------------------------------------------------------------------------------------------------ prompts


def test_bundled_prompts_are_valid_and_unique():
    from harness.sppo.sample import bundled_prompts_path

    prompts = read_prompt_file(bundled_prompts_path())
    assert len({p.id for p in prompts}) == len(prompts) and len({p.text for p in prompts}) == len(prompts)
    default = load_profile("default").prompts  # every iteration's part holds the profile's per-iteration count
    assert len(prompts) >= default.parts * default.per_iteration


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "hello"}', '{"prompt": "   "}'], r"prompts\.jsonl:2: empty"),
        (['{"prompt": "hello"}', '{"prompt": "bye"}', '{"prompt": "hello "}'], r":3: duplicate prompt \(same as line 1\)"),
        (['{"text": "hello"}'], r":1: empty or missing \"prompt\""),
        (["not json"], r":1: not JSON"),
    ],
)
def test_bad_prompt_files_name_the_line(tmp_path, lines, message):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=message):
        read_prompt_file(path)


# -------------------------------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from harness.models import tiny_model

    return tiny_model(tmp_path_factory.mktemp("sppo-tiny") / "tiny")


def test_checkpoint_is_loadable_with_template_and_provenance(tmp_path, tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.sppo.checkpoint import META_FILE, read_meta, save_checkpoint

    model, tok = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    dest = save_checkpoint(model, tok, tmp_path / "ck" / "iter1", {"iteration": 1, "config": {"a": 1}})
    assert (dest / "model.safetensors").exists() and (dest / META_FILE).exists()
    meta = read_meta(dest)
    assert meta and meta["iteration"] == 1 and len(meta["weights_sha256"]) == 64
    again = AutoTokenizer.from_pretrained(dest)
    assert again.chat_template == tok.chat_template
    AutoModelForCausalLM.from_pretrained(dest)
    assert [p.name for p in dest.parent.iterdir()] == ["iter1"]  # no temp folders left


def test_out_of_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.sppo.checkpoint import read_meta, save_checkpoint, weights_digest

    model, tok = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    dest = save_checkpoint(model, tok, tmp_path / "iter1", {"iteration": 1})
    before = weights_digest(dest)

    class DiskFull:
        def save_pretrained(self, folder, **kwargs):
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "model.safetensors").write_bytes(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match="out of disk space.*intact"):
        save_checkpoint(DiskFull(), tok, dest, {"iteration": 1, "retry": True})
    assert weights_digest(dest) == before and read_meta(dest)["iteration"] == 1
    assert "retry" not in read_meta(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter1"]


# ---------------------------------------------------------------------------------------- the loss through TRL


def _preference_rows(n: int, p_win: float, p_lose: float) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"Say something about the number {i}."}],
            "chosen": [{"role": "assistant", "content": f"The number {i} is a fine number."}],
            "rejected": [{"role": "assistant", "content": f"{i}?"}],
            "chosen_probs": 0.7,
            "chosen_probs_win": p_win,
            "chosen_probs_lose": p_lose,
        }
        for i in range(n)
    ]


def _perturb(model, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def _first_batch(trainer):
    return next(iter(trainer.get_train_dataloader()))


@pytest.mark.slow
def test_sppo_loss_is_half_of_trls_sppo_hard_when_p_win_1_p_lose_0(tmp_path, tiny):
    """Same model, data and batch: our trainer's loss = 1/2 x TRL's DPOTrainer(loss_type="sppo_hard"), computed by
    TRL's own `compute_loss`; the policy is moved off the reference first so the log-ratios are not zero."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import SPPOTrainer, dpo_config

    beta = 0.5
    rows = _preference_rows(4, p_win=1.0, p_lose=0.0)
    common = {"per_device_train_batch_size": 4, "use_cpu": True, "report_to": "none", "beta": beta, "seed": 0,
              "max_length": 256, "disable_tqdm": True, "bf16": False}
    # TRL's default path: a reference model run on every batch (ours precomputes it once).
    theirs = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny), ref_model=AutoModelForCausalLM.from_pretrained(tiny),
                        args=DPOConfig(output_dir=str(tmp_path / "trl"), loss_type=["sppo_hard"], **common),
                        train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(tiny))
    ours_args = dpo_config(TrainConfig(eta=1 / beta, per_device_batch_size=4, global_batch_size=4, seed=0,
                                       max_length=256, device="cpu"), tmp_path / "ours")
    ours = SPPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny), args=ours_args,
                       train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(tiny))
    _perturb(theirs.model)
    _perturb(ours.model)
    batch_theirs, batch_ours = _first_batch(theirs), _first_batch(ours)
    assert torch.equal(batch_theirs["input_ids"], batch_ours["input_ids"])
    loss_theirs = theirs.compute_loss(theirs.model, batch_theirs).item()
    loss_ours = ours.compute_loss(ours.model, batch_ours).item()
    assert loss_theirs != pytest.approx(2 * (0.5 / beta) ** 2, rel=1e-3)  # the policy moved: log-ratios are not 0
    assert loss_ours == pytest.approx(0.5 * loss_theirs, rel=1e-5)


@pytest.mark.slow
def test_trainer_loss_equals_the_official_soft_formula(tmp_path, tiny):
    """General P_w, P_l: the trainer's loss on a batch equals sppo_soft_loss on the same sequence log-probs."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import SPPOTrainer, dpo_config

    eta, p_win, p_lose = 4.0, 0.8, 0.3
    args = dpo_config(TrainConfig(eta=eta, per_device_batch_size=4, global_batch_size=4, seed=0, max_length=256,
                                  device="cpu"), tmp_path)
    trainer = SPPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny), args=args,
                          train_dataset=Dataset.from_list(_preference_rows(4, p_win, p_lose)),
                          processing_class=AutoTokenizer.from_pretrained(tiny))
    batch = _first_batch(trainer)
    ref_w, ref_l = trainer.compute_ref_log_probs(trainer.model, batch)  # = the unshifted reference (before the step)
    _perturb(trainer.model)
    pol_w, pol_l = trainer.compute_ref_log_probs(trainer.model, batch)  # the same code path, on the moved policy
    n = ref_w.shape[0]
    expected = sppo_soft_loss(pol_w, pol_l, ref_w, ref_l, torch.full((n,), p_win), torch.full((n,), p_lose),
                              1 / eta).mean()
    got = trainer.compute_loss(trainer.model, batch)
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)
    unshifted = torch.tensor(trainer.train_dataset["unshifted_ref_chosen_logps"][:n])
    assert trainer.train_dataset["ref_chosen_logps"][0] == pytest.approx(unshifted[0].item() + (p_win - 1) * eta, rel=1e-6)


# ------------------------------------------------------------------------------------------------------ rankers


def test_reward_model_scores_are_bradley_terry_scores(tmp_path, tiny):
    """Any sequence-classification model: one reward per response, P(i > j) = sigma(r_i - r_j)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    from harness.sppo.rank import RewardModel
    from harness.sppo.sample import SampledPrompt

    config = AutoConfig.from_pretrained(tiny)
    config.num_labels = 1
    torch.manual_seed(0)
    rm_dir = tmp_path / "rm"
    LlamaForSequenceClassification(config).save_pretrained(rm_dir)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(rm_dir)
    rows = [SampledPrompt("p0", "Say hi.", ["Hi!", "Hello there, friend.", "..."], [1, 2, 3], ["stop"] * 3)]
    ranked = RewardModel(str(rm_dir), batch_size=2).rank(rows)
    assert ranked[0].prompt_id == "p0" and len(ranked[0].scores) == 3
    assert all(math.isfinite(s) for s in ranked[0].scores) and len(set(ranked[0].scores)) == 3
    p = preference_matrix(ranked[0].scores)
    r = ranked[0].scores
    assert p[0][1] == pytest.approx(1 / (1 + math.exp(r[1] - r[0])))


def test_pairrm_without_llm_blender_says_how_to_install(monkeypatch):
    import builtins

    from harness.sppo.rank import PairRM
    from harness.sppo.sample import SampledPrompt

    real_import = builtins.__import__

    def no_blender(name, *args, **kwargs):
        if name == "llm_blender":
            raise ModuleNotFoundError("No module named 'llm_blender'", name="llm_blender")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_blender)
    rows = [SampledPrompt("p0", "Say hi.", ["a", "b"], [1, 2], ["stop"] * 2)]
    with pytest.raises(UserError, match="llm-blender"):
        PairRM("llm-blender/PairRM").rank(rows)


def test_local_judge_asks_both_orders_and_reduces_like_pairrm():
    from harness.backends.fake import FakeBackend
    from harness.sppo.rank import LocalJudge
    from harness.sppo.sample import SampledPrompt

    backend = FakeBackend("judge")
    rows = [SampledPrompt("p0", "Say hi.", ["Hi!", "Hello.", "Hey"], [1, 2, 3], ["stop"] * 3)]
    ranked = LocalJudge(backend, batch_size=4).rank(rows)
    assert backend.choice_calls == 6  # K (K - 1) ordered pairs
    logits = ranked[0].logits
    assert logits is not None and all(logits[i][i] == 0.0 for i in range(3))
    assert ranked[0].scores == pytest.approx(scores_from_pairwise_logits(logits))


def test_mixed_precision_follows_the_float32_loss_curve_and_the_checkpoint_keeps_its_dtype(tmp_path, tiny, monkeypatch):
    """A checkpoint declaring bfloat16 trains under bfloat16 autocast over float32 master weights: on a fixed seed its
    loss curve stays within 5% (+1e-3) of the float32 run's at every step (and is not the same curve: autocast ran),
    and the saved iteration keeps float32 weights while declaring bfloat16."""
    import json
    import shutil

    import pandas as pd
    from safetensors import safe_open

    from harness.backends import precision
    from harness.sppo.checkpoint import save_checkpoint
    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import train_iteration

    base = tmp_path / "base"
    shutil.copytree(tiny, base)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "dtype": "bfloat16"}))
    monkeypatch.setattr(precision, "cpu_features", lambda: frozenset({"avx512_bf16"}))
    frame = pd.DataFrame(_preference_rows(8, p_win=0.8, p_lose=0.3))
    cfg = TrainConfig(eta=4.0, learning_rate=1e-4, per_device_batch_size=4, global_batch_size=4, epochs=3, seed=0,
                      max_length=256, device="cpu", gradient_checkpointing=False)
    runs = {dtype: train_iteration(str(base), frame, cfg, tmp_path / dtype, dtype=dtype) for dtype in ("float32", "auto")}
    assert (runs["float32"].precision, runs["auto"].precision) == ("float32", "bfloat16")
    full, mixed = ([e["loss"] for e in runs[d].log if "loss" in e] for d in ("float32", "auto"))
    assert len(full) == len(mixed) == 6 and full[-1] < full[0] / 10  # the loss fell: the curve says something
    assert all(abs(a - b) <= 0.05 * abs(a) + 1e-3 for a, b in zip(full, mixed, strict=True)), (full, mixed)
    assert full != mixed
    saved = save_checkpoint(runs["auto"].model, runs["auto"].tokenizer, tmp_path / "iter1", {"iteration": 1})
    assert json.loads((saved / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(saved / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32"}


def test_length_grouped_batches_pad_least(tmp_path, tiny):
    """train.length_grouped: each batch holds neighbours in length (prompt + longer answer), so the trainer's own
    batches pad exactly as consecutive pairs in length order do, and less than the seeded random order's."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.sppo.config import TrainConfig
    from harness.sppo.trainer import SPPOTrainer, dpo_config

    rows = _preference_rows(8, p_win=0.8, p_lose=0.3)
    for i, row in enumerate(rows):  # prompts of very different lengths, in no order
        row["prompt"][0]["content"] += " Explain why." * (3 * ((i * 5) % 8))
    padding = {}
    for grouped in (False, True):
        cfg = TrainConfig(eta=4.0, per_device_batch_size=2, global_batch_size=2, seed=0, max_length=512, device="cpu",
                          length_grouped=grouped)
        trainer = SPPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny), args=dpo_config(cfg, tmp_path / str(grouped)),
                              train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(tiny),
                              length_grouped=cfg.length_grouped)
        batches = list(trainer.get_train_dataloader())
        padding[grouped] = sum(int(b["attention_mask"].numel() - b["attention_mask"].sum()) for b in batches)
    # the least: batches of consecutive pairs in length order, padded by TRL's own collator
    examples = sorted(trainer.train_dataset, key=lambda ex: ex["length"])
    least = 0
    for start in range(0, len(examples), 2):
        mask = trainer.data_collator(examples[start : start + 2])["attention_mask"]
        least += int(mask.numel() - mask.sum())
    assert padding[True] == least < padding[False]
