#!/usr/bin/env python3
"""Total decode throughput of an OpenAI-compatible server under N
concurrent streams: N chat requests at once (greedy, max_tokens 128,
distinct prompts), each streamed over raw HTTP/1.1; counts the SSE events
that carry text. Prints one line: streams, tokens, wall time, total
tokens/s and the median per-stream tokens/s.

    python benches/concurrent_streams.py http://127.0.0.1:18432 [STREAMS]
"""
import concurrent.futures
import http.client
import json
import statistics
import sys
import time
import urllib.parse

MAX_TOKENS = 128


def model_of(root):
    """The id of the model the server serves (GET /v1/models)."""
    u = urllib.parse.urlsplit(root)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("GET", "/v1/models")
    return json.loads(conn.getresponse().read())["data"][0]["id"]


def stream(root, model, i):
    """Runs one stream; returns (text events, seconds from send to the end)."""
    u = urllib.parse.urlsplit(root)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({
        "model": model, "temperature": 0, "max_tokens": MAX_TOKENS, "stream": True,
        "messages": [{"role": "user", "content": f"Write a long story about the number {i}."}],
    })
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"content-type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"stream {i}: HTTP {response.status}: {response.read()[:200]!r}")
    events = 0
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        choices = json.loads(line[6:]).get("choices") or [{}]
        if choices[0].get("delta", {}).get("content"):
            events += 1
    conn.close()
    return events, time.perf_counter() - start


def main():
    root = sys.argv[1]
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    model = model_of(root)
    stream(root, model, -1)  # warm-up
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        done = list(pool.map(lambda i: stream(root, model, i), range(streams)))
    wall = time.perf_counter() - start
    tokens = sum(events for events, _ in done)
    per_stream = statistics.median(events / secs for events, secs in done)
    print(f"{streams} streams: {tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tokens/s "
          f"(per stream median {per_stream:.1f} tokens/s)")


if __name__ == "__main__":
    main()
