#!/usr/bin/env python3
"""Structured output and tool calls of a worker serving a real model
(SmolLM2-135M-Instruct), driven with the official `openai` client and
checked with an independent validator (`jsonschema`, Draft 2020-12):
json_object, 20 json_schema prompts (every answer parses and validates),
a streamed schema answer, and a tool call round trip (required, named,
streamed, then the tool's result answered). Exits non-zero on the first
failed check.

    python structured_output_check.py http://127.0.0.1:PORT/v1
"""
import concurrent.futures
import json
import sys

import jsonschema
import openai

from openai_api_check import check


def short(n=24):
    return {"type": "string", "minLength": 1, "maxLength": n}


# (prompt, schema): varied shapes, every string and list bounded so a small
# model finishes within max_tokens.
CASES = [
    ("Give the capital of France.", {
        "type": "object", "properties": {"country": short(), "capital": short()},
        "required": ["country", "capital"], "additionalProperties": False}),
    ("Describe a person named Ada who is 36.", {
        "type": "object", "properties": {"name": short(), "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"], "additionalProperties": False}),
    ("Is the sky blue?", {
        "type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
        "additionalProperties": False}),
    ("Pick a primary color.", {
        "type": "object", "properties": {"color": {"enum": ["red", "yellow", "blue"]}}, "required": ["color"],
        "additionalProperties": False}),
    ("List three fruits.", {
        "type": "object", "properties": {"fruits": {"type": "array", "items": short(16), "minItems": 3, "maxItems": 3}},
        "required": ["fruits"], "additionalProperties": False}),
    ("Rate the movie Casablanca from 1 to 5.", {
        "type": "object", "properties": {"title": short(), "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["title", "stars"], "additionalProperties": False}),
    ("What is 7 times 6?", {
        "type": "object", "properties": {"result": {"type": "integer", "minimum": 0, "maximum": 1000}},
        "required": ["result"], "additionalProperties": False}),
    ("Give the boiling point of water in Celsius.", {
        "type": "object", "properties": {"celsius": {"type": "number", "minimum": -300, "maximum": 1000}},
        "required": ["celsius"], "additionalProperties": False}),
    ("Write a short book record for 1984 by George Orwell.", {
        "type": "object",
        "properties": {"title": short(32), "author": short(32), "year": {"type": "integer", "minimum": 1000, "maximum": 2100}},
        "required": ["title", "author", "year"], "additionalProperties": False}),
    ("Give a city and its country.", {
        "type": "object",
        "properties": {"place": {"type": "object", "properties": {"city": short(), "country": short()},
                                 "required": ["city", "country"], "additionalProperties": False}},
        "required": ["place"], "additionalProperties": False}),
    ("Name two planets and whether they have rings.", {
        "type": "object",
        "properties": {"planets": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
            "type": "object", "properties": {"name": short(12), "rings": {"type": "boolean"}},
            "required": ["name", "rings"], "additionalProperties": False}}},
        "required": ["planets"], "additionalProperties": False}),
    ("Classify the sentiment of: I love this!", {
        "type": "object", "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]},
                                         "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["sentiment", "confidence"], "additionalProperties": False}),
    ("Give a yes or no answer: is water wet?", {"enum": ["yes", "no"]}),
    ("Give a number between 1 and 10.", {"type": "integer", "minimum": 1, "maximum": 10}),
    ("Name a color.", {"type": "string", "maxLength": 12}),
    ("Give a temperature reading or say unknown.", {
        "anyOf": [{"type": "number", "minimum": -100, "maximum": 100}, {"const": "unknown"}]}),
    ("Describe a dog.", {
        "type": "object",
        "$defs": {"animal": {"type": "object", "properties": {"species": short(16), "legs": {"type": "integer", "minimum": 0, "maximum": 8}},
                             "required": ["species", "legs"], "additionalProperties": False}},
        "properties": {"pet": {"$ref": "#/$defs/animal"}}, "required": ["pet"], "additionalProperties": False}),
    ("Give a date for New Year 2025.", {
        "type": "object", "properties": {"date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}},
        "required": ["date"], "additionalProperties": False}),
    ("List up to four even numbers.", {
        "type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}, "maxItems": 4}),
    ("Make a to-do item.", {
        "type": "object",
        "properties": {"task": short(32), "done": {"type": "boolean"}, "priority": {"enum": ["low", "high"]}},
        "required": ["task", "done", "priority"], "additionalProperties": False}),
]

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "get_time", "description": "The time in a timezone",
                                      "parameters": {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 32}},
                                                     "required": ["timezone"], "additionalProperties": False}}},
]


def main():
    root = sys.argv[1]
    client = openai.OpenAI(base_url=root, api_key="unused", max_retries=0, timeout=300)
    model = client.models.list().data[0].id

    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        max_tokens=120, temperature=0, response_format={"type": "json_object"},
        # json_object bounds no list: a penalty keeps a 135M model from
        # repeating one item until max_tokens, as users of small models do.
        frequency_penalty=1.0,
    )
    text = r.choices[0].message.content
    check(r.choices[0].finish_reason == "stop" and isinstance(json.loads(text), dict), f"json_object: {text}")

    def ask(case):
        prompt, schema = case
        r = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], max_tokens=200, temperature=0,
            response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
        )
        return prompt, schema, r.choices[0]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, CASES))
    for prompt, schema, choice in answers:
        document = json.loads(choice.message.content)
        jsonschema.Draft202012Validator(schema).validate(document)
        check(choice.finish_reason == "stop", f"{prompt!r} → {choice.message.content}")
    check(len(answers) == 20, "20 json_schema answers parse and validate against their schemas")

    prompt, schema = CASES[10]
    pieces = []
    for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=200, temperature=0, stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "planets", "schema": schema}},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    jsonschema.Draft202012Validator(schema).validate(json.loads("".join(pieces)))
    check(len(pieces) > 3, f"a streamed schema answer arrives in {len(pieces)} pieces and validates")

    # Tool call round trip.
    question = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(
        model=model, messages=question, tools=TOOLS, tool_choice="required", max_tokens=120, temperature=0,
    )
    choice = r.choices[0]
    check(choice.finish_reason == "tool_calls" and choice.message.content is None, "required: a tool call, no content")
    call = choice.message.tool_calls[0]
    arguments = json.loads(call.function.arguments)
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}[call.function.name]
    jsonschema.Draft202012Validator(schema).validate(arguments)
    check(call.id.startswith("call_") and call.type == "function", f"the call: {call.function.name}({arguments})")

    named = client.chat.completions.create(
        model=model, messages=question, tools=TOOLS, max_tokens=120, temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    ).choices[0].message.tool_calls[0]
    jsonschema.Draft202012Validator(TOOLS[1]["function"]["parameters"]).validate(json.loads(named.function.arguments))
    check(named.function.name == "get_time", f"a named tool_choice calls it: {named.function.arguments}")

    streamed, finish = [], None
    for chunk in client.chat.completions.create(
        model=model, messages=question, tools=TOOLS, tool_choice="required", max_tokens=120, temperature=0, stream=True,
    ):
        for c in chunk.choices:
            streamed.extend(c.delta.tool_calls or [])
            finish = c.finish_reason or finish
    check(
        finish == "tool_calls" and len(streamed) == 1 and streamed[0].function.name == call.function.name
        and json.loads(streamed[0].function.arguments) == arguments,
        "streamed, the same call arrives as a tool_calls delta",
    )

    followed = question + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 18, "unit": "celsius", "sky": "sunny"})},
    ]
    r = client.chat.completions.create(model=model, messages=followed, tools=TOOLS, tool_choice="none", max_tokens=60, temperature=0)
    answer = r.choices[0].message
    check(answer.tool_calls is None and answer.content, f"the tool's result is answered in text: {answer.content!r}")
    r = client.chat.completions.create(model=model, messages=followed, tools=TOOLS, max_tokens=120, temperature=0)
    choice = r.choices[0]
    if choice.finish_reason == "tool_calls":
        check(choice.message.tool_calls[0].function.name in ("get_weather", "get_time"), "auto: another call")
    else:
        check(choice.finish_reason == "stop" and choice.message.content, f"auto: a text answer {choice.message.content!r}")


if __name__ == "__main__":
    main()
