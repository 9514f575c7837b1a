"""`--max-new-tokens` lowers a generative lm-eval task's limit and says so; it never raises one."""

from harness.engines.lmeval.model import apply_user_cap


def test_cap_lowers_and_notes():
    kwargs, notes = apply_user_cap(None, [], 1280, 128)
    assert kwargs == {"max_gen_toks": 128} and "capped at 128" in notes[0] and "not comparable" in notes[0]


def test_cap_never_raises_or_touches_loglikelihood_tasks():
    assert apply_user_cap(None, [], 256, 1024) == (None, [])
    assert apply_user_cap(None, [], None, 128) == (None, [])
    assert apply_user_cap({"max_gen_toks": 64}, ["ctx"], 1280, 128) == ({"max_gen_toks": 64}, ["ctx"])
