#!/usr/bin/env python3
"""Drive the coordinator's OpenAI gateway with the official `openai` Python
client, against two linked nodes, then run 16 concurrent streams and SIGKILL
one node mid-run. Exits non-zero on the first failed check; prints one JSON
line (`RESULT {...}`) with every concurrent request's outcome for the Rust
side, which checks each request's bill.

    python gateway_client_check.py CONFIG.json

CONFIG: {"gateway": "http://127.0.0.1:P/v1", "api_key": "gk_...",
         "direct": "http://127.0.0.1:W/v1" (node SE's worker, asked directly),
         "model": "smollm2", "node_se": ID, "node_de": ID,
         "kill_de": [PID, ...] (node DE's agent and worker), "bound_s": 120}
"""
import concurrent.futures
import json
import os
import signal
import sys
import threading
import time

import openai


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


CHAT = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "The capital of France is"


def functional(cfg, gw, direct):
    model = cfg["model"]
    models = gw.models.list().data
    card = next((m for m in models if m.id == model), None)
    check(card is not None, f"/v1/models lists {model}")
    check(getattr(card, "nodes", None) == 2, f"{model} is served by 2 nodes: {card}")

    kw = dict(model=model, max_tokens=12, temperature=0)
    mine = gw.chat.completions.create(messages=CHAT, **kw)
    theirs = direct.chat.completions.create(messages=CHAT, **kw)
    check(mine.choices[0].message.content == theirs.choices[0].message.content,
          f"greedy chat equals the worker's own: {mine.choices[0].message.content!r}")
    check(mine.usage.completion_tokens == theirs.usage.completion_tokens
          and mine.usage.prompt_tokens == theirs.usage.prompt_tokens, "chat usage equals the worker's")

    deltas, usage = [], None
    for chunk in gw.chat.completions.create(messages=CHAT, stream=True,
                                           stream_options={"include_usage": True}, **kw):
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    check("".join(deltas) == mine.choices[0].message.content, "streamed chat equals the plain one")
    check(usage is not None and usage.completion_tokens == mine.usage.completion_tokens,
          "the streamed chat's usage chunk")
    no_usage = [c for c in gw.chat.completions.create(messages=CHAT, stream=True, **kw) if c.usage]
    check(not no_usage, "no usage chunk unless asked for")

    kw = dict(model=model, max_tokens=8, temperature=0)
    mine = gw.completions.create(prompt=PROMPT, **kw)
    theirs = direct.completions.create(prompt=PROMPT, **kw)
    check(mine.choices[0].text == theirs.choices[0].text,
          f"greedy completion equals the worker's own: {mine.choices[0].text!r}")
    pieces = [c.choices[0].text for c in gw.completions.create(prompt=PROMPT, stream=True, **kw)
              if c.choices]
    check("".join(pieces) == mine.choices[0].text, "streamed completion equals the plain one")

    for _ in range(6):
        raw = gw.chat.completions.with_raw_response.create(
            messages=CHAT, model=model, max_tokens=2, temperature=0,
            extra_headers={"X-Garage-Residency": "SE"})
        check(raw.headers.get("x-garage-node") == cfg["node_se"], "residency SE is served in SE")
    try:
        gw.chat.completions.create(messages=CHAT, model=model, max_tokens=2,
                                   extra_headers={"X-Garage-Residency": "NO"})
        check(False, "a residency no node meets is refused")
    except openai.APIStatusError as e:
        check(e.status_code == 503 and "residency" in str(e), f"residency NO: 503 with the reason ({e})")

    try:
        gw.chat.completions.create(messages=CHAT, model="no-such-model", max_tokens=2)
        check(False, "an unknown model is refused")
    except openai.NotFoundError as e:
        check(e.code == "model_not_found", "unknown model: 404 model_not_found")
    bad = openai.OpenAI(base_url=cfg["gateway"], api_key="gk_0123456789abcdef_" + "0" * 64,
                        max_retries=0)
    try:
        bad.models.list()
        check(False, "a wrong API key is refused")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, "wrong API key: 401")


def concurrent_kill(cfg, gw):
    """16 streams; SIGKILL node DE once one of its streams has a token."""
    model, bound = cfg["model"], cfg["bound_s"]
    de_token = threading.Event()
    results = [None] * 16
    start = time.monotonic()

    def one(i):
        out = {"i": i, "node": None, "request_id": None, "tokens": 0, "usage": None,
               "error": None}
        try:
            raw = gw.chat.completions.with_raw_response.create(
                model=model, temperature=0, max_tokens=48, stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": f"Count from {i} to {i + 40}, slowly."}])
            out["node"] = raw.headers.get("x-garage-node")
            out["request_id"] = raw.headers.get("x-garage-request-id")
            for chunk in raw.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    out["tokens"] += 1
                    if out["node"] == cfg["node_de"]:
                        de_token.set()
                if chunk.usage:
                    out["usage"] = {"prompt": chunk.usage.prompt_tokens,
                                    "completion": chunk.usage.completion_tokens}
        except openai.APIError as e:
            out["error"] = f"{type(e).__name__}: {e}"
        out["seconds"] = time.monotonic() - start
        results[i] = out

    pool = concurrent.futures.ThreadPoolExecutor(16)
    futures = [pool.submit(one, i) for i in range(16)]
    check(de_token.wait(60), "a stream on node DE has its first token")
    for pid in cfg["kill_de"]:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic() - start
    done, pending = concurrent.futures.wait(futures, timeout=bound)
    check(not pending, f"all 16 requests ended within {bound} s of their start")
    pool.shutdown()
    return {"killed_at": killed_at, "requests": results}


def main():
    cfg = json.load(open(sys.argv[1]))
    gw = openai.OpenAI(base_url=cfg["gateway"], api_key=cfg["api_key"], max_retries=0,
                       timeout=cfg["bound_s"])
    direct = openai.OpenAI(base_url=cfg["direct"], api_key="unused", max_retries=0)
    functional(cfg, gw, direct)
    outcome = concurrent_kill(cfg, gw)
    print("RESULT " + json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
