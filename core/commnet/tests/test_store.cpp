#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "heron_commnet/store.h"
#include "test_util.h"

using namespace heron_commnet;
using std::chrono::milliseconds;

TEST(Store, TcpStoreSetGetAcrossClients) {
  std::unique_ptr<TcpStore> server;
  ASSERT_TRUE(TcpStore::create("127.0.0.1", 0, true, milliseconds(5000), &server).ok());
  std::unique_ptr<TcpStore> client;
  ASSERT_TRUE(TcpStore::create("127.0.0.1", server->port(), false, milliseconds(5000), &client).ok());
  std::thread t([&] { EXPECT_TRUE(server->set("a/b", std::string("x\0y", 3)).ok()); });
  std::string v;
  Status st = client->get("a/b", milliseconds(5000), &v);  // waits for the set
  t.join();
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(v, std::string("x\0y", 3));
  bool exists = false;
  ASSERT_TRUE(client->check("nope", &exists).ok());
  EXPECT_FALSE(exists);
  ASSERT_TRUE(client->check("a/b", &exists).ok());
  EXPECT_TRUE(exists);
}

TEST(Store, TcpStoreGetTimesOutNamingTheKey) {
  std::unique_ptr<TcpStore> server;
  ASSERT_TRUE(TcpStore::create("127.0.0.1", 0, true, milliseconds(5000), &server).ok());
  std::string v;
  Status st = server->get("missing/key", milliseconds(50), &v);
  EXPECT_EQ(st.code(), ErrorCode::kRendezvous);
  EXPECT_NE(st.message().find("missing/key"), std::string::npos) << st.message();
}

TEST(Store, TcpStoreUnreachableIsAClearError) {
  // A port nobody listens on: bind one, close it.
  std::unique_ptr<TcpStore> probe;
  ASSERT_TRUE(TcpStore::create("127.0.0.1", 0, true, milliseconds(5000), &probe).ok());
  uint16_t port = probe->port();
  probe.reset();
  std::unique_ptr<TcpStore> client;
  Status st = TcpStore::create("127.0.0.1", port, false, milliseconds(100), &client);
  EXPECT_EQ(st.code(), ErrorCode::kRendezvous);
  EXPECT_NE(st.message().find("unreachable"), std::string::npos) << st.message();
}

TEST(Store, FileStoreSetGetOverwriteAndTimeout) {
  std::string path = commnet_test::temp_store_path();
  FileStore a(path), b(path);
  ASSERT_TRUE(a.set("k", "1").ok());
  ASSERT_TRUE(a.set("k", "2\n\t").ok());
  std::string v;
  ASSERT_TRUE(b.get("k", milliseconds(1000), &v).ok());
  EXPECT_EQ(v, "2\n\t");
  Status st = b.get("other", milliseconds(30), &v);
  EXPECT_EQ(st.code(), ErrorCode::kRendezvous);
  EXPECT_NE(st.message().find("other"), std::string::npos);
  std::remove(path.c_str());
}
