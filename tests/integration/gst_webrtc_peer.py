#!/usr/bin/python3
"""GStreamer webrtcbin (libnice ICE, GStreamer's DTLS-SRTP) as a WebRTC peer of Sluice.

  gst_webrtc_peer.py --ip ADDR [--tone HZ] [--max-seconds N]

The same JSON-lines interface as webrtc_peer.py (aiortc), for the requests
hello, offer, answer, remote, wait, stats, reset and quit ("media_in" is
null: webrtcbin decrypts inside its bin; "ice_restart" is not offered).
ICE uses host candidates on ADDR only (libnice is given that one local
address; no STUN or TURN server). The peer sends a sine tone of HZ as PCMU
(audiotestsrc, mulawenc, rtppcmupay) and decodes what it receives
(rtppcmudepay, mulawdec) to find its frequency; the RTP payloads it
receives are read on webrtcbin's source pad, after SRTP.

SDP munging, on this side: the SDP returned for an offer or answer carries
every candidate webrtcbin signalled (on-ice-candidate) as an a=candidate
line, as aiortc's does, once gathering is complete. An answer's a=setup is
set to the one asked for.

The peer exits on end of input, on "quit", or after --max-seconds.
"""

import argparse
import json
import os
import sys
import threading
import time

import gi
import numpy

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

RATE = 8000


class Peer:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.candidates = []
        self.refs = []
        self.reset({})
        self.pipe = Gst.parse_launch(
            f"audiotestsrc is-live=true wave=sine freq={args.tone} volume=0.25 samplesperbuffer=160 "
            f"! audioconvert ! audioresample ! audio/x-raw,rate={RATE},channels=1 ! mulawenc "
            "! rtppcmupay pt=0 min-ptime=20000000 max-ptime=20000000 "
            "! application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000 "
            "! webrtcbin name=w bundle-policy=max-bundle")
        self.w = self.pipe.get_by_name("w")
        self.w.connect("on-ice-candidate", self.on_candidate)
        self.w.connect("pad-added", self.on_pad)
        # libnice gathers on the namespace's address only (Nice agent API).
        # GStreamer 1.22's "ice-agent" getter hands out webrtcbin's own
        # reference: held here for the life of the process (which ends with
        # os._exit), PyGObject never drops it.
        self.ice = self.w.get_property("ice-agent")
        self.ice.set_property("ice-tcp", False)  # UDP host candidates only
        self.agent = self.ice.get_property("agent")
        address = Nice.Address()
        address.set_from_string(args.ip)
        self.agent.add_local_address(address)
        self.pipe.set_state(Gst.State.PLAYING)

    def reset(self, req):
        with self.lock:
            self.rtp_in = 0
            self.ssrcs = set()
            self.payloads = {}
            self.keep_payloads = int(req.get("payloads", 0))
            self.audio = bytearray()
        return {}

    def on_candidate(self, _w, _mline, candidate):
        with self.lock:
            self.candidates.append(candidate)

    def on_pad(self, _w, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        pad.add_probe(Gst.PadProbeType.BUFFER, self.on_rtp)
        sink = Gst.parse_bin_from_description(
            "rtppcmudepay ! mulawdec ! audioconvert ! audioresample "
            f"! audio/x-raw,format=S16LE,rate={RATE},channels=1 "
            "! appsink name=out emit-signals=true sync=false", True)
        sink.get_by_name("out").connect("new-sample", self.on_sample)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_rtp(self, _pad, info):
        ok, m = info.get_buffer().map(Gst.MapFlags.READ)
        if ok:
            data = bytes(m.data)
            info.get_buffer().unmap(m)
            # RFC 3550 §5.1: fixed header, CSRCs, then an extension if X.
            off = 12 + 4 * (data[0] & 0x0F)
            if data[0] & 0x10:
                off += 4 + 4 * int.from_bytes(data[off + 2:off + 4], "big")
            with self.lock:
                self.rtp_in += 1
                self.ssrcs.add(int.from_bytes(data[8:12], "big"))
                if len(self.payloads) < self.keep_payloads:
                    self.payloads[str(int.from_bytes(data[2:4], "big"))] = data[off:].hex()
        return Gst.PadProbeReturn.OK

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        buf = sample.get_buffer()
        with self.lock:
            self.audio += buf.extract_dup(0, buf.get_size())
            del self.audio[:-2 * RATE]
        return Gst.FlowReturn.OK

    def tone_hz(self):
        """The strongest frequency of the last second received."""
        with self.lock:
            pcm = bytes(self.audio[-2 * RATE:])  # one second of S16LE
        samples = numpy.frombuffer(pcm, dtype="<i2").astype(numpy.float64)
        if len(samples) < RATE // 4 or not numpy.any(samples):
            return None
        spectrum = numpy.abs(numpy.fft.rfft(samples * numpy.hanning(len(samples))))
        return float(numpy.argmax(spectrum[1:]) + 1) * RATE / len(samples)

    # --- signalling, run on the GLib main loop ---

    def promise(self, signal, *args, field=None):
        """Emits `signal` and waits for its promise; the reply's `field`."""
        done = threading.Event()
        # PyGObject and GStreamer 1.22 disagree on who owns promise replies
        # and session descriptions (use after free, double free): every
        # wrapper stays referenced in self.refs until the process ends.
        promise = Gst.Promise.new_with_change_func(lambda _p: done.set())
        self.w.emit(signal, *args, promise)
        if not done.wait(10):
            raise TimeoutError(signal)
        reply = promise.get_reply()
        self.refs.append((promise, reply))
        if reply is not None and reply.has_field("error"):
            raise RuntimeError(f"{signal}: {reply.get_value('error')}")
        if field is None:
            return None
        if reply is None or not reply.has_field(field):
            raise RuntimeError(f"{signal}: no {field} in {reply}")
        value = reply.get_value(field)
        self.refs.append(value)
        return value

    def description(self, sdp, kind):
        _, msg = GstSdp.SDPMessage.new_from_text(sdp)
        desc = GstWebRTC.WebRTCSessionDescription.new(kind, msg)
        self.refs.append((msg, desc))
        return desc

    def local_sdp(self, timeout=10):
        """The local description once gathering is complete, with its candidates."""
        deadline = time.monotonic() + timeout
        while (self.w.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE
               and time.monotonic() < deadline):
            time.sleep(0.05)
        sdp = self.w.get_property("local-description").sdp.as_text()
        with self.lock:
            lines = "".join(f"a={c}\r\n" for c in self.candidates if f"a={c}\r\n" not in sdp)
        head, sep, tail = sdp.partition("m=audio")
        body, sep2, rest = tail.partition("\r\nm=")
        return head + sep + body.rstrip("\r\n") + "\r\n" + lines + ("m=" + rest if sep2 else "")

    def handle(self, req):
        cmd = req.get("cmd")
        if cmd == "hello":
            # An offer made and not set (the signalling state stays stable)
            # shows the certificate webrtcbin will use.
            desc = self.w.get_property("local-description")
            if desc is None:
                desc = self.promise("create-offer", None, field="offer")
            return {"fingerprints": [line[len("a=fingerprint:"):]
                                     for line in desc.sdp.as_text().splitlines()
                                     if line.startswith("a=fingerprint:")]}
        if cmd == "offer":
            offer = self.promise("create-offer", None, field="offer")
            self.promise("set-local-description", offer)
            return {"sdp": self.local_sdp()}
        if cmd == "answer":
            self.promise("set-remote-description", self.description(req["sdp"], GstWebRTC.WebRTCSDPType.OFFER))
            answer = self.promise("create-answer", None, field="answer")
            text = answer.sdp.as_text()
            for setup in ("active", "passive"):
                text = text.replace("a=setup:" + setup, "a=setup:" + req.get("setup", "active"))
            self.promise("set-local-description", self.description(text, GstWebRTC.WebRTCSDPType.ANSWER))
            return {"sdp": self.local_sdp()}
        if cmd == "remote":
            self.promise("set-remote-description", self.description(req["sdp"], GstWebRTC.WebRTCSDPType.ANSWER))
            return {}
        if cmd == "wait":
            return self.wait(req.get("state", "connected"), float(req.get("timeout", 10)))
        if cmd == "stats":
            self.keep_payloads = int(req.get("payloads", self.keep_payloads))
            with self.lock:
                out = {"rtp_in": self.rtp_in, "rtcp_in": None, "media_in": None,
                       "ssrcs": sorted(self.ssrcs), "payloads": dict(self.payloads)}
            out["tone_hz"] = self.tone_hz()
            out["state"] = self.state()
            return out
        if cmd == "reset":
            return self.reset(req)
        raise ValueError(f"unknown or unsupported cmd {cmd!r}")

    def state(self):
        return self.w.get_property("connection-state").value_nick

    def wait(self, state, timeout):
        deadline = time.monotonic() + timeout
        while self.state() != state and time.monotonic() < deadline:
            if self.state() in ("failed", "closed") and state != "failed":
                break
            time.sleep(0.05)
        return {"ok": self.state() == state, "state": self.state(),
                "ice": self.w.get_property("ice-connection-state").value_nick}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ip", required=True, help="the namespace's own address")
    parser.add_argument("--tone", type=float, default=1000.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()
    threading.Thread(target=loop.run, daemon=True).start()
    # Bounded: the whole process ends after --max-seconds, whatever it does.
    def expire():
        print("gst_webrtc_peer: --max-seconds reached", file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(args.max_seconds, expire)
    timer.daemon = True
    timer.start()
    peer = Peer(args)
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("cmd") == "quit":
            break
        try:
            reply = {"ok": True}
            reply.update(peer.handle(req))
        except Exception as e:  # a reply the test can show, not a dead peer
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    peer.pipe.set_state(Gst.State.NULL)
    os._exit(0)  # GLib's loop thread does not end by itself


if __name__ == "__main__":
    main()
