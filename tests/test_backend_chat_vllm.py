"""The ``openai-chat`` backend against a real ``vllm serve --reasoning-parser deepseek_r1``.

On one server per demo model, the chat backend's statuses are compared with the raw
completions backend's on the same probes: the valid-reasoning rate must be identical, and
every other disagreement must be one a response-shape rule names as ambiguous.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from rtc_assert import demo
from rtc_assert.generation.backends import load_backend
from rtc_assert.generation.backends.local_server import start_vllm_server
from rtc_assert.generation.models import resolve_model
from rtc_assert.generation.requests import GenerationSettings, build_requests
from rtc_assert.runs import score_generations

pytest.importorskip("vllm", reason="vLLM is not installed: pip install 'rtc-assert[vllm]'")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
GREEDY = GenerationSettings(max_new_tokens=demo.MAX_NEW_TOKENS)
PROBES_PER_SET = 64
EXPLAINED = {
    # (completions status, chat status, chat detail): the shape rule that explains it.
    ("empty", "missing", "ambiguous"),
    ("missing", "truncated", "unterminated_or_misrouted"),
    ("valid", "truncated", "unterminated_or_misrouted"),
}


@pytest.mark.parametrize("name", ["base", "collapsed", "rambling"])
def test_chat_statuses_match_completions(tmp_path, name):
    spec = f"demo:{name}"
    server = start_vllm_server(
        demo.checkpoint(name), "demo", tmp_path / "serve.log", reasoning_parser="deepseek_r1"
    )
    try:
        common = {"base_url": server.url, "served_model": "demo", "concurrency": 16}
        raw = load_backend("openai", resolve_model(spec), common)
        chat = load_backend("openai-chat", resolve_model(spec), common)
        for set_name in demo.PROBE_SET_NAMES:
            probe_set = demo.probes(set_name)
            probes = probe_set.probes[:PROBES_PER_SET]
            raw_out = raw.generate(
                build_requests(raw.tokenizer, probes, GREEDY, model=spec), GREEDY
            )
            chat_out = chat.generate(build_requests(None, probes, GREEDY, model=spec), GREEDY)
            a = score_generations(probe_set, raw_out)
            b = score_generations(probe_set, chat_out)
            pairs = Counter(
                (x.trace.status.value, y.trace.status.value, y.trace.detail)
                for x, y in zip(a, b, strict=True)
            )
            print(f"{spec} on {set_name}: {dict(pairs)}")
            valid = [x.trace.status.value == "valid" for x in a]
            assert valid == [y.trace.status.value == "valid" for y in b], pairs
            unexplained = {pair for pair in pairs if pair[0] != pair[1] and pair not in EXPLAINED}
            assert not unexplained, pairs
        raw.close()
        chat.close()
    finally:
        server.stop()
