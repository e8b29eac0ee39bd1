// The namespace helper builds working links and always cleans up.
#include "netns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace sluice::testing {
namespace {

bool NamespaceExists(const std::string& full_name) {
  struct stat st;
  return stat(("/run/netns/" + full_name).c_str(), &st) == 0;
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!Topology::Supported(&why)) GTEST_SKIP() << "skipped: " << why;
  }
};

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

TEST_F(NetnsTest, VethCarriesUdpBetweenNamespaces) {
  auto topo = Topology::Create();
  ASSERT_TRUE(topo.ok()) << topo.status();
  ASSERT_TRUE((*topo)->AddNamespace("a").ok());
  ASSERT_TRUE((*topo)->AddNamespace("b").ok());
  absl::Status s = (*topo)->AddVeth("a", "veth-a", "10.250.0.1/24", "b", "veth-b",
                                    "10.250.0.2/24");
  ASSERT_TRUE(s.ok()) << s;

  auto rx = (*topo)->Socket("b", AF_INET, SOCK_DGRAM);
  auto tx = (*topo)->Socket("a", AF_INET, SOCK_DGRAM);
  ASSERT_TRUE(rx.ok()) << rx.status();
  ASSERT_TRUE(tx.ok()) << tx.status();
  sockaddr_in bind_addr = Addr("10.250.0.2", 40000);
  ASSERT_EQ(bind(*rx, reinterpret_cast<sockaddr*>(&bind_addr), sizeof bind_addr), 0)
      << strerror(errno);

  const char msg[] = "sluice";
  sockaddr_in to = Addr("10.250.0.2", 40000);
  ASSERT_EQ(sendto(*tx, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(sizeof msg))
      << strerror(errno);
  pollfd pfd = {*rx, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 5000), 1) << "datagram did not cross the veth";
  char buf[64] = {};
  sockaddr_in from = {};
  socklen_t from_len = sizeof from;
  ASSERT_EQ(recvfrom(*rx, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len),
            static_cast<ssize_t>(sizeof msg));
  EXPECT_STREQ(buf, msg);
  char from_ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from.sin_addr, from_ip, sizeof from_ip);
  EXPECT_STREQ(from_ip, "10.250.0.1");
  close(*rx);
  close(*tx);
}

TEST_F(NetnsTest, NamespacesAreInvisibleToTheHostAndGoneAfterDestroy) {
  std::string full_a;
  {
    auto topo = Topology::Create();
    ASSERT_TRUE(topo.ok()) << topo.status();
    auto a = (*topo)->AddNamespace("a");
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*topo)->AddNamespace("b").ok());
    ASSERT_TRUE((*topo)->AddVeth("a", "veth-x", "", "b", "veth-y", "").ok());
    full_a = *a;
    EXPECT_TRUE(NamespaceExists(full_a));
    // Neither veth end is in the host's namespace.
    EXPECT_TRUE((*topo)->Run("a", {"true"}).ok());
    struct stat st;
    EXPECT_NE(stat("/sys/class/net/veth-x", &st), 0);
    EXPECT_NE(stat("/sys/class/net/veth-y", &st), 0);
  }
  EXPECT_FALSE(NamespaceExists(full_a));
}

TEST_F(NetnsTest, InterruptedTestRemovesItsNamespaces) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    auto topo = Topology::Create();
    if (!topo.ok() || !(*topo)->AddNamespace("intr").ok()) _exit(3);
    std::string name = (*topo)->FullName("intr");
    (void)!write(pipefd[1], name.c_str(), name.size());
    close(pipefd[1]);
    pause();  // until SIGTERM
    _exit(4);
  }
  close(pipefd[1]);
  char buf[128] = {};
  ASSERT_GT(read(pipefd[0], buf, sizeof buf - 1), 0);
  close(pipefd[0]);
  std::string name = buf;
  ASSERT_TRUE(NamespaceExists(name));
  kill(child, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_FALSE(NamespaceExists(name));
}

TEST_F(NetnsTest, KilledTestsNamespacesAreSweptLater) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    auto topo = Topology::Create();
    if (!topo.ok() || !(*topo)->AddNamespace("killed").ok()) _exit(3);
    std::string name = (*topo)->FullName("killed");
    (void)!write(pipefd[1], name.c_str(), name.size());
    close(pipefd[1]);
    pause();
    _exit(4);
  }
  close(pipefd[1]);
  char buf[128] = {};
  ASSERT_GT(read(pipefd[0], buf, sizeof buf - 1), 0);
  close(pipefd[0]);
  std::string name = buf;
  kill(child, SIGKILL);  // no handler runs
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(NamespaceExists(name));
  SweepStaleNamespaces();
  EXPECT_FALSE(NamespaceExists(name));
}

}  // namespace
}  // namespace sluice::testing
