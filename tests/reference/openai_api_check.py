#!/usr/bin/env python3
"""Drive a running worker's fuller OpenAI API with the official `openai`
Python client (issue 16): log-probabilities (chat, completions, streamed),
penalties and logit_bias changing greedy output, chunked prefill, embeddings,
echo, token-id prompts,
per-response `created`, the range checks (400 naming the parameter),
structured output on random weights and its refusals, JSON bodies for unknown routes,
wrong methods and oversized bodies, GET /v1/models/{id}, Retry-After on
429, and the per-model metrics. Exits non-zero on the first failed check.

    python openai_api_check.py http://127.0.0.1:PORT/v1
"""
import collections
import concurrent.futures
import http.client
import json
import math
import sys
import time
import urllib.parse

import openai


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def raw(root, method, path, body=None):
    u = urllib.parse.urlsplit(root)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    c.request(method, path, body=data, headers={"content-type": "application/json"})
    r = c.getresponse()
    status, headers, payload = r.status, dict(r.getheaders()), r.read()
    c.close()
    return status, headers, payload


def refused(call, param, what):
    try:
        call()
        check(False, f"{what} is refused")
    except openai.BadRequestError as e:
        got = (e.body or {}).get("param")
        check(e.status_code == 400 and got == param, f"{what}: 400 naming {param} (got {got})")


def most_repeated(tokens):
    return max(collections.Counter(tokens).values())


def main():
    base = sys.argv[1]
    root = base.rsplit("/v1", 1)[0]
    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)
    model = client.models.list().data[0].id
    check(client.models.retrieve(model).id == model, "GET /v1/models/{id}")
    try:
        client.models.retrieve("no-such-model")
        check(False, "an unknown model id is 404")
    except openai.NotFoundError as e:
        check(e.body and e.body.get("code") == "model_not_found", "unknown model id: 404 model_not_found")

    # Log-probabilities, chat.
    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say something"}],
        max_tokens=8,
        temperature=0,
        logprobs=True,
        top_logprobs=3,
    )
    content = chat.choices[0].logprobs.content
    check(len(content) == chat.usage.completion_tokens, "one chat logprob per generated token")
    for entry in content:
        check(entry.logprob <= 1e-6, "a log-probability is at most 0")
        tops = [t.logprob for t in entry.top_logprobs]
        check(len(tops) == 3 and tops == sorted(tops, reverse=True), "three alternatives, best first")
        check(sum(math.exp(t) for t in tops) <= 1 + 1e-4, "alternatives' probabilities sum to at most 1")
        check(abs(entry.logprob - tops[0]) < 1e-4, "greedy takes the most likely token")
    # Log-probabilities, completions, streamed and not.
    plain = client.completions.create(
        model=model, prompt="Once upon a time", max_tokens=6, temperature=0, logprobs=2
    )
    lp = plain.choices[0].logprobs
    check(len(lp.token_logprobs) == plain.usage.completion_tokens, "one completion logprob per token")
    check(all(len(t) <= 2 for t in lp.top_logprobs), "at most two alternatives per token")
    check(lp.text_offset == sorted(lp.text_offset), "text offsets grow")
    streamed = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say something"}],
        max_tokens=8,
        temperature=0,
        logprobs=True,
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens, usage = [], None
    for chunk in streamed:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.logprobs and choice.logprobs.content:
                tokens.extend(choice.logprobs.content)
    check(usage is not None and len(tokens) == usage.completion_tokens, "streamed logprobs, one per token")

    # Penalties and logit_bias change greedy output.
    def greedy(**extra):
        c = client.completions.create(
            model=model, prompt="the the the the", max_tokens=24, temperature=0, logprobs=0, **extra
        )
        return c.choices[0].text, c.choices[0].logprobs.tokens

    text, tokens = greedy()
    penalised_text, penalised = greedy(frequency_penalty=2.0, presence_penalty=2.0)
    check(penalised_text != text, "penalties change repetitive greedy output")
    check(
        most_repeated(penalised) <= most_repeated(tokens),
        f"penalties do not repeat more ({most_repeated(penalised)} vs {most_repeated(tokens)})",
    )
    repeated_text, _ = greedy(extra_body={"repetition_penalty": 1.8})
    check(repeated_text != text, "repetition_penalty changes repetitive greedy output")
    forced = [
        client.completions.create(
            model=model, prompt=p, max_tokens=4, temperature=0, logit_bias={"42": 100}
        ).choices[0].text
        for p in ("Hello", "Something else entirely")
    ]
    check(forced[0] == forced[1] and forced[0], "logit_bias +100 forces one token whatever the prompt")

    # Echo, token-id prompts, per-response `created`.
    echoed = client.completions.create(model=model, prompt="Hello there", max_tokens=3, echo=True)
    check(echoed.choices[0].text.startswith("Hello there"), "echo puts the prompt first")
    ids = client.completions.create(model=model, prompt=[5, 6, 7], max_tokens=2)
    check(ids.usage.prompt_tokens == 3, "a token-id prompt is taken as it is")
    check(abs(ids.created - time.time()) < 10, "created is the response's time")

    # Chunked prefill: a long prompt fed in chunks while another stream
    # decodes sees what it sees alone (same first-token distribution).
    long_ids = [3 + (i * 7) % 90 for i in range(150)]

    def first_token_tops():
        c = client.completions.create(model=model, prompt=long_ids, max_tokens=1, temperature=0, logprobs=5)
        return c.choices[0].logprobs.top_logprobs[0]

    alone = first_token_tops()
    u = urllib.parse.urlsplit(root)
    running = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    running.request(
        "POST",
        "/v1/completions",
        body=json.dumps({"prompt": "Once upon a time", "max_tokens": 200, "temperature": 1.0, "stream": True}),
        headers={"content-type": "application/json"},
    )
    stream = running.getresponse()
    stream.readline()
    beside = first_token_tops()
    running.close()
    check(alone.keys() == beside.keys(), "the same five most likely first tokens, chunked or not")
    check(
        all(abs(alone[t] - beside[t]) < 1e-3 for t in alone),
        f"the same log-probabilities, chunked or not: {alone} vs {beside}",
    )

    # Embeddings: unit vectors, equal for equal inputs; base64 (the
    # client's default) and float agree; token ids work; dimensions checked.
    emb = client.embeddings.create(model=model, input=["hello world", "hello world", "something else"])
    vecs = [d.embedding for d in emb.data]
    check(len(vecs) == 3 and [d.index for d in emb.data] == [0, 1, 2], "one embedding per input, in order")
    check(all(abs(sum(x * x for x in v) - 1) < 1e-3 for v in vecs), "embeddings have unit length")
    check(max(abs(a - b) for a, b in zip(vecs[0], vecs[1])) < 1e-6, "equal inputs, equal embeddings")
    check(sum(a * b for a, b in zip(vecs[0], vecs[2])) < 0.9999, "different inputs, different embeddings")
    check(emb.usage.prompt_tokens > 0 and emb.usage.total_tokens == emb.usage.prompt_tokens, "embedding usage")
    floats = client.embeddings.create(model=model, input="hello world", encoding_format="float")
    check(
        max(abs(a - b) for a, b in zip(floats.data[0].embedding, vecs[0])) < 1e-6,
        "float and base64 encodings agree",
    )
    by_ids = client.embeddings.create(model=model, input=[[5, 6, 7]])
    check(by_ids.usage.prompt_tokens == 3, "token ids embed as they are")
    try:
        client.embeddings.create(model=model, input="hi", dimensions=3)
        check(False, "other dimensions are refused")
    except openai.BadRequestError as e:
        check((e.body or {}).get("param") == "dimensions", "dimensions: 400 naming dimensions")

    # Ranges and refusals.
    ask = lambda **kw: client.completions.create(model=model, prompt="Hi", max_tokens=2, **kw)
    chat_ask = lambda **kw: client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, **kw
    )
    refused(lambda: ask(presence_penalty=3), "presence_penalty", "presence_penalty 3")
    refused(lambda: ask(frequency_penalty=-2.5), "frequency_penalty", "frequency_penalty -2.5")
    refused(lambda: ask(extra_body={"repetition_penalty": 0}), "repetition_penalty", "repetition_penalty 0")
    refused(lambda: ask(logit_bias={"99999999": 1}), "logit_bias", "logit_bias outside the vocabulary")
    refused(lambda: ask(logit_bias={"1": 500}), "logit_bias", "logit_bias 500")
    refused(lambda: ask(logprobs=6), "logprobs", "completions logprobs 6")
    refused(lambda: chat_ask(logprobs=True, top_logprobs=21), "top_logprobs", "top_logprobs 21")
    refused(lambda: chat_ask(top_logprobs=2), "top_logprobs", "top_logprobs without logprobs")
    refused(
        lambda: client.chat.completions.create(
            model=model, messages=[{"role": "banana", "content": "Hi"}], max_tokens=2
        ),
        "messages",
        "an unknown role",
    )
    # Structured output: a schema that cannot be served, or a bad name, is a
    # 400; a tool_choice naming no tool too; tools belong to chat. Served
    # schemas are checked on SmolLM2 (structured_output_check.py); here a
    # random-weight model still answers a valid document.
    schema_format = lambda schema, name="answer": {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema},
    }
    refused(lambda: chat_ask(response_format=schema_format({"type": "nope"})), "response_format", "a schema of no type")
    refused(lambda: chat_ask(response_format=schema_format({}, "bad name")), "response_format", "a schema named badly")
    get_time = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    refused(
        lambda: chat_ask(tools=get_time, tool_choice={"type": "function", "function": {"name": "other"}}),
        "tool_choice",
        "tool_choice naming no tool",
    )
    refused(lambda: ask(extra_body={"tools": get_time}), "tools", "tools on /v1/completions")
    flag = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    for temperature in (0.0, 1.0):
        r = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Is it ok?"}],
            max_tokens=40,
            temperature=temperature,
            seed=5,
            response_format=schema_format(flag),
        )
        document = json.loads(r.choices[0].message.content)
        check(
            r.choices[0].finish_reason == "stop" and isinstance(document.get("ok"), bool) and len(document) == 1,
            f"random weights at temperature {temperature} still answer the schema: {document}",
        )
    r = client.completions.create(
        model=model, prompt="Answer:", max_tokens=40, extra_body={"response_format": schema_format(flag)}
    )
    check(isinstance(json.loads(r.choices[0].text).get("ok"), bool), "completions follow response_format too")

    # JSON bodies everywhere.
    status, _, body = raw(root, "GET", "/v1/nothing")
    check(status == 404 and "error" in json.loads(body), "unknown route: JSON 404")
    status, _, body = raw(root, "GET", "/v1/completions")
    check(status == 405 and "error" in json.loads(body), "wrong method: JSON 405")
    status, _, body = raw(root, "POST", "/v1/completions", b'{"prompt": "' + b"a" * (3 << 20) + b'"}')
    check(status == 413 and json.loads(body)["error"]["code"] == "request_too_large", "oversized body: JSON 413")

    # Overload: 429 with Retry-After.
    def one(_):
        return raw(root, "POST", "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 200, "temperature": 1.0})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    rejected = [headers for status, headers, _ in results if status == 429]
    check(rejected and all("Retry-After" in h or "retry-after" in h for h in rejected), "429 carries Retry-After")

    metrics = raw(root, "GET", "/metrics")[2].decode()
    for name in [
        "garage_inference_request_duration_seconds_bucket",
        "garage_inference_queue_time_seconds_bucket",
        "garage_inference_prefill_seconds_bucket",
        "garage_inference_decode_seconds_bucket",
        "garage_inference_prompt_length_tokens_bucket",
        "garage_inference_generation_length_tokens_bucket",
        "garage_inference_kv_cache_usage_ratio",
    ]:
        check(f'{name}{{' in metrics and f'model="{model}"' in metrics, f"metric {name} with the model label")
    finished = [l for l in metrics.splitlines() if l.startswith("garage_inference_finished_total{")]
    check(any('reason="length"' in l and not l.endswith(" 0") for l in finished), "finish reasons counted")


if __name__ == "__main__":
    main()
