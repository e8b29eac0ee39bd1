// sluicectl: command-line client for sluiced's control socket. Builds one
// request, prints the reply as tables (or raw with --json).
//
// Exit codes: 0 ok, 1 error reply, 2 usage error or no usable connection.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "sluice/control/client.h"
#include "sluice/control/protocol.h"
#include "sluice/version.h"

namespace {

using sluice::control::Json;
using sluice::control::WipedString;

constexpr int kExitOk = 0;
constexpr int kExitErrorReply = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "sluicectl %s: control client for the Sluice media relay.\n"
    "\n"
    "Talks to a running sluiced over its control socket: creates, updates,\n"
    "inspects and deletes the sessions (calls) whose media it relays, and\n"
    "reads its statistics.\n"
    "\n"
    "Usage: sluicectl [--socket PATH | --connect HOST:PORT --tls-ca FILE\n"
    "                 --tls-cert FILE --tls-key FILE [--tls-server-name NAME]]\n"
    "                 [--json] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  ping                            daemon version and worker count\n"
    "  session create --file FILE|-    create a session from a JSON file (the\n"
    "                                  request without id/op, or a full request)\n"
    "  session update SESSION LEG [--rx-crypto ATTR | --rx-plain]\n"
    "                 [--tx-crypto ATTR | --tx-suite NAME | --tx-plain]\n"
    "                 [--remote IP:PORT]\n"
    "                                  re-key a leg or change its remote; ATTR \"-\"\n"
    "                                  reads the attribute from a line of stdin\n"
    "                                  (keeps keys out of the process list)\n"
    "  session delete SESSION          delete a session, print its final counters\n"
    "  session get SESSION             a session's legs, suites and counters\n"
    "  session list [--offset N] [--limit N]\n"
    "                                  sessions, 100 at a time by default\n"
    "  stats                           session count, per-worker counters, drops\n"
    "  ha rekek                        [ha]: every replicated key sealed again under\n"
    "                                  the KEK now in kek_file (docs/ha.md)\n"
    "  ha promote                      [ha] standby: take the heartbeat and the\n"
    "                                  addresses, install the sessions, relay\n"
    "\n"
    "Options:\n"
    "  --socket PATH   control socket (default /run/sluice/control.sock)\n"
    "  --connect HOST:PORT\n"
    "                  the daemon's [control.tls] listener instead, over mutual\n"
    "                  TLS (1.2 or newer); needs the three --tls-* files:\n"
    "  --tls-ca FILE   PEM CA certificate(s) the daemon's certificate chains to\n"
    "  --tls-cert FILE PEM client certificate (and intermediates) to present\n"
    "  --tls-key FILE  its PEM private key (no access for other users)\n"
    "  --tls-server-name NAME\n"
    "                  name sent as SNI and required in the daemon's certificate\n"
    "                  (default: HOST of --connect)\n"
    "  --json          print the raw JSON reply\n"
    "  --help          show this text\n"
    "  --version       print the version\n"
    "\n"
    "Exit status: 0 ok, 1 the daemon replied with an error (printed on\n"
    "stderr), 2 usage error or the daemon could not be reached.\n"
    "\n"
    "Keys: a generated tx key (\"tx\": {\"suite\": ...}) is printed once, by\n"
    "create or update, as \"tx crypto (give to the peer):\"; nothing else\n"
    "ever shows key material.\n";

struct UsageError {
  std::string message;
};

[[noreturn]] void Usage(const std::string& message) { throw UsageError{message}; }

// --- Reading replies (tolerant of missing fields) ---------------------------

std::string Str(const Json& object, const char* key, const char* missing = "-") {
  if (!object.is_object()) return missing;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return missing;
  if (it->is_string()) {
    const auto& s = it->get_ref<const WipedString&>();
    return std::string(s.data(), s.size());
  }
  const WipedString text = it->dump();
  return std::string(text.data(), text.size());
}

uint64_t Num(const Json& object, const char* key) {
  if (!object.is_object()) return 0;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) return 0;
  return it->get<uint64_t>();
}

const Json& Member(const Json& object, const char* key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// --- Tables ------------------------------------------------------------------

using Row = std::vector<std::string>;

void PrintTable(const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string Remote(const Json& leg) {
  const std::string remote = Str(leg, "remote", "(learning)");
  const Json& learned = Member(leg, "remote_learned");
  if (learned.is_boolean() && learned.get<bool>() && remote != "(learning)") {
    return remote + " (learned)";
  }
  return remote;
}

// A WebRTC leg's DTLS and ICE state, a line each (no key, no ICE password).
void PrintHandshakes(const Json& legs) {
  for (const Json& leg : legs) {
    const Json& dtls = Member(leg, "dtls");
    if (dtls.is_object()) {
      const std::string reason = Str(dtls, "reason", "");
      std::printf("leg %s dtls: %s, sluice %s, profile %s%s\n  fingerprint %s\n",
                  Str(leg, "name").c_str(), Str(dtls, "state").c_str(), Str(dtls, "setup").c_str(),
                  Str(dtls, "profile", "-").c_str(),
                  reason.empty() ? "" : (" (" + reason + ")").c_str(),
                  Str(dtls, "fingerprint").c_str());
    }
    const Json& ice = Member(leg, "ice");
    if (ice.is_object()) {
      const Json& age = Member(ice, "consent_age_ms");
      std::printf("leg %s ice: ufrag %s, selected %s, consent %s\n", Str(leg, "name").c_str(),
                  Str(ice, "ufrag").c_str(), Str(ice, "selected", "(none)").c_str(),
                  age.is_number_unsigned() ? absl::StrCat(age.get<uint64_t>(), " ms ago").c_str()
                                           : "-");
    }
  }
}

void PrintSession(const Json& body) {
  const Json& legs = Member(body, "legs");
  const Json& hold = Member(body, "hold");
  std::printf("session %s%s: %s\n", Str(body, "session").c_str(),
              hold.is_boolean() && hold.get<bool>() ? " (on hold)" : "",
              Str(body, "encryption").c_str());
  if (!legs.is_array()) return;
  std::vector<Row> rows = {
      {"LEG", "INTERFACE", "LOCAL", "REMOTE", "RTCP", "RX SUITE", "TX SUITE", "ENCRYPTION"}};
  for (const Json& leg : legs) {
    rows.push_back({Str(leg, "name"), Str(leg, "interface"), Str(leg, "local"), Remote(leg),
                    Str(leg, "rtcp"), Str(leg, "rx_suite"), Str(leg, "tx_suite"),
                    Str(leg, "encryption")});
  }
  PrintTable(rows);
  std::printf("\n");
  rows = {{"LEG", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "AUTH FAIL", "REPLAY", "OTHER DROPS",
           "REMOTE CHANGES"}};
  for (const Json& leg : legs) {
    const Json& c = Member(leg, "counters");
    rows.push_back({Str(leg, "name"), absl::StrCat(Num(c, "rx_packets")),
                    absl::StrCat(Num(c, "rx_bytes")), absl::StrCat(Num(c, "tx_packets")),
                    absl::StrCat(Num(c, "tx_bytes")), absl::StrCat(Num(c, "auth_failures")),
                    absl::StrCat(Num(c, "replay_drops")), absl::StrCat(Num(c, "other_drops")),
                    absl::StrCat(Num(c, "remote_changes"))});
  }
  PrintTable(rows);
  PrintHandshakes(legs);
  // The one place sluicectl shows key material: a key sluiced generated for
  // sending, which the SBC must hand to the peer.
  for (const Json& leg : legs) {
    const Json& tx = Member(leg, "tx");
    const Json& crypto = Member(tx, "crypto");
    if (crypto.is_string()) {
      const auto& attr = crypto.get_ref<const WipedString&>();
      std::printf("\nleg %s tx crypto (give to the peer): %.*s\n", Str(leg, "name").c_str(),
                  static_cast<int>(attr.size()), attr.data());
    }
  }
}

void PrintList(const Json& body) {
  const Json& sessions = Member(body, "sessions");
  std::vector<Row> rows = {
      {"SESSION", "LEG", "LOCAL", "REMOTE", "RX SUITE", "TX SUITE", "ENCRYPTION", "RX PKTS",
       "TX PKTS", "DROPS"}};
  size_t count = 0;
  if (sessions.is_array()) {
    for (const Json& session : sessions) {
      ++count;
      const Json& legs = Member(session, "legs");
      if (!legs.is_array()) continue;
      bool first = true;
      for (const Json& leg : legs) {
        const Json& c = Member(leg, "counters");
        const uint64_t drops =
            Num(c, "auth_failures") + Num(c, "replay_drops") + Num(c, "other_drops");
        rows.push_back({first ? Str(session, "session") : "", Str(leg, "name"), Str(leg, "local"),
                        Remote(leg), Str(leg, "rx_suite"), Str(leg, "tx_suite"),
                        Str(leg, "encryption"), absl::StrCat(Num(c, "rx_packets")),
                        absl::StrCat(Num(c, "tx_packets")),
                        absl::StrCat(drops)});
        first = false;
      }
    }
  }
  if (count > 0) PrintTable(rows);
  std::printf("%zu of %llu sessions\n", count,
              static_cast<unsigned long long>(Num(body, "total")));
}

void PrintDrops(const Json& drops) {
  std::vector<Row> rows = {{"DROP REASON", "PACKETS"}};
  if (drops.is_object()) {
    for (auto it = drops.begin(); it != drops.end(); ++it) {
      rows.push_back({std::string(it.key().data(), it.key().size()),
                      it->is_number_unsigned() ? absl::StrCat(it->get<uint64_t>()) : "?"});
    }
  }
  if (rows.size() == 1) {
    std::printf("no drops\n");
  } else {
    PrintTable(rows);
  }
}

void PrintStats(const Json& body) {
  std::printf("sessions: %llu\n", static_cast<unsigned long long>(Num(body, "sessions")));
  const Json& memory = Member(body, "memory");
  if (memory.is_object()) {
    constexpr double kMiB = 1024.0 * 1024.0;
    std::printf("session state: %.1f MiB in %llu blocks (%.1f MiB mapped for hugepages)\n",
                static_cast<double>(Num(memory, "session_state_bytes")) / kMiB,
                static_cast<unsigned long long>(Num(memory, "session_state_blocks")),
                static_cast<double>(Num(memory, "mapped_bytes")) / kMiB);
  }
  const Json& control = Member(body, "control");
  if (control.is_object()) {
    std::printf(
        "control: %llu connections (%llu accepted, %llu refused), %llu requests, %llu errors\n",
        static_cast<unsigned long long>(Num(control, "connections")),
        static_cast<unsigned long long>(Num(control, "connections_accepted")),
        static_cast<unsigned long long>(Num(control, "connections_refused_limit") +
                                        Num(control, "connections_refused_credentials")),
        static_cast<unsigned long long>(Num(control, "requests")),
        static_cast<unsigned long long>(Num(control, "errors")));
    const Json& tls = Member(control, "tls");
    if (tls.is_object()) {
      std::printf("control TLS: %llu clients accepted, %llu handshakes failed, %llu timed out\n",
                  static_cast<unsigned long long>(Num(tls, "connections_accepted")),
                  static_cast<unsigned long long>(Num(tls, "handshakes_failed")),
                  static_cast<unsigned long long>(Num(tls, "handshake_timeouts")));
      if (Member(tls, "warning").is_string()) {
        std::printf("warning: %s\n", Str(tls, "warning").c_str());
      }
    }
  }
  std::printf("\n");
  std::vector<Row> rows = {{"WORKER", "LCORE", "RX PKTS", "TX PKTS", "BUSY", "DROPS"}};
  const Json& workers = Member(body, "workers");
  if (workers.is_array()) {
    for (const Json& w : workers) {
      const uint64_t busy = Num(w, "busy_cycles");
      const uint64_t total = busy + Num(w, "idle_cycles");
      uint64_t drops = 0;
      const Json& d = Member(w, "drops");
      if (d.is_object()) {
        for (const Json& count : d) drops += count.is_number_unsigned() ? count.get<uint64_t>() : 0;
      }
      rows.push_back({Str(w, "id"), Str(w, "lcore"), absl::StrCat(Num(w, "rx_packets")),
                      absl::StrCat(Num(w, "tx_packets")),
                      total == 0 ? "-" : absl::StrFormat("%.1f%%", 100.0 * busy / total),
                      absl::StrCat(drops)});
    }
  }
  PrintTable(rows);
  std::printf("\n");
  PrintDrops(Member(body, "drops"));
}

// --- Building requests -------------------------------------------------------

struct Args {
  std::vector<std::string> words;
  size_t next = 0;

  bool Done() const { return next >= words.size(); }
  const std::string& Peek() const { return words[next]; }
  std::string Take(const char* what) {
    if (Done()) Usage(absl::StrCat("missing ", what));
    return words[next++];
  }
  void ExpectEnd() const {
    if (!Done()) Usage(absl::StrCat("unexpected argument \"", words[next], "\""));
  }
};

Json Request(const char* op) {
  Json request = Json::object();
  request["id"] = 1;
  request["op"] = op;
  return request;
}

WipedString ToWiped(std::string_view s) { return WipedString(s.data(), s.size()); }

// Reads all of a file, or stdin for "-".
std::string ReadFile(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) Usage(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Json CreateRequest(Args& args) {
  std::optional<std::string> file;
  while (!args.Done()) {
    const std::string option = args.Take("an option");
    if (option == "--file") {
      file = args.Take("a file after --file");
    } else {
      Usage(absl::StrCat("session create: unknown option \"", option, "\""));
    }
  }
  if (!file.has_value()) Usage("session create needs --file FILE (or --file - for stdin)");
  std::string text = ReadFile(*file);
  Json body = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  sluice::control::WipeString(text);
  if (body.is_discarded() || !body.is_object()) {
    Usage(absl::StrCat(*file, ": not a JSON object"));
  }
  if (const auto op = body.find("op"); op != body.end() && *op != "session.create") {
    Usage(absl::StrCat(*file, ": \"op\" must be \"session.create\" (or left out)"));
  }
  Json request = Request("session.create");
  if (const auto id = body.find("id"); id != body.end()) request["id"] = *id;
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "id" && it.key() != "op") request[it.key()] = std::move(it.value());
  }
  return request;
}

// An attribute from the command line, or "-": one line of stdin.
WipedString Attribute(const std::string& value) {
  if (value != "-") return ToWiped(value);
  std::string line;
  if (!std::getline(std::cin, line)) Usage("expected a crypto attribute on stdin");
  absl::string_view trimmed = absl::StripAsciiWhitespace(line);
  WipedString attr(trimmed.data(), trimmed.size());
  sluice::control::WipeString(line);
  return attr;
}

Json UpdateRequest(Args& args) {
  Json request = Request("session.update");
  request["session"] = ToWiped(args.Take("SESSION"));
  request["leg"] = ToWiped(args.Take("LEG"));
  bool any = false;
  while (!args.Done()) {
    const std::string option = args.Take("an option");
    const char* side = option.rfind("--rx-", 0) == 0 ? "rx" : "tx";
    if ((option.rfind("--rx-", 0) == 0 || option.rfind("--tx-", 0) == 0) &&
        request.contains(side)) {
      Usage(absl::StrCat("session update: one of --", side, "-crypto, --", side, "-plain",
                         std::string_view(side) == "tx" ? ", --tx-suite" : "", " only"));
    }
    if (option == "--rx-crypto" || option == "--tx-crypto") {
      request[side] = Json::object();
      request[side]["crypto"] = Attribute(args.Take("a crypto attribute"));
    } else if (option == "--rx-plain" || option == "--tx-plain") {
      request[side] = Json::object();
      request[side]["plain"] = true;
    } else if (option == "--tx-suite") {
      request["tx"] = Json::object();
      request["tx"]["suite"] = ToWiped(args.Take("a suite name after --tx-suite"));
    } else if (option == "--remote") {
      request["remote"] = ToWiped(args.Take("IP:PORT after --remote"));
    } else {
      Usage(absl::StrCat("session update: unknown option \"", option, "\""));
    }
    any = true;
  }
  if (!any) Usage("session update needs at least one of --rx-*, --tx-*, --remote");
  return request;
}

Json ListRequest(Args& args) {
  Json request = Request("session.list");
  while (!args.Done()) {
    const std::string option = args.Take("an option");
    if (option != "--offset" && option != "--limit") {
      Usage(absl::StrCat("session list: unknown option \"", option, "\""));
    }
    const std::string value = args.Take("a number");
    uint64_t n = 0;
    if (!absl::SimpleAtoi(value, &n)) Usage(absl::StrCat(option, ": not a number: ", value));
    request[ToWiped(option.substr(2))] = n;
  }
  return request;
}

enum class Show { kPing, kSession, kDeleted, kList, kStats, kRekek, kPromote };

// Where the value of a --connect / --tls-* option goes, or null.
std::string* TlsOption(const std::string& arg, sluice::control::TlsConnectOptions* tls) {
  if (arg == "--connect") return &tls->address;
  if (arg == "--tls-ca") return &tls->files.ca_file;
  if (arg == "--tls-cert") return &tls->files.cert_file;
  if (arg == "--tls-key") return &tls->files.key_file;
  if (arg == "--tls-server-name") return &tls->server_name;
  return nullptr;
}

// --- Main --------------------------------------------------------------------

// The options before and among the command words; the rest are the command.
struct Invocation {
  std::string socket_path = "/run/sluice/control.sock";
  bool socket_given = false;
  sluice::control::TlsConnectOptions tls;
  bool json = false;
  Args args;
};

// Fills `inv` from argv; an exit code when --help or --version answered it.
std::optional<int> ParseInvocation(int argc, char** argv, Invocation& inv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, sluice::kVersion);
      return kExitOk;
    }
    if (arg == "--version") {
      std::printf("sluicectl %s\n", sluice::kVersion);
      return kExitOk;
    }
    if (arg == "--json") {
      inv.json = true;
    } else if (arg == "--socket") {
      if (i + 1 >= argc) Usage("--socket needs a path");
      inv.socket_path = argv[++i];
      inv.socket_given = true;
    } else if (arg.rfind("--socket=", 0) == 0) {
      inv.socket_path = arg.substr(9);
      inv.socket_given = true;
    } else if (std::string* value = TlsOption(arg, &inv.tls)) {
      if (i + 1 >= argc) Usage(absl::StrCat(arg, " needs a value"));
      *value = argv[++i];
    } else {
      inv.args.words.emplace_back(arg);
    }
  }
  return std::nullopt;
}

// session create|update|delete|get|list.
Json SessionRequest(Args& args, Show* show) {
  const std::string sub = args.Take("a session command (create, update, delete, get, list)");
  if (sub == "create") return CreateRequest(args);
  if (sub == "update") return UpdateRequest(args);
  if (sub == "delete" || sub == "get") {
    Json request = Request(sub == "get" ? "session.get" : "session.delete");
    request["session"] = ToWiped(args.Take("SESSION"));
    args.ExpectEnd();
    *show = sub == "get" ? Show::kSession : Show::kDeleted;
    return request;
  }
  if (sub == "list") {
    *show = Show::kList;
    return ListRequest(args);
  }
  Usage(absl::StrCat("unknown session command \"", sub, "\""));
}

// The request the command words ask for, and how to show its reply.
Json CommandRequest(Args& args, Show* show) {
  if (args.Done()) Usage("no command given");
  const std::string command = args.Take("a command");
  *show = Show::kSession;
  if (command == "ping") {
    args.ExpectEnd();
    *show = Show::kPing;
    return Request("ping");
  }
  if (command == "stats") {
    args.ExpectEnd();
    *show = Show::kStats;
    return Request("stats");
  }
  if (command == "session") return SessionRequest(args, show);
  if (command == "ha") {
    const std::string what = args.Take("an ha command (rekek, promote)");
    if (what != "rekek" && what != "promote") Usage("ha: expected \"ha rekek\" or \"ha promote\"");
    args.ExpectEnd();
    *show = what == "rekek" ? Show::kRekek : Show::kPromote;
    return Request(what == "rekek" ? "ha.rekek" : "ha.promote");
  }
  Usage(absl::StrCat("unknown command \"", command, "\""));
}

// The control socket, or the TLS listener when any --connect / --tls-*
// option is given (then all of address, CA, certificate and key).
absl::StatusOr<sluice::control::Client> ConnectAsAsked(const Invocation& inv) {
  const sluice::control::TlsConnectOptions& tls = inv.tls;
  const bool use_tls = !tls.address.empty() || !tls.files.ca_file.empty() ||
                       !tls.files.cert_file.empty() || !tls.files.key_file.empty() ||
                       !tls.server_name.empty();
  if (!use_tls) return sluice::control::Client::Connect(inv.socket_path);
  if (inv.socket_given) Usage("--socket and --connect are alternatives");
  if (tls.address.empty()) Usage("the --tls-* options need --connect HOST:PORT");
  if (tls.files.ca_file.empty() || tls.files.cert_file.empty() || tls.files.key_file.empty()) {
    Usage("--connect needs --tls-ca, --tls-cert and --tls-key");
  }
  return sluice::control::Client::ConnectTls(tls);
}

// A successful reply as the command shows it.
void ShowReply(const Json& body, Show show) {
  switch (show) {
    case Show::kPing:
      std::printf("sluiced %s, %llu workers\n", Str(body, "version").c_str(),
                  static_cast<unsigned long long>(Num(body, "workers")));
      break;
    case Show::kDeleted:
      std::printf("deleted; final counters:\n");
      PrintSession(body);
      break;
    case Show::kSession: PrintSession(body); break;
    case Show::kList: PrintList(body); break;
    case Show::kStats: PrintStats(body); break;
    case Show::kRekek:
      std::printf("%llu session(s) sealed again under the new KEK\n",
                  static_cast<unsigned long long>(Num(body, "resealed")));
      break;
    case Show::kPromote:
      std::printf("promoted: active now, %llu session(s) installed\n",
                  static_cast<unsigned long long>(Num(body, "sessions")));
      break;
  }
}

// Sends the request, reads the reply and shows it (as it came with --json);
// the exit code.
int CallAndShow(sluice::control::Client& client, const Json& request, bool json, Show show) {
  const WipedString text = request.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
  absl::StatusOr<std::string> reply = client.Call(absl::string_view(text.data(), text.size()));
  if (!reply.ok()) {
    std::fprintf(stderr, "sluicectl: %s\n", std::string(reply.status().message()).c_str());
    return kExitUsage;
  }
  const Json body = Json::parse(reply->begin(), reply->end(), nullptr, false);
  if (json) std::printf("%s\n", reply->c_str());
  sluice::control::WipeString(*reply);
  if (body.is_discarded() || !body.is_object() || !body.contains("ok") ||
      !body["ok"].is_boolean()) {
    std::fprintf(stderr, "sluicectl: malformed reply from sluiced\n");
    return kExitUsage;
  }
  if (!body["ok"].get<bool>()) {
    const Json& error = Member(body, "error");
    std::fprintf(stderr, "sluicectl: %s: %s\n", Str(error, "code", "error").c_str(),
                 Str(error, "message", "(no message)").c_str());
    return kExitErrorReply;
  }
  if (!json) ShowReply(body, show);
  return kExitOk;
}

int Run(int argc, char** argv) {
  Invocation inv;
  if (std::optional<int> answered = ParseInvocation(argc, argv, inv)) return *answered;
  Show show = Show::kSession;
  const Json request = CommandRequest(inv.args, &show);
  absl::StatusOr<sluice::control::Client> client = ConnectAsAsked(inv);
  if (!client.ok()) {
    std::fprintf(stderr, "sluicectl: %s\n", std::string(client.status().message()).c_str());
    return kExitUsage;
  }
  return CallAndShow(*client, request, inv.json, show);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sluicectl: %s; see --help\n", e.message.c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluicectl: %s\n", e.what());
    return kExitUsage;
  }
}
