#!/usr/bin/env python3
"""How much a long prompt stalls a running stream (issue 16): against a
running worker, stream A generates MAX_TOKENS greedily; once it has 16
tokens, request B sends a ~1,024-token prompt (1 token back). Prints one
JSON line: A's inter-token gaps (median, p99, max) over the whole stream,
the same while B was being prefilled, B's prompt tokens and wall time.

    python prefill_interference.py http://127.0.0.1:PORT [MAX_TOKENS]
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def post(root, body, stream):
    u = urllib.parse.urlsplit(root)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request("POST", "/v1/completions", body=json.dumps(body), headers={"content-type": "application/json"})
    return c, c.getresponse()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def main():
    root = sys.argv[1]
    max_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 160
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 100
    arrivals = []
    b_window = {}

    def long_request():
        b_window["start"] = time.monotonic()
        c, r = post(root, {"prompt": long_prompt, "max_tokens": 1, "temperature": 0}, False)
        body = json.loads(r.read())
        c.close()
        b_window["end"] = time.monotonic()
        b_window["prompt_tokens"] = body["usage"]["prompt_tokens"]

    c, r = post(root, {"prompt": "Once upon a time", "max_tokens": max_tokens, "temperature": 0,
                       "stream": True}, True)
    launched = None
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        chunk = json.loads(data)
        if chunk["choices"] and chunk["choices"][0]["text"]:
            arrivals.append(time.monotonic())
        if len(arrivals) == 16 and launched is None:
            launched = threading.Thread(target=long_request)
            launched.start()
    c.close()
    if launched:
        launched.join()
    gaps = [(b - a) * 1000 for a, b in zip(arrivals, arrivals[1:])]
    during = [
        (b - a) * 1000
        for a, b in zip(arrivals, arrivals[1:])
        if "start" in b_window and b >= b_window["start"] and a <= b_window.get("end", b)
    ]
    print(json.dumps({
        "tokens": len(arrivals),
        "gap_median_ms": round(statistics.median(gaps), 1),
        "gap_p99_ms": round(pct(gaps, 0.99), 1),
        "gap_max_ms": round(max(gaps), 1),
        "p99_over_median": round(pct(gaps, 0.99) / statistics.median(gaps), 2),
        "gaps_during_prefill": len(during),
        "max_gap_during_prefill_ms": round(max(during), 1) if during else None,
        "long_prompt_tokens": b_window.get("prompt_tokens"),
        "long_request_s": round(b_window["end"] - b_window["start"], 2) if "end" in b_window else None,
    }))


if __name__ == "__main__":
    main()
