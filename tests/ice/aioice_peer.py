#!/usr/bin/python3
"""aioice (Debian python3-aioice) as the independent ICE peer of Sluice's lite agent.

  aioice_peer.py request USERNAME PWD [--use-candidate] [--controlled]
      prints a Binding request built by aioice, in hex, and its transaction id
  aioice_peer.py verify PWD TXID_HEX HOST PORT RESPONSE_HEX
      parses a response with aioice, checking MESSAGE-INTEGRITY under PWD and
      FINGERPRINT; exits 0 when it is a Binding success for TXID whose
      XOR-MAPPED-ADDRESS is HOST:PORT
  aioice_peer.py error RESPONSE_HEX
      prints the ERROR-CODE of a Binding error response (FINGERPRINT checked)
  aioice_peer.py connect PORT LITE_UFRAG LITE_PWD UFRAG PWD [--controlled]
      a full aioice agent (controlling, or controlled with --controlled) with
      the credentials UFRAG/PWD runs ICE against a lite agent at 127.0.0.1:PORT;
      prints "connected HOST PORT" (its own address) and exits 0 on success

Loopback only: aioice's host address discovery is limited to 127.0.0.1.
"""

import argparse
import asyncio
import sys

from aioice import Candidate, Connection, ice, stun


def cmd_request(args):
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = args.username
    request.attributes["PRIORITY"] = ice.candidate_priority(1, "prflx")
    if args.controlled:
        request.attributes["ICE-CONTROLLED"] = 0x0102030405060708
    else:
        request.attributes["ICE-CONTROLLING"] = 0x0807060504030201
    if args.use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(args.pwd.encode("utf8"))
    print(bytes(request).hex(), request.transaction_id.hex())
    return 0


def cmd_verify(args):
    data = bytes.fromhex(args.response)
    try:
        message = stun.parse_message(data, integrity_key=args.pwd.encode("utf8"))
    except ValueError as e:
        print("aioice refused the response:", e)
        return 1
    if "MESSAGE-INTEGRITY" not in message.attributes or "FINGERPRINT" not in message.attributes:
        print("no MESSAGE-INTEGRITY or FINGERPRINT")
        return 1
    if message.message_method != stun.Method.BINDING or message.message_class != stun.Class.RESPONSE:
        print("not a Binding success response:", message)
        return 1
    if message.transaction_id.hex() != args.txid:
        print("transaction id", message.transaction_id.hex(), "is not", args.txid)
        return 1
    mapped = message.attributes.get("XOR-MAPPED-ADDRESS")
    if mapped != (args.host, args.port):
        print("XOR-MAPPED-ADDRESS", mapped, "is not", (args.host, args.port))
        return 1
    print("ok")
    return 0


def cmd_error(args):
    message = stun.parse_message(bytes.fromhex(args.response))
    if message.message_class != stun.Class.ERROR:
        print("not an error response")
        return 1
    code, reason = message.attributes["ERROR-CODE"]
    print(code, reason)
    return 0


async def run_connect(args):
    ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    conn = Connection(ice_controlling=not args.controlled, use_ipv6=False)
    conn.local_username = args.ufrag
    conn.local_password = args.pwd
    conn.remote_username = args.lite_ufrag
    conn.remote_password = args.lite_pwd
    conn.remote_is_lite = not args.controlled
    await conn.gather_candidates()
    await conn.add_remote_candidate(Candidate(
        foundation="1", component=1, transport="udp", priority=2130706431,
        host="127.0.0.1", port=args.port, type="host"))
    await conn.add_remote_candidate(None)
    try:
        await asyncio.wait_for(conn.connect(), timeout=15)
    except (ConnectionError, asyncio.TimeoutError) as e:
        print("failed:", repr(e))
        return 1
    finally:
        local = conn.local_candidates[0]
        await conn.close()
    print("connected", local.host, local.port)
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("request")
    p.add_argument("username")
    p.add_argument("pwd")
    p.add_argument("--use-candidate", action="store_true")
    p.add_argument("--controlled", action="store_true")
    p = sub.add_parser("verify")
    p.add_argument("pwd")
    p.add_argument("txid")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("response")
    p = sub.add_parser("error")
    p.add_argument("response")
    p = sub.add_parser("connect")
    p.add_argument("port", type=int)
    p.add_argument("lite_ufrag")
    p.add_argument("lite_pwd")
    p.add_argument("ufrag")
    p.add_argument("pwd")
    p.add_argument("--controlled", action="store_true")
    args = parser.parse_args()
    if args.cmd == "request":
        return cmd_request(args)
    if args.cmd == "verify":
        return cmd_verify(args)
    if args.cmd == "error":
        return cmd_error(args)
    return asyncio.run(run_connect(args))


if __name__ == "__main__":
    sys.exit(main())
