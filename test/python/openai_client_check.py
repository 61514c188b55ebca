"""The official Python `openai` client against an agent runtime's OpenAI-compatible API.

Runs one check per client feature (plain create, create(stream=True) with a usage chunk, the
stream helper, parse() into a pydantic model, a tool call round trip with the client's own tool,
with_raw_response and the request id, the error classes) and prints one JSON line per check:
{"check": <name>, "ok": true, ...what it saw} or {"check": <name>, "ok": false, "error": ...}.
Exits 1 when any check failed, 2 on bad arguments.

The answers come from whatever model the runtime calls; test/e2e/openai-python.test.ts scripts a
fake provider by the first word of each user message (plain, stream, helper, structured, tools) and
compares what this script saw with what the fake sent.

    python openai_client_check.py --base-url http://127.0.0.1:8080/v1 --api-key sk-...
    (or OPENAI_BASE_URL / OPENAI_API_KEY; --agent, --model, --request-id, --only as below)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from typing import Any, Callable

import openai
import pydantic
from openai import OpenAI


class CheckFailed(Exception):
    """A check saw something other than what the OpenAI API promises."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Weather(pydantic.BaseModel):
    """The structured answer parse() asks for."""

    city: str
    celsius: float
    sunny: bool


class GetWeather(pydantic.BaseModel):
    """The arguments of the client's own tool."""

    city: str


def get_weather(arguments: GetWeather) -> str:
    """The client's own tool: what the model is told, computed here from the parsed arguments."""
    return f"sunny and {len(arguments.city) * 3} degrees"


def api_error(error: openai.APIStatusError) -> dict[str, Any]:
    """What the client made of an error answer: its class and the fields it read from the body."""
    return {
        "class": type(error).__name__,
        "status": error.status_code,
        "message": error.message,
        "type": error.type,
        "code": error.code,
        "param": error.param,
        "body": error.body,
    }


def chat_namespace(client: OpenAI, method: str) -> Callable[..., Any]:
    """`client.chat.completions.<method>`, or the `beta` namespace of clients that keep it there."""
    found = getattr(client.chat.completions, method, None)
    if found is None:
        found = getattr(client.beta.chat.completions, method)
    return found


class Checks:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.client = OpenAI(
            base_url=options.base_url, api_key=options.api_key, max_retries=0, timeout=30.0
        )

    def user(self, text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": text}]

    def create(self) -> dict[str, Any]:
        completion = self.client.chat.completions.create(
            model=self.options.agent, messages=self.user("plain: say hello")
        )
        choice = completion.choices[0]
        expect(completion.object == "chat.completion", f"object is {completion.object!r}")
        expect(choice.message.role == "assistant", f"role is {choice.message.role!r}")
        expect(completion.usage is not None, "no usage")
        return {
            "id": completion.id,
            "model": completion.model,
            "content": choice.message.content,
            "finish_reason": choice.finish_reason,
            "usage": completion.usage.model_dump() if completion.usage else None,
            "request_id": completion._request_id,
        }

    def create_model(self) -> dict[str, Any]:
        completion = self.client.chat.completions.create(
            model=self.options.model, messages=self.user("plain: which model")
        )
        return {"model": completion.model, "content": completion.choices[0].message.content}

    def stream(self) -> dict[str, Any]:
        deltas: list[str] = []
        roles: list[str] = []
        finish_reasons: list[str] = []
        usage: dict[str, Any] | None = None
        ids: set[str] = set()
        chunks = 0
        response = self.client.chat.completions.create(
            model=self.options.agent,
            messages=self.user("stream: count to five"),
            stream=True,
            stream_options={"include_usage": True},
        )
        with response as stream:
            for chunk in stream:
                chunks += 1
                ids.add(chunk.id)
                expect(chunk.object == "chat.completion.chunk", f"chunk object is {chunk.object!r}")
                if chunk.usage is not None:
                    expect(chunk.choices == [], "the usage chunk carries choices")
                    usage = chunk.usage.model_dump()
                for choice in chunk.choices:
                    if choice.delta.role:
                        roles.append(choice.delta.role)
                    if choice.delta.content:
                        deltas.append(choice.delta.content)
                    if choice.finish_reason:
                        finish_reasons.append(choice.finish_reason)
        expect(len(ids) == 1, f"the chunks carry {len(ids)} ids")
        expect(usage is not None, "no usage chunk although stream_options.include_usage was set")
        return {
            "chunks": chunks,
            "deltas": deltas,
            "content": "".join(deltas),
            "roles": roles,
            "finish_reasons": finish_reasons,
            "usage": usage,
            "request_id": response.response.headers.get("x-request-id"),
            "run_id": response.response.headers.get("x-run-id"),
        }

    def stream_helper(self) -> dict[str, Any]:
        stream_method = chat_namespace(self.client, "stream")
        deltas: list[str] = []
        done: list[str] = []
        event_types: set[str] = set()
        with stream_method(
            model=self.options.agent, messages=self.user("helper: stream with the helper")
        ) as stream:
            for event in stream:
                event_types.add(event.type)
                if event.type == "content.delta":
                    deltas.append(event.delta)
                elif event.type == "content.done":
                    done.append(event.content)
            final = stream.get_final_completion()
        content = final.choices[0].message.content
        expect("".join(deltas) == content, "the content deltas do not join to the final content")
        return {
            "helper": getattr(stream_method, "__qualname__", str(stream_method)),
            "deltas": deltas,
            "content_done": done,
            "final_content": content,
            "finish_reason": final.choices[0].finish_reason,
            "event_types": sorted(event_types),
        }

    def parse(self) -> dict[str, Any]:
        parse_method = chat_namespace(self.client, "parse")
        completion = parse_method(
            model=self.options.agent,
            messages=self.user("structured: Lisbon"),
            response_format=Weather,
        )
        message = completion.choices[0].message
        expect(isinstance(message.parsed, Weather), f"parsed is {type(message.parsed).__name__}")
        return {
            "parsed_type": type(message.parsed).__name__,
            "parsed": message.parsed.model_dump(),
            "content": message.content,
            "refusal": message.refusal,
        }

    def tools(self) -> dict[str, Any]:
        parse_method = chat_namespace(self.client, "parse")
        tool = openai.pydantic_function_tool(
            GetWeather, name="get_weather", description="the weather in a city"
        )
        messages: list[Any] = self.user("tools: what is the weather in Oslo?")
        first = parse_method(model=self.options.agent, messages=messages, tools=[tool])
        choice = first.choices[0]
        expect(choice.finish_reason == "tool_calls", f"finish_reason is {choice.finish_reason!r}")
        calls = choice.message.tool_calls or []
        expect(len(calls) == 1, f"{len(calls)} tool calls")
        call = calls[0]
        arguments = call.function.parsed_arguments
        expect(isinstance(arguments, GetWeather), f"parsed_arguments is {type(arguments).__name__}")
        result = get_weather(arguments)
        messages.append(choice.message)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        second = parse_method(model=self.options.agent, messages=messages, tools=[tool])
        return {
            "tool_call_id": call.id,
            "tool_name": call.function.name,
            "arguments": call.function.arguments,
            "parsed_arguments": arguments.model_dump(),
            "tool_result": result,
            "final_content": second.choices[0].message.content,
            "final_finish_reason": second.choices[0].finish_reason,
        }

    def raw_response(self) -> dict[str, Any]:
        raw = self.client.chat.completions.with_raw_response.create(
            model=self.options.agent, messages=self.user("plain: raw please")
        )
        completion = raw.parse()
        header = raw.headers.get("x-request-id")
        expect(header is not None, "no x-request-id header")
        expect(completion._request_id == header, "_request_id differs from the x-request-id header")
        expect(raw.request_id == header, "request_id differs from the x-request-id header")
        given: dict[str, Any] = {}
        if self.options.request_id:
            echoed = self.client.chat.completions.with_raw_response.create(
                model=self.options.agent,
                messages=self.user("plain: my own request id"),
                extra_headers={"x-request-id": self.options.request_id},
            )
            given = {
                "given_request_id": self.options.request_id,
                "echoed_header": echoed.headers.get("x-request-id"),
                "echoed_request_id": echoed.parse()._request_id,
            }
        return {
            "status": raw.status_code,
            "header": header,
            "request_id": completion._request_id,
            "run_id": raw.headers.get("x-run-id"),
            "thread_id": raw.headers.get("x-thread-id"),
            "content": completion.choices[0].message.content,
            **given,
        }

    def error_auth(self) -> dict[str, Any]:
        bad = OpenAI(base_url=self.options.base_url, api_key="sk-not-a-key", max_retries=0, timeout=30.0)
        try:
            bad.chat.completions.create(model=self.options.agent, messages=self.user("plain: hi"))
        except openai.AuthenticationError as error:
            return {**api_error(error), "request_id": error.request_id}
        raise CheckFailed("a wrong API key was answered without openai.AuthenticationError")

    def error_bad_request(self) -> dict[str, Any]:
        try:
            self.client.chat.completions.create(
                model=self.options.agent, messages=self.user("plain: hi"), temperature=7
            )
        except openai.BadRequestError as error:
            expect(error.param == "temperature", f"param is {error.param!r}, not temperature")
            expect("temperature" in error.message, f"the message does not name the field: {error.message!r}")
            return api_error(error)
        raise CheckFailed("temperature 7 was answered without openai.BadRequestError")

    def error_not_found(self) -> dict[str, Any]:
        try:
            self.client.chat.completions.create(model="gpt-not-served-here", messages=self.user("plain: hi"))
        except openai.NotFoundError as error:
            return api_error(error)
        raise CheckFailed("an unknown model was answered without openai.NotFoundError")


CHECKS = [
    "create",
    "create_model",
    "stream",
    "stream_helper",
    "parse",
    "tools",
    "raw_response",
    "error_auth",
    "error_bad_request",
    "error_not_found",
]


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"), help="ends in /v1")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--agent", default=os.environ.get("CHECK_AGENT", "assistant"))
    parser.add_argument("--model", default=os.environ.get("CHECK_MODEL", "fake-fast"))
    parser.add_argument(
        "--request-id",
        default=os.environ.get("CHECK_REQUEST_ID"),
        help="an x-request-id to send and expect echoed",
    )
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(CHECKS)}")
    options = parser.parse_args(argv)
    if not options.base_url or not re.match(r"^https?://", options.base_url):
        parser.error("--base-url (or OPENAI_BASE_URL) must be an http(s) URL ending in /v1")
    if not options.api_key:
        parser.error("--api-key (or OPENAI_API_KEY) is required")
    options.checks = CHECKS if options.only is None else options.only.split(",")
    unknown = [name for name in options.checks if name not in CHECKS]
    if unknown:
        parser.error(f"unknown checks: {', '.join(unknown)} (known: {', '.join(CHECKS)})")
    return options


def main(argv: list[str]) -> int:
    options = arguments(argv)
    print(
        json.dumps(
            {
                "check": "versions",
                "ok": True,
                "openai": openai.__version__,
                "pydantic": pydantic.VERSION,
                "python": sys.version.split()[0],
            }
        ),
        flush=True,
    )
    checks = Checks(options)
    failed: list[str] = []
    for name in options.checks:
        try:
            seen = getattr(checks, name)()
            line = {"check": name, "ok": True, **seen}
        except Exception as error:  # every failure is reported, and the other checks still run
            failed.append(name)
            line = {
                "check": name,
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc(limit=4),
            }
        print(json.dumps(line, default=str), flush=True)
    if failed:
        print(f"openai_client_check: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
