#!/usr/bin/python3
"""aiortc (Debian python3-aiortc) as an independent WebRTC peer of Sluice.

  webrtc_peer.py --ip ADDR [--tone HZ] [--max-seconds N]

Runs inside a phone's network namespace (the test starts it there). ICE uses
host candidates on ADDR only: no STUN or TURN server, no mDNS, no other
interface. The peer sends a sine tone of HZ in PCMU and records what it
receives. It talks to the test in JSON lines, one reply line per request
line on stdin:

  {"cmd": "hello"}                  -> {"ok": true, "fingerprints": ["sha-256 AB:.."]}
  {"cmd": "offer"}                  -> {"ok": true, "sdp": "<its offer, candidates included>"}
  {"cmd": "answer", "sdp": OFFER, "setup": "active"|"passive"}
                                    -> {"ok": true, "sdp": "<its answer>"}
  {"cmd": "remote", "sdp": ANSWER}  -> {"ok": true}   (the answer to its offer)
  {"cmd": "wait", "state": "connected", "timeout": S}
                                    -> {"ok": true|false, "state": ..., "dtls": ...}
  {"cmd": "stats", "payloads": N}   -> {"ok": true, "rtp_in": n, "rtcp_in": n,
        "media_in": n (RTP/RTCP datagrams, before SRTP: those that did not
        decrypt are in it and in neither count before it),
        "rtcp_out": n, "rtp_out": n, "tone_hz": f|null, "ssrcs": [..],
        "payloads": {"<seq>": "<hex>", ...} (the first N received)}
  {"cmd": "reset"}                  -> {"ok": true}   (zeroes the counts, forgets the audio)
  {"cmd": "pli", "media_ssrc": N}   -> {"ok": true}   (sends an RTCP PLI about N)
  {"cmd": "ice_restart", "ufrag": u, "pwd": p, "remote_ufrag": U, "remote_pwd": P}
                                    -> {"ok": true, "selected": bool}
        (u/p: its new credentials, as its re-offer would carry them; U/P:
        the other side's new ones; selected: the nominating check under
        them was answered)
  {"cmd": "check", "ufrag": u, "remote_ufrag": U, "remote_pwd": P}
                                    -> {"ok": true, "answered": bool, "error": code|null}
        (one Binding request on the selected pair under those credentials)
  {"cmd": "quit"}                   -> exits

aiortc 1.4 has no restartIce(): "ice_restart" does on the wire what a
restart does on an unchanged host pair (RFC 8445 §9): the agent takes new
local credentials (those of its re-offer) and the peer's new ones (from the
re-answer), then nominates the pair again with a check under them; its
consent checks (RFC 7675) go on under the new credentials.

The peer exits on end of input, on "quit", or after --max-seconds.
"""

import argparse
import asyncio
import fractions
import json
import math
import sys
import time

import aioice
import aioice.ice
import aioice.stun
import numpy
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from av import AudioFrame

RATE = 8000
SAMPLES = 160  # 20 ms


class ToneTrack(MediaStreamTrack):
    """A sine of `hz` at 8 kHz, one 20 ms frame per 20 ms of wall clock."""

    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
        self.start = None
        self.sent = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.time()
        else:
            await asyncio.sleep(max(0, self.start + self.sent / RATE - time.time()))
        t = (numpy.arange(SAMPLES) + self.sent) / RATE
        samples = (numpy.sin(2 * math.pi * self.hz * t) * 8000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.pts = self.sent
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += SAMPLES
        return frame


class Recorder:
    """What arrives: datagrams on the ICE transport, RTP after SRTP, audio."""

    def __init__(self):
        self.keep_payloads = 0
        self.reset()

    def reset(self):
        self.media_in = 0
        self.rtp_in = 0
        self.rtcp_in = 0
        self.rtcp_out = 0
        self.ssrcs = set()
        self.payloads = {}
        self.audio = []
        self.rate = RATE

    def tone_hz(self):
        """The strongest frequency of the last second of decoded audio."""
        if not self.audio:
            return None
        samples = numpy.concatenate(self.audio)[-self.rate:].astype(numpy.float64)
        if len(samples) < self.rate // 4 or not numpy.any(samples):
            return None
        spectrum = numpy.abs(numpy.fft.rfft(samples * numpy.hanning(len(samples))))
        return float(numpy.argmax(spectrum[1:]) + 1) * self.rate / len(samples)


REC = Recorder()


def instrument():
    """Counts datagrams and packets inside aiortc (its own paths, unchanged)."""
    ice_recv = aioice.Connection.recv  # what aiortc's RTCIceTransport reads

    async def counted_recv(self):
        data = await ice_recv(self)
        if data and 128 <= data[0] <= 191:  # RFC 7983: RTP or RTCP, before SRTP
            REC.media_in += 1
        return data

    aioice.Connection.recv = counted_recv

    handle_rtp = RTCRtpReceiver._handle_rtp_packet

    async def counted_rtp(self, packet, arrival_time_ms):
        REC.rtp_in += 1
        REC.ssrcs.add(packet.ssrc)
        if len(REC.payloads) < REC.keep_payloads:
            REC.payloads[str(packet.sequence_number)] = packet.payload.hex()
        return await handle_rtp(self, packet, arrival_time_ms)

    RTCRtpReceiver._handle_rtp_packet = counted_rtp

    handle_rtcp = RTCRtpReceiver._handle_rtcp_packet

    async def counted_rtcp(self, packet):
        REC.rtcp_in += 1
        return await handle_rtcp(self, packet)

    RTCRtpReceiver._handle_rtcp_packet = counted_rtcp

    for cls in (RTCRtpSender, RTCRtpReceiver):  # SR, RR and feedback it sends
        def counting(send_rtcp):
            async def counted_send_rtcp(self, *args):
                REC.rtcp_out += 1
                return await send_rtcp(self, *args)
            return counted_send_rtcp

        cls._send_rtcp = counting(cls._send_rtcp)


class Peer:
    def __init__(self, args):
        self.args = args
        # Host candidates on the namespace's address only; no STUN servers.
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ip]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = ToneTrack(args.tone)
        self.pc.addTransceiver(self.track, direction="sendrecv")
        self.pc.on("track", self.on_track)

    def on_track(self, track):
        async def drain():
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                # Packed s16: one row of interleaved channels; keep the first.
                channels = len(frame.layout.channels)
                REC.audio.append(frame.to_ndarray().reshape(-1)[::channels])
                REC.audio = REC.audio[-100:]
                REC.rate = frame.sample_rate

        asyncio.ensure_future(drain())

    def fingerprints(self):
        # aiortc makes its certificate with the connection (before any
        # offer); its fingerprints are in every SDP it writes.
        certificate = self.pc._RTCPeerConnection__certificates[0]
        return [f"{f.algorithm} {f.value}" for f in certificate.getFingerprints()]

    def connection(self):
        """The aioice Connection under the (single, bundled) transport."""
        transceiver = self.pc.getTransceivers()[0]
        return transceiver.receiver.transport.transport._connection

    async def handle(self, req):
        cmd = req.get("cmd")
        if cmd == "hello":
            return {"fingerprints": self.fingerprints()}
        if cmd == "offer":
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return {"sdp": self.pc.localDescription.sdp}
        if cmd == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "offer"))
            answer = await self.pc.createAnswer()
            # The one munge on aiortc's side: it always answers setup:active;
            # the test may ask it to answer passive (RFC 5763 §5 allows both).
            sdp = answer.sdp.replace("a=setup:active", "a=setup:" + req.get("setup", "active"))
            await self.pc.setLocalDescription(RTCSessionDescription(sdp, "answer"))
            return {"sdp": self.pc.localDescription.sdp}
        if cmd == "remote":
            await self.pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "answer"))
            return {}
        if cmd == "wait":
            return await self.wait(req.get("state", "connected"), float(req.get("timeout", 10)))
        if cmd == "stats":
            REC.keep_payloads = int(req.get("payloads", 0))
            return {"rtp_in": REC.rtp_in, "rtcp_in": REC.rtcp_in, "rtcp_out": REC.rtcp_out, "media_in": REC.media_in,
                    "rtp_out": self.track.sent // SAMPLES, "tone_hz": REC.tone_hz(),
                    "ssrcs": sorted(REC.ssrcs), "payloads": REC.payloads,
                    "state": self.pc.connectionState}
        if cmd == "reset":
            REC.reset()
            REC.keep_payloads = int(req.get("payloads", 0))
            return {}
        if cmd == "pli":  # AVPF feedback (RFC 4585 §6.3.1), as aiortc sends it for video
            receiver = self.pc.getTransceivers()[0].receiver
            await receiver._send_rtcp_pli(int(req["media_ssrc"]))
            return {}
        if cmd == "check":
            return await self.check(req["ufrag"], req["remote_ufrag"], req["remote_pwd"])
        if cmd == "ice_restart":
            return await self.ice_restart(req["ufrag"], req["pwd"], req["remote_ufrag"],
                                          req["remote_pwd"])
        raise ValueError(f"unknown cmd {cmd!r}")

    async def wait(self, state, timeout):
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != state and time.monotonic() < deadline:
            if self.pc.connectionState in ("failed", "closed") and state != "failed":
                break
            await asyncio.sleep(0.05)
        dtls = self.pc.getTransceivers()[0].receiver.transport.state
        return {"ok": self.pc.connectionState == state, "state": self.pc.connectionState,
                "dtls": dtls}

    async def check(self, ufrag, remote_ufrag, remote_pwd):
        """One Binding request on the selected pair under the given credentials."""
        conn = self.connection()
        pair = next(iter(conn._nominated.values()))
        request = aioice.stun.Message(message_method=aioice.stun.Method.BINDING,
                                      message_class=aioice.stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{remote_ufrag}:{ufrag}"
        request.attributes["PRIORITY"] = aioice.ice.candidate_priority(1, "prflx")
        request.attributes["ICE-CONTROLLING"] = conn._tie_breaker
        try:
            await pair.protocol.request(request, pair.remote_addr,
                                        integrity_key=remote_pwd.encode("utf8"), retransmissions=2)
            return {"answered": True, "error": None}
        except aioice.stun.TransactionError as e:
            code = e.response.attributes["ERROR-CODE"][0] if e.response else None
            return {"answered": False, "error": code}

    async def ice_restart(self, ufrag, pwd, remote_ufrag, remote_pwd):
        conn = self.connection()
        conn.local_username = ufrag
        conn.local_password = pwd
        conn.remote_username = remote_ufrag
        conn.remote_password = remote_pwd
        selected = False
        for pair in list(conn._nominated.values()):
            request = conn.build_request(pair, nominate=True)
            try:
                await pair.protocol.request(request, pair.remote_addr,
                                            integrity_key=remote_pwd.encode("utf8"))
                selected = True
            except aioice.stun.TransactionError as e:
                print(f"restart check failed: {e}", file=sys.stderr)
        return {"selected": selected}


async def serve(args):
    instrument()
    peer = Peer(args)
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        req = json.loads(line)
        if req.get("cmd") == "quit":
            break
        try:
            reply = {"ok": True}
            reply.update(await peer.handle(req))
        except Exception as e:  # a reply the test can show, not a dead peer
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    await peer.pc.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ip", required=True, help="the namespace's own address")
    parser.add_argument("--tone", type=float, default=1000.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(serve(args), args.max_seconds))
    except asyncio.TimeoutError:
        print("webrtc_peer: --max-seconds reached", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
