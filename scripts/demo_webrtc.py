"""`scripts/demo --webrtc`: a real browser calls a SIP phone through sluiced.

Headless Chromium in the first phone namespace opens a page served there by
the demo's own signalling script (scripts/webrtc/signalling.py: Python's
standard library, no SIP; see docs/webrtc-demo.md for why not Kamailio over
WebSocket). The page offers with its fake microphone (a 1000 Hz tone from a
WAV file); the script creates the call on sluiced's control socket, a WebRTC
leg toward the browser (DTLS-SRTP, ICE-lite) and an SDES leg toward
sluice-phone in the other namespace, and answers with Sluice's SDP. The phone
answers with a 600 Hz tone. The demo checks the audio both ways (the page
measures what it hears with a WebAudio AnalyserNode; the phone's recording is
measured here), restarts ICE mid-call (the page's createOffer({iceRestart}),
session.update on Sluice), hangs up (session.delete) and stops sluiced.
With --keep, a screenshot of the page during the call (DevTools
Page.captureScreenshot over --remote-debugging-pipe).

With --via kamailio the script creates nothing on the control socket: it
plays two SIP user agents (scripts/webrtc/sip.py) through Kamailio, started
here with configs/kamailio/kamailio.cfg in the relay namespace, whose
rtpengine_manage() drives sluiced's ng listener: the page's offer in an
INVITE, the phone's answer (SDES, or plain with --phone-media plain), the
ICE restart as a re-INVITE, the hang-up as a BYE.

scripts/demo imports this module and calls demo() with itself as `d`: the
network, sluiced, the phone and the checks are the classic demo's.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_HZ = 1000.0   # the browser's microphone
PHONE_HZ = 600.0      # the phone's answer
HZ_TOLERANCE = 25.0   # the page's FFT bins are 5.9 Hz wide; G.711 adds little
PHONE_SSRC = 0x5b00a1a1
PHONE_PORT = 16000
PACKETS_PER_S = 50    # 20 ms G.711 both ways
CHROMIUM = ("/usr/lib/chromium/chromium", "chromium")
KAMAILIO = "/usr/sbin/kamailio"
SIP_PORT = 5060       # Kamailio, on the relay namespace's loopback
NG = "127.0.0.1:2223"  # sluiced's ng listener there
# --via kamailio: sluiced's ng listener (configs/demo.toml has none), and
# the legs' names there: the caller's (the browser's) is a, the callee's b.
NG_CONFIG = '\n[ng]\nlisten = "%s"\ndelete_delay_ms = 0\n' % NG
LEG_NAMES = {"control": {"browser": "browser", "phone": "phone"}, "kamailio": {"browser": "a", "phone": "b"}}


def chromium():
    for c in CHROMIUM:
        path = c if os.path.isabs(c) else shutil.which(c)
        if path and os.access(path, os.X_OK):
            return path
    return None


def missing(via="control"):
    """Why the WebRTC demo cannot run here, or None."""
    if chromium() is None:
        return "chromium is not installed"
    if via == "kamailio" and not os.access(KAMAILIO, os.X_OK):
        return "kamailio is not installed"
    try:
        import numpy  # noqa: F401  (the phone's recording is measured with it)
    except ImportError:
        return "python3-numpy is not installed"
    return None


def stop_group(proc):
    """SIGTERM to a process group of ours, SIGKILL after 5 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- Chromium and its DevTools pipe -----------------------------------------------

class Browser:
    """Headless Chromium in a namespace, driven over --remote-debugging-pipe
    (fd 3: commands to it, fd 4: replies and events; NUL-terminated JSON), so
    no debugging port is open anywhere."""

    def __init__(self, netns, url, wav, rundir):
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # Out of the way of 3 and 4, where the child wants them.
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_r, from_w)]
        for fd in (to_r, from_w):
            os.close(fd)

        def child_fds():
            os.dup2(hi[0], 3)
            os.dup2(hi[1], 4)

        profile = os.path.join(rundir, "chromium-profile")
        flags = [
            "--headless", "--no-sandbox",  # runs as root, as the demo does
            "--remote-debugging-pipe", "--user-data-dir=" + profile, "--window-size=1000,720",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--use-file-for-fake-audio-capture=" + wav, "--autoplay-policy=no-user-gesture-required",
            # Nothing that calls home: the namespace has no route out anyway.
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--disable-breakpad", "--disable-domain-reliability",
            "--disable-client-side-phishing-detection", "--metrics-recording-only",
            "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
            "WebRtcHideLocalIpsWithMdns,InterestFeedContentSuggestions,AutofillServerCommunication",
            "--disable-dev-shm-usage", "--disable-gpu", "--password-store=basic", "--use-mock-keychain",
        ]
        env = dict(os.environ, HOME=rundir, XDG_CONFIG_HOME=rundir, XDG_CACHE_HOME=rundir)
        self.log_path = os.path.join(rundir, "chromium.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", netns, chromium()] + flags + [url],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         pass_fds=(3, 4), preexec_fn=child_fds,
                                         start_new_session=True)
        self.to_fd, self.from_fd = to_w, from_r
        for fd in hi:
            os.close(fd)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=None, timeout=15):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_fd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError("%s: %s" % (method, reply["error"].get("message")))
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_fd], [], [], left)[0]:
                raise RuntimeError("%s: no reply from Chromium within %d s" % (method, timeout))
            chunk = os.read(self.from_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self.buf += chunk

    def page(self, url_prefix):
        """A flat DevTools session on the call page."""
        if self.session is None:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page" and t["url"].startswith(url_prefix))
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": page["targetId"], "flatten": True})["sessionId"]
        return self.session

    def screenshot(self, url_prefix, path):
        png = self.call("Page.captureScreenshot", {"format": "png"}, session=self.page(url_prefix))
        with open(path, "wb") as f:
            f.write(base64.b64decode(png["data"]))

    def page_text(self, url_prefix):
        """The page as a person would read it (for a failure's explanation)."""
        try:
            r = self.call("Runtime.evaluate", {"expression": "document.body.innerText"},
                          session=self.page(url_prefix), timeout=5)
            return r["result"].get("value", "")
        except (RuntimeError, StopIteration, OSError) as e:
            return "(page not readable: %s)" % e

    def stop(self):
        for fd in (self.to_fd, self.from_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        stop_group(self.proc)


# --- the signalling script ---------------------------------------------------------

class Signalling:
    """scripts/webrtc/signalling.py in the browser's namespace: JSON commands
    on its stdin, JSON events on its stdout (read through d.pump). The pipes
    are unbuffered: a buffered reader would take two events in one read and
    leave the second unseen by select until a third came."""

    def __init__(self, d, netns, sock_path, via_args=()):
        self.d = d
        self.name = "signalling"
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "/usr/bin/python3", os.path.join(HERE, "webrtc", "signalling.py"),
             "--control", sock_path, "--phone", "%s:%d" % (d.PHONE_B, PHONE_PORT),
             "--phone-ssrc", str(PHONE_SSRC)] + list(via_args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        self.phone = None      # re-keyed when a re-INVITE brings Sluice a new key for it
        self.port = None
        self.events = {}       # the last event of each kind
        self.reports = []      # (time, the page's report)
        self.errors = []

    def send(self, **msg):
        data = (json.dumps(msg) + "\n").encode()
        try:
            while data:
                data = data[self.proc.stdin.write(data):]
        except OSError as e:
            raise self.d.DemoError("the signalling script is gone (%s)" % e)

    def on_line(self, line):
        ev = json.loads(line)
        kind = ev["event"]
        if kind == "listening":
            self.port = ev["port"]
        elif kind == "report":
            self.reports.append((time.monotonic(), ev["report"]))
            if ev["report"].get("error"):
                self.errors.append(ev["report"]["error"])
        elif kind == "error":
            self.errors.append("%s: %s" % (ev["path"], ev["message"]))
        elif kind == "restarted" and ev.get("phone_crypto") and self.phone:
            print("   -- re-INVITE: Sluice offered the phone a new SDES key; the phone re-keys (its key stays)")
            self.phone.send(["key 0 recv %s" % ev["phone_crypto"]])
        self.events[kind] = ev

    def last(self, key=None):
        """The page's newest report (with `key`, the newest that has it)."""
        for _, r in reversed(self.reports):
            if key is None or key in r:
                return r
        return {}

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait()


# --- Kamailio ---------------------------------------------------------------------

def sip_module():
    """scripts/webrtc/sip.py (its namespace sockets)."""
    if os.path.join(HERE, "webrtc") not in sys.path:
        sys.path.insert(0, os.path.join(HERE, "webrtc"))
    import sip
    return sip


def rtcp_port(d, netns):
    """The phone's RTCP port (its RTP port + 1): Kamailio's rtcp-mux-demux
    keeps RTCP apart toward the SIP side, and sluice-phone listens on its
    RTP port only, so the demo counts what arrives there."""
    sock = sip_module().sockets_in_netns(netns, (PHONE_PORT + 1,), d.PHONE_B)[0]
    sock.setblocking(False)
    return sock


def count_rtcp(sock):
    """The RTCP packets waiting on the socket (RFC 3550 §6.4: version 2,
    packet types 200-204; SRTCP keeps that header in clear)."""
    n = 0
    while sock is not None:
        try:
            p = sock.recv(2048)
        except BlockingIOError:
            return n
        n += len(p) >= 8 and p[0] >> 6 == 2 and 200 <= p[1] <= 204
    return n


class Kamailio:
    """Kamailio with the project's configs/kamailio/kamailio.cfg in the relay
    namespace, its addresses as defines (as tests/integration/kamailio.cc
    starts it): SIP on 127.0.0.1:SIP_PORT, its rtpengine module pointed at
    sluiced's ng listener there."""

    def __init__(self, d, netns, rundir):
        self.name = "kamailio"
        self.log_path = os.path.join(rundir, "kamailio.log")
        cfg = os.path.join(d.ROOT, "configs", "kamailio", "kamailio.cfg")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, KAMAILIO, "-f", cfg, "-A", "LISTEN=udp:127.0.0.1:%d" % SIP_PORT,
                 "-A", 'RTPENGINE_SOCK="udp:%s"' % NG, "-DD", "-E", "-Y", rundir,
                 "-P", os.path.join(rundir, "kamailio.pid")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        sip = sip_module()
        self.probe = sip.Agent(sip.sockets_in_netns(netns, (0,))[0], ("127.0.0.1", SIP_PORT))

    def wait_ready(self, d, timeout=15):
        """Until it answers OPTIONS (its rtpengine module has pinged sluiced by then)."""
        deadline = time.monotonic() + timeout
        for i in range(1 << 30):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise d.DemoError("Kamailio did not answer OPTIONS within %d s; its log ends:\n%s"
                                  % (timeout, d.tail(self.log_path)))
            self.probe.send("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-"
                            "probe%d\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: "
                            "<sip:127.0.0.1>\r\nCall-ID: probe-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                            % (SIP_PORT, self.probe.port, i, i))
            try:
                self.probe.wait(lambda m: m.startswith("SIP/2.0 200"), "OPTIONS reply", timeout=0.3)
                self.probe.sock.close()
                return
            except RuntimeError:
                pass

    def stop(self):
        stop_group(self.proc)


# --- audio ------------------------------------------------------------------------

def make_audio(d, rundir):
    """The browser's microphone: a 48 kHz WAV of BROWSER_HZ (Chromium loops it).
    The phone's answer: 8 kHz G.711 mu-law of PHONE_HZ (whole cycles, so its
    loop is seamless)."""
    wav = os.path.join(rundir, "browser-microphone.wav")
    d.run("sox", "-n", "-r", "48000", "-c", "1", "-b", "16", wav, "synth", "10", "sine", str(BROWSER_HZ),
          "vol", "0.5")
    ul = os.path.join(rundir, "phone-sent-tone.ul")
    d.run("sox", "-n", "-r", "8000", "-c", "1", "-t", "ul", ul, "synth", "3", "sine", str(PHONE_HZ),
          "vol", "0.5")
    return wav, ul


def dominant_hz(d, ul, rundir):
    """The strongest frequency (100-3900 Hz) of a G.711 recording, and its
    length in seconds."""
    import numpy as np
    wav = os.path.join(rundir, "phone-received.wav")
    d.run("sox", "-t", "ul", "-r", "8000", "-c", "1", ul, "-e", "signed-integer", "-b", "16", wav)
    with open(wav, "rb") as f:
        data = f.read()
    pcm = np.frombuffer(data[data.find(b"data") + 8:], dtype="<i2")
    if len(pcm) < 4000:
        return 0.0, len(pcm) / 8000
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    band = (freqs >= 100) & (freqs <= 3900)
    return float(freqs[band][np.argmax(spectrum[band])]), len(pcm) / 8000


# --- the call ---------------------------------------------------------------------

def wait(d, sel, what, until, timeout):
    if not d.pump(sel, until, time.monotonic() + timeout):
        raise d.DemoError("%s within %d s" % (what, timeout))


def demo(d, args, bins, rundir, net, phones, checks):
    print("== audio: the browser's microphone plays %g Hz (a WAV file), the phone answers with %g Hz (G.711)"
          % (BROWSER_HZ, PHONE_HZ))
    wav, phone_ul = make_audio(d, rundir)
    print("== network: namespaces %s{relay,pa,pb}: the browser in pa (%s), the phone in pb (%s)"
          % (net.prefix, d.PHONE_A, d.PHONE_B))
    net.create()
    kamailio = args.via == "kamailio"
    sock_path, log_path = d.start_sluiced(bins, rundir, net, NG_CONFIG if kamailio else "")
    ctl = d.Control(sock_path)
    sel = d.selectors.DefaultSelector()
    via_args = ()
    if kamailio:
        kam = Kamailio(d, net.ns("relay"), rundir)
        phones.append(kam)
        kam.wait_ready(d)
        print("== Kamailio: configs/kamailio/kamailio.cfg in %s, SIP on 127.0.0.1:%d, rtpengine_manage() "
              "driving sluiced's ng listener at %s" % (net.ns("relay"), SIP_PORT, NG))
        via_args = ("--via", "kamailio", "--sip-netns", net.ns("relay"), "--proxy", "127.0.0.1:%d" % SIP_PORT,
                    "--ng", NG, "--phone-media", args.phone_media)

    sig = Signalling(d, net.ns("pa"), sock_path, via_args)
    phones.append(sig)
    sig.rtcp_sock = rtcp_port(d, net.ns("pb")) if kamailio else None
    sel.register(sig.proc.stdout, d.selectors.EVENT_READ, sig)
    wait(d, sel, "the signalling script did not listen", lambda: sig.port, 15)
    url = "http://127.0.0.1:%d/" % sig.port
    print("== signalling: the demo's own script serves %s in the browser's namespace and %s" % (
        url, "plays two SIP user agents through Kamailio (the browser's caller, the phone's callee)"
        if kamailio else "creates the call on sluiced's control socket"))

    phone = d.PhoneSide("phone", net.ns("pb"), bins["phone"], phone_ul, "any", rundir)
    phones.append(phone)
    sig.phone = phone
    sel.register(phone.proc.stdout, d.selectors.EVENT_READ, phone)
    sdes = args.phone_media == "sdes"
    phone_offer = d.new_key(d.SUITE_A)   # the phone's a=crypto
    if sdes:
        sig.send(phone_crypto=phone_offer)

    began = time.monotonic()
    browser = Browser(net.ns("pa"), url, wav, rundir)
    phones.append(browser)
    print("== browser: headless %s opens the page; fake microphone, no sandbox, DevTools over a pipe"
          % run_version(browser_path=chromium()))
    d.pump(sel, lambda: "created" in sig.events or sig.errors or browser.proc.poll() is not None,
           time.monotonic() + 60)
    if "created" not in sig.events:
        raise d.DemoError("the page sent no offer within 60 s%s%s; Chromium's log ends:\n%s" % (
            ": " if sig.errors else "", "; ".join(sig.errors), d.tail(browser.log_path)))
    created = sig.events["created"]
    print("   offer from the page after %.1f s: setup %s, %d fingerprint(s), BUNDLE group %r; Sluice answers "
          "setup %s, ice-lite, no a=group" % (time.monotonic() - began, created["offer_setup"],
                                               created["fingerprints"], created["offer_group"], created["setup"]))
    if kamailio:
        print("   SIP: INVITE -> Kamailio -> the phone's agent got %s; 200 -> Kamailio -> the page got %s" % (
            " ".join(created["phone_sdp_lines"]), " ".join(created["browser_sdp_lines"])))
    print("   call: browser %s <-> Sluice %s (WebRTC) | Sluice %s <-> phone %s:%d (%s)" % (
        d.PHONE_A, created["browser_local"], created["phone_local"], d.PHONE_B, PHONE_PORT,
        "SDES " + d.SUITE_A if sdes else "plain RTP"))
    # The browser's SSRC when its offer names it (a re-key then carries the
    # stream's rollover counter); 0 takes any.
    phone.send(["call 0 %s:%d %s %d %d %d 0" % (d.PHONE_B, PHONE_PORT, created["phone_local"], PHONE_SSRC,
                                                created.get("ssrc", 0), d.secrets.randbelow(30000))] +
               (["key 0 send %s" % phone_offer, "key 0 recv %s" % created["phone_crypto"]] if sdes else
                ["plain 0"]) + ["ready"])
    wait(d, sel, "the phone did not get ready", lambda: phone.ready, 15)

    def connected():
        return sig.last("connection").get("connection") == "connected" or sig.errors
    wait(d, sel, "the page did not connect (ICE and DTLS)", connected, 30)
    leg = browser_leg(d, ctl, args)
    for _ in range(50):  # the pair Chromium nominated, a control loop pass later
        if leg["ice"].get("selected"):
            break
        d.pump(sel, lambda: False, time.monotonic() + 0.1)
        leg = browser_leg(d, ctl, args)
    print("   connected after %.1f s: Sluice's DTLS %s (%s), ICE selected %s" % (
        time.monotonic() - began, leg["dtls"]["state"], leg["dtls"].get("profile"), leg["ice"].get("selected")))
    phone.send(["start"])
    return talk(d, args, sel, ctl, sig, phone, browser, url, rundir, checks, log_path, leg)


def run_version(browser_path):
    out = subprocess.run([browser_path, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout.strip()
    return out or "Chromium"


def browser_leg(d, ctl, args):
    reply = ctl.call("session.get", session="webrtc-demo")
    if not reply.get("ok"):
        raise d.DemoError("session.get: %s" % reply.get("error"))
    return next(l for l in reply["legs"] if l["name"] == LEG_NAMES[args.via]["browser"])


def talk(d, args, sel, ctl, sig, phone, browser, url, rundir, checks, log_path, first_leg):
    print("== call running for %g s%s" % (args.seconds, "" if args.no_rekey else
                                         "; ICE restart from the page at %g s" % (args.seconds / 2)))
    print("   time  browser sent/s  phone verified/s   phone sent/s  browser received/s  "
          "browser hears    ICE")
    start = time.monotonic()
    restart_at = None if args.no_rekey else start + args.seconds / 2
    shot_at = start + args.seconds * 0.75 if args.keep else None
    end = start + args.seconds
    mark = {}   # figures at the restart
    prev, prev_t, tick = (sig.last("rx_packets"), phone.last or {}), start, start + 1
    while True:
        d.pump(sel, lambda: False, min(tick, end))
        now = time.monotonic()
        if restart_at and now >= restart_at:
            restart_at = None
            print("   -- ICE restart: the page re-offers with new credentials, Sluice's leg is updated")
            mark = {"t": now, "page": sig.last("rx_packets"), "phone": phone.last or {}}
            sig.send(command="restart")
        if shot_at and now >= shot_at:
            shot_at = None
            shot = os.path.join(rundir, "browser-call.png")
            browser.screenshot(url, shot)
            print("   -- screenshot of the page: browser-call.png (%d bytes)" % os.path.getsize(shot))
        if now >= tick or now >= end:
            page, ph = sig.last("rx_packets"), phone.last or {}
            dt = max(now - prev_t, 1e-3)
            print("   %4.0fs  %14.0f  %16.0f   %12.0f  %18.0f  %8.0f Hz  %9s" % (
                now - start, (page.get("tx_packets", 0) - prev[0].get("tx_packets", 0)) / dt,
                (ph.get("verified", 0) - prev[1].get("verified", 0)) / dt,
                (ph.get("sent", 0) - prev[1].get("sent", 0)) / dt,
                (page.get("rx_packets", 0) - prev[0].get("rx_packets", 0)) / dt,
                page.get("hz", 0), page.get("ice", "-")), flush=True)
            prev, prev_t, tick = (page, ph), now, tick + 1
        if now >= end:
            break
    leg = browser_leg(d, ctl, args)
    return hang_up(d, args, sel, ctl, sig, phone, browser, url, rundir, checks, log_path, first_leg, leg, mark,
                   start)


def hang_up(d, args, sel, ctl, sig, phone, browser, url, rundir, checks, log_path, first_leg, leg, mark, start):
    stopped_at = time.monotonic()
    page_text = browser.page_text(url) if sig.errors else ""
    phone.send(["stop"])
    d.pump(sel, lambda: False, time.monotonic() + 0.5)
    sig.send(command="hangup")
    errors = len(sig.errors)
    if not d.pump(sel, lambda: "deleted" in sig.events or len(sig.errors) > errors, time.monotonic() + 15):
        sig.errors.append("no hang-up within 15 s")
    if "deleted" not in sig.events:
        raise d.DemoError("the page did not hang up: %s\nthe page said:\n%s" % (
            "; ".join(sig.errors), browser.page_text(url)))
    call_s = time.monotonic() - start
    phone.send(["report"])
    wait(d, sel, "the phone did not report", lambda: phone.final, 10)
    stats = ctl.call("stats")
    ctl.close()
    final = next((r for _, r in reversed(sig.reports) if r.get("final")), sig.last("rx_packets"))
    deleted = sig.events["deleted"]["reply"]
    names = {v: k for k, v in LEG_NAMES[args.via].items()}
    legs = {names.get(l["name"], l["name"]): l for l in deleted.get("legs", [])}
    heard_hz, heard_s = dominant_hz(d, os.path.join(rundir, "phone-received.ul"), rundir)
    rtcp_apart = count_rtcp(sig.rtcp_sock)
    fig = {"final": final, "phone": phone.final, "legs": legs, "stats": stats, "heard_hz": heard_hz,
           "heard_s": heard_s, "call_s": call_s, "leg": leg, "first_leg": first_leg, "mark": mark,
           "deleted": deleted, "stopped_at": stopped_at, "rtcp_apart": rtcp_apart,
           "plain": args.phone_media == "plain"}
    summary(d, fig)
    if page_text:
        print("\n== the page said\n" + "\n".join("   " + l for l in page_text.splitlines()))
    run_checks(d, args, sig, checks, fig)
    return d.finish(checks, log_path)


def summary(d, fig):
    f, p, legs = fig["final"], fig["phone"], fig["legs"]
    print("\n== summary (%.1f s of call)" % fig["call_s"])
    print("   browser: sent %d RTP packets, received %d (lost %s), heard %.0f Hz at %.0f dB; DTLS %s, SRTP %s"
          % (f.get("tx_packets", 0), f.get("rx_packets", 0), f.get("rx_lost"), f.get("hz", 0), f.get("db", 0),
             f.get("dtls"), f.get("srtp")))
    print("   phone:   sent %d, received %d, %s %d RTP and %d SRTCP (auth failures %d, replays %d, "
          "out of order %d); its recording (%.1f s) peaks at %.0f Hz" % (
              p["sent"], p["received"], "took (plain)" if fig["plain"] else "authenticated", p["verified"], p.get("rtcp", 0), p["auth_failures"], p["replays"],
              p["out_of_order"], fig["heard_s"], fig["heard_hz"]))
    for name in ("browser", "phone"):
        c = legs.get(name, {}).get("counters", {})
        print("   Sluice leg %-7s received %d, sent %d, auth failures %d, replays %d, other drops %d" % (
            name, c.get("rx_packets", 0), c.get("tx_packets", 0), c.get("auth_failures", 0),
            c.get("replay_drops", 0), c.get("other_drops", 0)))
    print("   Sluice drops by reason: %s; WebRTC: %s" % (json.dumps(fig["stats"].get("drops", {})),
                                                         json.dumps(fig["stats"].get("webrtc", {}))))


def after_restart(sig, mark):
    """The page's reports since the restart was asked for."""
    return [r for t, r in sig.reports if mark and t > mark["t"]]


def run_checks(d, args, sig, checks, fig):
    print("\n== checks")
    expect = checks.expect
    f, p, legs, leg = fig["final"], fig["phone"], fig["legs"], fig["leg"]
    expect(not sig.errors, "the page reported no error%s" % ("" if not sig.errors else ": " + "; ".join(sig.errors)))
    expect(leg["dtls"]["state"] == "keyed" and leg["ice"].get("selected", "").startswith(d.PHONE_A + ":"),
           "Sluice's browser leg is keyed by DTLS-SRTP (%s) and ICE selected the browser at %s" % (
               leg["dtls"].get("profile"), leg["ice"].get("selected")))
    expect(f.get("dtls") == "connected", "the browser's DTLS transport is connected (SRTP %s)" % f.get("srtp"))
    cb, cp = (legs.get(n, {}).get("counters", {}) for n in ("browser", "phone"))
    expect(cb.get("rx_packets") == cp.get("tx_packets") and cp.get("rx_packets") == p["sent"] == cb.get("tx_packets"),
           "Sluice relayed every packet both ways (browser -> phone %d of %d, phone -> browser %d of %d)" % (
               cp.get("tx_packets"), cb.get("rx_packets"), cb.get("tx_packets"), p["sent"]))
    sent_b = cp.get("tx_packets", 0)
    if args.via == "kamailio":
        # rtcp-mux-demux: the browser's SRTCP goes to the phone's RTCP port.
        apart = fig["rtcp_apart"]
        expect(p["verified"] == sent_b - cp.get("tx_rtcp_packets", 0) and p["auth_failures"] == 0 and
               p["verified"] > 0 and apart == cp.get("tx_rtcp_packets", 0) and legs["phone"]["rtcp"] == "separate",
               "browser -> phone: the phone %s every RTP packet Sluice relayed to it (%d of %d), and "
               "Sluice's %d RTCP went to its RTCP port %d (rtcp-mux-demux; %d arrived there)"
               % ("authenticated" if args.phone_media == "sdes" else "took as plain RTP, in order,",
                  p["verified"], sent_b - cp.get("tx_rtcp_packets", 0), cp.get("tx_rtcp_packets", 0),
                  PHONE_PORT + 1, apart))
    else:
        expect(p["verified"] + p.get("rtcp", 0) == sent_b and p["auth_failures"] == 0 and p["verified"] > 0,
               "browser -> phone: the phone authenticated every packet Sluice relayed to it (%d RTP + %d SRTCP of "
               "%d)" % (p["verified"], p.get("rtcp", 0), sent_b))
    expect(abs(fig["heard_hz"] - BROWSER_HZ) <= HZ_TOLERANCE,
           "browser -> phone: the phone hears the browser's microphone, %.0f Hz (sent %g Hz, %.1f s recorded)"
           % (fig["heard_hz"], BROWSER_HZ, fig["heard_s"]))
    rx = f.get("rx_packets", 0)
    expect(rx >= p["sent"] * 0.98 and rx > 0,
           "phone -> browser: the browser received %d RTP packets of the %d the phone sent" % (rx, p["sent"]))
    heard = [r["hz"] for _, r in sig.reports if r.get("rx_packets", 0) > PACKETS_PER_S and "hz" in r]
    good = [h for h in heard if abs(h - PHONE_HZ) <= HZ_TOLERANCE]
    expect(heard and len(good) >= 0.8 * len(heard) and abs(f.get("hz", 0) - PHONE_HZ) <= HZ_TOLERANCE,
           "phone -> browser: the page's AnalyserNode hears the phone's %g Hz (%d of %d measurements, last %.0f Hz)"
           % (PHONE_HZ, len(good), len(heard), f.get("hz", 0)))
    expect(all(x.get(k, 0) == 0 for x in (cb, cp) for k in ("auth_failures", "replay_drops")),
           "no authentication failure or replay at Sluice")
    if args.via == "kamailio":
        ng_checks(args, sig, checks, legs["phone"])
    if not args.no_rekey:
        restart_checks(d, sig, checks, fig)
    expect(fig["deleted"].get("ok") and fig["stats"].get("sessions") == 0,
           "hang-up: the page closed, the call's session was deleted (sessions left: %s)"
           % fig["stats"].get("sessions"))


def ng_checks(args, sig, checks, phone_leg):
    """The call went through Kamailio and Sluice's ng listener; the phone's
    side is what --phone-media asked for."""
    created, ng = sig.events["created"], sig.events["deleted"].get("ng", {})
    phone_lines, page_lines = set(created["phone_sdp_lines"]), set(created["browser_sdp_lines"])
    web = {"a=ice-lite", "a=ice-ufrag", "a=fingerprint", "a=setup", "a=candidate", "a=rtcp-mux"}
    sdes = args.phone_media == "sdes"
    checks.expect(created["phone_proto"] == ("RTP/SAVP" if sdes else "RTP/AVP") and
                  ("a=crypto" in phone_lines) == sdes and not phone_lines & web and
                  "a=crypto" not in page_lines and web <= page_lines,
                  "SIP: Kamailio's INVITE gave the phone %s %s a=crypto and no ICE or DTLS; its 200 gave the page "
                  "Sluice's ICE-lite and DTLS (%s), no a=crypto" % (
                      created["phone_proto"], "with" if sdes else "without", " ".join(sorted(page_lines & web))))
    suites = (phone_leg.get("rx_suite"), phone_leg.get("tx_suite"))
    want = ("AES_CM_128_HMAC_SHA1_80",) * 2 if sdes else ("plain", "plain")
    checks.expect(suites == want, "Sluice's leg toward the phone is %s both ways (rx %s, tx %s)" % (
        "SDES" if sdes else "plain RTP", suites[0], suites[1]))
    restarted = not args.no_rekey
    checks.expect(ng.get("requests", 0) >= (5 if restarted else 3) and ng.get("errors", 1) == 0,
                  "over ng: Sluice's ng listener took %s requests from Kamailio's rtpengine module (offer, answer, "
                  "%sthe BYE's delete, its pings), %s errors; the session is named after the SIP Call-ID %s" % (
                      ng.get("requests"), "the re-INVITE's offer and answer, " if restarted else "",
                      ng.get("errors"), created["call_id"]))


def restart_checks(d, sig, checks, fig):
    ev, mark, f, leg = sig.events.get("restarted"), fig["mark"], fig["final"], fig["leg"]
    old = fig["first_leg"]["ice"]["ufrag"]
    checks.expect(ev is not None and ev["peer_ufrag"] != ev["peer_ufrag_before"] and ev["sluice_ufrag"] != old
                  and leg["ice"]["ufrag"] == ev["sluice_ufrag"],
                  "ICE restart: new credentials on both sides (the browser's ufrag %s -> %s, Sluice's %s -> %s)" % (
                      ev and ev["peer_ufrag_before"], ev and ev["peer_ufrag"], old, ev and ev["sluice_ufrag"]))
    after = after_restart(sig, mark)
    secs = fig["stopped_at"] - mark["t"] if mark else 0
    age = leg["ice"].get("consent_age_ms", 1 << 30)
    # Sluice's credentials changed at the restart and the old ones are gone
    # (RFC 8445 §9), so consent renewed after it came under the new ones.
    checks.expect(f.get("restarts") == 1 and f.get("ice") in ("connected", "completed") and ev is not None
                  and ev["sluice_ufrag"] != old and age < 1000 * secs,
                  "ICE restart: the browser is connected again (%s) and renewed consent under Sluice's new "
                  "credentials (last check %d ms before the hang-up, %.1f s after the restart)" % (
                      f.get("ice"), age, secs))
    page_rx = f.get("rx_packets", 0) - mark.get("page", {}).get("rx_packets", 0)
    phone_rx = fig["phone"]["verified"] - mark.get("phone", {}).get("verified", 0)
    floor = 0.8 * PACKETS_PER_S * max(0, secs - 1)
    checks.expect(page_rx >= floor and phone_rx >= floor and after and
                  all(abs(r.get("hz", 0) - PHONE_HZ) <= HZ_TOLERANCE for r in after[-2:]),
                  "ICE restart: the audio went on both ways (in the %.1f s after it the browser received %d "
                  "packets, the phone %d; the page still hears %.0f Hz; the browser's address %s -> %s)" % (
                      secs, page_rx, phone_rx, after[-1].get("hz", 0) if after else 0,
                      fig["first_leg"]["ice"].get("selected"), leg["ice"].get("selected")))
