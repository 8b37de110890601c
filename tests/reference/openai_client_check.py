#!/usr/bin/env python3
"""Drive a running worker with the official `openai` Python client (and the
standard library's http.client for raw HTTP checks). Exits non-zero on the
first failed check.

    python openai_client_check.py http://127.0.0.1:PORT/v1
"""
import concurrent.futures
import http.client
import json
import sys
import time
import urllib.parse

import openai


class Raw:
    """Minimal HTTP/1.1 client for requests the openai client will not send."""

    def __init__(self, root):
        u = urllib.parse.urlsplit(root)
        self.host, self.port = u.hostname, u.port

    def conn(self, timeout=120):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, path, body):
        c = self.conn()
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", path, body=data, headers={"content-type": "application/json"})
        r = c.getresponse()
        status, payload = r.status, r.read()
        c.close()
        return status, json.loads(payload)

    def get(self, path):
        c = self.conn()
        c.request("GET", path)
        text = c.getresponse().read().decode()
        c.close()
        return text


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def main():
    base = sys.argv[1]
    root = base.rsplit("/v1", 1)[0]
    raw = Raw(root)
    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0)

    models = client.models.list().data
    check(len(models) == 1, "one model listed")
    model = models[0].id

    c = client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=6, temperature=0
    )
    check(c.choices[0].finish_reason in ("stop", "length"), "completion finish_reason")
    check(c.usage.completion_tokens >= 1 and c.usage.prompt_tokens >= 1, "completion usage")
    check(c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, "total")

    pieces = []
    for chunk in client.completions.create(
        model=model, prompt="The capital of France is", max_tokens=6, temperature=0, stream=True
    ):
        if chunk.choices:
            pieces.append(chunk.choices[0].text)
    check("".join(pieces) == c.choices[0].text, "streamed completion equals the plain one")

    messages = [{"role": "user", "content": "Hello, world!"}]
    chat = client.chat.completions.create(
        model=model, messages=messages, max_tokens=8, temperature=0
    )
    check(chat.choices[0].message.role == "assistant", "chat role")
    check(isinstance(chat.choices[0].message.content, str), "chat content")

    deltas, usage = [], None
    for chunk in client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    check("".join(deltas) == chat.choices[0].message.content, "streamed chat equals the plain one")
    check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, "stream usage")

    seeded = [
        client.completions.create(
            model=model, prompt="Hello", max_tokens=8, temperature=1.0, seed=7
        ).choices[0].text
        for _ in range(2)
    ]
    check(seeded[0] == seeded[1], "same seed, same sample")

    try:
        client.completions.create(model=model, prompt="Hello", max_tokens=10**6)
        check(False, "max_tokens beyond the context is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "context length" in str(e), "max_tokens beyond context: 400")
    try:
        client.completions.create(model=model, prompt="Hello " * 5000, max_tokens=1)
        check(False, "a prompt longer than the context is refused")
    except openai.BadRequestError as e:
        check(e.status_code == 400, "prompt longer than context: 400")
    try:
        client.completions.create(model=model, prompt="Hi", temperature=9)
        check(False, "bad temperature is refused")
    except openai.BadRequestError as e:
        check(e.body and e.body.get("param") == "temperature", "bad temperature: 400 naming param")

    status, body = raw.post("/v1/completions", b"{not json")
    check(status == 400 and body["error"]["type"] == "invalid_request_error", "malformed JSON: 400")
    status, body = raw.post("/v1/chat/completions", {"messages": "nope"})
    check(status == 400 and "error" in body, "malformed chat body: 400")

    # Disconnect mid-stream: the slot is freed and counted as cancelled.
    c = raw.conn()
    c.request(
        "POST",
        "/v1/completions",
        body=json.dumps(
            {"prompt": "Once upon a time", "max_tokens": 200, "stream": True, "temperature": 1.0}
        ),
        headers={"content-type": "application/json"},
    )
    r = c.getresponse()
    r.readline()
    c.sock.close()
    c.close()
    freed = False
    for _ in range(100):
        text = raw.get("/metrics")
        if "garage_inference_active_sequences 0" in text and 'outcome="cancelled"' in text:
            freed = True
            break
        time.sleep(0.1)
    check(freed, "client disconnect frees its slot and counts as cancelled")

    # Overload: more concurrent requests than batch + queue get 429s.
    def one(_):
        return raw.post(
            "/v1/completions",
            {"prompt": "Once upon a time", "max_tokens": 200, "temperature": 1.0},
        )

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    codes = [code for code, _ in results]
    check(200 in codes and 429 in codes, f"overload answers some 429s: {sorted(codes)}")
    rejected = [body for code, body in results if code == 429]
    check(all(b["error"]["type"] == "rate_limit_error" for b in rejected), "429 error body")

    metrics = raw.get("/metrics")
    for name in [
        "garage_inference_requests_total",
        "garage_inference_prompt_tokens_total",
        "garage_inference_completion_tokens_total",
        "garage_inference_time_to_first_token_seconds_bucket",
        "garage_inference_inter_token_seconds_bucket",
        "garage_inference_queue_depth",
        "garage_inference_batch_size_bucket",
    ]:
        check(name in metrics, f"metric {name}")
    batched = [l for l in metrics.splitlines() if l.startswith("garage_inference_batch_size_sum")]
    print(json.dumps({"batch_size_sum": batched}))


if __name__ == "__main__":
    main()
