// sluice-phone: the media side of many SIP phones at once, for
// `scripts/sluice demo`. Each call is a UDP socket sending 20 ms G.711
// packets as SRTP (libsrtp2) to its relay address and verifying what comes
// back: authentication, replay, order (no loss, no reordering) and the
// payload bytes against the audio the other side sends. With `--expect any`
// the other side is a peer whose encoder is not ours (a browser): its
// payloads are authenticated, counted and recorded, not compared, its SSRC
// may be left open (0) and its first sequence number is learned. SRTCP that
// arrives on the RTP port (RFC 5761 mux) is authenticated and counted apart.
//
// One thread, one epoll loop: the calls' UDP sockets, a 1 ms timerfd that
// sends each call's packet in its own slot of the packet time (so a thousand
// calls do not leave as one burst), and stdin, where the demo (playing the
// SIP side) gives calls, keys and re-keys. Keys arrive only on stdin, never on
// the command line, and are wiped once libsrtp has them.
//
// Calls given the same local endpoint share one socket (as the calls of a
// media gateway or trunk do) and are told apart by the relay address their
// packets come from; sockets send with sendmmsg and receive with recvmmsg, so
// a soak of thousands of calls costs a few system calls per millisecond
// rather than two per packet.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <srtp2/srtp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "libsrtp_peer.h"
#include "sluice/srtp/sdes.h"

namespace {

constexpr char kUsage[] =
    "sluice-phone: the media of many SIP phones, for scripts/sluice demo.\n"
    "\n"
    "Usage: sluice-phone --name NAME --audio FILE --expect FILE|any [--record DIR] [--ptime-ms N]\n"
    "\n"
    "  --name NAME     label for progress lines and recordings\n"
    "  --audio FILE    8 kHz G.711 mu-law (raw) this side sends, looped\n"
    "  --expect FILE   the audio the other side sends: every payload is checked against it\n"
    "  --expect any    payloads are not checked (a browser's encoder), only authenticated;\n"
    "                  a PEER_SSRC of 0 then takes any SSRC\n"
    "  --record DIR    writes DIR/NAME-sent.ul and DIR/NAME-received.ul for call 0\n"
    "  --ptime-ms N    packet time (default 20: 160 bytes of audio per packet)\n"
    "\n"
    "Commands on stdin, one per line:\n"
    "  call IDX LOCAL_IP:PORT RELAY_IP:PORT SSRC PEER_SSRC FIRST_SEQ PEER_FIRST_SEQ\n"
    "  key IDX send|recv SDES     first time: the call's key; later: a re-key (ROC kept,\n"
    "                             the previous receive key still accepted)\n"
    "  plain IDX                  the call is plain RTP both ways (no keys); a packet counts\n"
    "                             as verified when it is RTP of the audio's size, in order\n"
    "  start | stop               start or stop sending (receiving never stops)\n"
    "  report                     print the final counters\n"
    "  quit\n"
    "Every second it prints a JSON line of counters on stdout.\n";

constexpr size_t kStashMax = 128;       // packets held per call waiting for a new key
constexpr int64_t kStashNs = 2000000000;  // how long they wait
constexpr size_t kMaxPacket = 2048;
// RTP header, 60 ms of G.711 and the longest SRTP trailer.
constexpr size_t kMaxSend = 12 + 480 + SRTP_MAX_TRAILER_LEN;
constexpr uint64_t kMaxCatchUp = 20;    // 1 ms send slots made up after a late wake-up

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

bool ParseEndpoint(const std::string& text, sockaddr_in* out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  *out = {};
  out->sin_family = AF_INET;
  const int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, text.substr(0, colon).c_str(), &out->sin_addr) == 1;
}

// One libsrtp2 context for one SSRC in one direction, made from an SDES
// attribute value. The key copies are wiped before this returns.
// SSRC 0 in the receive direction: any SSRC (libsrtp's ssrc_any_inbound).
srtp_t MakeContext(const std::string& sdes, uint32_t ssrc, bool send, std::string* error) {
  auto parsed = sluice::srtp::ParseSdesCrypto(sdes);
  if (!parsed.ok()) {
    *error = std::string(parsed.status().message());
    return nullptr;
  }
  const sluice::srtp::MasterKey& key = parsed->key;
  if (key.mki_len != 0) {
    *error = "keys with an MKI are not supported by sluice-phone";
    return nullptr;
  }
  std::array<uint8_t, 32 + 14> material{};
  const auto k = key.key_bytes();
  const auto s = key.salt_bytes();
  std::copy(k.begin(), k.end(), material.begin());
  std::copy(s.begin(), s.end(), material.begin() + k.size());
  srtp_policy_t policy = {};
  sluice::testing::LibsrtpPeer::SetPolicies(key.suite, !parsed->unencrypted_srtcp, &policy.rtp,
                                            &policy.rtcp);
  policy.ssrc.type = send || ssrc != 0 ? ssrc_specific : ssrc_any_inbound;
  policy.ssrc.value = ssrc;
  policy.key = material.data();
  policy.window_size = 128;
  srtp_t ctx = nullptr;
  const srtp_err_status_t status = srtp_create(&ctx, &policy);
  OPENSSL_cleanse(material.data(), material.size());
  if (status != srtp_err_status_ok) {
    *error = "srtp_create failed with status " + std::to_string(static_cast<int>(status));
    return nullptr;
  }
  return ctx;
}

struct Counters {
  uint64_t sent = 0;          // packets sent
  uint64_t received = 0;      // datagrams received
  uint64_t verified = 0;      // authenticated, decrypted, the payload the other side sent
  uint64_t auth_failures = 0;  // no key verified them (after waiting for a re-key)
  uint64_t replays = 0;       // libsrtp refused them as replayed or too old
  uint64_t bad_payload = 0;   // verified but not the audio the other side sends
  uint64_t out_of_order = 0;  // a sequence number other than the next one (loss or reordering)
  uint64_t rekeys = 0;        // send or receive keys changed mid-call
  uint64_t previous_key = 0;  // verified with the receive key before the newest
  uint64_t held = 0;          // arrived before their key, verified once it came
  uint64_t old_after_new = 0;  // verified with the previous key after the newest one verified
  uint64_t new_key_calls = 0;  // re-keyed calls where the newest receive key verified a packet
  uint64_t rtcp = 0;          // SRTCP packets received and authenticated
};


// A UDP socket and the calls on it.
struct Socket {
  static constexpr unsigned kBatch = 64;
  int fd = -1;
  std::vector<std::pair<uint64_t, size_t>> by_relay;  // (relay address, call), sorted
  // Packets queued for one sendmmsg; grows to what one tick sends on this
  // socket, at most kBatch.
  std::vector<std::array<uint8_t, kMaxSend>> out;
  std::vector<sockaddr_in> out_to;
  std::vector<size_t> out_len;
  unsigned queued = 0;
  ~Socket() {
    if (fd >= 0) close(fd);
  }
};

uint64_t AddressKey(const sockaddr_in& a) {
  return uint64_t{a.sin_addr.s_addr} << 16 | a.sin_port;
}

struct Call {
  Socket* socket = nullptr;
  sockaddr_in relay{};
  uint32_t ssrc = 0, peer_ssrc = 0;
  uint64_t next_index = 0;   // packets sent so far
  uint16_t first_seq = 0, peer_first_seq = 0;
  srtp_t send = nullptr;
  srtp_t recv = nullptr;       // newest receive key
  srtp_t recv_prev = nullptr;  // the one before a re-key (make-before-break)
  // Packets no key verified yet: the other side may have switched to a key
  // whose answer has not reached this phone yet. Retried on a re-key.
  std::deque<std::pair<int64_t, std::vector<uint8_t>>> stash;
  bool new_key_seen = false;  // the newest receive key (after a re-key) verified a packet
  uint64_t expected = 0;  // index (from the peer's first sequence) of the next packet
  bool peer_seen = false;  // a packet of the peer's verified (--expect any learns its sequence)
  bool plain = false;      // RTP without SRTP both ways
  ~Call() {
    for (srtp_t s : {send, recv, recv_prev}) {
      if (s != nullptr) srtp_dealloc(s);
    }
  }
};

class Phone {
 public:
  Phone(std::string name, std::vector<uint8_t> audio, std::vector<uint8_t> expect,
        std::string record_dir, int ptime_ms)
      : name_(std::move(name)),
        audio_(std::move(audio)),
        expect_(std::move(expect)),
        ptime_ms_(ptime_ms),
        payload_len_(static_cast<size_t>(8 * ptime_ms)) {
    if (!record_dir.empty()) {
      rec_sent_.open(record_dir + "/" + name_ + "-sent.ul", std::ios::binary);
      rec_received_.open(record_dir + "/" + name_ + "-received.ul", std::ios::binary);
    }
  }

  int Run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    itimerspec its = {};
    its.it_interval.tv_nsec = 1000000;
    its.it_value.tv_nsec = 1000000;
    timerfd_settime(timer_, 0, &its, nullptr);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    Watch(0, kStdin);
    Watch(timer_, kTimer);
    last_report_ns_ = NowNs();
    std::array<epoll_event, 256> events;
    while (!quit_) {
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      if (n < 0 && errno != EINTR) {
        std::perror("sluice-phone: epoll_wait");
        return 1;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t tag = events[i].data.u64;
        if (tag == kStdin) {
          if (!ReadCommands()) return 1;
        } else if (tag == kTimer) {
          uint64_t expirations;
          while (read(timer_, &expirations, sizeof expirations) > 0) {
          }
          OnTick();
        } else {
          Receive(*sockets_[tag - kFirstSocket]);
        }
      }
      const int64_t now = NowNs();
      if (now - last_report_ns_ >= 1000000000) {
        last_report_ns_ = now;
        ExpireStashes(now);
        Print("progress");
      }
    }
    return 0;
  }

 private:
  static constexpr uint64_t kStdin = 0, kTimer = 1, kFirstSocket = 2;

  void Watch(int fd, uint64_t tag) {
    epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }

  bool ReadCommands() {
    char buf[4096];
    for (;;) {
      const ssize_t n = read(0, buf, sizeof buf);
      if (n == 0) {  // the demo went away
        quit_ = true;
        return true;
      }
      if (n < 0) break;
      input_.append(buf, static_cast<size_t>(n));
    }
    OPENSSL_cleanse(buf, sizeof buf);
    size_t start = 0;
    for (size_t nl; (nl = input_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = input_.substr(start, nl - start);
      const bool ok = Command(line);
      OPENSSL_cleanse(line.data(), line.size());
      if (!ok) return false;
    }
    OPENSSL_cleanse(input_.data(), start);
    input_.erase(0, start);
    return true;
  }

  bool Fail(const std::string& what) {
    std::fprintf(stderr, "sluice-phone %s: %s\n", name_.c_str(), what.c_str());
    return false;
  }

  bool Command(const std::string& line) {
    std::istringstream in(line);
    std::string verb;
    in >> verb;
    if (verb == "call") {
      size_t idx;
      std::string local, relay;
      uint32_t ssrc, peer_ssrc, first_seq, peer_first_seq;
      if (!(in >> idx >> local >> relay >> ssrc >> peer_ssrc >> first_seq >> peer_first_seq)) {
        return Fail("bad call line");
      }
      if (idx != calls_.size()) return Fail("calls must be given in order");
      auto call = std::make_unique<Call>();
      sockaddr_in bind_addr;
      if (!ParseEndpoint(local, &bind_addr) || !ParseEndpoint(relay, &call->relay)) {
        return Fail("bad endpoint in call " + std::to_string(idx));
      }
      Socket* sock = SocketFor(local, bind_addr);
      if (sock == nullptr) return Fail("cannot bind " + local + ": " + std::strerror(errno));
      const uint64_t relay_key = AddressKey(call->relay);
      auto at = std::lower_bound(sock->by_relay.begin(), sock->by_relay.end(),
                                 std::pair<uint64_t, size_t>{relay_key, 0});
      if (at != sock->by_relay.end() && at->first == relay_key) {
        return Fail("two calls on " + local + " with relay " + relay);
      }
      sock->by_relay.insert(at, {relay_key, idx});
      call->socket = sock;
      call->ssrc = ssrc;
      call->peer_ssrc = peer_ssrc;
      call->first_seq = static_cast<uint16_t>(first_seq);
      call->peer_first_seq = static_cast<uint16_t>(peer_first_seq);
      calls_.push_back(std::move(call));
      return true;
    }
    if (verb == "key") {
      size_t idx;
      std::string dir;
      if (!(in >> idx >> dir) || idx >= calls_.size() || (dir != "send" && dir != "recv")) {
        return Fail("bad key line");
      }
      std::string sdes;
      std::getline(in >> std::ws, sdes);
      const bool ok = SetKey(*calls_[idx], idx, dir == "send", sdes);
      OPENSSL_cleanse(sdes.data(), sdes.size());
      return ok;
    }
    if (verb == "plain") {
      size_t idx;
      if (!(in >> idx) || idx >= calls_.size()) return Fail("bad plain line");
      calls_[idx]->plain = true;
      return true;
    }
    if (verb == "ready") {
      Print("ready");
      return true;
    }
    if (verb == "start") {
      for (auto& c : calls_) {
        if (!c->plain && (c->send == nullptr || c->recv == nullptr)) return Fail("a call has no keys");
      }
      sending_ = true;
      slot_ = 0;
      return true;
    }
    if (verb == "stop") {
      sending_ = false;
      return true;
    }
    if (verb == "report") {
      ExpireStashes(INT64_MAX);
      Print("final");
      return true;
    }
    if (verb == "quit") {
      quit_ = true;
      return true;
    }
    return Fail("unknown command " + verb);
  }

  // The socket bound to `local`, opened on first use.
  Socket* SocketFor(const std::string& local, const sockaddr_in& bind_addr) {
    for (size_t i = 0; i < socket_names_.size(); ++i) {
      if (socket_names_[i] == local) return sockets_[i].get();
    }
    auto sock = std::make_unique<Socket>();
    sock->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (sock->fd < 0 ||
        bind(sock->fd, reinterpret_cast<const sockaddr*>(&bind_addr), sizeof bind_addr) != 0) {
      return nullptr;
    }
    // Room for a burst of the packets of every call on this socket (beyond
    // net.core.rmem_max when root: the demo runs as root).
    const int buf = 8 << 20;
    if (setsockopt(sock->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0) {
      setsockopt(sock->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    }
    if (setsockopt(sock->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) != 0) {
      setsockopt(sock->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    }
    Watch(sock->fd, kFirstSocket + sockets_.size());
    socket_names_.push_back(local);
    sockets_.push_back(std::move(sock));
    return sockets_.back().get();
  }

  bool SetKey(Call& call, size_t idx, bool send, const std::string& sdes) {
    std::string error;
    const uint32_t ssrc = send ? call.ssrc : call.peer_ssrc;
    srtp_t ctx = MakeContext(sdes, ssrc, send, &error);
    if (ctx == nullptr) return Fail("call " + std::to_string(idx) + ": " + error);
    srtp_t& current = send ? call.send : call.recv;
    if (current != nullptr) {
      // RFC 3711 §3.3.1: the rollover counter belongs to the stream, not
      // the key; the new context continues it.
      uint32_t roc = 0;
      if (srtp_get_stream_roc(current, ssrc, &roc) != srtp_err_status_ok ||
          srtp_set_stream_roc(ctx, ssrc, roc) != srtp_err_status_ok) {
        srtp_dealloc(ctx);
        return Fail("call " + std::to_string(idx) + ": cannot carry the rollover counter");
      }
      ++counters_.rekeys;
      if (send) {
        srtp_dealloc(call.send);
      } else {
        if (call.recv_prev != nullptr) srtp_dealloc(call.recv_prev);
        call.recv_prev = call.recv;
        call.new_key_seen = false;
      }
    }
    current = ctx;
    if (!send) {
      // Packets that arrived under this key before it did.
      std::deque<std::pair<int64_t, std::vector<uint8_t>>> waiting;
      waiting.swap(call.stash);
      for (auto& [when, packet] : waiting) Verify(call, packet, when, /*held=*/true);
    }
    return true;
  }

  // Sends the packets of every call whose slot in the packet time has come.
  void OnTick() {
    if (!sending_ || calls_.empty()) return;
    const int64_t now = NowNs();
    if (slot_ == 0) start_ns_ = now;
    // Slots are 1 ms; a late wake-up sends the slots that are due, so the
    // packet rate stays exact. A phone starved of CPU for longer than
    // kMaxCatchUp slots skips the rest instead of sending them as one burst
    // (which no real phone does); skipped packets are never sent, never
    // counted as sent, and leave no gap in the sequence numbers.
    const uint64_t due = static_cast<uint64_t>((now - start_ns_) / 1000000) + 1;
    if (due > slot_ + kMaxCatchUp) {
      skipped_slots_ += due - kMaxCatchUp - slot_;
      slot_ = due - kMaxCatchUp;
    }
    for (; slot_ < due; ++slot_) {
      const uint64_t phase = slot_ % static_cast<uint64_t>(ptime_ms_);
      for (size_t i = phase; i < calls_.size(); i += static_cast<size_t>(ptime_ms_)) {
        Send(*calls_[i], i);
      }
    }
    for (auto& sock : sockets_) Flush(*sock);
  }

  // One sendmmsg for what is queued on a socket.
  void Flush(Socket& sock) {
    mmsghdr msgs[Socket::kBatch] = {};
    iovec iov[Socket::kBatch];
    for (unsigned i = 0; i < sock.queued; ++i) {
      iov[i] = {sock.out[i].data(), sock.out_len[i]};
      msgs[i].msg_hdr.msg_name = &sock.out_to[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned done = 0;
    while (done < sock.queued) {
      const int n = sendmmsg(sock.fd, &msgs[done], sock.queued - done, 0);
      if (n <= 0) {
        send_errors_ += sock.queued - done;  // the socket buffer is full: lost at the phone
        break;
      }
      counters_.sent += static_cast<uint64_t>(n);
      done += static_cast<unsigned>(n);
    }
    sock.queued = 0;
  }

  void Send(Call& call, size_t idx) {
    Socket& sock = *call.socket;
    if (sock.queued == sock.out.size()) {
      if (sock.out.size() < Socket::kBatch) {
        sock.out.emplace_back();
        sock.out_to.emplace_back();
        sock.out_len.push_back(0);
      } else {
        Flush(sock);
      }
    }
    const unsigned slot = sock.queued;
    uint8_t* packet = sock.out[slot].data();
    const uint64_t k = call.next_index++;
    const uint16_t seq = static_cast<uint16_t>(call.first_seq + k);
    const uint32_t ts = static_cast<uint32_t>(k * payload_len_);
    packet[0] = 0x80;
    packet[1] = k == 0 ? 0x80 : 0x00;  // PCMU (payload type 0), marker on the first packet
    packet[2] = static_cast<uint8_t>(seq >> 8);
    packet[3] = static_cast<uint8_t>(seq);
    for (int b = 0; b < 4; ++b) {
      packet[4 + b] = static_cast<uint8_t>(ts >> (24 - 8 * b));
      packet[8 + b] = static_cast<uint8_t>(call.ssrc >> (24 - 8 * b));
    }
    AudioAt(audio_, k, packet + 12);
    if (idx == 0 && rec_sent_.is_open()) {
      rec_sent_.write(reinterpret_cast<const char*>(packet + 12),
                      static_cast<std::streamsize>(payload_len_));
    }
    int len = static_cast<int>(12 + payload_len_);
    if (!call.plain && srtp_protect(call.send, packet, &len) != srtp_err_status_ok) {
      ++protect_errors_;
      return;
    }
    sock.out_to[slot] = call.relay;
    sock.out_len[slot] = static_cast<size_t>(len);
    ++sock.queued;
  }

  // Packet k of a stream carries the audio from byte k * payload_len_, looped.
  void AudioAt(const std::vector<uint8_t>& audio, uint64_t k, uint8_t* out) const {
    size_t pos = static_cast<size_t>((k * payload_len_) % audio.size());
    for (size_t i = 0; i < payload_len_; ++i) {
      out[i] = audio[pos];
      if (++pos == audio.size()) pos = 0;
    }
  }

  // What is waiting on a socket, Socket::kBatch datagrams per recvmmsg; a
  // few batches at most, so that sending is never starved (epoll reports the
  // socket again).
  void Receive(Socket& sock) {
    for (int round = 0; round < 4; ++round) {
      mmsghdr msgs[Socket::kBatch] = {};
      iovec iov[Socket::kBatch];
      sockaddr_in from[Socket::kBatch];
      for (unsigned i = 0; i < Socket::kBatch; ++i) {
        iov[i] = {in_[i].data(), in_[i].size()};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      }
      const int n = recvmmsg(sock.fd, msgs, Socket::kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      const int64_t now = NowNs();
      for (int i = 0; i < n; ++i) {
        ++counters_.received;
        const uint64_t key = AddressKey(from[i]);
        auto at = std::lower_bound(sock.by_relay.begin(), sock.by_relay.end(),
                                   std::pair<uint64_t, size_t>{key, 0});
        if (at == sock.by_relay.end() || at->first != key) {
          ++unknown_source_;
          continue;
        }
        std::vector<uint8_t> packet(in_[i].data(), in_[i].data() + msgs[i].msg_len);
        Verify(*calls_[at->second], packet, now, /*held=*/false);
      }
      if (n < static_cast<int>(Socket::kBatch)) return;
    }
  }

  // Tries the newest receive key, then the previous one. A packet neither
  // verifies waits in the stash for a re-key (see Call::stash).
  void Verify(Call& call, const std::vector<uint8_t>& packet, int64_t when, bool held) {
    if (IsRtcp(packet)) return VerifyRtcp(call, packet);
    if (call.plain) return Check(call, packet);  // SRTP here would be too long for Check
    std::vector<uint8_t> work;
    srtp_err_status_t status = srtp_err_status_auth_fail;
    bool previous = false;
    for (srtp_t ctx : {call.recv, call.recv_prev}) {
      if (ctx == nullptr) continue;
      previous = ctx == call.recv_prev;
      work = packet;  // libsrtp may scribble on a packet it refuses (GCM)
      int len = static_cast<int>(work.size());
      status = srtp_unprotect(ctx, work.data(), &len);
      if (status == srtp_err_status_ok) {
        work.resize(static_cast<size_t>(len));
        break;
      }
      if (status == srtp_err_status_replay_fail || status == srtp_err_status_replay_old) break;
    }
    if (status == srtp_err_status_replay_fail || status == srtp_err_status_replay_old) {
      ++counters_.replays;
      return;
    }
    if (status != srtp_err_status_ok) {
      if (call.stash.size() < kStashMax) {
        call.stash.emplace_back(when, packet);
      } else {
        ++counters_.auth_failures;
      }
      return;
    }
    if (previous) {
      ++counters_.previous_key;
      // Make-before-break: once the relay sends with the new key it never
      // goes back to the old one.
      if (call.new_key_seen) ++counters_.old_after_new;
    } else if (call.recv_prev != nullptr && !call.new_key_seen) {
      call.new_key_seen = true;
      ++counters_.new_key_calls;
    }
    if (held) ++counters_.held;
    Check(call, work);
  }

  // RFC 5761 §4: on a muxed port, payload types 192-223 (the second byte) are RTCP.
  static bool IsRtcp(const std::vector<uint8_t>& p) {
    return p.size() >= 8 && p[1] >= 192 && p[1] <= 223;
  }

  void VerifyRtcp(Call& call, const std::vector<uint8_t>& packet) {
    for (srtp_t ctx : {call.recv, call.recv_prev}) {
      if (ctx == nullptr) continue;
      std::vector<uint8_t> work = packet;
      int len = static_cast<int>(work.size());
      if (srtp_unprotect_rtcp(ctx, work.data(), &len) == srtp_err_status_ok) {
        ++counters_.rtcp;
        return;
      }
    }
    ++counters_.auth_failures;
  }

  void Check(Call& call, const std::vector<uint8_t>& rtp) {
    if (rtp.size() != 12 + payload_len_) {
      ++counters_.bad_payload;
      return;
    }
    const uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
    if (expect_.empty() && !call.peer_seen) call.peer_first_seq = seq;
    call.peer_seen = true;
    // Which packet of the peer's stream this is, from its first sequence
    // number (the stream may wrap: the index is taken modulo 2^16 around the
    // expected one).
    const uint16_t expected_seq = static_cast<uint16_t>(call.peer_first_seq + call.expected);
    const int16_t delta = static_cast<int16_t>(seq - expected_seq);
    const int64_t k = static_cast<int64_t>(call.expected) + delta;
    if (delta != 0) ++counters_.out_of_order;
    if (k < 0) {
      ++counters_.bad_payload;
      return;
    }
    call.expected = static_cast<uint64_t>(k) + 1;
    uint8_t want[kMaxPacket];
    if (!expect_.empty()) AudioAt(expect_, static_cast<uint64_t>(k), want);
    if (!expect_.empty() && std::memcmp(want, rtp.data() + 12, payload_len_) != 0) {
      ++counters_.bad_payload;
      return;
    }
    ++counters_.verified;
    if (&call == calls_[0].get() && rec_received_.is_open()) {
      rec_received_.write(reinterpret_cast<const char*>(rtp.data() + 12),
                          static_cast<std::streamsize>(payload_len_));
    }
  }

  void ExpireStashes(int64_t now) {
    for (auto& c : calls_) {
      while (!c->stash.empty() && now - c->stash.front().first >= kStashNs) {
        c->stash.pop_front();
        ++counters_.auth_failures;
      }
    }
  }

  void Print(const char* event) {
    if (std::string(event) == "final") {
      rec_sent_.flush();
      rec_received_.flush();
    }
    std::printf(
        "{\"event\":\"%s\",\"name\":\"%s\",\"calls\":%zu,\"sent\":%lu,\"received\":%lu,"
        "\"verified\":%lu,\"auth_failures\":%lu,\"replays\":%lu,\"bad_payload\":%lu,"
        "\"out_of_order\":%lu,\"rekeys\":%lu,\"previous_key\":%lu,\"held\":%lu,"
        "\"old_after_new\":%lu,\"new_key_calls\":%lu,"
        "\"send_errors\":%lu,\"protect_errors\":%lu,\"skipped_slots\":%lu,"
        "\"unknown_source\":%lu,\"sockets\":%zu,\"rtcp\":%lu}\n",
        event, name_.c_str(), calls_.size(), counters_.sent, counters_.received,
        counters_.verified, counters_.auth_failures, counters_.replays, counters_.bad_payload,
        counters_.out_of_order, counters_.rekeys, counters_.previous_key, counters_.held,
        counters_.old_after_new, counters_.new_key_calls,
        send_errors_, protect_errors_, skipped_slots_, unknown_source_, sockets_.size(),
        counters_.rtcp);
    std::fflush(stdout);
  }

  std::string name_;
  std::vector<uint8_t> audio_, expect_;
  int ptime_ms_;
  size_t payload_len_;
  std::ofstream rec_sent_, rec_received_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::vector<std::string> socket_names_;  // the local endpoint of each socket
  std::array<std::array<uint8_t, kMaxPacket>, Socket::kBatch> in_{};
  Counters counters_;
  uint64_t send_errors_ = 0, protect_errors_ = 0, skipped_slots_ = 0, unknown_source_ = 0;
  int epoll_ = -1, timer_ = -1;
  bool sending_ = false, quit_ = false;
  uint64_t slot_ = 0;
  int64_t start_ns_ = 0, last_report_ns_ = 0;
  std::string input_;
};

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "phone", audio_path, expect_path, record_dir;
  int ptime_ms = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice-phone: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--name") {
      name = value();
    } else if (arg == "--audio") {
      audio_path = value();
    } else if (arg == "--expect") {
      expect_path = value();
    } else if (arg == "--record") {
      record_dir = value();
    } else if (arg == "--ptime-ms") {
      ptime_ms = std::atoi(value().c_str());
    } else {
      std::fprintf(stderr, "sluice-phone: unknown option %s\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (ptime_ms < 10 || ptime_ms > 60) {
    std::fprintf(stderr, "sluice-phone: --ptime-ms must be 10 to 60\n");
    return 2;
  }
  // --expect any: an empty expect_ stands for "any payload".
  const bool expect_any = expect_path == "any";
  std::vector<uint8_t> audio = ReadFile(audio_path);
  std::vector<uint8_t> expect = expect_any ? std::vector<uint8_t>{} : ReadFile(expect_path);
  if (audio.empty() || (expect.empty() && !expect_any)) {
    std::fprintf(stderr, "sluice-phone: --audio and --expect must name non-empty files (or --expect any)\n%s",
                 kUsage);
    return 2;
  }
  sluice::testing::LibsrtpPeer::Init();
  Phone phone(name, std::move(audio), std::move(expect), record_dir, ptime_ms);
  return phone.Run();
}
