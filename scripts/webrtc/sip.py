"""A minimal SIP user agent pair for the WebRTC demo's Kamailio mode.

The caller (UAC, the browser's side) and the callee (UAS, the phone's side)
of one call through a SIP proxy over UDP (RFC 3261): INVITE, ACK, a
re-INVITE in the dialog, BYE. No authentication, no retransmission (the
proxy is on a namespace's loopback), one dialog. Python's standard library
only. Both sockets are opened in the proxy's network namespace (setns(2)),
so the script that uses them can serve its page in another.
"""

import ctypes
import os
import secrets
import socket
import time

CLONE_NEWNET = 0x40000000


def sockets_in_netns(netns, ports, host="127.0.0.1"):
    """UDP sockets bound to host:port in the named namespace
    (/run/netns/NAME); the calling thread returns to its own namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns to %s" % netns)
        try:
            out = []
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((host, port))
                out.append(s)
            return out
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def headers(msg, name):
    """Every value of header `name` (full form) in a message, in order."""
    head = msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    out = []
    for line in head:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            out.append(value.strip())
    return out


def body(msg):
    return msg.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in msg else ""


def with_body(head, sdp=""):
    """A message: its start line and headers, then the body's headers and the body."""
    ctype = "Content-Type: application/sdp\r\n" if sdp else ""
    return "%s%sContent-Length: %d\r\n\r\n%s" % (head, ctype, len(sdp.encode()), sdp)


class Agent:
    """One UDP socket; waits for a message that a predicate accepts."""

    def __init__(self, sock, proxy):
        self.sock, self.proxy = sock, proxy
        self.port = sock.getsockname()[1]

    def send(self, msg):
        self.sock.sendto(msg.encode(), self.proxy)

    def wait(self, accept, what, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("SIP: no %s within %d s" % (what, timeout))
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(65536).decode(errors="replace")
            except socket.timeout:
                continue
            if accept(msg):
                return msg
            if msg.startswith("SIP/2.0 ") and msg[8:9] in "3456":  # a final failure
                raise RuntimeError("SIP: %s instead of %s" % (msg.split("\r\n", 1)[0], what))


def response(request, status, contact, to_tag, sdp=""):
    """The UAS's response: Vias, Record-Routes, From, To (with its tag),
    Call-ID and CSeq copied from the request (RFC 3261 §8.2.6.2)."""
    lines = ["SIP/2.0 " + status]
    lines += ["Via: " + v for v in headers(request, "Via")]
    lines += ["Record-Route: " + r for r in headers(request, "Record-Route")]
    to = headers(request, "To")[0]
    if ";tag=" not in to:
        to += ";tag=" + to_tag
    lines += ["From: " + headers(request, "From")[0], "To: " + to,
              "Call-ID: " + headers(request, "Call-ID")[0], "CSeq: " + headers(request, "CSeq")[0],
              "Contact: " + contact]
    return with_body("\r\n".join(lines) + "\r\n", sdp)


class Dialog:
    """The call: the caller's requests and the callee's responses, driven in
    turn (one thread). `answer(sdp_at_callee)` gives the callee's SDP."""

    def __init__(self, caller_sock, callee_sock, proxy, call_id, extra_headers=""):
        self.caller, self.callee = Agent(caller_sock, proxy), Agent(callee_sock, proxy)
        self.call_id, self.extra = call_id, extra_headers
        self.from_tag, self.to_tag = secrets.token_hex(4), secrets.token_hex(4)
        self.cseq, self.route, self.remote_tag = 0, [], None
        self.target = "sip:phone@127.0.0.1:%d" % self.callee.port

    def request(self, method, sdp="", cseq=None):
        in_dialog = self.remote_tag is not None
        branch = "z9hG4bK-" + secrets.token_hex(8)  # RFC 3261 §8.1.1.7: the magic cookie
        lines = ["%s %s SIP/2.0" % (method, self.target),
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.caller.port, branch)]
        lines += ["Route: " + r for r in self.route]
        lines += ["Max-Forwards: 70", "From: <sip:browser@127.0.0.1>;tag=" + self.from_tag,
                  "To: <sip:phone@127.0.0.1>" + (";tag=" + self.remote_tag if in_dialog else ""),
                  "Call-ID: " + self.call_id, "CSeq: %d %s" % (cseq or self.cseq, method),
                  "Contact: <sip:browser@127.0.0.1:%d>" % self.caller.port]
        extra = self.extra if method == "INVITE" and not in_dialog else ""
        return with_body("\r\n".join(lines) + "\r\n" + extra, sdp)

    def _is(self, method, cseq):
        return lambda m: (m.startswith(method + " ") and
                          headers(m, "CSeq") == ["%d %s" % (cseq, method)])

    def _answered(self, cseq, method):
        return lambda m: m.startswith("SIP/2.0 2") and headers(m, "CSeq") == ["%d %s" % (cseq, method)]

    def invite(self, offer, answer):
        """INVITE (or re-INVITE) with the offer through the proxy; the callee
        answers 200 with answer(its SDP); ACK. Returns (the SDP the callee
        got, the SDP the caller got)."""
        self.cseq += 1
        self.caller.send(self.request("INVITE", offer))
        at_callee = self.callee.wait(self._is("INVITE", self.cseq), "INVITE at the callee")
        contact = "<sip:phone@127.0.0.1:%d>" % self.callee.port
        self.callee.send(response(at_callee, "200 OK", contact, self.to_tag, answer(body(at_callee))))
        ok = self.caller.wait(self._answered(self.cseq, "INVITE"), "200 for the INVITE")
        if self.remote_tag is None:
            self.remote_tag = headers(ok, "To")[0].split(";tag=", 1)[1].split(";")[0]
            self.route = list(reversed(headers(ok, "Record-Route")))  # RFC 3261 §12.1.2
        self.caller.send(self.request("ACK", cseq=self.cseq))
        self.callee.wait(self._is("ACK", self.cseq), "ACK at the callee")
        return body(at_callee), body(ok)

    def bye(self):
        self.cseq += 1
        self.caller.send(self.request("BYE"))
        at_callee = self.callee.wait(self._is("BYE", self.cseq), "BYE at the callee")
        self.callee.send(response(at_callee, "200 OK", "<sip:phone@127.0.0.1:%d>" % self.callee.port,
                                  self.to_tag))
        self.caller.wait(self._answered(self.cseq, "BYE"), "200 for the BYE")
