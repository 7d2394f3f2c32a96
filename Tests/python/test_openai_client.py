"""The official OpenAI Python client against a real `graft serve`.

Builds the release binary (unless GRAFT_BIN names one), starts it on a free port with
an empty temporary data folder, waits for /health, runs each check, and always stops
the server. Prints "N passed, N failed" and exits non-zero on any failure.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

from openai import OpenAI, NotFoundError, BadRequestError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = "smollm2-135m"


def graft_binary():
    if os.environ.get("GRAFT_BIN"):
        return os.environ["GRAFT_BIN"]
    subprocess.run(["swift", "build", "-c", "release", "--product", "graft"], cwd=ROOT, check=True)
    bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    return os.path.join(bin_dir, "graft")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(port, server, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"graft serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if json.load(r)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("graft serve did not become healthy")


def check_chat(client):
    r = client.chat.completions.create(model=MODEL, temperature=0, max_tokens=20,
                                       messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in r.choices[0].message.content, r.choices[0].message.content
    assert r.id.startswith("chatcmpl-") and r.model == MODEL
    assert r.usage.completion_tokens > 0


def check_chat_streaming(client):
    stream = client.chat.completions.create(model=MODEL, temperature=0, max_tokens=20, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "What is the capital of France?"}])
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert "Paris" in text, text
    assert usage is not None and usage.completion_tokens > 0


def check_completions(client):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert "Paris" in r.choices[0].text, r.choices[0].text
    assert r.id.startswith("cmpl-")
    # A list of prompts, one of them as token ids: choice i answers prompt i.
    listed = client.completions.create(model=MODEL, prompt=["Two plus two equals", "The capital of France is"],
                                       max_tokens=5, temperature=0)
    assert [c.index for c in listed.choices] == [0, 1]
    assert listed.choices[1].text == r.choices[0].text, listed.choices[1].text
    ids = client.completions.create(model=MODEL, prompt=[504, 3575, 282, 4649, 314], max_tokens=5, temperature=0)
    assert ids.usage.prompt_tokens == 5 and ids.choices[0].text == r.choices[0].text, ids.choices[0].text


def check_models(client):
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL], ids


def check_errors(client):
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("expected 404")
    except NotFoundError:
        pass
    try:
        client.completions.create(model=MODEL, prompt="hi", max_tokens=100000)
        raise AssertionError("expected 400")
    except BadRequestError as e:
        assert e.code == "context_length_exceeded", e.code


def main():
    binary = graft_binary()
    port = free_port()
    data = tempfile.mkdtemp(prefix="graft-py-")
    # The server's logs go to a file: an unread pipe would fill and block it.
    log = open(os.path.join(data, "serve.log"), "w")
    server = subprocess.Popen([binary, "serve", "--port", str(port), "--data", data,
                               "--model", os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf")],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    passed = failed = 0
    try:
        wait_for_health(port, server)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        for check in [check_chat, check_chat_streaming, check_completions, check_models, check_errors]:
            try:
                check(client)
                passed += 1
                print(f"PASSED {check.__name__}")
            except Exception:
                failed += 1
                print(f"FAILED {check.__name__}")
                traceback.print_exc()
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if failed:
            with open(log.name) as f:
                print("graft serve log (last lines):\n" + "".join(f.readlines()[-20:]))
        shutil.rmtree(data, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
