"""Open LLM Leaderboard data with an offline source: the upstream files the hub datasets were built from, pinned by sha256.

Declarations only, no I/O. Each target tries its hub dataset first (canonical; every config and split as `datasets`
reads it), then a `--data-dir` mirror holding the upstream files as ../shared/data/MANIFEST.md lists them
(`open_llm/<source>/...`, git blobs of the commits below), then a mirror already in the canonical layout (another
machine's data home). The converters (convert_open_llm.py) give the hub's schema: configs, split names, columns and
row order, so lm-eval's shipped `leaderboard_*`, `gsm8k` and `truthfulqa_mc2` tasks read them unchanged.

MuSR, MMLU-Pro, HellaSwag, ARC and Winogrande have no copy here (hub only); their converters read the upstream formats
from a mirror laid out as named below, for a machine that has those files.
"""

from __future__ import annotations

from types import MappingProxyType

from harness.data.sources import Mirror, Part, Target

BBH_REPO = "suzgunmirac/BIG-Bench-Hard@9ee07bd481fe"
GPQA_ZIP = "idavidrein/gpqa@56686c06f5e1 dataset.zip"  # byte-identical copy from mlfoundations/dclm@361714bdd60b
MATH_REPO = "ZubinGou/math-evaluation-harness@db77bc6bb2a1"
GSM8K_REPO = "openai/grade-school-math@3101c7d50724"
TRUTHFULQA_REPO = "sylinrl/TruthfulQA@013686a06be7"
MUSR_REPO = "Zayne-sprague/MuSR@b1f4d4168a9c"

GPQA_PASSWORD = b"deserted-untie-orchid"
"""Published by the GPQA authors in their README so that the questions are not crawlable in plain text; the zip is
opened only to write the CSVs into the local data home."""

BBH_SHA256 = {
    "boolean_expressions": "ea6c754ec005e2d3f2d085d349a740f593b5764f32ea4638ffed4cfc0061b12a",
    "causal_judgement": "6e8bca44dd402008ed41c07a3d0a1d5e7b03db7001a7e002fcdf4c60985ea081",
    "date_understanding": "0148d4ac5fca05b2f82373e5fef7208e15363b9c6079493034d77b3dab496bf5",
    "disambiguation_qa": "cf06df9ebf911b883671cb1b35d3fbd1a1c306b19b9e9a012407e596c85fe8c6",
    "dyck_languages": "3f9badedf15c2be1ce53d94fdf016299bb30ba231ef087ab9f51a7ed6d0bdc25",
    "formal_fallacies": "4c1adb664821157faade1d4153685403afcc02648f3c180a608a18f17f589629",
    "geometric_shapes": "07be68a124420caa2ebc0b2c858ad79fc55c5c8806170e496e1e17ebfb11f31c",
    "hyperbaton": "b6d7f55c75f5d02f2987a4f3123802dfa093872089a56a334144aae8a7264fdc",
    "logical_deduction_five_objects": "d2df31394b903b7f0e085d42a69572a092987856eac076799017d70ef266fa8f",
    "logical_deduction_seven_objects": "2896c7e3482eea318dd37bcc370d24ec3cc91e8374c1784287b5dbd38a529e33",
    "logical_deduction_three_objects": "e590fae72e3a6041fbd23bd8ff6b74baf44ca563f6ba40a041c55e7b867c1681",
    "movie_recommendation": "a8b53a87ee21a865b7248e694f388a9b8f7cf6b839b11d44796a2dd3fc088983",
    "multistep_arithmetic_two": "c9d5a6433c9b78256422a15c78463949c8bec8d85607aa28b52d7234ad4a8595",
    "navigate": "b7944dfd3c81da5c4815bd75b00d6fa3c64140823498e78ed496f4c3d36f7f0d",
    "object_counting": "8acef14dbbdd40d2326ef7755750b6b5fe919fef06276af1bab3f1c297f022ff",
    "penguins_in_a_table": "bb87ee449698eee51215e025a453b1bcb2f5e6589c2063b2c79e68b8f0655228",
    "reasoning_about_colored_objects": "0a8850cf95166020fce7a78244026ceedd7ea839302471512b4f8744e85a6a49",
    "ruin_names": "b6f723aef2bafdd4c7bfc3c7e0329c7e8a8279391a609969c8ed76c9319f5f7f",
    "salient_translation_error_detection": "becf3eb8dd53c821a555ecd5c1334ecd93eb25f980e63be963c518e7138de5da",
    "snarks": "54a0661fe2de06167645a4965e6bcf963c4ba307e76262a7c750998b0e3d0d0e",
    "sports_understanding": "63ca262858f6176864515cd8cf53cdaa40839ebecc155b726d77930855d167bf",
    "temporal_sequences": "92a1189faaa84aacc4c405aaa13f13f48c2992eb884772eedb622505252baef5",
    "tracking_shuffled_objects_five_objects": "2063a46a4fb484236ed4310523606543a3e1dd4a4dc34eda65d407910ece25a5",
    "tracking_shuffled_objects_seven_objects": "b59fd05b850c37cf57cb514ae1e6975c00b1638ade2291722056b2af3c54084d",
    "tracking_shuffled_objects_three_objects": "546cc7bf10c6a01a6a4c17ae28a4966485f21f29fd5d111f37858ec78e354f6b",
    "web_of_lies": "3e60323f8514a107fdb4edf35f8832a9171c5a09c0eaa47823559de905e8ab8b",
    "word_sorting": "2a6132d2c99f00d0d2eb1113ac6b4a918bd969d863c48749210d969713db8d43",
}
"""All 27 BBH tasks (the hub dataset has all 27 configs; the leaderboard uses 24)."""

GPQA_SHA256 = "461ae7329f15a3e35f8184d2dac24b990f34fdf12f366ca4062d8e6638cd08dc"
MATH_SHA256 = "3371949f33dd702d04b43fddd7d53a028de0aaca0e76abb1b875a050297b3aa4"
GSM8K_SHA256 = {"test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
                "train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"}
TRUTHFULQA_SHA256 = "6eb4125d25750c0145c4be2dce00440736684ab6f74ce6bff2139571cc758954"

MUSR_FILES = ("murder_mystery.json", "object_placements.json", "team_allocation.json")
"""Zayne-sprague/MuSR `datasets/*.json` (full sets; not in ../shared/data, whose musr_samples/ are 30 questions)."""


def _pinned(paths: tuple[str, ...], dests: tuple[str, ...], convert: str, sha: tuple[str, ...]) -> Mirror:
    return Mirror(paths, dests, convert, sha256=sha, origin=_ORIGIN[convert])


def _canonical(name: str) -> Mirror:
    """Another machine's data home (`$SPPO_BENCH_HOME/data`) as the mirror: the converted layout, copied as is."""
    return Mirror((name,), ("",), "tree")


def _target(name: str, hub: str, *layouts: Mirror) -> Target:
    return Target(name, name, hub=hub, parts=(Part("default", "tree", hub_first=True, mirror=(*layouts, _canonical(name))),))


_BBH = tuple(sorted(BBH_SHA256))
_ORIGIN = {"bbh": BBH_REPO, "gpqa": GPQA_ZIP, "math": MATH_REPO, "gsm8k": GSM8K_REPO, "truthfulqa": TRUTHFULQA_REPO}

OPEN_LLM_TARGETS: MappingProxyType[str, Target] = MappingProxyType({t.name: t for t in (
    _target("bbh", "SaylorTwift/bbh", _pinned(
        tuple(f"open_llm/bbh/{n}.json" for n in _BBH), tuple(f"{n}.json" for n in _BBH), "bbh",
        tuple(BBH_SHA256[n] for n in _BBH))),
    _target("gpqa", "Idavidrein/gpqa", _pinned(("open_llm/gpqa/dataset.zip",), ("dataset.zip",), "gpqa", (GPQA_SHA256,))),
    _target("math_lvl5", "DigitalLearningGmbH/MATH-lighteval",
            _pinned(("open_llm/math/test.jsonl",), ("test.jsonl",), "math", (MATH_SHA256,))),
    _target("gsm8k", "openai/gsm8k", _pinned(
        ("open_llm/gsm8k/test.jsonl", "open_llm/gsm8k/train.jsonl"), ("test.jsonl", "train.jsonl"), "gsm8k",
        (GSM8K_SHA256["test.jsonl"], GSM8K_SHA256["train.jsonl"]))),
    _target("truthfulqa_mc2", "truthfulqa/truthful_qa",
            _pinned(("open_llm/truthfulqa/mc_task.json",), ("mc_task.json",), "truthfulqa", (TRUTHFULQA_SHA256,))),
    _target("musr", "TAUR-Lab/MuSR", Mirror(tuple(f"musr/datasets/{f}" for f in MUSR_FILES), MUSR_FILES, "musr")),
    _target("mmlu_pro", "TIGER-Lab/MMLU-Pro",
            Mirror(("mmlu_pro/data/test-00000-of-00001.parquet", "mmlu_pro/data/validation-00000-of-00001.parquet"),
                   ("test.parquet", "validation.parquet"), "mmlu_pro")),
    _target("hellaswag", "Rowan/hellaswag", Mirror(("hellaswag/data/hellaswag_train.jsonl", "hellaswag/data/hellaswag_val.jsonl"),
                                                   ("train.jsonl", "validation.jsonl"), "hellaswag")),
    _target("arc_challenge", "allenai/ai2_arc", Mirror(
        tuple(f"arc_challenge/ARC-Challenge/ARC-Challenge-{s}.jsonl" for s in ("Train", "Dev", "Test")),
        ("train.jsonl", "validation.jsonl", "test.jsonl"), "arc")),
    _target("winogrande", "allenai/winogrande", Mirror(("winogrande/train_xl.jsonl", "winogrande/dev.jsonl"),
                                                       ("train.jsonl", "validation.jsonl"), "winogrande")),
)})
"""BBH, GPQA, MATH Lvl 5, GSM8K, TruthfulQA: hub or the pinned upstream files. MuSR, MMLU-Pro, HellaSwag, ARC,
Winogrande: hub, or a mirror of their upstream files (no pinned copy exists here, so those are converted unpinned)."""
