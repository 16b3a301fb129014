// Characterises cpp-httplib 0.11.4 (Debian's compiled library) where the
// gateway's design depends on it. If a test here starts failing after an
// upgrade, revisit the matching workaround in gateway/http_server.cc.
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/gateway/loopback.h"

namespace agentstream::gateway {
namespace {

using testing::ConnectLoopback;
using testing::ReadUntil;
using testing::SendGet;

// The gateway notices a gone client by asking DataSink::is_writable() while
// a stream waits for its next event. In 0.11.4 it polls for POLLOUT and
// peeks at the socket: true while the client is connected, false as soon as
// it has closed.
TEST(HttplibProbeTest, IsWritableNoticesAClosedPeer) {
  httplib::Server server;
  std::atomic<int64_t> noticed_after_ms{-1};
  std::atomic<bool> writable_while_connected{true};
  absl::Notification client_closed;
  absl::Notification provider_done;
  server.Get("/s", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider(
        "text/event-stream", [&](size_t, httplib::DataSink& sink) {
          sink.write("data: x\n\n", 9);
          // The client is connected (and reads nothing) until notified.
          while (!client_closed.HasBeenNotified()) {
            if (!sink.is_writable()) writable_while_connected = false;
            absl::SleepFor(absl::Milliseconds(10));
          }
          const absl::Time closed = absl::Now();
          while (absl::Now() - closed < absl::Milliseconds(1500)) {
            if (!sink.is_writable()) {
              noticed_after_ms =
                  absl::ToInt64Milliseconds(absl::Now() - closed);
              break;
            }
            absl::SleepFor(absl::Milliseconds(10));
          }
          provider_done.Notify();
          return false;
        });
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread listener([&] { server.listen_after_bind(); });

  const int fd = ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendGet(fd, "/s"));
  EXPECT_THAT(ReadUntil(fd, "data: x", absl::Seconds(5)),
              ::testing::HasSubstr("data: x"));
  // Connected and silent for a while: is_writable() must say true.
  absl::SleepFor(absl::Milliseconds(300));
  ::close(fd);
  client_closed.Notify();
  ASSERT_TRUE(provider_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  server.stop();
  listener.join();
  EXPECT_TRUE(writable_while_connected.load());
  EXPECT_GE(noticed_after_ms.load(), 0) << "a closed peer went unnoticed";
  EXPECT_LT(noticed_after_ms.load(), 1000);
}

}  // namespace
}  // namespace agentstream::gateway
