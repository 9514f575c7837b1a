"""hf backend on a tiny random Llama (fast) and on the real embedded default (slow); bad checkpoints; vLLM on GPU."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from harness.backends import load_backend
from harness.backends.base import BackendOptions, ChatRequest, ChoiceRequest, SamplingParams
from harness.backends.hf import HFBackend
from harness.errors import UserError
from harness.models import tiny_model
from harness.settings import Settings, from_env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def backend(tiny) -> HFBackend:
    return HFBackend.load(BackendOptions(model=str(tiny), device="cpu", batch_size=3))


def _ask(text: str, **params) -> ChatRequest:
    return ChatRequest(({"role": "user", "content": text},), SamplingParams(**params))


MIXED = [
    _ask("What is 2 + 2?", max_new_tokens=8),
    _ask("Write a short poem about the sea.", temperature=1.0, seed=3, max_new_tokens=10),
    _ask("hello", temperature=0.7, top_p=0.8, seed=1, max_new_tokens=6),
    _ask("Explain the difference between a list and a tuple in Python.", max_new_tokens=5, top_logprobs=3),
    _ask("Translate good morning into French", temperature=1.3, top_p=0.95, seed=7, max_new_tokens=12),
]


def test_results_do_not_depend_on_batch_composition(tiny, backend):
    together = backend.generate(MIXED)
    alone = [backend.generate([r])[0] for r in MIXED]
    reversed_ = backend.generate(MIXED[::-1])[::-1]
    assert [c.text for c in together] == [c.text for c in alone] == [c.text for c in reversed_]
    assert [c.completion_tokens for c in together] == [c.completion_tokens for c in alone]
    assert all(c.text for c in together)
    # one batch bigger than a prefill group: prompts prefilled in groups, their caches joined, rows dropped as they end
    wide = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", batch_size=4 * len(MIXED)))
    many = [replace(r, params=replace(r.params, seed=r.params.seed + k)) for k in range(4) for r in MIXED]
    assert [c.text for c in wide.generate(many)] == [backend.generate([r])[0].text for r in many]


def test_seed_drives_sampling_not_greedy(backend):
    sampled = {backend.generate([_ask("hello", temperature=1.0, seed=s, max_new_tokens=8)])[0].text for s in range(4)}
    assert len(sampled) > 1
    greedy = {backend.generate([_ask("hello", seed=s, max_new_tokens=8)])[0].text for s in range(3)}
    assert len(greedy) == 1
    # a longer limit extends the same random stream (past the first block of uniforms): same prefix
    short, long = backend.generate([_ask("hello", temperature=1.0, seed=2, max_new_tokens=6),
                                    _ask("hello", temperature=1.0, seed=2, max_new_tokens=70)])
    assert long.completion_tokens > short.completion_tokens or long.finish_reason == "stop"
    assert long.text.startswith(short.text.rstrip("\ufffd"))


def test_token_counts_and_per_request_max_new_tokens(backend):
    out = backend.generate([_ask("hello", max_new_tokens=3), _ask("hello", max_new_tokens=9)])
    prompt_len = len(backend.encode_chat(({"role": "user", "content": "hello"},)))
    for c, limit in zip(out, (3, 9), strict=True):
        assert c.prompt_tokens == prompt_len and 1 <= c.completion_tokens <= limit
        assert (c.finish_reason == "length") == (c.completion_tokens == limit)
    assert out[1].text.startswith(out[0].text)  # greedy: the shorter is a prefix of the longer


def test_stop_strings_truncate_like_openai(backend):
    full = backend.generate([_ask("The quick brown fox", max_new_tokens=20)])[0]
    assert len(full.text) > 6
    stop = full.text[3:6]
    cut = backend.generate([_ask("The quick brown fox", max_new_tokens=20, stop=("@@never@@", stop))])[0]
    assert cut.text == full.text[: full.text.index(stop)] and cut.finish_reason == "stop"
    assert cut.completion_tokens <= full.completion_tokens


def test_top_logprobs(backend):
    c = backend.generate([MIXED[3]])[0]
    assert c.top_logprobs is not None and len(c.top_logprobs) == c.completion_tokens
    for step in c.top_logprobs:
        assert 1 <= len(step) <= 3 and all(v <= 0 for v in step.values())
        assert sum(math.exp(v) for v in step.values()) <= 1 + 1e-6
    assert backend.generate([MIXED[0]])[0].top_logprobs is None


def test_choice_logprobs_match_a_direct_forward_pass(backend):
    import torch

    messages = ({"role": "user", "content": "Rate the answer"},)
    req = ChoiceRequest(messages, ("A", "B", "C"), assistant_prefix="Rating: ")
    got = backend.choice_logprobs([req])[0]
    assert math.isclose(sum(math.exp(v) for v in got.values()), 1.0, rel_tol=1e-6)
    ids = backend.encode_chat(messages, "Rating: ")
    with torch.inference_mode():
        logp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0, -1].float(), -1)
    raw = {c: float(logp[backend.tokenizer.encode(c, add_special_tokens=False)[0]]) for c in req.choices}
    norm = math.log(sum(math.exp(v) for v in raw.values()))
    assert all(math.isclose(got[c], raw[c] - norm, abs_tol=1e-4) for c in req.choices)
    # batched with other requests (left padding) gives the same numbers
    other = ChoiceRequest(({"role": "user", "content": "a much longer prompt about python lists and tuples"},),
                          ("1", "2"))
    batched = backend.choice_logprobs([other, req, other])
    assert all(math.isclose(batched[1][c], got[c], abs_tol=1e-4) for c in req.choices)


def test_choice_logprobs_with_shared_first_tokens(backend):
    req = ChoiceRequest(({"role": "user", "content": "grade"},), ("1", "10", "2"), assistant_prefix="[[")
    got = backend.choice_logprobs([req])[0]
    assert set(got) == {"1", "10", "2"} and got["1"] != got["10"]
    assert math.isclose(sum(math.exp(v) for v in got.values()), 1.0, rel_tol=1e-6)
    with pytest.raises(ValueError):
        backend.choice_logprobs([ChoiceRequest(req.messages, ("", "1"))])


def test_fingerprint_is_stable_and_tracks_template_and_dtype(tiny, backend, tmp_path):
    again = HFBackend.load(BackendOptions(model=str(tiny), device="cpu"))
    assert again.fingerprint == backend.fingerprint and again.fingerprint.startswith("hf:")
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    other = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", chat_template=str(template)))
    assert other.fingerprint != backend.fingerprint
    assert other.encode_chat(({"role": "user", "content": "hi"},)) == other.tokenizer.encode("hi\n")
    bf16 = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", dtype="bfloat16"))
    assert bf16.fingerprint != backend.fingerprint and str(bf16.model.dtype) == "torch.bfloat16"


def test_generate_text_matches_generate_on_the_templated_prompt(backend):
    templated = [backend.tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
                 for r in MIXED]
    assert all(t.startswith(backend.tokenizer.bos_token) for t in templated)  # the chat-templated case
    raw = backend.generate_text(templated, [r.params for r in MIXED])
    chat = backend.generate(MIXED)
    assert [(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in raw] == \
           [(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in chat]
    # a prompt that does not start with BOS keeps the tokenizer's own special tokens, as lm-eval encodes it
    plain = backend.generate_text(["The quick brown fox"], [SamplingParams(max_new_tokens=4)])[0]
    assert plain.prompt_tokens == len(backend.tokenizer("The quick brown fox")["input_ids"])


def test_generate_text_matches_lm_eval_hflm_generate_until(tiny, backend):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny), device="cpu", batch_size=1, dtype="float32")
    full = backend.generate_text(["The quick brown fox"], [SamplingParams(max_new_tokens=12)])[0].text
    stop = full[4:7]
    for until in ([], [stop]):
        context = backend.tokenizer.apply_chat_template([{"role": "user", "content": "Name a colour"}],
                                                        add_generation_prompt=True, tokenize=False)
        for prompt in (context, "The quick brown fox"):
            ours = backend.generate_text([prompt], [SamplingParams(max_new_tokens=12, stop=tuple(until))])[0].text
            theirs = lm.generate_until([Instance("generate_until", {}, (prompt, {"until": until, "max_gen_toks": 12,
                                                                                  "do_sample": False}), 0)])[0]
            assert ours == theirs


def test_sampler_draws_like_a_textbook_nucleus_sampler():
    """Inverse-CDF draws in vocabulary order over the temperature-scaled, top-p-truncated distribution, computed
    here in float64 with numpy; a flat row's nucleus exceeds the top-k candidates and takes the full-sort path."""
    import numpy as np
    import torch

    from harness.backends.hf_decode import _NUCLEUS_GUESS, _Sampler

    vocab = 4 * _NUCLEUS_GUESS
    rng = np.random.default_rng(0)
    logits = np.stack([rng.normal(0, 4, vocab), rng.normal(0, 0.05, vocab), rng.normal(0, 1, vocab),
                       rng.normal(0, 2, vocab)])
    params = [SamplingParams(temperature=0.7, top_p=0.9, seed=1, max_new_tokens=4),
              SamplingParams(temperature=1.0, top_p=0.95, seed=2, max_new_tokens=4),
              SamplingParams(temperature=0.0, top_p=0.5, max_new_tokens=4),
              SamplingParams(temperature=1.3, seed=3, max_new_tokens=4)]

    def textbook_probs(row: int) -> np.ndarray:
        z = logits[row] / params[row].temperature
        probs = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        if params[row].top_p >= 1:
            return probs
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]  # mass of the tokens ranked above each token
        kept = np.zeros(vocab)
        kept[order[before < params[row].top_p]] = 1.0
        return probs * kept

    def textbook(row: int, u: float) -> int:
        if params[row].temperature == 0:
            return int(np.argmax(logits[row]))
        cdf = np.cumsum(textbook_probs(row))
        return int(np.searchsorted(cdf, u * cdf[-1], side="right"))

    for rows in ([0, 1, 2, 3], [0, 2, 3]):  # with and without the flat row that forces the full sort
        sampler = _Sampler([params[r] for r in rows], "cpu")
        x = torch.tensor(logits[rows], dtype=torch.float32)
        nucleus = sampler._nucleus(torch.softmax(x / sampler.temps[:, None], -1)).numpy()
        for k, r in enumerate(rows):
            if params[r].temperature > 0:
                assert np.array_equal(nucleus[k] > 0, textbook_probs(r) > 0)
        for step in range(4):
            got = sampler.pick(x.clone(), step).tolist()
            assert got == [textbook(r, float(sampler.uniforms[k, step])) for k, r in enumerate(rows)]
    flat = np.sort(np.exp(logits[1]) / np.exp(logits[1]).sum())[::-1]
    assert (np.cumsum(flat) - flat < 0.95).sum() > _NUCLEUS_GUESS  # the flat row really needs the full sort


def test_int8_quantization_is_an_opt_in_that_changes_the_fingerprint(tiny, backend):
    import torch

    q = HFBackend.load(BackendOptions(model=str(tiny), device="cpu", batch_size=3, extra={"quantize": "int8"}))
    assert q.fingerprint != backend.fingerprint
    assert q.fingerprint == HFBackend.load(BackendOptions(model=str(tiny), device="cpu",
                                                          extra={"quantize": "int8"})).fingerprint
    out = q.generate(MIXED)
    assert all(0 < c.completion_tokens <= r.params.max_new_tokens for c, r in zip(out, MIXED, strict=True))
    assert not any(type(m) is torch.nn.Linear for m in q.model.modules())  # every Linear was replaced
    with pytest.raises(UserError, match="quantize=int4: the hf backend supports quantize=int8"):
        HFBackend.load(BackendOptions(model=str(tiny), device="cpu", extra={"quantize": "int4"}))
    with pytest.raises(UserError, match="--backend-opt quantise: the hf backend knows quantize=int8, threads=N and prefix"):
        HFBackend.load(BackendOptions(model=str(tiny), device="cpu", extra={"quantise": "int8"}))
    with pytest.raises(UserError, match="quantizes a float32 model; drop --dtype"):
        HFBackend.load(BackendOptions(model=str(tiny), device="cpu", dtype="bfloat16", extra={"quantize": "int8"}))
    with pytest.raises(UserError, match="threads=0: give a positive whole number"):
        HFBackend.load(BackendOptions(model=str(tiny), device="cpu", extra={"threads": "0"}))


def test_thread_sizing_from_affinity_quota_and_workers(tmp_path):
    import os

    import torch

    from harness.backends.threads import limit_torch_threads, threads_per_worker, usable_cpus

    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    for text, cpus in (("max 100000", affinity), ("150000 100000", min(affinity, 2)), ("50000 100000", 1)):
        quota.write_text(text + "\n")
        assert usable_cpus(quota) == cpus
    assert usable_cpus(tmp_path / "absent") == affinity
    assert [threads_per_worker(w, cpus=8) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert limit_torch_threads(workers=1) == 1 == torch.get_num_threads()  # a cap never raises a lower setting
        assert limit_torch_threads(threads=2) == 2 == torch.get_num_threads()
        assert limit_torch_threads(workers=10 * usable_cpus()) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_load_backend_caches_hf(tiny, tmp_path):
    settings = Settings(home=tmp_path / "home", offline=True)
    b = load_backend(BackendOptions(model=str(tiny), device="cpu"), settings)
    first = b.generate(MIXED[:2])
    rerun = load_backend(BackendOptions(model=str(tiny), device="cpu"), settings)  # a new process, in effect
    second = rerun.generate(MIXED[:2])
    assert [c.text for c in first] == [c.text for c in second] and all(c.cached for c in second)
    assert rerun.inner._model is None  # answered from the cache without even loading the weights
    assert not rerun.generate([_ask("new", max_new_tokens=2)])[0].cached and rerun.inner._model is not None


def test_missing_chat_template_names_the_fix(tiny, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny, bare)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    for f in bare.glob("chat_template.*"):
        f.unlink()
    with pytest.raises(UserError, match="has no chat template; pass --chat-template FILE"):
        HFBackend.load(BackendOptions(model=str(bare), device="cpu"))
    template = tmp_path / "chatml.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                        "{% endfor %}<|im_start|>assistant\n")
    fixed = HFBackend.load(BackendOptions(model=str(bare), device="cpu", chat_template=str(template)))
    assert fixed.generate([_ask("hello", max_new_tokens=2)])[0].completion_tokens >= 1
    with pytest.raises(UserError, match="no such chat template file"):
        HFBackend.load(BackendOptions(model=str(bare), device="cpu", chat_template=str(tmp_path / "nope.jinja")))


@pytest.mark.parametrize("breakage", ["missing", "file", "no_config", "no_weights", "truncated", "garbage_header"])
def test_bad_checkpoints_are_one_line_user_errors(tiny, tmp_path, breakage):
    target = tmp_path / "ckpt"
    if breakage == "file":
        target.write_text("not a folder")
    elif breakage != "missing":
        shutil.copytree(tiny, target)
        weights = target / "model.safetensors"
        if breakage == "no_config":
            (target / "config.json").unlink()
        elif breakage == "no_weights":
            weights.unlink()
        elif breakage == "truncated":
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        else:
            weights.write_bytes(b"\xff" * 64)
    with pytest.raises(UserError) as err:
        HFBackend.load(BackendOptions(model=str(target), device="cpu"))
    message = str(err.value)
    assert "\n" not in message and str(target) in message
    expected = {"missing": "no such model folder", "file": "is a file", "no_config": "no config.json",
                "no_weights": "holds no weights", "truncated": "corrupt safetensors",
                "garbage_header": "corrupt safetensors"}[breakage]
    assert expected in message


def test_bad_device_and_dtype(tiny):
    import torch

    with pytest.raises(UserError, match="--dtype float8"):
        HFBackend.load(BackendOptions(model=str(tiny), dtype="float8"))
    with pytest.raises(UserError, match="not a torch device"):
        HFBackend.load(BackendOptions(model=str(tiny), device="toaster"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            HFBackend.load(BackendOptions(model=str(tiny), device="cuda"))


def test_unresolvable_hub_id_offline_is_a_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load"):
        HFBackend.load(BackendOptions(model="no-such-org/no-such-model", device="cpu"))


@pytest.mark.slow
def test_real_embedded_default():
    from harness.models import resolve_model

    settings = replace(from_env(), offline=True)
    try:
        path = resolve_model(settings, None)
    except UserError as exc:
        pytest.skip(f"the embedded default cannot be prepared here: {exc}")
    default = HFBackend.load(BackendOptions(model=path, device="cpu", batch_size=4))
    from harness.backends.precision import CPU_BF16_FLAGS, cpu_features

    # the converted default declares the published bfloat16; it runs in it where this CPU computes bfloat16 natively
    assert default.precision.declared == "bfloat16"
    assert default.precision.dtype == ("bfloat16" if cpu_features() & set(CPU_BF16_FLAGS) else "float32")
    assert "Paris" in default.generate([_ask("What is the capital of France?", max_new_tokens=16)])[0].text
    # A sampled draw is independent of its batch up to float32 rounding; bfloat16's coarser rounding moves some draws
    # (tests/perf/bench_generation.py counts how often), so the batch check runs in float32.
    backend = HFBackend.load(BackendOptions(model=path, device="cpu", batch_size=4, dtype="float32"))
    out = backend.generate([_ask("What is the capital of France?", max_new_tokens=16),
                            _ask("Name a color.", max_new_tokens=8, temperature=0.7, seed=1)])
    assert "Paris" in out[0].text
    assert all(c.error is None and 0 < c.completion_tokens <= 16 for c in out)
    assert backend.generate([_ask("Name a color.", max_new_tokens=8, temperature=0.7, seed=1)])[0].text == out[1].text
    # choice scoring agrees with greedy decoding: the token the model emits first outscores an unlikely one
    question = ({"role": "user", "content": "Is Paris in France? Answer Yes or No."},)
    first = backend.generate([ChatRequest(question, SamplingParams(max_new_tokens=1))])[0].text
    scores = backend.choice_logprobs([ChoiceRequest(question, (first, "Zebra"))])[0]
    assert first and scores[first] > scores["Zebra"]


@pytest.mark.gpu
def test_hf_on_cuda_matches_batching(tiny):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    b = HFBackend.load(BackendOptions(model=str(tiny), device="cuda", batch_size=4))
    assert b.fingerprint.count(":") == 2 and next(b.model.parameters()).is_cuda
    together = b.generate(MIXED)
    alone = [b.generate([r])[0] for r in MIXED]
    assert [c.text for c in together] == [c.text for c in alone]


@pytest.mark.gpu
def test_vllm_backend(tiny, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("vllm", reason="vLLM is an optional extra for GPU machines")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    settings = Settings(home=tmp_path, offline=True)
    b = load_backend(BackendOptions(model=str(tiny), backend="vllm", use_cache=False,
                                    extra={"gpu_memory_utilization": "0.2"}), settings)
    out = b.generate([_ask("hello", max_new_tokens=5), _ask("hi", temperature=1.0, seed=2, max_new_tokens=5,
                                                            top_logprobs=2)])
    assert all(0 < c.completion_tokens <= 5 for c in out) and out[1].top_logprobs is not None
    assert b.generate([_ask("hi", temperature=1.0, seed=2, max_new_tokens=5, top_logprobs=2)])[0].text == out[1].text


def test_vllm_missing_is_a_user_error(tiny, tmp_path):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="sppo-bench\\[vllm\\]"):
            load_backend(BackendOptions(model=str(tiny), backend="vllm"), Settings(home=tmp_path, offline=True))
    else:
        pytest.skip("vLLM is installed here")
