// Kamailio from Debian as the SIP proxy in front of sluiced, for end-to-end
// tests: configs/kamailio/kamailio.cfg run in a namespace of a Topology with
// the test's addresses as preprocessor defines (-A), and a SIP user agent's
// UDP socket for the test to speak SIP itself.
//
// Test thread only. The process is stopped, and its log printed when a test
// failed, when the Kamailio object goes.
#ifndef SLUICE_TESTS_INTEGRATION_KAMAILIO_H_
#define SLUICE_TESTS_INTEGRATION_KAMAILIO_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "netns.h"

namespace sluice::testing {

// A SIP user agent: a UDP socket on a namespace's loopback.
class SipAgent {
 public:
  SipAgent() = default;
  SipAgent(const SipAgent&) = delete;
  SipAgent& operator=(const SipAgent&) = delete;
  ~SipAgent();
  bool Open(Topology& topo, const std::string& ns, uint16_t port);
  void Send(const std::string& msg, uint16_t to_port = 5060) const;
  // The next message that is not a provisional (1xx) response, within
  // timeout_ms; "" when none.
  std::string Receive(int timeout_ms = 3000) const;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

struct KamailioOptions {
  std::string ns = "relay";  // the Topology namespace it runs in
  uint16_t sip_port = 5060;  // on 127.0.0.1
  bool ipv6 = false;         // and on [::1] (LISTEN6)
  // The rtpengine set: "udp:127.0.0.1:2223=1 udp:10.0.0.2:2223=1".
  std::string rtpengine_sock = "udp:127.0.0.1:2223";
};

class Kamailio {
 public:
  Kamailio() = default;
  Kamailio(const Kamailio&) = delete;
  Kamailio& operator=(const Kamailio&) = delete;
  ~Kamailio();

  // A reason to skip when Kamailio is not installed, else "".
  static std::string Missing();
  // Starts it with configs/kamailio/kamailio.cfg; true once it answers
  // OPTIONS (its rtpengine module has pinged the relays by then). A failure
  // is a test failure.
  bool Start(Topology& topo, const KamailioOptions& options);
  // Everything it logged so far.
  std::string Log() const;
  uint16_t sip_port() const { return sip_port_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  uint16_t sip_port_ = 0;
};

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_INTEGRATION_KAMAILIO_H_
