// heron_commnet/store.h -- rendezvous: a small key/value store through which ranks find each other.
//
// A Store is pluggable: implement set/get and the Communicator uses it. Three come with CommNet:
//   - TcpStore: rank 0 hosts a server on MASTER_ADDR:MASTER_PORT, every rank connects to it;
//   - FileStore: a file on a file system every rank can see (NFS, /tmp for one host);
//   - store_from_env(): a TcpStore configured from MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "heron_commnet/status.h"

namespace heron_commnet {

class Store {
 public:
  virtual ~Store() = default;
  /// Sets key to value (overwrites).
  virtual Status set(const std::string& key, const std::string& value) = 0;
  /// Waits until key exists (at most `timeout`) and returns its value. On timeout the Status is
  /// kRendezvous and names the key.
  virtual Status get(const std::string& key, std::chrono::milliseconds timeout, std::string* value) = 0;
  /// Whether key exists now (no waiting).
  virtual Status check(const std::string& key, bool* exists) = 0;
};

/// A store served by one process (by convention rank 0, `is_server`) over TCP; clients connect to
/// host:port. The server's listening socket is bound with SO_REUSEADDR; port 0 picks a free port
/// (port() tells which). Creating a client retries the connection until `timeout`.
class TcpStore : public Store {
 public:
  static Status create(const std::string& host, uint16_t port, bool is_server, std::chrono::milliseconds timeout,
                       std::unique_ptr<TcpStore>* out);
  ~TcpStore() override;
  Status set(const std::string& key, const std::string& value) override;
  Status get(const std::string& key, std::chrono::milliseconds timeout, std::string* value) override;
  Status check(const std::string& key, bool* exists) override;
  uint16_t port() const;

  struct Impl;

 private:
  explicit TcpStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// A store in one file (appended records, advisory lock while writing). Every rank names the same path.
class FileStore : public Store {
 public:
  explicit FileStore(std::string path);
  Status set(const std::string& key, const std::string& value) override;
  Status get(const std::string& key, std::chrono::milliseconds timeout, std::string* value) override;
  Status check(const std::string& key, bool* exists) override;

 private:
  Status load(std::vector<std::pair<std::string, std::string>>* records);
  std::string path_;
};

/// The rank, world size and store described by the environment (as torchrun sets it):
/// RANK, WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT. Rank 0 hosts the TcpStore.
/// Also understands Open MPI (OMPI_COMM_WORLD_RANK/SIZE) and Slurm (SLURM_PROCID/SLURM_NTASKS) when
/// RANK/WORLD_SIZE are unset.
struct EnvRendezvous {
  int rank = -1;
  int world_size = 0;
  std::string master_addr;
  uint16_t master_port = 0;
  std::unique_ptr<Store> store;
};
Status store_from_env(std::chrono::milliseconds timeout, EnvRendezvous* out);

}  // namespace heron_commnet
