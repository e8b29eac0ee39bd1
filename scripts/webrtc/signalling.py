#!/usr/bin/python3
"""The WebRTC demo's signalling: a page, an offer, Sluice's answer.

`scripts/demo --webrtc` runs this in the browser's network namespace (Python's
standard library only). It plays the SBC between a browser and a SIP phone:
  GET  /         the call page (scripts/webrtc/call.html)
  POST /offer    the page's SDP offer (JSON {"sdp", "restart"}); creates the
                 call on sluiced's control socket (a WebRTC leg toward the
                 browser: its DTLS setup and fingerprints, its ICE ufrag and
                 pwd; an SDES leg toward the phone), or on an ICE restart
                 updates the browser leg with the new credentials; answers
                 with Sluice's SDP (ice-lite, host candidate, fingerprint,
                 setup, rtcp-mux, PCMU)
  GET  /poll     the next command the demo has for the page ({} when none)
  POST /report   the page's measurements, passed on to the demo
  POST /hangup   deletes the call
The demo talks to it on stdin (the phone's SDES offer, commands for the page)
and reads JSON events on stdout. The phone's keys only ever cross these pipes.
With --via kamailio it plays a SIP caller for the page and a SIP callee for
the phone through Kamailio (sip.py) instead of session.create/update/delete:
INVITE, re-INVITE at an ICE restart, BYE at the hang-up; it reads the call's
counters with session.get before the BYE.
"""

import argparse
import http.server
import json
import os
import queue
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = "AES_CM_128_HMAC_SHA1_80"


EMIT_LOCK = threading.Lock()


def emit(**event):
    """One JSON line on stdout; request threads emit one at a time."""
    with EMIT_LOCK:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Sluice:
    """sluiced's control socket: one JSON request per line, one reply per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.lock = threading.Lock()
        self.next_id = 0

    def request(self, op, **fields):
        with self.lock:
            self.next_id += 1
            self.sock.sendall(json.dumps(dict(fields, op=op, id=self.next_id)).encode() + b"\n")
            line = self.reader.readline()
        if not line:
            raise RuntimeError("sluiced closed the control connection")
        return json.loads(line)


def parse_offer(sdp):
    """The attributes Sluice needs from a browser's offer: its first audio
    section's (media level over session level, RFC 8866 §5)."""
    out = {"fingerprints": [], "audio": False}
    session, media, section = {}, {}, None
    for line in sdp.replace("\r", "").split("\n"):
        if line.startswith("m="):
            section = "audio" if line.startswith("m=audio ") and not out["audio"] else "other"
            out["audio"] = out["audio"] or section == "audio"
            continue
        if section == "other" or not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if name == "fingerprint":
            out["fingerprints"].append(value)
        elif name in ("ice-ufrag", "ice-pwd", "setup", "mid", "group"):
            (media if section else session)[name] = value
        elif name == "ssrc" and section and "ssrc" not in out:
            out["ssrc"] = int(value.split()[0])  # the browser's sending SSRC (RFC 5576)
    for name in ("ice-ufrag", "ice-pwd", "setup", "mid", "group"):
        out[name] = media.get(name, session.get(name))
    return out


def answer_sdp(leg, offer, version, phone_ssrc):
    """Sluice's answer. No a=group: Chromium then keeps the one audio section
    on its own transport (bundlePolicy 'balanced'), so no BUNDLE demux is
    needed. rtcp-mux is required by browsers (RFC 8829 §4.1.1)."""
    ip, port = leg["local"].rsplit(":", 1)
    lines = ["v=0", "o=- 7077 %d IN IP4 %s" % (version, ip), "s=sluice", "t=0 0",
             "a=ice-lite",  # RFC 8839 §5.3: session level
             "m=audio %s UDP/TLS/RTP/SAVPF 0" % port, "c=IN IP4 " + ip]
    if offer.get("mid") is not None:
        lines.append("a=mid:" + offer["mid"])
    lines += ["a=sendrecv", "a=rtcp-mux", "a=rtpmap:0 PCMU/8000",
              "a=ice-ufrag:" + leg["ice"]["ufrag"], "a=ice-pwd:" + leg["ice"]["pwd"],
              "a=fingerprint:" + leg["dtls"]["fingerprint"], "a=setup:" + leg["dtls"]["setup"],
              "a=msid:sluice phone", "a=ssrc:%d cname:sluice-phone" % phone_ssrc]
    lines += ["a=" + c if c.startswith("candidate:") else "a=candidate:" + c
              for c in leg["ice"].get("candidates", [])]
    lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


class Call:
    """The one call of the demo: its session on sluiced and its SDP state."""

    def __init__(self, args):
        self.args = args
        self.sluice = Sluice(args.control)
        self.phone_crypto = queue.Queue(maxsize=1)
        self.commands = queue.Queue()
        self.created = False
        self.version = 1
        self.peer_ufrag = None
        self.lock = threading.Lock()

    def leg(self, reply, name):
        if not reply.get("ok"):
            raise RuntimeError("%s" % reply.get("error"))
        return next(l for l in reply["legs"] if l["name"] == name)

    def offer(self, sdp, restart):
        offer = parse_offer(sdp)
        if not offer["audio"] or not offer["ice-ufrag"] or not offer["fingerprints"]:
            raise ValueError("the offer has no audio section with ICE credentials and a fingerprint")
        with self.lock:
            if not self.created:
                return self.create(offer)
            if not restart or offer["ice-ufrag"] == self.peer_ufrag:
                raise ValueError("a re-offer without an ICE restart: nothing to change")
            return self.restart(offer)

    def create(self, offer):
        crypto = self.phone_crypto.get(timeout=30)
        reply = self.sluice.request("session.create", session=self.args.session, legs=[
            {"name": "browser", "interface": self.args.browser_interface, "rtcp": "mux",
             "dtls": {"setup": offer["setup"], "fingerprints": offer["fingerprints"]},
             "ice": {"ufrag": offer["ice-ufrag"], "pwd": offer["ice-pwd"]}},
            {"name": "phone", "interface": self.args.phone_interface, "remote": self.args.phone,
             "rtcp": "mux", "rx": {"crypto": crypto}, "tx": {"suite": SUITE}}])
        browser, phone = self.leg(reply, "browser"), self.leg(reply, "phone")
        self.created, self.peer_ufrag = True, offer["ice-ufrag"]
        emit(event="created", browser_local=browser["local"], phone_local=phone["local"],
             phone_crypto=phone["tx"]["crypto"], sluice_ufrag=browser["ice"]["ufrag"],
             setup=browser["dtls"]["setup"], offer_setup=offer["setup"],
             offer_group=offer["group"], fingerprints=len(offer["fingerprints"]))
        return answer_sdp(browser, offer, self.version, self.args.phone_ssrc)

    def restart(self, offer):
        reply = self.sluice.request("session.update", session=self.args.session, leg="browser",
                                    ice={"restart": True, "ufrag": offer["ice-ufrag"],
                                         "pwd": offer["ice-pwd"]})
        browser = self.leg(reply, "browser")
        emit(event="restarted", peer_ufrag_before=self.peer_ufrag, peer_ufrag=offer["ice-ufrag"],
             sluice_ufrag=browser["ice"]["ufrag"])
        self.peer_ufrag = offer["ice-ufrag"]
        self.version += 1
        return answer_sdp(browser, offer, self.version, self.args.phone_ssrc)

    def hangup(self):
        with self.lock:
            if not self.created:
                return {"ok": True}
            reply = self.sluice.request("session.delete", session=self.args.session)
            self.created = False
        emit(event="deleted", ok=reply.get("ok", False), reply=reply)
        return {"ok": reply.get("ok", False)}


def sdp_values(sdp, prefix):
    """The values of the lines that start with `prefix` ("a=crypto:"), in order."""
    return [l[len(prefix):] for l in sdp.replace("\r", "").split("\n") if l.startswith(prefix)]


def media_address(sdp):
    """"IP:PORT" of an SDP's connection line and first m-line."""
    return "%s:%s" % (sdp_values(sdp, "c=IN IP4 ")[0], sdp_values(sdp, "m=audio ")[0].split()[0])


def phone_sdp(phone, crypto, version):
    """The phone's answer to Sluice's SDES offer: its address, PCMU, its own
    key under the tag of the offered AES_CM_128_HMAC_SHA1_80 line (RFC 4568
    §5.1.2); plain RTP/AVP when crypto is None."""
    ip, port = phone.rsplit(":", 1)
    lines = ["v=0", "o=- 6006 %d IN IP4 %s" % (version, ip), "s=sluice-phone", "c=IN IP4 " + ip, "t=0 0",
             "m=audio %s RTP/%sAVP 0" % (port, "S" if crypto else ""), "a=rtpmap:0 PCMU/8000"]
    if crypto:
        lines.append("a=crypto:%s %s" % crypto)
    return "\r\n".join(lines + ["a=sendrecv"]) + "\r\n"


class KamailioCall(Call):
    """The call through Kamailio: the page's offer goes in an INVITE from the
    browser's user agent, Kamailio's rtpengine_manage() asks Sluice over ng,
    the phone's user agent answers what reaches it; an ICE restart is a
    re-INVITE, the hang-up a BYE (the ng delete)."""

    def __init__(self, args):
        super().__init__(args)
        import sip  # beside this script
        self.sip = sip
        host, port = args.proxy.rsplit(":", 1)
        caller, callee, self.ng = sip.sockets_in_netns(args.sip_netns, (0, 0, 0))
        self.dialog = sip.Dialog(caller, callee, (host, int(port)), args.session,
                                 "X-Sluice-Media: srtp\r\n" if args.phone_media == "sdes" else "")
        self.sluice_crypto, self.phone_key, self.at_phone = None, None, None

    def answer(self, at_phone):
        """The phone's 200: its key under the tag of Sluice's suite."""
        self.at_phone = at_phone
        if self.args.phone_media == "plain":
            return phone_sdp(self.args.phone, None, self.dialog.cseq)
        offered = [c.split(" ", 1) for c in sdp_values(at_phone, "a=crypto:")]
        tag, key = next(((t, k) for t, k in offered if k.startswith(SUITE + " ")), (None, None))
        if tag is None:
            raise RuntimeError("Kamailio's INVITE offers the phone no %s: %s" % (SUITE, at_phone))
        self.sluice_crypto = key
        return phone_sdp(self.args.phone, (tag, self.phone_key), self.dialog.cseq)

    def create(self, offer):
        self.phone_key = self.phone_crypto.get(timeout=30) if self.args.phone_media == "sdes" else None
        at_phone, answer = self.dialog.invite(self.sdp, self.answer)
        self.created, self.peer_ufrag = True, offer["ice-ufrag"]
        emit(event="created", browser_local=media_address(answer), phone_local=media_address(at_phone),
             phone_crypto=self.sluice_crypto, sluice_ufrag=sdp_values(answer, "a=ice-ufrag:")[0],
             setup=sdp_values(answer, "a=setup:")[0], offer_setup=offer["setup"], offer_group=offer["group"],
             fingerprints=len(offer["fingerprints"]), ssrc=offer.get("ssrc", 0), call_id=self.args.session,
             phone_proto=sdp_values(at_phone, "m=audio ")[0].split()[1], phone_sdp_lines=sip_summary(at_phone),
             browser_sdp_lines=sip_summary(answer))
        return answer

    def restart(self, offer):
        before = self.sluice_crypto
        at_phone, answer = self.dialog.invite(self.sdp, self.answer)
        emit(event="restarted", peer_ufrag_before=self.peer_ufrag, peer_ufrag=offer["ice-ufrag"],
             sluice_ufrag=sdp_values(answer, "a=ice-ufrag:")[0], reinvite=True,
             phone_crypto=self.sluice_crypto if self.sluice_crypto != before else None)
        self.peer_ufrag = offer["ice-ufrag"]
        return answer

    def offer(self, sdp, restart):
        self.sdp = sdp
        return super().offer(sdp, restart)

    def hangup(self):
        """The call's final counters from sluiced (session.get, read only),
        then the BYE, then Sluice's ng statistics."""
        with self.lock:
            if not self.created:
                return {"ok": True}
            reply = self.sluice.request("session.get", session=self.args.session)
            self.dialog.bye()
            self.created = False
        emit(event="deleted", ok=reply.get("ok", False), reply=reply, ng=ng_statistics(self.ng, self.args.ng))
        return {"ok": reply.get("ok", False)}


def sip_summary(sdp):
    """What an SDP says about its transport, for the demo's checks."""
    return sorted({l.split(":", 1)[0] for l in sdp.replace("\r", "").split("\n")
                   if l.startswith(("a=crypto", "a=ice-", "a=fingerprint", "a=setup", "a=candidate",
                                    "a=rtcp-mux", "m="))})


def ng_statistics(sock, where):
    """Sluice's ng listener's own counters (the `statistics` command, bencoded)."""
    host, port = where.rsplit(":", 1)
    sock.settimeout(3)
    sock.sendto(b"demo1 d7:command10:statisticse", (host, int(port)))
    try:
        reply = sock.recv(65536).decode(errors="replace")
    except socket.timeout:
        return {}
    out, at = {}, reply.find("2:ngd") + 5
    while 4 < at < len(reply) and reply[at] != "e":  # a dict of integers: N:keyiVALUEe
        colon = reply.index(":", at)
        key_end = colon + 1 + int(reply[at:colon])
        value_end = reply.index("e", key_end)
        out[reply[colon + 1:key_end]] = int(reply[key_end + 1:value_end])
        at = value_end + 1
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    call = None  # set before serving

    def log_message(self, fmt, *args):  # the demo prints what matters
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()

    def do_GET(self):
        if self.path in ("/", "/index.html"):
            with open(os.path.join(HERE, "call.html"), "rb") as f:
                return self.reply(200, f.read(), "text/html; charset=utf-8")
        if self.path == "/poll":
            try:
                return self.reply(200, json.dumps(self.call.commands.get_nowait()))
            except queue.Empty:
                return self.reply(200, "{}")
        self.reply(404, '{"error":"not found"}')

    def do_POST(self):
        try:
            if self.path == "/offer":
                req = json.loads(self.body())
                return self.reply(200, self.call.offer(req["sdp"], req.get("restart", False)),
                                  "application/sdp")
            if self.path == "/report":
                emit(event="report", report=json.loads(self.body()), at=time.monotonic())
                return self.reply(200, "{}")
            if self.path == "/hangup":
                return self.reply(200, json.dumps(self.call.hangup()))
            self.reply(404, '{"error":"not found"}')
        except Exception as e:  # a bad request from the page: an error reply, never a crash
            emit(event="error", path=self.path, message=str(e))
            self.reply(400, json.dumps({"error": str(e)}))


def read_stdin(call):
    for line in sys.stdin:
        msg = json.loads(line)
        if "phone_crypto" in msg:
            call.phone_crypto.put(msg["phone_crypto"])
        elif "command" in msg:
            call.commands.put({"cmd": msg["command"]})
    os._exit(0)  # the demo went away


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT for the page (port 0: any)")
    p.add_argument("--control", required=True, help="sluiced's control socket")
    p.add_argument("--session", default="webrtc-demo")
    p.add_argument("--phone", required=True, help="the phone's IP:PORT")
    p.add_argument("--phone-ssrc", type=int, required=True)
    p.add_argument("--browser-interface", default="a")
    p.add_argument("--phone-interface", default="b")
    p.add_argument("--via", choices=("control", "kamailio"), default="control",
                   help="create the call on sluiced's control socket, or send it through Kamailio")
    p.add_argument("--proxy", default="127.0.0.1:5060", help="Kamailio's SIP address (--via kamailio)")
    p.add_argument("--ng", default="127.0.0.1:2223", help="sluiced's ng listener (--via kamailio)")
    p.add_argument("--sip-netns", help="the namespace of Kamailio and the SIP user agents")
    p.add_argument("--phone-media", choices=("sdes", "plain"), default="sdes")
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    Handler.call = KamailioCall(args) if args.via == "kamailio" else Call(args)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=read_stdin, args=(Handler.call,), daemon=True).start()
    emit(event="listening", port=server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
