"""``hotline door-demo``: a city system sends an SMS through the platform's REST door and
gets its receipt callback. Runs the daemon (no Asterisk) against the npm SMSC (or
sandbox.smsc_sim) on loopback, registers the city system as a door client, serves its
callback URL, and shows each step."""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from common.masking import mask_mobile

REPO = Path(__file__).resolve().parents[1]
TO = "13800138000"


def register(subparsers) -> None:
    p = subparsers.add_parser("door-demo", help="a city system sends via the REST door and "
                                                 "gets its receipt callback")
    p.add_argument("--state-dir", type=Path, default=REPO / "var" / "door-demo")
    p.set_defaults(func=cmd_door_demo)


def say(line: str) -> None:
    print(line, flush=True)


def cmd_door_demo(args) -> int:
    from sandbox.door_stack import CallbackReceiver, DoorStack
    from sandbox.pytest_smsc import start_npm_smsc, start_sim_smsc

    if args.state_dir.exists():
        shutil.rmtree(args.state_dir)
    log_dir = args.state_dir / "logs"
    log_dir.mkdir(parents=True)
    npm = shutil.which("node") and (REPO / "sandbox/smsc/node_modules/smpp").is_dir()
    smsc = start_npm_smsc(log_dir, dlr_delay_ms=50) if npm else start_sim_smsc(log_dir)
    receiver = CallbackReceiver()
    stack = DoorStack(args.state_dir, log_dir, smsc.port, callback_url=receiver.url)
    receiver.secret = stack.secret
    try:
        say(f"SMSC: {'npm smpp' if npm else 'smsc_sim'} on 127.0.0.1:{smsc.port}")
        stack.prepare()
        say("client registered: hotline door client add city-loans --center demo "
            "--secret-env DOOR_CITY_LOANS --callback-url " + receiver.url)
        stack.start()
        say(f"daemon ready: REST door on 127.0.0.1:{stack.http_port}/v1/messages, "
            f"SMPP door on :{stack.smpp_port}")
        body = {"to": TO, "template": "loan_settled", "reference": "LOAN-2026-0042",
                "params": {"loan": "6222020012345678", "date": "2026-11-30"}}
        say(f"\n== the city's loan system: POST /v1/messages (HMAC-signed, nonce) ==\n"
            f"  {json.dumps({**body, 'to': mask_mobile(TO)}, ensure_ascii=False)}")
        started = time.monotonic()
        status, answer = stack.call("POST", "", body, signed=True)
        say(f"  -> {status} {json.dumps(answer, ensure_ascii=False)}")
        if status != 202:
            return 1
        deadline = time.monotonic() + 30
        while not receiver.events and time.monotonic() < deadline:
            time.sleep(0.05)
        if not receiver.events:
            say("no callback within 30 s")
            return 1
        [[event]] = receiver.events.values()
        say(f"\n== the platform's receipt callback to {receiver.url} "
            f"(+{time.monotonic() - started:.3f} s, signature "
            f"{'verified' if not receiver.bad_signatures else 'BAD'}) ==\n"
            f"  {json.dumps(event, ensure_ascii=False)}")
        status, state = stack.call("GET", f"/{answer['message_id']}")
        say(f"\n== GET /v1/messages/{answer['message_id']} ==\n  {status} state "
            f"{state['state']}, {state['part_count']} part(s), reference {state['reference']}")
        say("\ndoor demo: sent and called back")
        return 0
    except (RuntimeError, OSError) as e:
        print(f"hotline door-demo: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        receiver.close()
        smsc.stop()
